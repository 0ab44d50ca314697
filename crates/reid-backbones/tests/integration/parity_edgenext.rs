//! EdgeNeXt: numerical parity with timm and strict checkpoint import, on the
//! fixtures of `tools/fixtures/gen_edgenext_fixtures.py`
//! (`tests/fixtures/backbones/edgenext/`), through the generic family tests
//! of `common::family`; plus the ReIDZoo parameter counts.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{EdgeNeXtImportReport, EdgeNeXtLayout, load_edgenext};
use reid_backbones::{EdgeNeXt, EdgeNeXtConfig};

use crate::common::family::{self, FamilyFixture};
use crate::common::{flags, four, one_more};

family_fixture! {
    Fx = "edgenext", EdgeNeXt = |d: &Device| config().init(d).unwrap(),
    EdgeNeXtImportReport = load_edgenext,
    embedding: EdgeNeXt::forward_embedding, from_map: EdgeNeXt::embed_features,
}

fn config() -> EdgeNeXtConfig {
    let m = Fx::manifest();
    EdgeNeXtConfig::new(four(&m["depths"]), four(&m["dims"]), four(&m["heads"]))
        .with_global_blocks(four(&m["global_blocks"]))
        .with_kernel_sizes(four(&m["kernel_sizes"]))
        .with_d2_scales(four(&m["d2_scales"]))
        .with_pos_embd(flags(&m["pos_embd"]))
        .with_layer_norm_eps(m["layer_norm_eps"].as_f64().unwrap())
}

/// The official CION file: its teacher (no prefix left to strip once
/// unwrapped) and the DINO head set aside.
#[test]
fn official_cion_checkpoint_matches_timm() {
    let head = [
        "teacher.head.mlp.0.weight",
        "teacher.head.last_layer.weight_v",
    ];
    let layout = EdgeNeXtLayout::Official;
    let (_, report) =
        family::cion_teacher_checkpoint_matches::<Fx>("official_cion.pth", layout, &head);
    assert_eq!(report.stripped_prefixes, Vec::<String>::new());
}

family_tests!(Fx {
    timm_safetensors_matches_timm:
        bare_checkpoint_matches("timm.safetensors", EdgeNeXtLayout::Timm, 0);
    non_edgenext_files_and_formats_are_errors:
        wrong_files_and_formats_are_errors("official_cion.pth", "timm.safetensors");
    official_classifier_is_unexpected_unless_allowed: classifier_is_unexpected_unless_allowed(
        "official_bare.safetensors", "edgenext-official", &["head.bias", "head.weight"], "head.*");
});

/// A second SDTA block in stage 4 (missing in the file: its PyTorch index
/// follows the file's SDTA block) and a wider stage 1 (mis-shaped), named
/// in the file's (timm) naming; the missing block alone can be allowed.
#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_the_file_naming() {
    let device = crate::common::device();
    let base = config();
    let (depths, global) = (one_more(base.depths, 3), one_more(base.global_blocks, 3));
    let last = depths[3] - 1;
    let mut cfg = base.clone().with_global_blocks(global);
    cfg.depths = depths;
    let mut wide = cfg.clone();
    wide.dims[0] += 4;
    let mismatch = Fx::mismatch(&mut wide.init(&device).unwrap(), "timm.safetensors");
    let in_block = |key: &str| format!("stages.3.blocks.{last}.{key}");
    let missing = [
        in_block("xca.qkv.weight"),
        in_block("xca.temperature"),
        in_block("mlp.fc1.weight"),
        in_block("gamma_xca"),
    ];
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    let shaped = ["stem.0.weight", "stages.0.blocks.0.conv_dw.weight"];
    family::assert_wrong_architecture(&mismatch, "edgenext-timm", &missing, &shaped);
    assert!(mismatch.to_string().contains("xca.qkv"), "{mismatch}");

    let pattern = format!("stages.3.blocks.{last}.*");
    let deeper = &mut cfg.init(&device).unwrap();
    let report = family::load_allowing_missing::<Fx>(deeper, "timm.safetensors", &pattern);
    // 3 split convs (weight, bias), norm_xca ×2, gamma_xca, temperature,
    // qkv ×2, proj ×2, norm ×2, fc1 ×2, fc2 ×2, gamma.
    assert_eq!(report.allowed_missing.len(), 21, "{report}");
}

/// The full-size presets against the ReIDZoo table (millions, two
/// decimals, M = 1e6) and against timm's `num_classes=0` models. The count
/// is every trainable tensor of the backbone as CION fine-tunes it: stem,
/// stages (conv encoders, SDTA encoders with XCA temperatures and the
/// positional encoding's `token_projection`) and the final LayerNorm
/// `norm`; no classifier. The table cannot tell whether it includes the
/// final norm (2·C parameters): both counts round to the same figures.
#[test]
fn full_size_parameter_counts_match_the_reidzoo_table() {
    let device = crate::common::device();
    for (cfg, table, exact, name) in [
        (EdgeNeXtConfig::x_small(), 2.14, 2_143_804, "XS"),
        (EdgeNeXtConfig::small(), 5.28, 5_281_832, "S"),
        (EdgeNeXtConfig::base(), 17.93, 17_926_292, "B"),
    ] {
        let m = cfg.init(&device).unwrap();
        let n = m.num_parameters();
        assert_eq!(n, exact, "{name}");
        let millions = |n: usize| (n as f64 / 1e4).round() / 100.0;
        assert_eq!(millions(n), table, "{name}");
        assert_eq!(
            millions(n - 2 * m.out_channels),
            table,
            "{name} without norm"
        );
        println!("EdgeNeXt-{name}: {n} parameters ({} M)", millions(n));
    }
}
