//! CION pre-training on a tiny synthetic set: the loss goes down, a run
//! stopped and resumed from its checkpoint computes exactly the losses and
//! weights of an uninterrupted one, the metrics log has no repeated step,
//! and bad configurations are errors.

use crate::common;
use reid_train::FromConfig;

use burn::tensor::Device;
use common::{
    Outcome, assert_error_names, assert_resume_is_exact, assert_unknown_key_refused, loss_bits,
    probes, refused_with, stopping, tiny_cion, tiny_records,
};
use reid_data::sampler_identity::KSchedule;
use reid_train::checkpoint::CheckpointDir;
use reid_train::metrics_log::read_log;
use reid_train::{CionConfig, CionNet, PretrainEvent, RunOptions, pretrain_cion};

#[test]
fn loss_goes_down_on_a_tiny_set() {
    let (dir, recs) = tiny_records("down");
    let device = Device::flex();
    // The student's optimisation in isolation: with the teacher and the
    // center frozen (momenta 1) the targets are fixed, so distillation must
    // lower the loss. (With CION's moving center on a set this small the
    // teacher is pushed towards uniform outputs and the loss drifts up to
    // about ln(out_dim) instead: see docs/training.md.)
    let cfg = (tiny_cion(6, 4))
        .with_k_schedule(KSchedule::constant(2))
        .with_lr(0.01)
        .with_momentum_teacher(1.0)
        .with_center_momentum(1.0);
    let mut epoch_means = Vec::new();
    let plain = RunOptions::default();
    let out = pretrain_cion(&cfg, FromConfig, &recs, &device, &plain, |e| {
        if let PretrainEvent::EpochEnd { mean_loss, .. } = e {
            epoch_means.push(mean_loss);
        }
    })
    .unwrap();
    assert!(out.finished);

    assert_eq!(out.steps_done, 24);
    assert!(out.log.iter().all(|l| l.get("loss").unwrap().is_finite()));
    assert!(
        epoch_means[5] < 0.85 * epoch_means[0],
        "mean loss per epoch did not go down: {epoch_means:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let (dir, recs) = tiny_records("resume");
    let device = Device::flex();
    let cfg = tiny_cion(3, 3);
    let run_dir = dir.join("runs");

    // Uninterrupted: 9 steps; interrupted after 4 (inside epoch 1), then
    // resumed.
    let full_opts = RunOptions::default().with_log_path(Some(run_dir.join("full.jsonl")));
    let opts = stopping(&run_dir, 2, 4)
        .with_keep_checkpoints(2)
        .with_log_path(Some(run_dir.join("resumed.jsonl")));
    let mut resumed_at = None;
    let [full, ..] = assert_resume_is_exact(&full_opts, &opts, |run| {
        let out = pretrain_cion(&cfg, FromConfig, &recs, &device, run, |e| {
            if let PretrainEvent::Resumed { step, .. } = e {
                resumed_at = Some(step);
            }
        })
        .unwrap();
        if run.stop_after.is_some() {
            let ckpts = CheckpointDir::new(run_dir.join("ckpt"), 2);
            assert_eq!(ckpts.latest().unwrap().unwrap().step, 4);
            assert_eq!(ckpts.complete().unwrap().len(), 2, "pruned to 2");
        }
        // K follows the schedule: 2 in epochs 0-1, 4 after.
        if run.checkpoint_dir.is_none() {
            assert_eq!(out.log[0].get("k"), Some(2.0));
            assert_eq!(out.log[8].get("k"), Some(4.0));
        }
        let probes = probes([&out.student, &out.teacher], CionNet::embed, &device);
        Outcome::of_log(&out.log, out.steps_done, out.finished, probes)
    });
    assert_eq!(resumed_at, Some(4));
    assert_eq!(full.steps_done, 9);

    // The resumed log file has every step once, in order, with the same values.
    let file = read_log(&run_dir.join("resumed.jsonl")).unwrap();
    assert_eq!(loss_bits(&file), full.steps);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_changed_config_refuses_to_resume_and_bad_configs_are_errors() {
    let (dir, recs) = tiny_records("cfg");
    let device = Device::flex();
    let cfg = tiny_cion(1, 1);
    let plain = RunOptions::default();
    let opts = RunOptions::default().with_checkpoint_dir(Some(dir.join("ckpt")));
    pretrain_cion(&cfg, FromConfig, &recs, &device, &opts, |_| {}).unwrap();
    let other = cfg.clone().with_lr(0.2);
    let resume = opts.with_resume(true);
    let err = pretrain_cion(&other, FromConfig, &recs, &device, &resume, |_| {}).unwrap_err();
    assert!(refused_with(&err, "another configuration"), "{err}");

    let bad = cfg.clone().with_batch_size(6);
    assert!(pretrain_cion(&bad, FromConfig, &recs, &device, &plain, |_| {}).is_err());
    let bad = cfg.clone().with_teacher_temp(0.0);
    assert_error_names(
        pretrain_cion(&bad, FromConfig, &recs, &device, &plain, |_| {}),
        "teacher_temp",
    );

    // JSON round trip and unknown keys.
    let text = serde_json::to_string(&cfg).unwrap();
    let back: CionConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, cfg);
    assert_unknown_key_refused::<CionConfig>(r#"{"learning_rate": 1}"#);
    std::fs::remove_dir_all(dir).ok();
}
