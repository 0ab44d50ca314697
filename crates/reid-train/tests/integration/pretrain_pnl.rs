//! LUPerson-NL PNL pre-training on a tiny synthetic set: the classifier's
//! loss goes down, every stage (prototypes, correction, label-guided queue
//! positives) runs, a stopped-and-resumed run equals an uninterrupted one
//! (queue and prototypes included), and bad configurations are errors.

use crate::common;
use reid_train::FromConfig;

use burn::tensor::Device;
use common::{tiny_pnl, tiny_records};
use reid_train::pretrain::pnl::{PnlConfig, PnlNet, pretrain_pnl};
use reid_train::{PretrainEvent, RunOptions};

#[test]
fn the_classifier_loss_goes_down_and_every_stage_runs() {
    let (dir, recs) = tiny_records("pnl-down");
    let cfg = (tiny_pnl(8))
        .with_lr(0.2)
        .with_lr_milestones(vec![])
        .with_max_steps_per_epoch(Some(4));
    let mut epochs = 0;
    let plain = RunOptions::default();
    let out = pretrain_pnl(&cfg, FromConfig, &recs, &Device::flex(), &plain, |e| {
        if let PretrainEvent::EpochEnd { .. } = e {
            epochs += 1;
        }
    })
    .unwrap();
    assert_eq!((out.steps_done, epochs), (32, 8));
    let mean = |e: usize, key: &str| {
        let v: Vec<f64> = out
            .log
            .iter()
            .filter(|l| l.epoch == e)
            .map(|l| l.get(key).unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    // The prototype term is off in epoch 0 and on afterwards.
    assert_eq!(mean(0, "loss_proto"), 0.0);
    assert!(mean(1, "loss_proto") > 0.0);
    assert!(
        mean(7, "loss_cls") < 0.9 * mean(0, "loss_cls"),
        "classification loss did not go down: {} -> {}",
        mean(0, "loss_cls"),
        mean(7, "loss_cls")
    );
    assert!(out.log.iter().all(|l| l.get("loss").unwrap().is_finite()));
    std::fs::remove_dir_all(dir).ok();
}

common::contrastive_resume_test! {
    a_resumed_run_equals_an_uninterrupted_one: "pnl-resume", tiny_pnl(3), pretrain_pnl, PnlNet,
    [2, 5, 9], with_alpha(2.0) names "alpha", PnlConfig, r#"{"lr_steps": [1]}"#
}
