//! RepViT: numerical parity with timm (training form and our
//! re-parameterised inference form) and strict checkpoint import, on the
//! fixtures of `tools/gen_repvit_fixtures.py`
//! (`tests/fixtures/backbones/repvit/`), plus the ReIDZoo parameter counts.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::import::{
    CheckpointWrapper, ImportOptions, RepVitImportReport, RepVitLayout, WeightsFormat, load_repvit,
};
use reid_backbones::{Backbone, RepVit, RepVitConfig};

use crate::common;

use common::four;

fixture_fns!("repvit");

fn config() -> RepVitConfig {
    let m = manifest();
    RepVitConfig::new(four(&m["depths"]), four(&m["embed_dims"]))
        .with_mlp_ratio(m["mlp_ratio"].as_u64().unwrap() as usize)
        .with_kernel_size(m["kernel_size"].as_u64().unwrap() as usize)
}

fn model(device: &Device) -> RepVit {
    config().init(device).unwrap()
}

fn load(file: &str, options: &ImportOptions) -> (RepVit, RepVitImportReport) {
    let device = common::device();
    let mut m = model(&device);
    let report =
        load_repvit(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

fn input() -> Tensor<4> {
    let x = npy("input.npy");
    Tensor::from_data(
        TensorData::new(x.iter().copied().collect::<Vec<f32>>(), x.shape().to_vec()),
        &common::device(),
    )
}

/// Feature map and embedding errors of `m` against the fixtures.
fn check(m: &RepVit, what: &str) -> (f32, f32) {
    common::check_forward("repvit", m, what, |m, x| m.forward_embedding(x), None)
}

#[test]
fn official_cion_checkpoint_matches_timm_and_reparameterises() {
    let (m, report) = load("official_cion.pth", &ImportOptions::default());
    assert_eq!(report.layout, RepVitLayout::Official);
    assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
    assert_eq!(report.applied, common::tensor_count(&m));
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for key in [
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
    ] {
        assert!(ignored.contains(&&key.to_string()), "{key}: {report}");
    }
    assert!(
        ignored
            .iter()
            .any(|k| k.ends_with("token_mixer.0.bn.num_batches_tracked")),
        "{report}"
    );
    check(&m, "official (CION teacher)");
    // The inference form computes the same function.
    let fused = m.clone().reparameterize();
    check(&fused, "official, re-parameterised");
    assert!(common::tensor_count(&fused) < report.applied);
    let x = input();
    let (a, b) = (m.forward_features(x.clone()), fused.forward_features(x));
    let scale: f32 = a.clone().abs().max().into_scalar();
    let diff: f32 = (a - b).abs().max().into_scalar();
    println!(
        "re-parameterised vs training form (Rust): rel. error {:.3e}",
        diff / scale
    );
    assert!(
        diff <= 1e-4 * scale,
        "fused vs unfused: {diff} (scale {scale})"
    );

    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let (m, _) = load("official_cion.pth", &options);
    check(&m, "official (CION, forced)");
}

#[test]
fn bare_official_checkpoint_needs_its_heads_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_repvit(
        &mut m,
        dir().join("official.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "repvit-official");
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());
    assert!(
        mismatch
            .unexpected
            .contains(&"classifier.classifier_dist.l.weight".to_string()),
        "{mismatch}"
    );
    assert!(
        mismatch
            .unexpected
            .iter()
            .all(|k| k.starts_with("classifier.")),
        "{mismatch}"
    );
    let options = ImportOptions::default().with_allow_unexpected(vec!["classifier.*".into()]);
    let (m, report) = load("official.pth", &options);
    assert_eq!(report.layout, RepVitLayout::Official);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert_eq!(report.allowed_unexpected.len(), mismatch.unexpected.len());
    check(&m, "official (bare)");
}

#[test]
fn timm_safetensors_matches_timm_once_the_heads_are_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_repvit(
        &mut m,
        dir().join("timm.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "repvit-timm");
    assert!(
        mismatch
            .unexpected
            .contains(&"head.head.l.weight".to_string())
    );
    assert!(mismatch.unexpected.iter().all(|k| k.starts_with("head.")));
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());

    let options = ImportOptions::default()
        .with_allow_unexpected(vec!["head.*".into()])
        .with_format(WeightsFormat::Safetensors);
    let (m, report) = load("timm.safetensors", &options);
    assert_eq!(report.layout, RepVitLayout::Timm);
    assert_eq!(
        report.container,
        reid_backbones::import::Container::Safetensors
    );
    check(&m, "timm (safetensors)");
    check(&m.reparameterize(), "timm, re-parameterised");
}

#[test]
fn missing_keys_are_named_and_can_be_allowed() {
    let device = common::device();
    let cfg = config();
    let mut depths = cfg.depths;
    depths[3] += 1;
    let deeper = RepVitConfig {
        depths,
        ..cfg.clone()
    };
    let mut m = deeper.init(&device).unwrap();
    let err = load_repvit(
        &mut m,
        dir().join("official_cion.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "repvit-official");
    // The extra block is the last `features` entry.
    let n: usize = 1 + depths[0] + 3 * 2 + depths[1] + depths[2] + depths[3] - 1;
    let want = format!("features.{n}.token_mixer.0.conv1.bias");
    assert!(mismatch.missing.contains(&want), "{mismatch}");
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    // Odd index within the stage: no SE, so no `token_mixer.1`.
    assert!(
        !mismatch
            .missing
            .iter()
            .any(|k| k.contains("token_mixer.1.")),
        "{mismatch}"
    );
    let options = ImportOptions::default().with_allow_missing(vec![format!("features.{n}.*")]);
    let report = load_repvit(&mut m, dir().join("official_cion.pth"), &options).unwrap();
    assert!(report.allowed_missing.contains(&want), "{report}");

    // Wider FFN: mis-shaped keys in the official naming.
    let mut wider = cfg.clone().with_mlp_ratio(3).init(&device).unwrap();
    let err = load_repvit(
        &mut wider,
        dir().join("official_cion.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    assert!(
        shaped.contains(&"features.1.channel_mixer.m.0.c.weight"),
        "{mismatch}"
    );
}

#[test]
fn non_repvit_files_and_formats_are_errors() {
    let device = common::device();
    let mut m = model(&device);
    common::assert_wrong_files_and_formats_are_errors(
        &mut m,
        |m, p, o| load_repvit(m, p, o),
        &dir().join("official_cion.pth"),
        &dir().join("timm.safetensors"),
    );
}

/// The ReIDZoo table counts the backbone without the classifier and
/// distillation heads (`BN_Linear` ×2), BN running statistics excluded
/// (PyTorch's `parameters()`): 4.72 / 6.40 / 13.62 M, timm 1.0.31's exact
/// `num_classes=0` counts 4,717,792 / 6,403,004 / 13,616,384.
#[test]
fn full_size_parameter_counts_match_the_reidzoo_table() {
    let device = common::device();
    for (cfg, table, exact, channels) in [
        (RepVitConfig::m0_9(), 4.72, 4_717_792, 384),
        (RepVitConfig::m1_0(), 6.40, 6_403_004, 448),
        (RepVitConfig::m1_5(), 13.62, 13_616_384, 512),
    ] {
        let m = cfg.init(&device).unwrap();
        let n = m.num_parameters();
        println!("{:?}: {n} parameters", cfg.embed_dims);
        assert_eq!(n, exact);
        assert_eq!((n as f64 / 1e4).round() / 100.0, table);
        assert_eq!(m.out_channels(), channels);
        assert_eq!(m.output_stride(), 32);
    }
    let small = model(&device);
    assert_eq!(
        small.num_parameters() as u64,
        manifest()["num_params_backbone"].as_u64().unwrap()
    );
}
