//! Swin parity with our PyTorch reference of the detection-style backbone
//! (`tools/fixtures/gen_swin_fixtures.py`, fixtures in
//! `tests/fixtures/backbones/swin/`), checkpoint import in the official,
//! timm and CION layouts, parameter counts, and stochastic depth.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor};
use reid_backbones::import::{Container, ImportOptions, Layout, load_swin, save_safetensors};
use reid_backbones::swin::{SwinConfig, SwinTransformer, SwinVariant};
use reid_backbones::{Backbone, BackboneError};

use crate::common::family::{self, mismatch_of};
use crate::common::{self, assert_close, four, tensor4, uint};

fixture_fns!("swin");

fn input(name: &str, device: &Device) -> Tensor<4> {
    tensor4(&npy(name), device)
}

fn config(model: &str) -> SwinConfig {
    let c = &manifest()["models"][model];
    let n = |key: &str| uint(&c[key]);
    SwinConfig::new()
        .with_embed_dim(n("embed_dim"))
        .with_depths(four(&c["depths"]))
        .with_num_heads(four(&c["heads"]))
        .with_window_size(n("window"))
        .with_patch_size(n("patch_size"))
        .with_mlp_ratio(c["mlp_ratio"].as_f64().unwrap())
}

fn load(
    model: &str,
    file: &str,
    options: &ImportOptions,
) -> (SwinTransformer, reid_backbones::ImportReport) {
    let m = config(model).init(&common::device()).unwrap();
    common::load_file(m, &dir().join(file), |m, path| load_swin(m, path, options))
}

/// Feature map and embedding of `m` on `input_file` against
/// `{expected}.features.npy` and `{expected}.embedding.npy`, within 1e-4.
fn check(m: &SwinTransformer, input_file: &str, expected: &str) {
    let device = common::device();
    let x = input(input_file, &device);
    assert_close(
        m.forward_features(x.clone()),
        &npy(&format!("{expected}.features.npy")),
        &format!("{expected} features"),
    );
    assert_close(
        m.forward_embedding(x),
        &npy(&format!("{expected}.embedding.npy")),
        &format!("{expected} embedding"),
    );
}

#[test]
fn official_layout_matches_pytorch_with_padded_windows() {
    let (m, report) = load("mini", "mini.pth", &ImportOptions::default());
    assert_eq!(report.layout, Layout::Torchvision);
    assert_eq!(report.container, Container::Pytorch);
    // 8 blocks' relative_position_index buffers, checked then set aside.
    assert_eq!(report.ignored.len(), 1, "{report}");
    assert_eq!(report.ignored[0].keys.len(), 8);
    assert_eq!(report.applied, m.collect(None, None, true).len());
    // 64×32: stage maps 16×8, 8×4, 4×2 (padded to 4×4), 2×1 (padded).
    check(&m, "input.npy", "mini");
    // 54×22: patch-embed padding, every stage padded, odd patch merge.
    check(&m, "input_odd.npy", "mini_odd");
    assert_eq!(m.out_channels(), 24);
    assert_eq!(m.output_stride(), 32);
}

#[test]
fn timm_layout_loads_with_its_classifier_allowed() {
    let mut m = config("tiny8").init(&common::device()).unwrap();
    let file = dir().join("tiny8_timm.safetensors");
    let mismatch = mismatch_of(load_swin(&mut m, &file, &ImportOptions::default()));
    let classifier = ["head.fc.bias", "head.fc.weight"];
    family::assert_only_unexpected(&mismatch, "torchvision", &classifier);

    let options = ImportOptions::default().with_allow_unexpected(vec!["head.*".into()]);
    let (m, report) = load("tiny8", "tiny8_timm.safetensors", &options);
    assert_eq!(report.container, Container::Safetensors);
    assert_eq!(report.allowed_unexpected.len(), 2);
    // Window 8 at 64×32: every stage map is padded.
    check(&m, "input.npy", "tiny8");
}

#[test]
fn cion_checkpoint_loads_the_teacher_backbone() {
    let (m, report) = load("tiny4", "tiny4_cion.pth", &ImportOptions::default());
    assert_eq!(report.layout, Layout::Cion);
    let reasons: Vec<&str> = report.ignored.iter().map(|g| g.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("DINO head")), "{report}");
    assert!(
        reasons.iter().any(|r| r.contains("outside the teacher")),
        "{report}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("relative_position_index")),
        "{report}"
    );
    check(&m, "input.npy", "tiny4");
}

