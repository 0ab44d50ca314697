//! VOLO: numerical parity with timm / CION and strict checkpoint import, on
//! the fixtures of `tools/gen_volo_fixtures.py`
//! (`tests/fixtures/backbones/volo/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::import::{
    CheckpointWrapper, ImportOptions, VoloImportReport, WeightsFormat, load_volo,
};
use reid_backbones::volo::{avg_pool_ceil_nhwc, fold_nhwc, unfold_nhwc};
use reid_backbones::{Backbone, Volo, VoloConfig};
use serde_json::Value;

use crate::common;

fixture_fns!("volo");

fn tensor<const D: usize>(name: &str, device: &Device) -> Tensor<D> {
    let a = npy(name);
    Tensor::from_data(
        TensorData::new(a.iter().copied().collect::<Vec<f32>>(), a.shape().to_vec()),
        device,
    )
}

fn usizes<const N: usize>(v: &Value) -> [usize; N] {
    let a: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    a.try_into().unwrap()
}

fn config() -> VoloConfig {
    let m = manifest();
    VoloConfig::new(
        usizes(&m["layers"]),
        usizes(&m["embed_dims"]),
        usizes(&m["num_heads"]),
    )
    .with_img_size(usizes(&m["img_size"]))
    .with_stem_hidden_dim(m["stem_hidden_dim"].as_u64().unwrap() as usize)
    .with_mlp_ratio(m["mlp_ratio"].as_f64().unwrap())
    .with_outlook_kernel_padding_stride(usizes(&m["outlook_kernel_padding_stride"]))
    .with_ln_eps(m["layer_norm_eps"].as_f64().unwrap())
    .with_bn_eps(m["batch_norm_eps"].as_f64().unwrap())
}

fn model(device: &Device) -> Volo {
    config().init(device).unwrap()
}

