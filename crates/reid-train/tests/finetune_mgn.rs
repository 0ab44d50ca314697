//! MGN fine-tuning on a tiny synthetic Market-style set: the trunk and the
//! branches stay frozen for `freeze_epochs` while the heads train, then
//! everything trains; the loss goes down; the model evaluates; bad
//! configurations are errors.

mod common;

use burn::tensor::Device;
use common::tiny_records;
use reid_data::batch::TestTransform;
use reid_train::finetune::mgn::{MgnEvent, MgnFinetuneConfig, evaluate_mgn, finetune_mgn};

fn tiny_config() -> MgnFinetuneConfig {
    MgnFinetuneConfig {
        base_width: 4,
        embedding_dim: 16,
        height: 96,
        width: 32,
        p: 4,
        k: 4,
        epochs: 5,
        iters_per_epoch: Some(3),
        lr: 1e-3,
        warmup_epochs: 1,
        delay_epochs: 3,
        freeze_epochs: 2,
        seed: 4,
        ..MgnFinetuneConfig::default()
    }
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
    let out = finetune_mgn(&cfg, None, &recs, &device, |e| {
        if let MgnEvent::EpochEnd { model, .. } = e {
            trunk.push(values(model.backbone.conv1.weight.val()));
            head.push(
                model
                    .b1_head
                    .embedding
                    .as_ref()
                    .map(|c| values(c.weight.val()))
                    .unwrap(),
            );
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
    let r = evaluate_mgn(
        &out.model,
        &recs,
        &recs,
        TestTransform::new(96, 32),
        16,
        &device,
    )
    .unwrap();
    assert!(r.map.is_finite() && r.map > 0.0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_configurations_are_errors() {
    let (dir, recs) = tiny_records("mgn-bad");
    let device = Device::flex();
    let short = MgnFinetuneConfig {
        height: 32,
        ..tiny_config()
    };
    let e = finetune_mgn(&short, None, &recs, &device, |_| {}).unwrap_err();
    assert!(e.to_string().contains("48"), "{e}");
    let basic = MgnFinetuneConfig {
        arch: "resnet18".into(),
        ..tiny_config()
    };
    assert!(finetune_mgn(&basic, None, &recs, &device, |_| {}).is_err());
    assert!(serde_json::from_str::<MgnFinetuneConfig>(r#"{"heads": 8}"#).is_err());
    std::fs::remove_dir_all(dir).ok();
}
