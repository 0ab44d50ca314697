//! VOLO: numerical parity with timm / CION and strict checkpoint import, on
//! the fixtures of `tools/fixtures/gen_volo_fixtures.py`
//! (`tests/fixtures/backbones/volo/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::import::{ImportOptions, VoloImportReport, load_volo};
use reid_backbones::volo::{avg_pool_ceil_nhwc, fold_nhwc, unfold_nhwc};
use reid_backbones::{Backbone, Volo, VoloConfig};
use serde_json::Value;

use crate::common::family::{self, FamilyFixture};
use crate::common::{four, one_more, usizes};

family_fixture! {
    Fx = "volo", Volo = |d: &Device| config().init(d).unwrap(), VoloImportReport = load_volo,
    embedding: |m: &Volo, x| m.forward_embedding(x).unwrap(), check: check,
}

fn tensor<const D: usize>(name: &str, device: &Device) -> Tensor<D> {
    let a = Fx::npy(name);
    Tensor::from_data(
        TensorData::new(a.iter().copied().collect::<Vec<f32>>(), a.shape().to_vec()),
        device,
    )
}

/// A JSON array of `N` unsigned integers.
fn array<const N: usize>(v: &Value) -> [usize; N] {
    usizes(v).try_into().unwrap()
}

fn config() -> VoloConfig {
    let m = Fx::manifest();
    VoloConfig::new(
        four(&m["layers"]),
        four(&m["embed_dims"]),
        four(&m["num_heads"]),
    )
    .with_img_size(array(&m["img_size"]))
    .with_stem_hidden_dim(m["stem_hidden_dim"].as_u64().unwrap() as usize)
    .with_mlp_ratio(m["mlp_ratio"].as_f64().unwrap())
    .with_outlook_kernel_padding_stride(array(&m["outlook_kernel_padding_stride"]))
    .with_ln_eps(m["layer_norm_eps"].as_f64().unwrap())
    .with_bn_eps(m["batch_norm_eps"].as_f64().unwrap())
}

/// `ours` against the fixture array `reference`, within 1e-4.
fn rel_err<const D: usize>(ours: Tensor<D>, reference: &str, what: &str) -> f32 {
    crate::common::assert_close(ours, &Fx::npy(reference), what)
}

/// The outlooker map, all tokens, the class-token embedding and the patch
/// feature map of `m` against the fixtures.
fn check(m: &Volo, what: &str) {
    let device = crate::common::device();
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

/// The CION teacher (no prefix left to strip once unwrapped); its DINO
/// head, the student and the patch embedding's BN counter set aside.
#[test]
fn cion_teacher_checkpoint_matches_timm() {
    let ignored = [
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
        "student.module.backbone.norm.weight",
        "patch_embed.conv.4.num_batches_tracked",
    ];
    let (_, report) = family::cion_teacher_checkpoint_matches::<Fx>("cion.pth", "volo", &ignored);
    assert!(report.stripped_prefixes.is_empty(), "{report}");
}

family_tests!(Fx {
    timm_safetensors_matches_timm: bare_checkpoint_matches("timm.safetensors", "volo", 3);
    non_volo_files_and_formats_are_errors:
        wrong_files_and_formats_are_errors("cion.pth", "timm.safetensors");
});

/// The official release's classifier and auxiliary heads are unused keys;
/// both must be allowed.
#[test]
fn official_heads_are_unexpected_unless_allowed() {
    let heads = [
        "aux_head.bias",
        "aux_head.weight",
        "head.bias",
        "head.weight",
    ];
    let sorted = |keys: &[String]| {
        let mut keys = keys.to_vec();
        keys.sort();
        keys
    };
    let mut m = Fx::model(&crate::common::device());
    let mismatch = Fx::mismatch(&mut m, "official.pth");
    let in_file_order: Vec<&str> = mismatch.unexpected.iter().map(String::as_str).collect();
    family::assert_only_unexpected(&mismatch, "volo", &in_file_order);
    assert_eq!(sorted(&mismatch.unexpected), heads);

    // One head allowed is not enough.
    let options = ImportOptions::default().with_allow_unexpected(vec!["head.*".into()]);
    let mismatch = family::mismatch_of(Fx::import_file(&mut m, "official.pth", &options));
    assert_eq!(
        sorted(&mismatch.unexpected),
        ["aux_head.bias", "aux_head.weight"]
    );

    let options =
        ImportOptions::default().with_allow_unexpected(vec!["head.*".into(), "aux_head.*".into()]);
    let (m, report) = Fx::load("official.pth", &options);
    assert_eq!(sorted(&report.allowed_unexpected), heads);
    assert!(report.to_string().contains("allowed unused key(s)"));
    check(&m, "official (legacy .pth, heads allowed)");
}

/// An input whose outlooker grid is odd (7×5: ceil-mode pooling and fold
/// with cut windows) and whose token grid (3×2) differs from `pos_embed`'s
/// (4×2): CION's bicubic resize with DINO's scale factor.
#[test]
fn resized_pos_embed_and_odd_grids_match_cion() {
    let (m, _) = Fx::load("timm.safetensors", &ImportOptions::default());
    rel_err(
        m.position_embedding([3, 2]),
        "resize_pos.npy",
        "resized pos_embed",
    );
    let device = crate::common::device();
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
    let device = crate::common::device();
    let m = Fx::manifest();
    let x: Tensor<4> = tensor("ops_x.npy", &device);
    for case in m["ops_cases"].as_array().unwrap() {
        let [k, p, s] = array::<3>(case);
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

/// One more block in stage 3 (missing in the file), a wider stage 1 and
/// a taller `pos_embed` grid (mis-shaped), in PyTorch naming; the missing
/// block alone can be allowed.
#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_pytorch_naming() {
    let device = crate::common::device();
    let base = config();
    let layers = one_more(base.layers, 2);
    let mut cfg = base.clone().with_img_size([96, 32]);
    cfg.layers = layers;
    cfg.embed_dims[0] += 8;
    let mismatch = Fx::mismatch(&mut cfg.init(&device).unwrap(), "timm.safetensors");
    let missing = [
        "network.3.1.norm1.weight",
        "network.3.1.attn.qkv.weight",
        "network.3.1.mlp.fc2.bias",
    ];
    let shaped = [
        "pos_embed",
        "patch_embed.proj.weight",
        "network.0.0.norm1.weight",
        "network.0.0.attn.attn.weight",
        "network.1.proj.weight",
    ];
    family::assert_wrong_architecture(&mismatch, "volo", &missing, &shaped);
    assert_eq!(mismatch.missing.len(), 11, "{mismatch}");
    assert!(mismatch.to_string().contains("network.3.1"), "{mismatch}");

    // Allowing the missing block loads the rest when nothing is mis-shaped.
    let deeper = &mut VoloConfig { layers, ..base }.init(&device).unwrap();
    let report = family::load_allowing_missing::<Fx>(deeper, "timm.safetensors", "network.3.1.*");
    assert_eq!(report.allowed_missing.len(), 11, "{report}");
}
