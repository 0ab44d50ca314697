//! Numerical parity of the ICS ViT with PyTorch (timm `Block` + our ICS
//! patch embedding), bicubic position-embedding resizing, and strict
//! checkpoint import, on the fixtures of `tools/gen_vit_fixtures.py`
//! (`tests/fixtures/backbones/vit/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use crate::common;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use reid_backbones::import::{Container, ImportOptions, Layout, WeightsFormat, load_vit};
use reid_backbones::vit::{resize_patch_pos_embed, resize_patch_pos_embed_bilinear, source_scales};
use reid_backbones::{Backbone, BackboneError, PosEmbedInterpolation, ViT, ViTConfig};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backbones/vit")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn npy(name: &str) -> ArrayD<f32> {
    read_npy(dir().join(name)).unwrap()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// The generator's input: `f32(1.5 sin(0.731 n + 0.3) + 0.2 cos(0.1137 n))`.
fn formula_input(shape: &[usize], device: &Device) -> Tensor<4> {
    let len: usize = shape.iter().product();
    let data: Vec<f32> = (0..len)
        .map(|n| {
            let n = n as f64;
            (1.5 * (0.731 * n + 0.3).sin() + 0.2 * (0.1137 * n).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(data, shape.to_vec()), device)
}

fn mode(name: &str) -> PosEmbedInterpolation {
    match name {
        "size" => PosEmbedInterpolation::Size,
        _ => PosEmbedInterpolation::DinoScaleFactor,
    }
}

fn config() -> ViTConfig {
    let c = &manifest()["config"];
    let img = usizes(&c["img_size"]);
    ViTConfig::new()
        .with_embed_dim(c["embed_dim"].as_u64().unwrap() as usize)
        .with_depth(c["depth"].as_u64().unwrap() as usize)
        .with_num_heads(c["num_heads"].as_u64().unwrap() as usize)
        .with_stem_hidden(c["stem_hidden"].as_u64().unwrap() as usize)
        .with_patch_size(c["patch_size"].as_u64().unwrap() as usize)
        .with_img_size([img[0], img[1]])
}

/// Max abs error relative to max |reference|; asserts shapes and ≤ 1e-4.
fn assert_close(ours: Vec<f32>, shape: &[usize], reference: &ArrayD<f32>, what: &str) -> f32 {
    assert_eq!(shape, reference.shape(), "{what}: shape");
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = ours
        .iter()
        .zip(reference.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(scale > 0.0, "{what}: degenerate reference");
    assert!(
        err <= 1e-4 * scale,
        "{what}: max abs error {err} vs max |ref| {scale}"
    );
    err / scale
}

fn loaded(file: &str, options: &ImportOptions, interp: PosEmbedInterpolation) -> ViT {
    let device = common::device();
    let mut m = config()
        .with_pos_interpolation(interp)
        .init(&device)
        .unwrap();
    load_vit(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    m
}

fn check_case(m: &ViT, case: &str) -> f32 {
    let device = common::device();
    let c = &manifest()["cases"][case];
    let x = formula_input(&usizes(&c["input_shape"]), &device);
    let emb = m.forward_embedding(x.clone()).unwrap();
    let shape = emb.dims().to_vec();
    let e1 = assert_close(
        emb.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &npy(c["embedding"].as_str().unwrap()),
        &format!("{case} embedding"),
    );
    let feat = m.forward_features(x);
    let shape = feat.dims().to_vec();
    let e2 = assert_close(
        feat.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &npy(c["features"].as_str().unwrap()),
        &format!("{case} features"),
    );
    e1.max(e2)
}

#[test]
fn every_case_matches_pytorch() {
    let cases = manifest()["cases"].as_object().unwrap().clone();
    assert_eq!(cases.len(), 6);
    let mut worst = 0f32;
    for (name, c) in cases {
        let interp = mode(c["mode"].as_str().unwrap());
        let m = loaded("vit.pth", &ImportOptions::default(), interp);
        let err = check_case(&m, &name);
        eprintln!("{name}: max relative error {err:e}");
        worst = worst.max(err);
    }
    eprintln!("worst relative error {worst:e}");
}

#[test]
fn bicubic_pos_embed_resize_matches_pytorch() {
    let device = common::device();
    let m = loaded(
        "vit.pth",
        &ImportOptions::default(),
        PosEmbedInterpolation::Size,
    );
    let n = m.grid[0] * m.grid[1];
    let patch = m.pos_embed.val().narrow(1, 1, n).reshape([n, m.embed_dim]);
    let entries = manifest()["pos_embed"].as_object().unwrap().clone();
    assert_eq!(entries.len(), 4);
    for (file, e) in entries {
        let g = usizes(&e["grid"]);
        let to = [g[0], g[1]];
        let scales = source_scales(m.grid, to, mode(e["mode"].as_str().unwrap()));
        let r = resize_patch_pos_embed(patch.clone().to_device(&device), m.grid, to, scales);
        let shape = r.dims().to_vec();
        let err = assert_close(
            r.into_data().try_to_vec::<f32>().unwrap(),
            &shape,
            &npy(&file),
            &file,
        );
        eprintln!("{file}: max relative error {err:e}");
    }
}

#[test]
fn checkpoint_layouts_load_the_same_weights() {
    let main = |m: &ViT| check_case(m, "main");
    let cases = [
        ("vit_cion.pth", Layout::Cion, Container::Pytorch),
        ("vit_transreid.pth", Layout::TransReid, Container::Pytorch),
        (
            "vit_timm.safetensors",
            Layout::Torchvision,
            Container::Safetensors,
        ),
        ("vit.pth", Layout::Torchvision, Container::Pytorch),
    ];
    for (file, layout, container) in cases {
        let device = common::device();
        let mut m = config().init(&device).unwrap();
        let options = if container == Container::Safetensors {
            // The timm classifier is unexpected unless allowed.
            let Err(BackboneError::KeyMismatch(km)) =
                load_vit(&mut m, dir().join(file), &ImportOptions::default())
            else {
                panic!("{file}: expected a key mismatch")
            };
            assert_eq!(km.unexpected, ["head.bias", "head.weight"], "{km}");
            ImportOptions::default().with_allow_unexpected(vec!["head.*".into()])
        } else {
            ImportOptions::default()
        };
        let report =
            load_vit(&mut m, dir().join(file), &options).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.layout, layout, "{file}");
        assert_eq!(report.container, container, "{file}");
        // 2 blocks × 12 + stem 3 convs + 2 IBN (IN 2 + BN 4) + BN 4 + proj 2
        // + cls, pos, norm 2 = 24 + 3 + 12 + 4 + 2 + 4.
        assert_eq!(report.applied, 49, "{file}: {report}");
        let ignored: Vec<&str> = report
            .ignored
            .iter()
            .flat_map(|g| &g.keys)
            .map(String::as_str)
            .collect();
        match layout {
            Layout::Cion => {
                assert!(ignored.contains(&"teacher.module.head.last_layer.weight_v"));
                assert!(ignored.contains(&"student.module.backbone.cls_token"));
            }
            Layout::TransReid => {
                assert!(ignored.contains(&"classifier.weight"));
                assert!(ignored.contains(&"bottleneck.running_mean"));
                // CION's fine-tuned ViTs resize `pos_embed` at every size
                // (tests/integration/parity_vit_cion.rs); this fixture's reference is
                // the pre-training rule, so compare the weights under it.
                assert_eq!(
                    m.pos_interpolation(),
                    PosEmbedInterpolation::DinoScaleFactorAlways
                );
                m.set_pos_interpolation(PosEmbedInterpolation::DinoScaleFactor);
            }
            _ if container == Container::Safetensors => {
                assert_eq!(report.allowed_unexpected, ["head.bias", "head.weight"]);
            }
            _ => {}
        }
        main(&m);
    }
}

#[test]
fn forced_formats_and_mismatches_are_reported() {
    let device = common::device();
    // Forcing the CION layout on a bare dict: no teacher.
    let mut m = config().init(&device).unwrap();
    let forced = ImportOptions::default().with_format(WeightsFormat::Cion);
    assert!(matches!(
        load_vit(&mut m, dir().join("vit.pth"), &forced),
        Err(BackboneError::Layout { .. })
    ));
    let lup = ImportOptions::default().with_format(WeightsFormat::Lup);
    assert!(load_vit(&mut m, dir().join("vit.pth"), &lup).is_err());

    // A wider model: every tensor mis-shaped or missing, listed by PyTorch name.
    let mut wide = config().with_embed_dim(32).init(&device).unwrap();
    let Err(BackboneError::KeyMismatch(km)) =
        load_vit(&mut wide, dir().join("vit.pth"), &ImportOptions::default())
    else {
        panic!("expected a key mismatch")
    };
    assert!(
        km.mis_shaped
            .iter()
            .any(|(k, want, got)| k == "blocks.0.attn.qkv.weight"
                && want == &vec![96, 32]
                && got == &vec![48, 16])
    );
    assert!(km.mis_shaped.iter().any(|(k, _, _)| k == "pos_embed"));

    // A deeper model: blocks.2.* missing; allowed, they stay initialised.
    let mut deep = config().with_depth(3).init(&device).unwrap();
    let Err(BackboneError::KeyMismatch(km)) =
        load_vit(&mut deep, dir().join("vit.pth"), &ImportOptions::default())
    else {
        panic!("expected a key mismatch")
    };
    assert_eq!(km.missing.len(), 12, "{km}");
    assert!(km.missing.contains(&"blocks.2.attn.qkv.weight".to_string()));
    let allow = ImportOptions::default().with_allow_missing(vec!["blocks.2.*".into()]);
    let report = load_vit(&mut deep, dir().join("vit.pth"), &allow).unwrap();
    assert_eq!(report.allowed_missing.len(), 12);

    // A shallower model: blocks.1.* unexpected unless allowed.
    let mut shallow = config().with_depth(1).init(&device).unwrap();
    let Err(BackboneError::KeyMismatch(km)) = load_vit(
        &mut shallow,
        dir().join("vit.pth"),
        &ImportOptions::default(),
    ) else {
        panic!("expected a key mismatch")
    };
    assert!(km.unexpected.contains(&"blocks.1.mlp.fc1.bias".to_string()));
    let allow = ImportOptions::default().with_allow_unexpected(vec!["blocks.1.*".into()]);
    assert!(load_vit(&mut shallow, dir().join("vit.pth"), &allow).is_ok());
}

#[test]
fn full_size_parameter_counts_match_the_generator() {
    let device = common::device();
    let counts = &manifest()["full_size_params"];
    for (name, cfg) in [
        ("vit_tiny", ViTConfig::tiny()),
        ("vit_small", ViTConfig::small()),
        ("vit_base", ViTConfig::base()),
    ] {
        let m = cfg.init(&device).unwrap();
        assert_eq!(
            m.num_weights() as u64,
            counts[name]["trunk"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            m.num_parameters() as u64,
            counts[name]["with_fc1000"].as_u64().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn load_time_bilinear_resize_matches_the_finetuning_code() {
    let device = common::device();
    let m = loaded(
        "vit.pth",
        &ImportOptions::default(),
        PosEmbedInterpolation::DinoScaleFactor,
    );
    let n = m.grid[0] * m.grid[1];
    let patch = m.pos_embed.val().narrow(1, 1, n).reshape([n, m.embed_dim]);
    let entries = manifest()["pos_bilinear"].as_object().unwrap().clone();
    assert_eq!(entries.len(), 2);
    for (file, g) in entries {
        let g = usizes(&g);
        let r = resize_patch_pos_embed_bilinear(patch.clone(), m.grid, [g[0], g[1]]);
        let shape = r.dims().to_vec();
        let err = assert_close(
            r.into_data().try_to_vec::<f32>().unwrap(),
            &shape,
            &npy(&file),
            &file,
        );
        eprintln!("{file}: max relative error {err:e}");
    }

    // A model for 96×48 made from the 64×32 weights.
    let mut m = m;
    let r = &manifest()["resized_model"];
    let img = usizes(&r["img_size"]);
    m.resize_pos_embed([img[0], img[1]]).unwrap();
    assert_eq!(m.grid, [6, 3]);
    assert_eq!(m.pos_embed.dims(), [1, 19, 16]);
    let x = formula_input(&usizes(&r["input_shape"]), &device);
    let emb = m.forward_embedding(x.clone()).unwrap();
    let shape = emb.dims().to_vec();
    let e1 = assert_close(
        emb.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &npy(r["embedding"].as_str().unwrap()),
        "resized embedding",
    );
    let feat = m.forward_features(x);
    let shape = feat.dims().to_vec();
    let e2 = assert_close(
        feat.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &npy(r["features"].as_str().unwrap()),
        "resized features",
    );
    eprintln!("resized model: max relative error {:e}", e1.max(e2));
    assert!(m.resize_pos_embed([8, 8]).is_err());
}
