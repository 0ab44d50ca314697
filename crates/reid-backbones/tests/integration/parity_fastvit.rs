//! FastViT: numerical parity with timm (training form and our
//! re-parameterised inference form) and strict checkpoint import, on the
//! fixtures of `tools/gen_fastvit_fixtures.py`
//! (`tests/fixtures/backbones/fastvit/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use reid_backbones::import::{
    CheckpointWrapper, FastVitImportReport, FastVitLayout, ImportOptions, WeightsFormat,
    load_fastvit,
};
use reid_backbones::{Backbone, FastVit, FastVitConfig};
use serde_json::Value;

use crate::common;

use common::{four, rel_err};

fixture_fns!("fastvit");

fn flags(v: &Value) -> [bool; 4] {
    let a: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect();
    [a[0], a[1], a[2], a[3]]
}

fn config() -> FastVitConfig {
    let m = manifest();
    FastVitConfig::new(
        four(&m["layers"]),
        four(&m["embed_dims"]),
        flags(&m["attention"]),
        flags(&m["pos_emb"]),
    )
    .with_mlp_ratios(four(&m["mlp_ratios"]))
    .with_head_dim(m["head_dim"].as_u64().unwrap() as usize)
}

fn model(device: &Device) -> FastVit {
    config().init(device).unwrap()
}

fn load(file: &str, options: &ImportOptions) -> (FastVit, FastVitImportReport) {
    let device = common::device();
    let mut m = model(&device);
    let report =
        load_fastvit(&mut m, dir().join(file), options).unwrap_or_else(|e| panic!("{file}: {e}"));
    (m, report)
}

/// Feature map and embedding errors of `m` against the fixtures.
fn check(m: &FastVit, what: &str) -> (f32, f32) {
    common::check_forward("fastvit", m, what, |m, x| m.forward_embedding(x), None)
}

#[test]
fn official_cion_checkpoint_matches_timm_and_reparameterises() {
    let (m, report) = load("official_cion.pth", &ImportOptions::default());
    assert_eq!(report.layout, FastVitLayout::Official);
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
            .any(|k| k.ends_with("rbr_skip.num_batches_tracked")),
        "{report}"
    );
    check(&m, "official (CION teacher)");
    // The inference form computes the same function.
    let fused = m.clone().reparameterize();
    check(&fused, "official, re-parameterised");
    assert!(common::tensor_count(&fused) < report.applied);
    let x = npy("input.npy");
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(x.iter().copied().collect::<Vec<f32>>(), x.shape().to_vec()),
        &common::device(),
    );
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
fn timm_safetensors_matches_timm_once_the_classifier_is_allowed() {
    let device = common::device();
    let mut m = model(&device);
    let err = load_fastvit(
        &mut m,
        dir().join("timm.safetensors"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "fastvit-timm");
    assert_eq!(mismatch.unexpected, vec!["head.fc.bias", "head.fc.weight"]);
    assert!(mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty());

    let options = ImportOptions::default().with_allow_unexpected(vec!["head.*".into()]);
    let (m, report) = load("timm.safetensors", &options);
    assert_eq!(report.layout, FastVitLayout::Timm);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
    assert_eq!(
        report.allowed_unexpected,
        vec!["head.fc.bias", "head.fc.weight"]
    );
    check(&m, "timm (safetensors)");
    check(&m.reparameterize(), "timm, re-parameterised");
}

#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_the_file_naming() {
    let device = common::device();
    let cfg = config();
    let mut layers = cfg.layers;
    layers[3] += 1;
    let mut deeper = FastVitConfig {
        layers,
        ..cfg.clone()
    }
    .init(&device)
    .unwrap();
    let err = load_fastvit(
        &mut deeper,
        dir().join("official_cion.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "fastvit-official");
    let last = layers[3] - 1;
    // Stage 4's blocks are `network.7` officially (RepCPE is `network.6`).
    let want = format!("network.7.{last}.token_mixer.qkv.weight");
    assert!(mismatch.missing.contains(&want), "{mismatch}");
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");

    let mut ratios = cfg.mlp_ratios;
    ratios[0] += 1;
    let mut wider = cfg.clone().with_mlp_ratios(ratios).init(&device).unwrap();
    let err = load_fastvit(
        &mut wider,
        dir().join("official_cion.pth"),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let mismatch = common::key_mismatch(err);
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    assert!(
        shaped.contains(&"network.0.0.convffn.fc1.weight"),
        "{mismatch}"
    );

    // S-type model (no RepCPE, no attention) against an SA file.
    let s_type = FastVitConfig {
        attention: [false; 4],
        pos_emb: [false; 4],
        ..config()
    };
    let mut s_model = s_type.init(&device).unwrap();
    assert!(
        load_fastvit(
            &mut s_model,
            dir().join("official_cion.pth"),
            &ImportOptions::default()
        )
        .is_err()
    );
}

#[test]
fn non_fastvit_files_and_formats_are_errors() {
    let device = common::device();
    let mut m = model(&device);
    common::assert_wrong_files_and_formats_are_errors(
        &mut m,
        |m, p, o| load_fastvit(m, p, o),
        &dir().join("official_cion.pth"),
        &dir().join("timm.safetensors"),
    );
}

/// Manual full-size check (not run by default): `FASTVIT_FULL_DIR` holds
/// `fastvit_s12/` and `fastvit_sa12/` folders, each with a timm
/// `timm.safetensors` (random weights), `input.npy` `[2, 3, 256, 128]` and
/// timm's `features.npy` `[2, 1024, 8, 4]`.
#[test]
#[ignore = "needs FASTVIT_FULL_DIR with full-size timm outputs"]
fn full_size_presets_match_timm() {
    let Ok(root) = std::env::var("FASTVIT_FULL_DIR") else {
        return;
    };
    let device = common::device();
    for (name, cfg) in [
        ("fastvit_s12", FastVitConfig::s12()),
        ("fastvit_sa12", FastVitConfig::sa12()),
    ] {
        let d = PathBuf::from(&root).join(name);
        let mut m = cfg.init(&device).unwrap();
        load_fastvit(
            &mut m,
            d.join("timm.safetensors"),
            &ImportOptions::default(),
        )
        .unwrap();
        let x: ArrayD<f32> = read_npy(d.join("input.npy")).unwrap();
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(x.iter().copied().collect::<Vec<f32>>(), x.shape().to_vec()),
            &device,
        );
        let want: ArrayD<f32> = read_npy(d.join("features.npy")).unwrap();
        for (what, model) in [("training form", m.clone()), ("fused", m.reparameterize())] {
            let f = model.forward_features(x.clone());
            let shape = f.dims().to_vec();
            let err = rel_err(
                f.into_data().try_to_vec::<f32>().unwrap(),
                &shape,
                &want,
                name,
            );
            println!("{name} {what}: feature map rel. error {err:.3e}");
            assert!(err <= 1e-4, "{name} {what}: {err}");
        }
    }
}
