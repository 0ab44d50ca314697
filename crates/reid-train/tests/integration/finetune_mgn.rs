//! MGN fine-tuning on a tiny synthetic Market-style set: the trunk and the
//! branches stay frozen for `freeze_epochs` while the heads train, then
//! everything trains; the loss goes down; the model evaluates; bad
//! configurations are errors; a run stopped and resumed from its
//! checkpoints (inside the frozen epochs, at their end, after them)
//! computes exactly the losses and weights of an uninterrupted one, and a
//! checkpoint of another configuration, split or recipe is refused.

use crate::common;
use reid_train::FromConfig;
use reid_train::MgnStart;

use std::path::Path;

use burn::tensor::Device;
use common::{
    Outcome, assert_error_names, assert_joined_steps, assert_log_file_steps,
    assert_resume_is_exact, assert_unknown_key_refused, probe_input, refused_with, resnet50_trunk,
    stopping, stopping_logged, tiny_bot, tiny_mgn, tiny_records,
};
use reid_backbones::Mgn;
use reid_data::batch::TestTransform;
use reid_train::checkpoint::CheckpointDir;
use reid_train::finetune::mgn::{MgnEvent, MgnFinetuneConfig, evaluate_mgn, finetune_mgn};
use reid_train::{RunOptions, TrainError, Warmup, finetune};

/// The tiny MGN recipe over 5 epochs of 3 steps, the first 2 frozen.
fn tiny_config() -> MgnFinetuneConfig {
    tiny_mgn(5, 3).with_delay_epochs(3).with_freeze_epochs(2)
}

