//! GhostNet: numerical parity with timm (Huawei's naming) and strict
//! checkpoint import, on the fixtures of `tools/fixtures/gen_ghostnet_fixtures.py`
//! (`tests/fixtures/backbones/ghostnet/`), through the generic family tests
//! of `common::family`, in the training form and with every BatchNorm
//! folded (`GhostNet::fold_batch_norm`, the inference form).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{
    CheckpointWrapper, GhostNetImportReport, ImportOptions, WeightsFormat, load_ghostnet,
};
use reid_backbones::{BackboneError, GhostNet, GhostNetConfig};

use crate::common::family::{self, FamilyFixture};
use crate::common::uint;

family_fixture! {
    Fx = "ghostnet", GhostNet = |d: &Device| config().init(d).unwrap(),
    GhostNetImportReport = load_ghostnet, embedding: GhostNet::forward_embedding,
    fused: |m: &GhostNet| m.clone().fold_batch_norm(),
}

fn config() -> GhostNetConfig {
    let m = Fx::manifest();
    GhostNetConfig::new(m["width"].as_f64().unwrap()).with_num_features(uint(&m["num_features"]))
}

family_tests!(Fx {
    cion_checkpoint_matches_timm: cion_teacher_checkpoint_matches("cion.safetensors", "ghostnet", &[
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
        "student.module.backbone.conv_stem.weight",
        "bn1.num_batches_tracked",
    ]);
});

/// The bare file's classifier needs allowing; its profiling buffers
/// (`total_ops`, `total_params`) are set aside.
#[test]
fn bare_checkpoint_needs_the_classifier_allowed() {
    let (_, report) = family::classifier_is_unexpected_unless_allowed::<Fx>(
        "bare.safetensors",
        "ghostnet",
        &["classifier.bias", "classifier.weight"],
        "classifier.*",
    );
    family::assert_ignored(
        &report,
        &["total_ops", "total_params", "conv_stem.total_ops"],
    );
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
}

/// A narrower model: mis-shaped keys in PyTorch naming; a wider head
/// misses nothing but mis-shapes `conv_head`.
#[test]
fn wrong_width_lists_mis_shaped_keys_in_pytorch_naming() {
    let device = crate::common::device();
    let narrow = &mut GhostNetConfig::new(0.1)
        .with_num_features(16)
        .init(&device)
        .unwrap();
    let mismatch = Fx::mismatch(narrow, "cion.safetensors");
    let shaped = ["blocks.9.0.conv.weight", "blocks.9.0.bn1.weight"];
    family::assert_wrong_architecture(&mismatch, "ghostnet", &[], &shaped);
    let wide = &mut config().with_num_features(32).init(&device).unwrap();
    let mismatch = Fx::mismatch(wide, "cion.safetensors");
    assert!(
        mismatch.to_string().contains("conv_head.weight"),
        "{mismatch}"
    );
}

/// A ConvNeXt file, and `--weights-format cion` on a file without a
/// `teacher` dictionary, are layout errors.
#[test]
fn non_ghostnet_files_are_errors() {
    let m = &mut Fx::model(&crate::common::device());
    let defaults = ImportOptions::default();
    let err = Fx::import_file(m, "../convnext/timm.safetensors", &defaults).unwrap_err();
    assert!(matches!(err, BackboneError::Layout { .. }), "{err}");
    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let err = Fx::import_file(m, "bare.safetensors", &options).unwrap_err();
    assert!(matches!(err, BackboneError::Layout { .. }), "{err}");
}
