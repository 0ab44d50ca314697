//! ConvNeXt: numerical parity with timm and strict checkpoint import, on the
//! fixtures of `tools/gen_convnext_fixtures.py`
//! (`tests/fixtures/backbones/convnext/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{
    CheckpointWrapper, ConvNeXtImportReport, ConvNeXtLayout, ImportOptions, WeightsFormat,
    load_convnext,
};
use reid_backbones::{ConvNeXt, ConvNeXtConfig};

use crate::common;

use common::four;

fixture_fns!("convnext");

fn model(device: &Device) -> ConvNeXt {
    let m = manifest();
    ConvNeXtConfig::new(four(&m["depths"]), four(&m["dims"]))
        .init(device)
        .unwrap()
}

fn load(file: &str, options: &ImportOptions) -> (ConvNeXt, ConvNeXtImportReport) {
    let device = common::device();
    let mut m = model(&device);
    let report =
        load_convnext(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

/// Feature map and embedding errors of `m` against the fixtures.
fn check(m: &ConvNeXt, what: &str) -> (f32, f32) {
    common::check_forward(
        "convnext",
        m,
        what,
        |m, x| m.forward_embedding(x),
        Some(&|m: &ConvNeXt, f| m.embed_features(f)),
    )
}

#[test]
fn official_cion_checkpoint_matches_timm() {
    let (m, report) = load("official_cion.pth", &ImportOptions::default());
    assert_eq!(report.layout, ConvNeXtLayout::Official);
    assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
    assert_eq!(report.applied, m.num_params_tensors());
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for key in [
        "teacher.head.mlp.0.weight",
        "teacher.head.last_layer.weight_v",
    ] {
        assert!(ignored.contains(&&key.to_string()), "{key}: {report}");
    }
    check(&m, "official (CION teacher)");
    // Forcing the CION format gives the same result.
    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let (m, _) = load("official_cion.pth", &options);
    check(&m, "official (CION, forced)");
}

#[test]
fn timm_safetensors_matches_timm() {
    let (m, report) = load("timm.safetensors", &ImportOptions::default());
    assert_eq!(report.layout, ConvNeXtLayout::Timm);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert!(report.ignored.is_empty());
    check(&m, "timm (safetensors)");
}

#[test]
fn official_classifier_is_unexpected_unless_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_convnext(
        &mut m,
        dir().join("official_bare.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "convnext-official");
    assert_eq!(mismatch.unexpected, vec!["head.bias", "head.weight"]);
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());

    let options = ImportOptions::default().with_allow_unexpected(vec!["head.*".into()]);
    let (m, report) = load("official_bare.safetensors", &options);
    assert_eq!(report.allowed_unexpected, vec!["head.bias", "head.weight"]);
    check(&m, "official (bare safetensors)");
}

#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_the_file_naming() {
    let device = common::device();
    let m = manifest();
    let dims = four(&m["dims"]);
    let mut depths = four(&m["depths"]);
    // One block more in stage 4 (missing), and a wider stage 1 (mis-shaped).
    depths[3] += 1;
    let mut wide = dims;
    wide[0] += 4;
    let mut model = ConvNeXtConfig::new(depths, wide).init(&device).unwrap();
    let err = load_convnext(
        &mut model,
        dir().join("timm.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "convnext-timm");
    let last = depths[3] - 1;
    assert!(
        mismatch
            .missing
            .contains(&format!("stages.3.blocks.{last}.mlp.fc1.weight")),
        "{mismatch}"
    );
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    assert!(shaped.contains(&"stem.0.weight"), "{mismatch}");
    assert!(shaped.contains(&"stages.0.blocks.0.conv_dw.weight"));
    // The message lists them.
    let text = mismatch.to_string();
    assert!(
        text.contains("missing") && text.contains("mis-shaped"),
        "{text}"
    );

    // Allowing the missing block loads the rest… if nothing is mis-shaped.
    let mut deeper = ConvNeXtConfig::new(depths, dims).init(&device).unwrap();
    let options =
        ImportOptions::default().with_allow_missing(vec![format!("stages.3.blocks.{last}.*")]);
    let report = load_convnext(&mut deeper, dir().join("timm.safetensors"), &options).unwrap();
    assert_eq!(report.allowed_missing.len(), 9, "{report}");
}

#[test]
fn non_convnext_files_and_formats_are_errors() {
    let device = common::device();
    let mut m = model(&device);
    common::assert_wrong_files_and_formats_are_errors(
        &mut m,
        |m, p, o| load_convnext(m, p, o),
        &dir().join("official_cion.pth"),
        &dir().join("timm.safetensors"),
    );
}

trait TensorCount {
    fn num_params_tensors(&self) -> usize;
}

impl TensorCount for ConvNeXt {
    fn num_params_tensors(&self) -> usize {
        use burn::store::ModuleSnapshot;
        self.collect(None, None, true).len()
    }
}
