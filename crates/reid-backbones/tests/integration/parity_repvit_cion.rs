//! RepViT as CION's own `RepViT.py` defines it (CION_ReIDZoo 7ac6fd7,
//! `CION_Pretrain/models/RepViT.py`: its own squeeze-and-excitation with a
//! hard-sigmoid gate, widths rounded to 4, keys `conv_reduce` /
//! `conv_expand`): a CION pre-training checkpoint written by
//! `tools/gen_cion_repvit_fixtures.py` from CION's code
//! (`tests/fixtures/backbones/repvit_cion/`: `student`, `teacher` with
//! `module.backbone.` and the DINO head, `optimizer`, pickled `args`,
//! `Loss`, `fp16_scaler`) selects CION's SE when loaded and reproduces
//! CION's features.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.
//! The full-size check (all three presets at 256×128 through the zoo, as
//! `extract --arch NAME --weights FILE` loads them) is `#[ignore]`d: its
//! checkpoints (~95 MB) are written outside the repository by the generator's
//! `--full DIR`, and the test reads `REID_CION_REPVIT_FULL=DIR`.

use burn::tensor::Tensor;
use reid_backbones::import::{
    CheckpointWrapper, ImportOptions, RepVitImportReport, RepVitLayout, WeightsFormat, load_repvit,
};
use reid_backbones::{Backbone, Embed, RepVit, RepVitConfig, RepVitSeKind, ZooModel};

use crate::common;

use common::{four, rel_err, tensor4};

fixture_fns!("repvit_cion");

fn config() -> RepVitConfig {
    let m = manifest();
    RepVitConfig::new(four(&m["depths"]), four(&m["embed_dims"]))
}

fn checkpoint() -> std::path::PathBuf {
    dir().join(manifest()["checkpoint"].as_str().unwrap())
}

fn load(se: RepVitSeKind, options: &ImportOptions) -> (RepVit, RepVitImportReport) {
    let device = common::device();
    let mut m = config().with_se(se).init(&device).unwrap();
    assert_eq!(m.se_kind(), Some(se));
    let report = load_repvit(&mut m, checkpoint(), options).unwrap_or_else(|e| panic!("{e}"));
    (m, report)
}

/// Feature map and embedding errors of `m` against the fixtures.
fn check(m: &RepVit, what: &str) -> (f32, f32) {
    check_against(m, what, "features.npy", "embedding.npy")
}

/// Feature map and embedding errors of `m` against `features` /
/// `embedding`.
fn check_against(m: &RepVit, what: &str, features_npy: &str, embedding_npy: &str) -> (f32, f32) {
    let x = tensor4(&npy("input.npy"), &common::device());
    let features = m.forward_features(x.clone());
    let fshape = features.dims().to_vec();
    let f_err = rel_err(
        features.into_data().try_to_vec::<f32>().unwrap(),
        &fshape,
        &npy(features_npy),
        what,
    );
    let emb = m.forward_embedding(x);
    let eshape = emb.dims().to_vec();
    let e_err = rel_err(
        emb.into_data().try_to_vec::<f32>().unwrap(),
        &eshape,
        &npy(embedding_npy),
        what,
    );
    println!("{what}: feature map rel. error {f_err:.3e}, embedding rel. error {e_err:.3e}");
    assert!(f_err <= 1e-4, "{what}: feature map rel. error {f_err}");
    assert!(e_err <= 1e-4, "{what}: embedding rel. error {e_err}");
    (f_err, e_err)
}

#[test]
fn cion_checkpoint_selects_cions_se_and_matches_cions_code() {
    // Built with timm's SE (the official default): the file's
    // `conv_reduce` keys switch it to CION's.
    let (m, report) = load(RepVitSeKind::Timm, &ImportOptions::default());
    assert_eq!(report.layout, RepVitLayout::Cion);
    assert_eq!(report.wrapper, CheckpointWrapper::CionTeacher);
    assert_eq!(m.se_kind(), Some(RepVitSeKind::Cion));
    assert_eq!(
        m.num_parameters() as u64,
        manifest()["num_params_backbone"].as_u64().unwrap()
    );
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for want in [
        "teacher.module.head.mlp.0.weight",
        "teacher.module.head.last_layer.weight_v",
        "student.module.backbone.features.0.0.c.weight",
        "Loss.center",
    ] {
        assert!(ignored.contains(&&want.to_string()), "{want}: {report}");
    }
    assert!(
        ignored.iter().any(|k| k.starts_with("optimizer.state.")),
        "{report}"
    );
    check(&m, "CION checkpoint, timm-SE model switched");
    check(&m.reparameterize(), "CION checkpoint, re-parameterised");

    // Built with CION's SE explicitly: nothing to switch; forced format.
    let options = ImportOptions::default().with_format(WeightsFormat::Cion);
    let (m, report) = load(RepVitSeKind::Cion, &options);
    assert_eq!(report.layout, RepVitLayout::Cion);
    check(&m, "CION checkpoint, CION-SE model");
}

