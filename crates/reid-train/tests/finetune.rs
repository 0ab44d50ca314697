//! The BoT fine-tuning loop on a tiny synthetic Market-1501-style set:
//! the loss goes down, a seed gives a bit-identical log, a diverging run
//! stops with an error naming the step, and the trained model evaluates.

use std::path::PathBuf;

use burn::tensor::Device;
use reid_backbones::build_backbone;
use reid_data::batch::TestTransform;
use reid_data::datasets::{ImageDatasetOptions, ParsedDataset, market1501};
use reid_data::synth::{Market1501Config, Span, WorldConfig, write_market1501};
use reid_train::{
    Decay, FinetuneConfig, FinetuneEvent, TrainError, Warmup, evaluate_model, finetune,
    finetune_backbone,
};

/// Writes (once per test, in its own folder) a set of 8 training and 4 test
/// identities at 64×32 pixels and parses it.
fn tiny_market(tag: &str) -> (PathBuf, ParsedDataset) {
    let dir = std::env::temp_dir().join(format!("reid-finetune-{tag}-{}", std::process::id()));
    let world = WorldConfig {
        seed: 3,
        height: 64,
        width: 32,
        overwrite: true,
        ..WorldConfig::default()
    };
    let cfg = Market1501Config {
        train_ids: 8,
        test_ids: 4,
        cameras: 3,
        cams_per_id: Span::new(2, 3),
        images_per_cam: Span::new(2, 3),
        junk: 0,
        distractors: 0,
    };
    let report = write_market1501(&dir, &world, &cfg).unwrap();
    let parsed = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default()).unwrap();
    (dir, parsed)
}

/// ResNet18 at width 8 on 64×32 inputs, P×K = 4×4, constant rate after a
/// short warm-up.
fn tiny_config(epochs: usize, iters: usize) -> FinetuneConfig {
    FinetuneConfig {
        arch: "resnet18".into(),
        base_width: 8,
        height: 64,
        width: 32,
        p: 4,
        k: 4,
        epochs,
        iters_per_epoch: Some(iters),
        lr: 1e-3,
        warmup: Warmup {
            iters: 4,
            factor: 0.1,
        },
        decay: Decay::Constant,
        eval_every: 0,
        seed: 11,
        ..FinetuneConfig::default()
    }
}

#[test]
fn loss_goes_down_and_the_model_evaluates() {
    let (dir, data) = tiny_market("loss");
    let device = Device::flex();
    let mut cfg = tiny_config(8, 8);
    cfg.eval_every = 2;
    let mut iterations = 0;
    let mut epochs = Vec::new();
    let out = finetune(&cfg, &data.splits.train, &device, |ev| match ev {
        FinetuneEvent::Iteration(_) => iterations += 1,
        FinetuneEvent::EpochEnd {
            epoch,
            log,
            evaluate,
            ..
        } => {
            assert_eq!(log.len(), 8);
            epochs.push((epoch, evaluate));
        }
    })
    .unwrap();
    assert_eq!(iterations, 64);
    assert_eq!(
        epochs,
        vec![
            (0, false),
            (1, true),
            (2, false),
            (3, true),
            (4, false),
            (5, true),
            (6, false),
            (7, true)
        ]
    );
    assert_eq!(out.num_classes, 8);
    assert_eq!(out.log.len(), 64);
    // Warm-up then constant rate.
    assert!((out.log[0].lr - 1e-4).abs() < 1e-12);
    assert!((out.log[63].lr - 1e-3).abs() < 1e-12);

    // Means over the first and the last 8 steps: (cross-entropy, triplet).
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let (ce, tri) = out.log[r]
            .iter()
            .fold((0.0, 0.0), |(c, t), l| (c + l.loss_ce, t + l.loss_tri));
        (ce / n, tri / n)
    };
    let (first, last) = (mean(0..8), mean(56..64));
    eprintln!("mean (ce, triplet): first 8 steps {first:?}, last 8 steps {last:?}");
    let total = |(c, t): (f32, f32)| c + t;
    assert!(
        total(last) < 0.8 * total(first),
        "total loss did not go down enough: {first:?} -> {last:?}"
    );
    assert!(last.1 < 0.6 * first.1, "triplet: {first:?} -> {last:?}");
    assert!(last.0 < first.0, "cross-entropy: {first:?} -> {last:?}");

    let result = evaluate_model(
        &out.model,
        &data.splits.query,
        &data.splits.gallery,
        TestTransform::new(64, 32),
        16,
        &device,
    )
    .unwrap();
    assert!(result.num_valid_queries > 0);
    assert!((0.0..=1.0).contains(&result.map), "{}", result.map);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_seed_gives_an_identical_log() {
    let (dir, data) = tiny_market("seed");
    let device = Device::flex();
    let cfg = tiny_config(2, 3);
    let run = |cfg: &FinetuneConfig| {
        finetune(cfg, &data.splits.train, &device, |_| {})
            .unwrap()
            .log
    };
    let a = run(&cfg);
    let b = run(&cfg);
    assert_eq!(a, b, "same seed, different logs");
    let c = run(&FinetuneConfig {
        seed: cfg.seed + 1,
        ..cfg.clone()
    });
    assert_ne!(a, c, "a different seed gave the same log");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_diverging_run_is_an_error_naming_the_step() {
    let (dir, data) = tiny_market("nan");
    let device = Device::flex();
    let cfg = FinetuneConfig {
        lr: 1e30,
        warmup: Warmup {
            iters: 0,
            factor: 0.1,
        },
        ..tiny_config(1, 6)
    };
    let err = finetune(&cfg, &data.splits.train, &device, |_| {}).unwrap_err();
    match &err {
        TrainError::NonFiniteLoss { iteration, .. } => {
            assert!(*iteration >= 1 && *iteration < 6, "{err}")
        }
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("non-finite loss at epoch 0, iteration"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_given_backbone_is_trained_from_its_weights() {
    let (dir, data) = tiny_market("given");
    let device = Device::flex();
    let backbone = build_backbone("resnet18", 8, 1, &device).unwrap();
    let before: Vec<f32> = backbone
        .conv1
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    let out = finetune_backbone(
        &tiny_config(1, 3),
        backbone,
        &data.splits.train,
        &device,
        |_| {},
    )
    .unwrap();
    let after: Vec<f32> = out
        .model
        .backbone
        .conv1
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(before.len(), after.len());
    let moved = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Three Adam steps of at most ~lr each: moved, but only a little.
    assert!(moved > 0.0 && moved < 0.01, "max change {moved}");
    assert!(out.log.iter().all(|l| l.loss_ce.is_finite()));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let device = Device::flex();
    let e = finetune(&tiny_config(1, 1), &[], &device, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let e = finetune(
        &FinetuneConfig {
            arch: "resnet51".into(),
            ..tiny_config(1, 1)
        },
        &[],
        &device,
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("resnet51"), "{e}");
}
