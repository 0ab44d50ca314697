//! GhostNet: numerical parity with timm (Huawei's naming) and strict
//! checkpoint import, on the fixtures of `tools/gen_ghostnet_fixtures.py`
//! (`tests/fixtures/backbones/ghostnet/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use reid_backbones::import::{
    CheckpointWrapper, GhostNetImportReport, ImportOptions, WeightsFormat, load_ghostnet,
};
use reid_backbones::{BackboneError, GhostNet, GhostNetConfig};

use crate::common;

fixture_fns!("ghostnet");

fn config() -> GhostNetConfig {
    let m = manifest();
    GhostNetConfig::new(m["width"].as_f64().unwrap())
        .with_num_features(m["num_features"].as_u64().unwrap() as usize)
}

fn load(file: &str, options: &ImportOptions) -> (GhostNet, GhostNetImportReport) {
    let device = common::device();
    let mut m = config().init(&device).unwrap();
    let report =
        load_ghostnet(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

/// Feature map and embedding of `m` against the fixtures.
fn check(m: &GhostNet, what: &str) {
    common::check_forward("ghostnet", m, what, |m, x| m.forward_embedding(x), None);
}

#[test]
fn cion_checkpoint_matches_timm() {
    for format in [WeightsFormat::Auto, WeightsFormat::Cion] {
        let options = ImportOptions::default().with_format(format);
        let (m, report) = load("cion.safetensors", &options);
        assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
        let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
        for key in [
            "teacher.module.head.mlp.0.weight",
            "teacher.module.head.last_layer.weight_v",
            "student.module.backbone.conv_stem.weight",
            "bn1.num_batches_tracked",
        ] {
            assert!(ignored.contains(&&key.to_string()), "{key}: {report}");
        }
        check(&m, &format!("CION teacher ({format:?})"));
    }
}

#[test]
fn bare_checkpoint_needs_the_classifier_allowed() {
    let device = common::device();
    let mut m = config().init(&device).unwrap();
    let err = load_ghostnet(
        &mut m,
        dir().join("bare.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(
        mismatch.unexpected,
        vec!["classifier.bias", "classifier.weight"]
    );
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());

    let options = ImportOptions::default().with_allow_unexpected(vec!["classifier.*".into()]);
    let (m, report) = load("bare.safetensors", &options);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for key in ["total_ops", "total_params", "conv_stem.total_ops"] {
        assert!(ignored.contains(&&key.to_string()), "{key}: {report}");
    }
    check(&m, "bare safetensors");
}

#[test]
fn wrong_width_lists_mis_shaped_keys_in_pytorch_naming() {
    let device = common::device();
    let mut m = GhostNetConfig::new(0.1)
        .with_num_features(16)
        .init(&device)
        .unwrap();
    let err = load_ghostnet(
        &mut m,
        dir().join("cion.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "ghostnet");
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    assert!(shaped.contains(&"blocks.9.0.conv.weight"), "{mismatch}");
    assert!(shaped.contains(&"blocks.9.0.bn1.weight"), "{mismatch}");
    // A model whose head is wider misses nothing but mis-shapes conv_head.
    let mut wide = config().with_num_features(32).init(&device).unwrap();
    let err = load_ghostnet(
        &mut wide,
        dir().join("cion.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("conv_head.weight"), "{err}");
}

#[test]
fn non_ghostnet_files_are_errors() {
    let device = common::device();
    let mut m = config().init(&device).unwrap();
    let convnext = dir().join("../convnext/timm.safetensors");
    let err = load_ghostnet(&mut m, &convnext, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, BackboneError::Layout { .. }), "{err}");
    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let err = load_ghostnet(&mut m, dir().join("bare.safetensors"), &options).unwrap_err();
    assert!(matches!(err, BackboneError::Layout { .. }), "{err}");
}
