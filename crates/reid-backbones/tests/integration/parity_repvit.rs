//! RepViT: numerical parity with timm (training form and our
//! re-parameterised inference form) and strict checkpoint import, on the
//! fixtures of `tools/fixtures/gen_repvit_fixtures.py`
//! (`tests/fixtures/backbones/repvit/`), through the generic family tests
//! of `common::family` (each forward check covers both forms); plus the
//! ReIDZoo parameter counts.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{
    CheckpointWrapper, Container, ImportOptions, RepVitImportReport, RepVitLayout, WeightsFormat,
    load_repvit,
};
use reid_backbones::{Backbone, RepVit, RepVitConfig};

use crate::common::family::{self, FamilyFixture};
use crate::common::{four, one_more, uint};

family_fixture! {
    Fx = "repvit", RepVit = model, RepVitImportReport = load_repvit,
    embedding: RepVit::forward_embedding, fused: |m: &RepVit| m.clone().reparameterize(),
}

fn model(device: &Device) -> RepVit {
    config().init(device).unwrap()
}

fn config() -> RepVitConfig {
    let m = Fx::manifest();
    RepVitConfig::new(four(&m["depths"]), four(&m["embed_dims"]))
        .with_mlp_ratio(uint(&m["mlp_ratio"]))
        .with_kernel_size(uint(&m["kernel_size"]))
}

/// The sorted unused keys of `file` (no wrapper, heads in `prefix`, read
/// as `layout`): `want` among them, all in `prefix`, nothing missing or
/// mis-shaped.
fn heads(file: &str, layout: &str, want: &str, prefix: &str) -> Vec<String> {
    let mismatch = Fx::mismatch(&mut Fx::model(&crate::common::device()), file);
    let unexpected = mismatch.unexpected.clone();
    let keys: Vec<&str> = unexpected.iter().map(String::as_str).collect();
    family::assert_only_unexpected(&mismatch, layout, &keys);
    assert!(unexpected.iter().any(|k| k == want), "{mismatch}");
    assert!(
        unexpected.iter().all(|k| k.starts_with(prefix)),
        "{mismatch}"
    );
    unexpected
}

/// The CION teacher, its DINO head and the token mixers' BN counters set
/// aside; the inference form computes the same function.
#[test]
fn official_cion_checkpoint_matches_timm_and_reparameterises() {
    let layout = RepVitLayout::Official;
    let (_, report) = family::cion_teacher_checkpoint_matches::<Fx>(
        "official_cion.pth",
        layout,
        &[
            "teacher.module.head.mlp.0.weight",
            "teacher.module.head.last_layer.weight_v",
        ],
    );
    family::assert_ignored_suffix(&report, "token_mixer.0.bn.num_batches_tracked");
}

/// The official release's classifier and distillation heads are unused
/// keys unless allowed.
#[test]
fn bare_official_checkpoint_needs_its_heads_allowed() {
    let file = "official.pth";
    let unexpected = heads(
        file,
        "repvit-official",
        "classifier.classifier_dist.l.weight",
        "classifier.",
    );
    let allow = ImportOptions::default().with_allow_unexpected(vec!["classifier.*".into()]);
    let (m, report) = Fx::load(file, &allow);
    assert_eq!(report.layout, RepVitLayout::Official);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert_eq!(report.allowed_unexpected, unexpected);
    family::check_loaded::<Fx>(&m, "official (bare)");
}

/// timm's heads are unused keys unless allowed; forced safetensors format.
#[test]
fn timm_safetensors_matches_timm_once_the_heads_are_allowed() {
    heads(
        "timm.safetensors",
        "repvit-timm",
        "head.head.l.weight",
        "head.",
    );
    let options = ImportOptions::default()
        .with_allow_unexpected(vec!["head.*".into()])
        .with_format(WeightsFormat::Safetensors);
    let (m, report) = Fx::load("timm.safetensors", &options);
    assert_eq!(report.layout, RepVitLayout::Timm);
    assert_eq!(report.container, Container::Safetensors);
    family::check_loaded::<Fx>(&m, "timm (safetensors)");
}

/// One block more in stage 4: its keys missing in the official naming
/// (odd index within the stage: no SE, so no `token_mixer.1`), allowed
/// through the allow-list; wider FFNs: mis-shaped keys.
#[test]
fn missing_keys_are_named_and_can_be_allowed() {
    let device = crate::common::device();
    let cfg = config();
    let depths = one_more(cfg.depths, 3);
    let deeper = RepVitConfig {
        depths,
        ..cfg.clone()
    };
    let mut m = deeper.init(&device).unwrap();
    let mismatch = Fx::mismatch(&mut m, "official_cion.pth");
    // The extra block is the last `features` entry.
    let n: usize = 1 + depths[0] + 3 * 2 + depths[1] + depths[2] + depths[3] - 1;
    let want = format!("features.{n}.token_mixer.0.conv1.bias");
    family::assert_wrong_architecture(&mismatch, "repvit-official", &[&want], &[]);
    let se = mismatch
        .missing
        .iter()
        .any(|k| k.contains("token_mixer.1."));
    assert!(!se, "{mismatch}");
    let pattern = format!("features.{n}.*");
    let report = family::load_allowing_missing::<Fx>(&mut m, "official_cion.pth", &pattern);
    assert!(report.allowed_missing.contains(&want), "{report}");

    let wider = &mut cfg.with_mlp_ratio(3).init(&device).unwrap();
    let mismatch = Fx::mismatch(wider, "official_cion.pth");
    let shaped = ["features.1.channel_mixer.m.0.c.weight"];
    family::assert_wrong_architecture(&mismatch, "repvit-official", &[], &shaped);
}

family_tests!(Fx {
    non_repvit_files_and_formats_are_errors:
        wrong_files_and_formats_are_errors("official_cion.pth", "timm.safetensors");
});

/// The ReIDZoo table counts the backbone without the classifier and
/// distillation heads (`BN_Linear` ×2), BN running statistics excluded
/// (PyTorch's `parameters()`): 4.72 / 6.40 / 13.62 M, timm 1.0.31's exact
/// `num_classes=0` counts 4,717,792 / 6,403,004 / 13,616,384.
#[test]
fn full_size_parameter_counts_match_the_reidzoo_table() {
    let device = crate::common::device();
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
    let small = Fx::model(&device);
    assert_eq!(
        small.num_parameters() as u64,
        Fx::manifest()["num_params_backbone"].as_u64().unwrap()
    );
}