/// The fine-tuned checkpoint CION's TransReID code writes (`base.*`,
/// `bottleneck.*`, `classifier.weight`), built by CION's own
/// `make_model.build_model` from the pre-training file: the backbone loads,
/// the head is set aside, and the feature is `model(x)` in eval mode (CION's
/// `NECK_FEAT: 'before'`).
#[test]
fn cion_transreid_fine_tuned_checkpoint_loads_and_matches() {
    let device = common::device();
    for format in [WeightsFormat::Auto, WeightsFormat::TransReid] {
        let mut m = config().init(&device).unwrap();
        let options = ImportOptions::default().with_format(format);
        let report = load_repvit(&mut m, dir().join("transreid.pth"), &options)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.wrapper, CheckpointWrapper::TransReid);
        assert_eq!(report.layout, RepVitLayout::Cion);
        assert_eq!(m.se_kind(), Some(RepVitSeKind::Cion));
        let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
        for want in [
            "classifier.weight",
            "bottleneck.weight",
            "bottleneck.running_var",
        ] {
            assert!(ignored.contains(&&want.to_string()), "{want}: {report}");
        }
        check_against(
            &m,
            "CION TransReID fine-tuned checkpoint",
            "transreid_features.npy",
            "transreid_embedding.npy",
        );
    }
    // `--weights-format transreid` on the pre-training file: no `base.*`.
    let mut m = config().init(&device).unwrap();
    let options = ImportOptions::default().with_format(WeightsFormat::TransReid);
    match load_repvit(&mut m, checkpoint(), &options) {
        Err(reid_backbones::BackboneError::Layout { message, .. }) => {
            assert!(message.contains("TransReID"), "{message}")
        }
        other => panic!("expected a layout error, got {other:?}"),
    }
}

/// The official / timm SE stays available: a CION-SE model loading the
/// official-naming fixture of `parity_repvit` (timm's `fc1`/`fc2`) switches
/// to timm's SE and matches timm.
#[test]
fn official_checkpoints_switch_a_cion_model_back_to_timms_se() {
    let device = common::device();
    let m = common::fixture_manifest("repvit");
    let mut model = RepVitConfig::new(four(&m["depths"]), four(&m["embed_dims"]))
        .with_se(RepVitSeKind::Cion)
        .init(&device)
        .unwrap();
    let report = load_repvit(
        &mut model,
        common::fixture_dir("repvit").join("official_cion.pth"),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.layout, RepVitLayout::Official);
    assert_eq!(model.se_kind(), Some(RepVitSeKind::Timm));
    let x = tensor4(&common::fixture_npy("repvit", "input.npy"), &device);
    let emb = model.forward_embedding(x);
    let shape = emb.dims().to_vec();
    let err = rel_err(
        emb.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &common::fixture_npy("repvit", "embedding.npy"),
        "official into a CION-SE model",
    );
    println!("official checkpoint into a CION-SE model: embedding rel. error {err:.3e}");
    assert!(err <= 1e-4, "{err}");
}

/// A mismatch names the keys in CION's naming, and the model keeps its SE
/// kind (nothing is changed on an error).
#[test]
fn mismatches_name_cion_keys_and_leave_the_model_unchanged() {
    let device = common::device();
    let cfg = config();
    let mut depths = cfg.depths;
    depths[3] += 1;
    let mut m = RepVitConfig { depths, ..cfg }.init(&device).unwrap();
    let err = load_repvit(&mut m, checkpoint(), &ImportOptions::default()).unwrap_err();
    let mismatch = common::key_mismatch(err);
    assert_eq!(mismatch.layout, "repvit-cion");
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    // The extra block (index depths[3] within the last stage, even: SE).
    let n: usize = 1 + depths.iter().sum::<usize>() + 3 * 2 - 1;
    for want in [
        format!("features.{n}.token_mixer.1.conv_reduce.weight"),
        format!("features.{n}.token_mixer.1.conv_expand.bias"),
    ] {
        assert!(mismatch.missing.contains(&want), "{want}: {mismatch}");
    }
    assert_eq!(m.se_kind(), Some(RepVitSeKind::Timm));
}

/// The three presets through the zoo at 256×128, against CION's code
/// (`--full DIR` of the generator; `REID_CION_REPVIT_FULL=DIR`).
#[test]
#[ignore = "needs REID_CION_REPVIT_FULL (tools/gen_cion_repvit_fixtures.py --full DIR)"]
fn full_size_cion_checkpoints_through_the_zoo() {
    let dir = std::path::PathBuf::from(
        std::env::var("REID_CION_REPVIT_FULL").expect("REID_CION_REPVIT_FULL=DIR"),
    );
    let read = |name: &str| -> ndarray::ArrayD<f32> {
        ndarray_npy::read_npy(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let device = common::device();
    let x = tensor4(&read("input.npy"), &device);
    for name in ["repvit_m0_9", "repvit_m1_0", "repvit_m1_5"] {
        let mut model = ZooModel::build(name, &device).unwrap();
        let report = model
            .load(dir.join(format!("{name}.pth")), &ImportOptions::default())
            .unwrap();
        println!("{report}");
        let model = model.into_inference();
        let emb: Tensor<2> = model.embed(x.clone()).unwrap();
        let shape = emb.dims().to_vec();
        let err = rel_err(
            emb.into_data().try_to_vec::<f32>().unwrap(),
            &shape,
            &read(&format!("{name}.embedding.npy")),
            name,
        );
        println!("{name} (256x128, zoo, inference form): embedding rel. error {err:.3e}");
        assert!(err <= 1e-4, "{name}: {err}");
    }
}