fn values(t: burn::tensor::Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn the_trunk_is_frozen_first_then_everything_trains() {
    let (dir, recs) = tiny_records("mgn");
    let device = Device::flex();
    let cfg = tiny_config();
    let mut trunk = Vec::new();
    let mut head = Vec::new();
    let plain = RunOptions::default();
    let out = finetune_mgn(&cfg, MgnStart::Random, &recs, &device, &plain, |e| {
        if let MgnEvent::EpochEnd { model, .. } = e {
            trunk.push(values(model.backbone.conv1.weight.val()));
            let embedding = model.b1_head.embedding.as_ref().unwrap();
            head.push(values(embedding.weight.val()));
        }
    })
    .unwrap();
    assert_eq!(out.log.len(), 15);
    // Epochs 0 and 1: the trunk does not move, the heads do.
    assert_eq!(trunk[0], trunk[1]);
    assert_ne!(head[0], head[1]);
    // From epoch 2 on the trunk trains too.
    assert_ne!(trunk[1], trunk[2]);
    let mean = |e: usize| {
        let l: Vec<f32> = out
            .log
            .iter()
            .filter(|l| l.epoch == e)
            .map(|l| l.loss_ce + l.loss_tri)
            .collect();
        l.iter().sum::<f32>() / l.len() as f32
    };
    assert!(mean(4) < mean(0), "loss {} -> {}", mean(0), mean(4));
    // The model evaluates (query = gallery = the training images here).
    let test = TestTransform::new(96, 32);
    let r = evaluate_mgn(&out.model, &recs, &recs, test, 16, &device).unwrap();
    assert!(r.map.is_finite() && r.map > 0.0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_configurations_are_errors() {
    let (dir, recs) = tiny_records("mgn-bad");
    let device = Device::flex();
    let plain = RunOptions::default();
    let short = tiny_config().with_height(32);
    let run = |cfg| finetune_mgn(cfg, MgnStart::Random, &recs, &device, &plain, |_| {});
    assert_error_names(run(&short), "48");
    let basic = tiny_config().with_arch("resnet18".into());
    assert!(run(&basic).is_err());
    assert_unknown_key_refused::<MgnFinetuneConfig>(r#"{"heads": 8}"#);
    std::fs::remove_dir_all(dir).ok();
}

/// The smallest MGN input (3 rows on the stride-16 branch maps), 3 epochs
/// × 2 steps, the first epoch frozen.
fn resume_config() -> MgnFinetuneConfig {
    tiny_mgn(3, 2).with_height(48).with_width(16).with_seed(9)
}

/// The inference feature of a fixed input (validation snapshot: every
/// weight and BatchNorm running statistic of the trunk, the branches and
/// the heads enters it) and the stem's and a classifier's raw weights.
fn probe(model: &Mgn, device: &Device) -> Vec<u32> {
    let x = probe_input(48, 16, device);
    let mut v: Vec<f32> = model.forward(x).unwrap().into_data().try_to_vec().unwrap();
    v.extend(values(model.backbone.conv1.weight.val()));
    let w = model.b33_head.weight.as_ref().unwrap().val();
    v.extend(w.into_data().try_to_vec::<f32>().unwrap());
    v.into_iter().map(f32::to_bits).collect()
}

/// `trunk_frozen` in a checkpoint's `state.json`.
fn frozen_in(ckpt: &Path) -> bool {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("state.json")).unwrap()).unwrap();
    state["recipe"]["trunk_frozen"].as_bool().unwrap()
}

/// A copy of checkpoint folder `ckpt` as the only one of a new directory.
fn copy_checkpoint(ckpt: &Path, to: &Path) {
    let dst = to.join(ckpt.file_name().unwrap());
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(ckpt).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_resumed_mgn_run_equals_an_uninterrupted_one() {
    let (dir, recs) = tiny_records("mgn-resume");
    let device = Device::flex();
    let cfg = resume_config();
    let plain = RunOptions::default();
    let full = finetune_mgn(&cfg, MgnStart::Random, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(
        (full.steps_done, full.log.len(), full.finished),
        (6, 6, true)
    );

    // Stopped after 1 step: inside the frozen epoch 0.
    let ckpt_dir = dir.join("ckpt");
    let opts = stopping_logged(&dir, 2, 1);
    let first = finetune_mgn(&cfg, MgnStart::Random, &recs, &device, &opts, |_| {}).unwrap();
    assert_eq!((first.steps_done, first.finished), (1, false));
    let ckpts = CheckpointDir::new(&ckpt_dir, 2);
    assert!(frozen_in(&ckpts.latest().unwrap().unwrap().path));

    // Resumed, stopped after 3 (inside epoch 1, unfrozen); on the way the
    // periodic checkpoint after step 2 holds the end of the frozen epoch.
    let mut resumed_at = Vec::new();
    let mut written = Vec::new();
    let resume = opts.clone().with_resume(true).with_stop_after(Some(3));
    let second = finetune_mgn(
        &cfg,
        MgnStart::Random,
        &recs,
        &device,
        &resume,
        |e| match e {
            MgnEvent::Resumed { step, .. } => resumed_at.push(step),
            MgnEvent::Checkpoint { step, .. } => written.push(step),
            _ => {}
        },
    )
    .unwrap();
    assert_eq!((second.steps_done, second.finished), (3, false));
    assert_eq!((resumed_at, written), (vec![1], vec![2, 3]));
    let [at2, at3] = ckpts.complete().unwrap().try_into().unwrap();
    assert_eq!((at2.step, at3.step), (2, 3));
    assert!(frozen_in(&at2.path), "saved before epoch 1 began");
    assert!(!frozen_in(&at3.path), "saved inside epoch 1");

    // From the end of the frozen epoch (a copy of that checkpoint) to the
    // end: the resumed run unfreezes when epoch 1 begins.
    let boundary = dir.join("boundary");
    copy_checkpoint(&at2.path, &boundary);
    let from_boundary = RunOptions::default()
        .with_checkpoint_dir(Some(boundary))
        .with_resume(true);
    let third = finetune_mgn(
        &cfg,
        MgnStart::Random,
        &recs,
        &device,
        &from_boundary,
        |_| {},
    )
    .unwrap();
    assert_eq!((third.steps_done, third.finished), (6, true));
    let parts = [&first.log[..], &second.log[..1], &third.log];
    assert_joined_steps(&parts, &full.log, "losses differ (from step 2)");
    assert_eq!(probe(&third.model, &device), probe(&full.model, &device));

    // From step 3 (unfrozen, inside epoch 1) to step 5 (inside epoch 2),
    // then to the end.
    let resume = resume.with_stop_after(Some(5));
    let fourth = finetune_mgn(&cfg, MgnStart::Random, &recs, &device, &resume, |_| {}).unwrap();
    assert_eq!((fourth.steps_done, fourth.finished), (5, false));
    assert!(!frozen_in(&ckpts.latest().unwrap().unwrap().path));
    let resume = resume.with_stop_after(None);
    let fifth = finetune_mgn(&cfg, MgnStart::Random, &recs, &device, &resume, |_| {}).unwrap();
    assert_eq!((fifth.steps_done, fifth.finished), (6, true));
    let parts = [&first.log[..], &second.log, &fourth.log, &fifth.log];
    assert_joined_steps(&parts, &full.log, "losses differ (from steps 3, 5)");
    assert_eq!(probe(&fifth.model, &device), probe(&full.model, &device));

    // The metrics log has every step once, with the same losses.
    assert_log_file_steps(&dir.join("metrics.jsonl"), &full.log);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_trunk_run_resumes_and_another_config_split_or_recipe_is_refused() {
    let (dir, recs) = tiny_records("mgn-resume-cfg");
    let device = Device::flex();
    // 2 epochs × 1 step, the first frozen, no warm-up.
    let cfg = resume_config()
        .with_epochs(2)
        .with_iters_per_epoch(Some(1))
        .with_warmup_epochs(0)
        .with_delay_epochs(0);
    // One trunk (burn's initialisers draw from a process-global generator).
    let trunk = resnet50_trunk(4, &device);
    let start = || MgnStart::Trunk(&trunk);
    // A BoT run's checkpoint, to be refused by MGN.
    let bot = tiny_bot(1, 2).with_base_width(4).with_warmup(Warmup {
        iters: 1,
        factor: 0.1,
    });
    let bot_opts = RunOptions::default()
        .with_checkpoint_dir(Some(dir.join("bot")))
        .with_stop_after(Some(1));
    finetune(&bot, FromConfig, &recs, &device, &bot_opts, |_| {}).unwrap();
    let bot_resume = bot_opts.with_resume(true);
    assert_resume_is_exact(&RunOptions::default(), &stopping(&dir, 1, 1), |run| {
        if run.resume {
            let refused = |e: TrainError| refused_with(&e, "another configuration");
            // Another freeze length, another training split (one image fewer).
            let other = cfg.clone().with_freeze_epochs(0);
            let err = finetune_mgn(&other, start(), &recs, &device, run, |_| {}).unwrap_err();
            assert!(refused(err));
            let err = finetune_mgn(&cfg, start(), &recs[1..], &device, run, |_| {}).unwrap_err();
            assert!(refused(err));
            // A BoT run's checkpoint is not an MGN one, and the other way round.
            let err = finetune_mgn(&cfg, start(), &recs, &device, &bot_resume, |_| {});
            assert!(refused_with(&err.unwrap_err(), "state.json"));
            let err = finetune(&bot, FromConfig, &recs, &device, run, |_| {}).unwrap_err();
            assert!(refused_with(&err, "state.json"), "{err}");
        }
        let out = finetune_mgn(&cfg, start(), &recs, &device, run, |_| {}).unwrap();
        Outcome::of_finetune(&out, vec![probe(&out.model, &device)])
    });
    std::fs::remove_dir_all(dir).ok();
}
