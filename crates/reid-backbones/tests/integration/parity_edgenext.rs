//! EdgeNeXt: numerical parity with timm and strict checkpoint import, on the
//! fixtures of `tools/gen_edgenext_fixtures.py`
//! (`tests/fixtures/backbones/edgenext/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::Device;
use reid_backbones::import::{
    CheckpointWrapper, EdgeNeXtImportReport, EdgeNeXtLayout, ImportOptions, WeightsFormat,
    load_edgenext,
};
use reid_backbones::{EdgeNeXt, EdgeNeXtConfig};

use crate::common;

use common::four;

fixture_fns!("edgenext");

fn config() -> EdgeNeXtConfig {
    let m = manifest();
    let flags: Vec<bool> = m["pos_embd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    EdgeNeXtConfig::new(four(&m["depths"]), four(&m["dims"]), four(&m["heads"]))
        .with_global_blocks(four(&m["global_blocks"]))
        .with_kernel_sizes(four(&m["kernel_sizes"]))
        .with_d2_scales(four(&m["d2_scales"]))
        .with_pos_embd([flags[0], flags[1], flags[2], flags[3]])
        .with_layer_norm_eps(m["layer_norm_eps"].as_f64().unwrap())
}

fn model(device: &Device) -> EdgeNeXt {
    config().init(device).unwrap()
}

fn load(file: &str, options: &ImportOptions) -> (EdgeNeXt, EdgeNeXtImportReport) {
    let device = common::device();
    let mut m = model(&device);
    let report =
        load_edgenext(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

/// Feature map and embedding errors of `m` against the fixtures.
fn check(m: &EdgeNeXt, what: &str) -> (f32, f32) {
    common::check_forward(
        "edgenext",
        m,
        what,
        |m, x| m.forward_embedding(x),
        Some(&|m: &EdgeNeXt, f| m.embed_features(f)),
    )
}

#[test]
fn official_cion_checkpoint_matches_timm() {
    let (m, report) = load("official_cion.pth", &ImportOptions::default());
    assert_eq!(report.layout, EdgeNeXtLayout::Official);
    assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
    assert_eq!(report.stripped_prefixes, Vec::<String>::new());
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
    assert_eq!(report.layout, EdgeNeXtLayout::Timm);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert!(report.ignored.is_empty());
    check(&m, "timm (safetensors)");
}

#[test]
fn official_classifier_is_unexpected_unless_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_edgenext(
        &mut m,
        dir().join("official_bare.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "edgenext-official");
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
    let base = config();
    // A second SDTA block in stage 4 (missing in the file: its PyTorch index
    // follows the file's SDTA block), and a wider stage 1 (mis-shaped).
    let mut depths = base.depths;
    let mut global = base.global_blocks;
    depths[3] += 1;
    global[3] += 1;
    let mut wide = base.dims;
    wide[0] += 4;
    let last = depths[3] - 1;
    let mut cfg = base.clone().with_global_blocks(global);
    cfg.depths = depths;
    cfg.dims = wide;
    let mut model = cfg.init(&device).unwrap();
    let err = load_edgenext(
        &mut model,
        dir().join("timm.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "edgenext-timm");
    for key in [
        "xca.qkv.weight",
        "xca.temperature",
        "mlp.fc1.weight",
        "gamma_xca",
    ] {
        let key = format!("stages.3.blocks.{last}.{key}");
        assert!(mismatch.missing.contains(&key), "{key}: {mismatch}");
    }
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    assert!(shaped.contains(&"stem.0.weight"), "{mismatch}");
    assert!(shaped.contains(&"stages.0.blocks.0.conv_dw.weight"));
    let text = mismatch.to_string();
    assert!(
        text.contains("missing") && text.contains("mis-shaped") && text.contains("xca.qkv"),
        "{text}"
    );

    // Allowing the missing block loads the rest… if nothing is mis-shaped.
    let mut cfg = base.with_global_blocks(global);
    cfg.depths = depths;
    let mut deeper = cfg.init(&device).unwrap();
    let options =
        ImportOptions::default().with_allow_missing(vec![format!("stages.3.blocks.{last}.*")]);
    let report = load_edgenext(&mut deeper, dir().join("timm.safetensors"), &options).unwrap();
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
    let device = common::device();
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

#[test]
fn non_edgenext_files_and_formats_are_errors() {
    let device = common::device();
    let mut m = model(&device);
    common::assert_wrong_files_and_formats_are_errors(
        &mut m,
        |m, p, o| load_edgenext(m, p, o),
        &dir().join("official_cion.pth"),
        &dir().join("timm.safetensors"),
    );
}

trait TensorCount {
    fn num_params_tensors(&self) -> usize;
}

impl TensorCount for EdgeNeXt {
    fn num_params_tensors(&self) -> usize {
        use burn::store::ModuleSnapshot;
        self.collect(None, None, true).len()
    }
}
