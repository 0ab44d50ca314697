//! LUPerson MoCo v2 pre-training on a tiny synthetic set: the InfoNCE loss
//! goes down, a stopped-and-resumed run equals an uninterrupted one (queue
//! included), and bad configurations are errors.

use crate::common;
use reid_train::FromConfig;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use common::{loss_bits, tiny_moco, tiny_records};
use reid_train::pretrain::moco::{MocoConfig, MocoNet, pretrain_moco};
use reid_train::{PretrainEvent, RunOptions};

fn probe(net: &MocoNet, device: &Device) -> Vec<f32> {
    let n = 2 * 3 * 64 * 32;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 31 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 64, 32]), device);
    net.embed(x).into_data().try_to_vec::<f32>().unwrap()
}

/// Mean InfoNCE of the last four epochs of an 8-epoch run at rate `lr`.
fn late_loss(recs: &[reid_data::ImageRecord], lr: f64) -> f64 {
    let cfg = (tiny_moco(8))
        .with_cosine(false)
        .with_lr(lr)
        .with_key_momentum(0.9);
    let mut means = Vec::new();
    let out = pretrain_moco(
        &cfg,
        FromConfig,
        recs,
        &Device::flex(),
        &RunOptions::default(),
        |e| {
            if let PretrainEvent::EpochEnd { mean_loss, .. } = e {
                means.push(mean_loss);
            }
        },
    )
    .unwrap();
    assert_eq!(out.steps_done, 32);
    means[4..].iter().sum::<f64>() / 4.0
}

#[test]
fn training_lowers_info_nce_on_a_tiny_set() {
    // The queue fills with real keys during the first epochs, which raises
    // InfoNCE whatever the encoder does; so the same data stream is run
    // with and without parameter updates and training must win.
    let (dir, recs) = tiny_records("moco-down");
    let frozen = late_loss(&recs, 1e-12);
    let trained = late_loss(&recs, 0.01);
    assert!(
        trained < frozen - 0.05,
        "training did not lower InfoNCE: {trained} vs {frozen} without updates"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let (dir, recs) = tiny_records("moco-resume");
    let device = Device::flex();
    let cfg = tiny_moco(2);
    let full = pretrain_moco(
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
        .with_checkpoint_every(3)
        .with_stop_after(Some(5));
    let first = pretrain_moco(&cfg, FromConfig, &recs, &device, &opts, |_| {}).unwrap();
    assert!(!first.finished);
    let resume = opts.with_resume(true).with_stop_after(None);
    let second = pretrain_moco(&cfg, FromConfig, &recs, &device, &resume, |_| {}).unwrap();
    assert_eq!(second.steps_done, 8);
    let mut joined = loss_bits(&first.log);
    joined.extend(loss_bits(&second.log));
    assert_eq!(joined, loss_bits(&full.log));
    assert_eq!(probe(&second.query, &device), probe(&full.query, &device));
    // Inference mode: the BatchNorm running statistics agree too.
    assert_eq!(
        probe(&second.query.valid(), &device),
        probe(&full.query.valid(), &device)
    );
    assert_eq!(probe(&second.key, &device), probe(&full.key, &device));
    // Inference mode: the BatchNorm running statistics agree too.
    assert_eq!(
        probe(&second.key.valid(), &device),
        probe(&full.key.valid(), &device)
    );

    let bad = cfg.clone().with_bn_groups(9);
    let e = pretrain_moco(
        &bad,
        FromConfig,
        &recs,
        &device,
        &RunOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("bn_groups"), "{e}");
    assert!(serde_json::from_str::<MocoConfig>(r#"{"queue": 3}"#).is_err());
    std::fs::remove_dir_all(dir).ok();
}
