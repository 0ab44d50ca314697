//! LUPerson-NL PNL pre-training on a tiny synthetic set: the classifier's
//! loss goes down, every stage (prototypes, correction, label-guided queue
//! positives) runs, a stopped-and-resumed run equals an uninterrupted one
//! (queue and prototypes included), and bad configurations are errors.

use crate::common;
use reid_train::FromConfig;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{loss_bits, tiny_pnl, tiny_records};
use reid_train::pretrain::pnl::{PnlConfig, PnlNet, pretrain_pnl};
use reid_train::{PretrainEvent, RunOptions};

fn probe(net: &PnlNet, device: &Device) -> Vec<f32> {
    let n = 2 * 3 * 64 * 32;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 29 % 89) as f32 / 44.0) - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 64, 32]), device);
    net.embed(x).into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn the_classifier_loss_goes_down_and_every_stage_runs() {
    let (dir, recs) = tiny_records("pnl-down");
    let cfg = (tiny_pnl(8))
        .with_lr(0.2)
        .with_lr_milestones(vec![])
        .with_max_steps_per_epoch(Some(4));
    let mut epochs = 0;
    let out = pretrain_pnl(
        &cfg,
        FromConfig,
        &recs,
        &Device::flex(),
        &RunOptions::default(),
        |e| {
            if let PretrainEvent::EpochEnd { .. } = e {
                epochs += 1;
            }
        },
    )
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

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let (dir, recs) = tiny_records("pnl-resume");
    let device = Device::flex();
    let cfg = tiny_pnl(3);
    let full = pretrain_pnl(
        &cfg,
        FromConfig,
        &recs,
        &device,
        &RunOptions::default(),
        |_| {},
    )
    .unwrap();
    let opts = RunOptions::default()
        .with_checkpoint_dir(Some(dir.join("ckpt")))
        .with_checkpoint_every(2)
        .with_stop_after(Some(5));
    let first = pretrain_pnl(&cfg, FromConfig, &recs, &device, &opts, |_| {}).unwrap();
    assert!(!first.finished);
    let resume = opts.with_resume(true).with_stop_after(None);
    let second = pretrain_pnl(&cfg, FromConfig, &recs, &device, &resume, |_| {}).unwrap();
    assert_eq!(second.steps_done, 9);
    let mut joined = loss_bits(&first.log);
    joined.extend(loss_bits(&second.log));
    assert_eq!(joined, loss_bits(&full.log));
    assert_eq!(probe(&second.query, &device), probe(&full.query, &device));
    assert_eq!(
        probe(&second.key.valid(), &device),
        probe(&full.key.valid(), &device)
    );
    // Inference mode: the BatchNorm running statistics agree too.
    assert_eq!(
        probe(&second.query.valid(), &device),
        probe(&full.query.valid(), &device)
    );

    let bad = cfg.clone().with_alpha(2.0);
    let e = pretrain_pnl(
        &bad,
        FromConfig,
        &recs,
        &device,
        &RunOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("alpha"), "{e}");
    assert!(serde_json::from_str::<PnlConfig>(r#"{"lr_steps": [1]}"#).is_err());
    std::fs::remove_dir_all(dir).ok();
}
