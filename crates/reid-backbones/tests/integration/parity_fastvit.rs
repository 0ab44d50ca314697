//! FastViT: numerical parity with timm (training form and our
//! re-parameterised inference form) and strict checkpoint import, on the
//! fixtures of `tools/fixtures/gen_fastvit_fixtures.py`
//! (`tests/fixtures/backbones/fastvit/`), through the generic family tests
//! of `common::family` (each forward check covers both forms).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use std::path::PathBuf;

use burn::tensor::Device;
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use reid_backbones::import::{
    CheckpointWrapper, FastVitImportReport, FastVitLayout, ImportOptions, load_fastvit,
};
use reid_backbones::{Backbone, FastVit, FastVitConfig};
use serde_json::Value;

use crate::common::family::{self, FamilyFixture};
use crate::common::{assert_close, flags, four, one_more, tensor4, uint};

family_fixture! {
    Fx = "fastvit", FastVit = |d: &Device| config().init(d).unwrap(),
    FastVitImportReport = load_fastvit,
    embedding: FastVit::forward_embedding, fused: |m: &FastVit| m.clone().reparameterize(),
}

fn config() -> FastVitConfig {
    config_of(&Fx::manifest())
}

/// The FastViT a manifest describes (this family's, and the CION zoo's in
/// `parity_cion_zoo`).
pub fn config_of(m: &Value) -> FastVitConfig {
    FastVitConfig::new(
        four(&m["layers"]),
        four(&m["embed_dims"]),
        flags(&m["attention"]),
        flags(&m["pos_emb"]),
    )
    .with_mlp_ratios(four(&m["mlp_ratios"]))
    .with_head_dim(uint(&m["head_dim"]))
}

/// The CION teacher, its DINO head and the `rbr_skip` BN counters set
/// aside; the inference form computes the same function.
#[test]
fn official_cion_checkpoint_matches_timm_and_reparameterises() {
    let head = [
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
    ];
    let (_, report) = family::cion_teacher_checkpoint_matches::<Fx>(
        "official_cion.pth",
        FastVitLayout::Official,
        &head,
    );
    family::assert_ignored_suffix(&report, "rbr_skip.num_batches_tracked");
}

#[test]
fn timm_safetensors_matches_timm_once_the_classifier_is_allowed() {
    let classifier = ["head.fc.bias", "head.fc.weight"];
    let (_, report) = family::classifier_is_unexpected_unless_allowed::<Fx>(
        "timm.safetensors",
        "fastvit-timm",
        &classifier,
        "head.*",
    );
    assert_eq!(report.layout, FastVitLayout::Timm);
    assert_eq!(report.wrapper, CheckpointWrapper::Bare);
}

family_tests!(Fx {
    non_fastvit_files_and_formats_are_errors:
        wrong_files_and_formats_are_errors("official_cion.pth", "timm.safetensors");
});

/// One block more in stage 4 (missing), wider FFNs in stage 1
/// (mis-shaped), in the official naming; an S-type model (no RepCPE, no
/// attention) does not load an SA file.
#[test]
fn wrong_architecture_lists_missing_and_mis_shaped_keys_in_the_file_naming() {
    let device = crate::common::device();
    let cfg = config();
    let layers = one_more(cfg.layers, 3);
    let last = layers[3] - 1;
    let deeper = FastVitConfig {
        layers,
        ..cfg.clone()
    };
    let mismatch = Fx::mismatch(&mut deeper.init(&device).unwrap(), "official_cion.pth");
    // Stage 4's blocks are `network.7` officially (RepCPE is `network.6`).
    let want = format!("network.7.{last}.token_mixer.qkv.weight");
    family::assert_wrong_architecture(&mismatch, "fastvit-official", &[&want], &[]);

    let ratios = one_more(cfg.mlp_ratios, 0);
    let wider = &mut cfg.clone().with_mlp_ratios(ratios).init(&device).unwrap();
    let mismatch = Fx::mismatch(wider, "official_cion.pth");
    let shaped = ["network.0.0.convffn.fc1.weight"];
    family::assert_wrong_architecture(&mismatch, "fastvit-official", &[], &shaped);

    let s_type = FastVitConfig {
        attention: [false; 4],
        pos_emb: [false; 4],
        ..cfg
    };
    let s_model = &mut s_type.init(&device).unwrap();
    let defaults = ImportOptions::default();
    assert!(Fx::import_file(s_model, "official_cion.pth", &defaults).is_err());
}

/// Manual full-size check (not run by default): `FASTVIT_FULL_DIR` holds
/// `fastvit_s12/` and `fastvit_sa12/` folders, each with a timm
/// `timm.safetensors` (random weights), `input.npy` `[2, 3, 256, 128]` and
/// timm's `features.npy` `[2, 1024, 8, 4]`; both forms' feature maps must
/// be within 1e-4.
#[test]
#[ignore = "needs FASTVIT_FULL_DIR with full-size timm outputs"]
fn full_size_presets_match_timm() {
    let Ok(root) = std::env::var("FASTVIT_FULL_DIR") else {
        return;
    };
    let device = crate::common::device();
    for (name, cfg) in [
        ("fastvit_s12", FastVitConfig::s12()),
        ("fastvit_sa12", FastVitConfig::sa12()),
    ] {
        let d = PathBuf::from(&root).join(name);
        let mut m = cfg.init(&device).unwrap();
        let file = d.join("timm.safetensors");
        load_fastvit(&mut m, file, &ImportOptions::default()).unwrap();
        let x = tensor4(&read_npy(d.join("input.npy")).unwrap(), &device);
        let want: ArrayD<f32> = read_npy(d.join("features.npy")).unwrap();
        for (what, model) in [("training form", m.clone()), ("fused", m.reparameterize())] {
            let f = model.forward_features(x.clone());
            assert_close(f, &want, &format!("{name} {what}"));
        }
    }
}