#[test]
fn wrong_window_size_is_refused_naming_the_key() {
    // mini was trained with window 4; a window-8 model must refuse it.
    let mut m = config("mini")
        .with_window_size(8)
        .init(&common::device())
        .unwrap();
    let err = load_swin(&mut m, dir().join("mini.pth"), &ImportOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("relative_position_index"), "{text}");
}

#[test]
fn missing_and_mis_shaped_keys_are_listed() {
    // tiny4 weights into a model with a different depth and width.
    let mut m = config("tiny4")
        .with_depths([1, 1, 2, 1])
        .init(&common::device())
        .unwrap();
    let file = dir().join("tiny4_cion.pth");
    let mismatch = mismatch_of(load_swin(&mut m, &file, &ImportOptions::default()));
    let missing = ["layers.2.blocks.1.attn.qkv.weight"];
    family::assert_wrong_architecture(&mismatch, "cion", &missing, &[]);
}

#[test]
fn export_round_trips_through_safetensors() {
    let (m, _) = load("tiny4", "tiny4_cion.pth", &ImportOptions::default());
    let out = common::temp_file("swin_tiny4.safetensors");
    save_safetensors(&m, &out).unwrap();
    let m2 = config("tiny4").init(&common::device()).unwrap();
    let (m2, report) = common::load_file(m2, &out, |m, path| {
        load_swin(m, path, &ImportOptions::default())
    });
    std::fs::remove_file(&out).ok();
    assert_eq!(report.layout, Layout::Torchvision);
    check(&m2, "input.npy", "tiny4");
    drop(m);
}

#[test]
fn preset_parameter_counts_match_the_reidzoo_table() {
    // Everything the module holds: patch embedding (+ norm), blocks (with the
    // relative position bias tables), patch merging, norm3; no classifier, no
    // relative_position_index buffers.
    let device = common::device();
    for (variant, exact, dim) in [
        (SwinVariant::Tiny, 27_527_082, 768),
        (SwinVariant::Small, 48_853_050, 768),
        (SwinVariant::Base, 86_764_280, 1024),
    ] {
        let cfg = SwinConfig::of_variant(variant);
        assert_eq!(cfg.window_size, 8);
        assert_eq!(cfg.num_features(), dim);
        let m = cfg.init(&device).unwrap();
        let n = m.num_parameters();
        assert_eq!(n, exact, "{variant:?}");
        let millions = (n as f64 / 1e4).round() / 100.0;
        assert_eq!(millions, variant.table_params_millions(), "{variant:?}");
    }
}

#[test]
fn full_size_swin_t_runs_at_256x128() {
    let device = common::device();
    let m = SwinConfig::tiny().init(&device).unwrap();
    let x = Tensor::<4>::random(
        [1, 3, 256, 128],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let f = m.forward_features(x.clone());
    assert_eq!(f.dims(), [1, 768, 8, 4]);
    let e = m.forward_embedding(x);
    assert_eq!(e.dims(), [1, 768]);
}

#[test]
fn stochastic_depth_is_seeded_and_off_at_inference() {
    let (m, _) = load("mini", "mini.pth", &ImportOptions::default());
    let device = common::device();
    let x = input("input.npy", &device);
    let v = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let inference = v(m.forward_embedding(x.clone()));
    let a = v(m.forward_embedding_train(x.clone(), 1));
    let b = v(m.forward_embedding_train(x.clone(), 1));
    assert_eq!(a, b, "same seed, same drops");
    // Rate 0.1 over 8 blocks: some seed drops a branch.
    assert!(
        (2..20).any(|s| v(m.forward_embedding_train(x.clone(), s)) != inference),
        "no seed changed the output"
    );
    // Rate 0: the training forward is the inference forward.
    let mut zero = config("mini")
        .with_drop_path_rate(0.0)
        .init(&device)
        .unwrap();
    load_swin(&mut zero, dir().join("mini.pth"), &ImportOptions::default()).unwrap();
    let z = v(zero.forward_embedding_train(x.clone(), 5));
    let zi = v(zero.forward_embedding(x));
    assert_eq!(z, zi);
}

#[test]
fn invalid_configurations_are_errors() {
    let device = common::device();
    for cfg in [
        SwinConfig::new().with_num_heads([5, 6, 12, 24]),
        SwinConfig::new().with_depths([2, 0, 6, 2]),
        SwinConfig::new().with_window_size(0),
        SwinConfig::new().with_drop_path_rate(1.0),
    ] {
        assert!(matches!(
            cfg.init(&device),
            Err(BackboneError::InvalidConfig(_))
        ));
    }
}
