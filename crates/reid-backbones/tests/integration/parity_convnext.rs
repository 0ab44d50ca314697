//! ConvNeXt: numerical parity with timm and strict checkpoint import, on the
//! fixtures of `tools/fixtures/gen_convnext_fixtures.py`
//! (`tests/fixtures/backbones/convnext/`), through the generic family tests
//! of `common::family`.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{ConvNeXtImportReport, ConvNeXtLayout, load_convnext};
use reid_backbones::{ConvNeXt, ConvNeXtConfig};

use crate::common::family::{self, FamilyFixture};
use crate::common::{four, one_more};

family_fixture! {
    Fx = "convnext", ConvNeXt = model, ConvNeXtImportReport = load_convnext,
    embedding: ConvNeXt::forward_embedding, from_map: ConvNeXt::embed_features,
}

/// The DINO head of the official CION file's teacher, set aside.
const CION_HEAD: [&str; 2] = [
    "teacher.head.mlp.0.weight",
    "teacher.head.last_layer.weight_v",
];

fn config(depths: [usize; 4], dims: [usize; 4], device: &Device) -> ConvNeXt {
    ConvNeXtConfig::new(depths, dims).init(device).unwrap()
}

fn model(device: &Device) -> ConvNeXt {
    let m = Fx::manifest();
    config(four(&m["depths"]), four(&m["dims"]), device)
}

family_tests!(Fx {
    official_cion_checkpoint_matches_timm:
        cion_teacher_checkpoint_matches("official_cion.pth", ConvNeXtLayout::Official, &CION_HEAD);
    timm_safetensors_matches_timm:
        bare_checkpoint_matches("timm.safetensors", ConvNeXtLayout::Timm, 0);
    official_classifier_is_unexpected_unless_allowed: classifier_is_unexpected_unless_allowed(
        "official_bare.safetensors", "convnext-official", &["head.bias", "head.weight"], "head.*");
    non_convnext_files_and_formats_are_errors:
        wrong_files_and_formats_are_errors("official_cion.pth", "timm.safetensors");
});

/// One block more in stage 4 (missing) and a wider stage 1 (mis-shaped),
/// named in the file's (timm) naming; the missing block alone can be
/// allowed.
#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_the_file_naming() {
    let device = crate::common::device();
    let m = Fx::manifest();
    let (depths, dims) = (one_more(four(&m["depths"]), 3), four(&m["dims"]));
    let last = depths[3] - 1;
    let wide = [dims[0] + 4, dims[1], dims[2], dims[3]];
    let mismatch = Fx::mismatch(&mut config(depths, wide, &device), "timm.safetensors");
    let missing = format!("stages.3.blocks.{last}.mlp.fc1.weight");
    let shaped = ["stem.0.weight", "stages.0.blocks.0.conv_dw.weight"];
    family::assert_wrong_architecture(&mismatch, "convnext-timm", &[&missing], &shaped);

    let pattern = format!("stages.3.blocks.{last}.*");
    let deeper = &mut config(depths, dims, &device);
    let report = family::load_allowing_missing::<Fx>(deeper, "timm.safetensors", &pattern);
    assert_eq!(report.allowed_missing.len(), 9, "{report}");
}
