//! The BoT fine-tuning loop on a tiny synthetic Market-1501-style set:
//! the loss goes down, a seed gives a bit-identical log, a diverging run
//! stops with an error naming the step, the trained model evaluates, and a
//! run stopped and resumed from its checkpoints computes exactly the losses
//! and weights of an uninterrupted one.

use crate::common;
use reid_train::FromConfig;

use burn::tensor::Device;
use common::{
    Outcome, assert_error_names, assert_joined_steps, assert_log_file_steps,
    assert_resume_is_exact, probe_input, refused_with, stopping, stopping_logged, tiny_bot,
    tiny_market,
};
use reid_backbones::{ReidModel, ResNet, build_backbone};
use reid_data::batch::TestTransform;
use reid_train::checkpoint::CheckpointDir;
use reid_train::{
    FinetuneConfig, FinetuneEvent, RunOptions, TrainError, Warmup, evaluate_model, finetune,
};

#[test]
fn loss_goes_down_and_the_model_evaluates() {
    let (dir, data) = tiny_market("ft-loss");
    let device = Device::flex();
    let mut cfg = tiny_bot(8, 8);
    cfg.eval_every = 2;
    let mut iterations = 0;
    let mut epochs = Vec::new();
    let out = finetune(
        &cfg,
        FromConfig,
        &data.splits.train,
        &device,
        &RunOptions::default(),
        |ev| match ev {
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
            other => panic!("no checkpoints were asked for, got {other:?}"),
        },
    )
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
    let (dir, data) = tiny_market("ft-seed");
    let device = Device::flex();
    let cfg = tiny_bot(2, 3);
    let plain = RunOptions::default();
    let train = &data.splits.train;
    let run = |cfg: &FinetuneConfig| {
        let out = finetune(cfg, FromConfig, train, &device, &plain, |_| {});
        out.unwrap().log
    };
    let a = run(&cfg);
    let b = run(&cfg);
    assert_eq!(a, b, "same seed, different logs");
    let c = run(&cfg.clone().with_seed(cfg.seed + 1));
    assert_ne!(a, c, "a different seed gave the same log");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_diverging_run_is_an_error_naming_the_step() {
    let (dir, data) = tiny_market("ft-nan");
    let device = Device::flex();
    let cfg = tiny_bot(1, 6).with_lr(1e30).with_warmup(Warmup {
        iters: 0,
        factor: 0.1,
    });
    let plain = RunOptions::default();
    let err = finetune(
        &cfg,
        FromConfig,
        &data.splits.train,
        &device,
        &plain,
        |_| {},
    )
    .unwrap_err();
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
    let (dir, data) = tiny_market("ft-given");
    let device = Device::flex();
    let backbone = build_backbone("resnet18", 8, 1, &device).unwrap();
    let before = stem_weights(&backbone);
    let (cfg, plain) = (tiny_bot(1, 3), RunOptions::default());
    let out = finetune(&cfg, backbone, &data.splits.train, &device, &plain, |_| {}).unwrap();
    let after = stem_weights(&out.model.backbone);
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
    let plain = RunOptions::default();
    let cfg = tiny_bot(1, 1);
    assert_error_names(
        finetune(&cfg, FromConfig, &[], &device, &plain, |_| {}),
        "empty",
    );
    let cfg = cfg.with_arch("resnet51".into());
    assert_error_names(
        finetune(&cfg, FromConfig, &[], &device, &plain, |_| {}),
        "resnet51",
    );
}

/// The weights of `backbone`'s stem convolution.
fn stem_weights(backbone: &ResNet) -> Vec<f32> {
    backbone
        .conv1
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap()
}

/// Features before and after the BNNeck of a fixed input (the model is a
/// validation snapshot, so BatchNorm uses its running statistics), and a
/// few raw tensors (stem, BNNeck γ/β/running mean, classifier).
fn probe(model: &ReidModel, device: &Device) -> Vec<u32> {
    let out = model.forward(probe_input(64, 32, device));
    let mut v: Vec<f32> = Vec::new();
    let mut add = |t: Vec<f32>| v.extend(t);
    add(out.before_neck.into_data().try_to_vec().unwrap());
    add(out.after_neck.into_data().try_to_vec().unwrap());
    add(stem_weights(&model.backbone));
    let neck = &model.heads.neck;
    add(neck.gamma.val().into_data().try_to_vec().unwrap());
    add(neck.beta.val().into_data().try_to_vec().unwrap());
    add(neck.running_mean.value().into_data().try_to_vec().unwrap());
    add(neck.running_var.value().into_data().try_to_vec().unwrap());
    let w = model.heads.weight.as_ref().unwrap();
    add(w.val().into_data().try_to_vec().unwrap());
    v.into_iter().map(f32::to_bits).collect()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let (dir, data) = tiny_market("ft-resume");
    let train = &data.splits.train;
    let device = Device::flex();
    // 3 epochs × 3 iterations; the PK stream crosses sampler rounds inside
    // epochs (8 identities give 2–3 batches of 4×4 per round).
    let cfg = tiny_bot(3, 3);
    let run_dir = dir.join("runs");

    let plain = RunOptions::default();
    let full = finetune(&cfg, FromConfig, train, &device, &plain, |_| {}).unwrap();
    assert!(full.finished);
    assert_eq!((full.steps_done, full.log.len()), (9, 9));

    // Stopped after 4 steps (inside epoch 1), resumed and stopped again
    // after 6 (an epoch boundary), resumed to the end.
    let opts = stopping_logged(&run_dir, 2, 4);
    let mut written = Vec::new();
    let first = finetune(&cfg, FromConfig, train, &device, &opts, |e| {
        if let FinetuneEvent::Checkpoint { step, .. } = e {
            written.push(step);
        }
    })
    .unwrap();
    assert!(!first.finished);
    assert_eq!(first.steps_done, 4);
    assert_eq!(written, vec![2, 4, 4], "every 2 steps, and at the stop");
    let ckpts = CheckpointDir::new(run_dir.join("ckpt"), 2);
    assert_eq!(ckpts.latest().unwrap().unwrap().step, 4);
    assert_eq!(ckpts.complete().unwrap().len(), 2, "pruned to 2");

    let mut resumed_at = Vec::new();
    let mut epoch_ends = Vec::new();
    let mut callback = |e: FinetuneEvent<'_>| match e {
        FinetuneEvent::Resumed { step, .. } => resumed_at.push(step),
        FinetuneEvent::EpochEnd { epoch, log, .. } => epoch_ends.push((epoch, log.len())),
        _ => {}
    };
    let resume = opts.clone().with_resume(true).with_stop_after(Some(6));
    let second = finetune(&cfg, FromConfig, train, &device, &resume, &mut callback).unwrap();
    assert!(!second.finished);
    assert_eq!(second.steps_done, 6);
    let resume = resume.with_stop_after(None);
    let third = finetune(&cfg, FromConfig, train, &device, &resume, &mut callback).unwrap();
    assert!(third.finished);
    assert_eq!(third.steps_done, 9);
    assert_eq!(resumed_at, vec![4, 6]);
    // Epoch 1 ended in the second process after 2 of its steps; epoch 2
    // ran whole in the third.
    assert_eq!(epoch_ends, vec![(1, 2), (2, 3)]);

    let parts = [&first.log[..], &second.log, &third.log];
    assert_joined_steps(&parts, &full.log, "per-step losses differ");
    assert_eq!(
        probe(&third.model, &device),
        probe(&full.model, &device),
        "weights differ after resume"
    );
    assert!(!third.model.heads.neck.beta.is_require_grad());

    // The metrics log has every step once, in order, with the same losses.
    let file = assert_log_file_steps(&run_dir.join("metrics.jsonl"), &full.log);
    for (line, step) in file.iter().zip(&full.log) {
        assert_eq!(line.get("lr").map(f64::to_bits), Some(step.lr.to_bits()));
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_given_backbone_resumes_and_a_changed_config_is_refused() {
    let (dir, data) = tiny_market("ft-resume-cfg");
    let train = &data.splits.train;
    let device = Device::flex();
    let cfg = tiny_bot(1, 3);
    // One set of starting weights (burn's initialisers draw from a
    // process-global generator), cloned for every run.
    let start = build_backbone("resnet18", 8, 1, &device).unwrap();
    let backbone = || start.clone();
    assert_resume_is_exact(&RunOptions::default(), &stopping(&dir, 1, 2), |run| {
        if run.resume {
            let other = cfg.clone().with_lr(2e-3);
            let err = finetune(&other, backbone(), train, &device, run, |_| {}).unwrap_err();
            assert!(refused_with(&err, "another configuration"), "{err}");
            // Another training split (one image fewer) is refused too.
            let err = finetune(&cfg, backbone(), &train[1..], &device, run, |_| {}).unwrap_err();
            assert!(matches!(err, TrainError::Checkpoint(_)), "{err}");
            // Another backbone structure does not load.
            let wide = build_backbone("resnet18", 16, 1, &device).unwrap();
            let err = finetune(&cfg, wide, train, &device, run, |_| {}).unwrap_err();
            assert!(matches!(err, TrainError::Checkpoint(_)), "{err}");
        }
        let out = finetune(&cfg, backbone(), train, &device, run, |_| {}).unwrap();
        Outcome::of_finetune(&out, vec![probe(&out.model, &device)])
    });
    std::fs::remove_dir_all(dir).ok();
}