/// Max abs error of `ours` relative to the reference's max magnitude;
/// asserts it is at most 1e-4.
fn rel_err<const D: usize>(ours: Tensor<D>, reference: &str, what: &str) -> f32 {
    let reference = npy(reference);
    assert_eq!(ours.dims().as_slice(), reference.shape(), "{what}: shape");
    let ours = ours.into_data().try_to_vec::<f32>().unwrap();
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: degenerate reference");
    let err = ours
        .iter()
        .zip(reference.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    assert!(err <= 1e-4, "{what}: rel. error {err:.3e}");
    println!("{what}: rel. error {err:.3e}");
    err
}

fn load(file: &str, options: &ImportOptions) -> (Volo, VoloImportReport) {
    let device = common::device();
    let mut m = model(&device);
    let report =
        load_volo(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

/// The outlooker map, all tokens, the class-token embedding and the patch
/// feature map of `m` against the fixtures.
fn check(m: &Volo, what: &str) {
    let device = common::device();
    let x: Tensor<4> = tensor("input.npy", &device);
    let stage1 = m.outlookers.iter().fold(
        m.patch_embed.forward(x.clone()).permute([0, 2, 3, 1]),
        |x, b| b.forward(x),
    );
    rel_err(stage1, "stage1.npy", &format!("{what}: outlookers"));
    let (tokens, grid) = m.forward_tokens(x.clone()).unwrap();
    assert_eq!(grid, [4, 2]);
    rel_err(tokens.clone(), "tokens.npy", &format!("{what}: tokens"));
    let emb = m.forward_embedding(x.clone()).unwrap();
    rel_err(emb, "embedding.npy", &format!("{what}: class token"));
    // The feature map is the patch tokens laid out as `[b, c, h, w]`.
    let map = m.forward_features(x);
    let [b, n, c] = tokens.dims();
    let expected = tokens
        .narrow(1, 1, n - 1)
        .swap_dims(1, 2)
        .reshape([b, c, 4, 2]);
    let diff: f32 = (map - expected).abs().max().into_scalar();
    assert_eq!(diff, 0.0, "{what}: feature map");
}

fn model_tensors(m: &Volo) -> usize {
    m.collect(None, None, true).len()
}

#[test]
fn cion_teacher_checkpoint_matches_timm() {
    let (m, report) = load("cion.pth", &ImportOptions::default());
    assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
    assert!(report.stripped_prefixes.is_empty(), "{report}");
    assert_eq!(report.applied, model_tensors(&m));
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for key in [
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
        "student.module.backbone.norm.weight",
        "patch_embed.conv.4.num_batches_tracked",
    ] {
        assert!(ignored.contains(&&key.to_string()), "{key}: {report}");
    }
    check(&m, "CION teacher (.pth)");
    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let (m, _) = load("cion.pth", &options);
    check(&m, "CION teacher (forced format)");
}

#[test]
fn timm_safetensors_matches_timm() {
    let (m, report) = load("timm.safetensors", &ImportOptions::default());
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert_eq!(report.applied, model_tensors(&m));
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    assert_eq!(ignored.len(), 3, "three BN counters: {report}");
    check(&m, "timm (safetensors)");
}

#[test]
fn official_heads_are_unexpected_unless_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_volo(
        &mut m,
        dir().join("official.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "volo");
    let mut unexpected = mismatch.unexpected.clone();
    unexpected.sort();
    assert_eq!(
        unexpected,
        vec![
            "aux_head.bias",
            "aux_head.weight",
            "head.bias",
            "head.weight"
        ]
    );
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());

    // One head allowed is not enough.
    let options = ImportOptions::default().with_allow_unexpected(vec!["head.*".into()]);
    let err = load_volo(&mut m, dir().join("official.pth"), &options).unwrap_err();
    let mismatch = common::key_mismatch(err);
    let mut unexpected = mismatch.unexpected.clone();
    unexpected.sort();
    assert_eq!(unexpected, vec!["aux_head.bias", "aux_head.weight"]);

    let options =
        ImportOptions::default().with_allow_unexpected(vec!["head.*".into(), "aux_head.*".into()]);
    let (m, report) = load("official.pth", &options);
    let mut allowed = report.allowed_unexpected.clone();
    allowed.sort();
    assert_eq!(
        allowed,
        vec![
            "aux_head.bias",
            "aux_head.weight",
            "head.bias",
            "head.weight"
        ]
    );
    assert!(report.to_string().contains("allowed unused key(s)"));
    check(&m, "official (legacy .pth, heads allowed)");
}

/// An input whose outlooker grid is odd (7×5: ceil-mode pooling and fold
/// with cut windows) and whose token grid (3×2) differs from `pos_embed`'s
/// (4×2): CION's bicubic resize with DINO's scale factor.
#[test]
fn resized_pos_embed_and_odd_grids_match_cion() {
    let (m, _) = load("timm.safetensors", &ImportOptions::default());
    rel_err(
        m.position_embedding([3, 2]),
        "resize_pos.npy",
        "resized pos_embed",
    );
    let device = common::device();
    let x: Tensor<4> = tensor("resize_input.npy", &device);
    let (tokens, grid) = m.forward_tokens(x).unwrap();
    assert_eq!(grid, [3, 2]);
    rel_err(
        tokens,
        "resize_tokens.npy",
        "56×40 input, resized pos_embed",
    );
    // The stored grid is returned unchanged.
    let stored = m.pos_embed.val();
    let diff: f32 = (m.position_embedding([4, 2]) - stored)
        .abs()
        .max()
        .into_scalar();
    assert_eq!(diff, 0.0);
}

#[test]
fn unfold_fold_and_ceil_pooling_match_pytorch() {
    let device = common::device();
    let m = manifest();
    let x: Tensor<4> = tensor("ops_x.npy", &device);
    for case in m["ops_cases"].as_array().unwrap() {
        let [k, p, s] = usizes::<3>(case);
        let name = format!("k{k}p{p}s{s}");
        rel_err(
            unfold_nhwc(x.clone(), k, p, s),
            &format!("ops_unfold_{name}.npy"),
            &format!("unfold {name}"),
        );
        let cols: Tensor<5> = tensor(&format!("ops_cols_{name}.npy"), &device);
        rel_err(
            fold_nhwc(cols, [7, 5], k, p, s),
            &format!("ops_fold_{name}.npy"),
            &format!("fold {name}"),
        );
    }
    for s in m["ops_pools"].as_array().unwrap() {
        let s = s.as_u64().unwrap() as usize;
        rel_err(
            avg_pool_ceil_nhwc(x.clone(), s),
            &format!("ops_pool_s{s}.npy"),
            &format!("avg_pool ceil s{s}"),
        );
    }
}

#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_pytorch_naming() {
    let device = common::device();
    let base = config();
    // One more block in stage 3 (missing in the file), a wider stage 1 and
    // a taller pos_embed grid (mis-shaped).
    let mut layers = base.layers;
    layers[2] += 1;
    let mut dims = base.embed_dims;
    dims[0] += 8;
    let mut cfg = base.clone().with_img_size([96, 32]);
    cfg.layers = layers;
    cfg.embed_dims = dims;
    let mut m = cfg.init(&device).unwrap();
    let err = load_volo(
        &mut m,
        dir().join("timm.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "volo");
    for key in [
        "network.3.1.norm1.weight",
        "network.3.1.attn.qkv.weight",
        "network.3.1.mlp.fc2.bias",
    ] {
        assert!(
            mismatch.missing.contains(&key.to_string()),
            "{key}: {mismatch}"
        );
    }
    assert_eq!(mismatch.missing.len(), 11, "{mismatch}");
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    for key in [
        "pos_embed",
        "patch_embed.proj.weight",
        "network.0.0.norm1.weight",
        "network.0.0.attn.attn.weight",
        "network.1.proj.weight",
    ] {
        assert!(shaped.contains(&key), "{key}: {mismatch}");
    }
    let text = mismatch.to_string();
    assert!(
        text.contains("missing") && text.contains("mis-shaped") && text.contains("network.3.1"),
        "{text}"
    );

    // Allowing the missing block loads the rest when nothing is mis-shaped.
    let mut cfg = base;
    cfg.layers = layers;
    let mut deeper = cfg.init(&device).unwrap();
    let options = ImportOptions::default().with_allow_missing(vec!["network.3.1.*".into()]);
    let report = load_volo(&mut deeper, dir().join("timm.safetensors"), &options).unwrap();
    assert_eq!(report.allowed_missing.len(), 11, "{report}");
}

#[test]
fn non_volo_files_and_formats_are_errors() {
    let device = common::device();
    let mut m = model(&device);
    common::assert_wrong_files_and_formats_are_errors(
        &mut m,
        |m, p, o| load_volo(m, p, o),
        &dir().join("cion.pth"),
        &dir().join("timm.safetensors"),
    );
}
