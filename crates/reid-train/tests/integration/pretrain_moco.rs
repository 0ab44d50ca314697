//! LUPerson MoCo v2 pre-training on a tiny synthetic set: the InfoNCE loss
//! goes down, a stopped-and-resumed run equals an uninterrupted one (queue
//! included), and bad configurations are errors.

use crate::common;
use reid_train::FromConfig;

use burn::tensor::Device;
use common::{tiny_moco, tiny_records};
use reid_train::pretrain::moco::{MocoConfig, MocoNet, pretrain_moco};
use reid_train::{PretrainEvent, RunOptions};

/// Mean InfoNCE of the last four epochs of an 8-epoch run at rate `lr`.
fn late_loss(recs: &[reid_data::ImageRecord], lr: f64) -> f64 {
    let cfg = (tiny_moco(8))
        .with_cosine(false)
        .with_lr(lr)
        .with_key_momentum(0.9);
    let mut means = Vec::new();
    let plain = RunOptions::default();
    let out = pretrain_moco(&cfg, FromConfig, recs, &Device::flex(), &plain, |e| {
        if let PretrainEvent::EpochEnd { mean_loss, .. } = e {
            means.push(mean_loss);
        }
    })
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

common::contrastive_resume_test! {
    a_resumed_run_equals_an_uninterrupted_one: "moco-resume", tiny_moco(2), pretrain_moco, MocoNet,
    [3, 5, 8], with_bn_groups(9) names "bn_groups", MocoConfig, r#"{"queue": 3}"#
}

#[test]
fn grayscale_and_blur_probabilities_reach_the_view_and_are_checked() {
    // LUPerson's RandomGrayscale(p=0.2) and blur p 0.5 by default; the
    // options replace them.
    assert_eq!(MocoConfig::default().view().grayscale_p, 0.2);
    let colour = MocoConfig::default().with_grayscale_p(0.0);
    assert!(colour.validate().is_ok());
    assert_eq!(colour.view().grayscale_p, 0.0);
    let toml_cfg: MocoConfig = toml::from_str("grayscale_p = 0.0").expect("a recipe file");
    assert_eq!(toml_cfg.grayscale_p, 0.0);
    let blur = |c: &MocoConfig| c.view().blur.map(|b| b.p);
    assert_eq!(blur(&MocoConfig::default()), Some(0.5));
    assert_eq!(blur(&MocoConfig::default().with_blur_p(0.0)), Some(0.0));
    for bad in [-0.1, 1.5, f64::NAN] {
        let err = MocoConfig::default()
            .with_grayscale_p(bad)
            .validate()
            .expect_err("out of range");
        assert!(err.to_string().contains("grayscale_p"), "{err}");
        let err = MocoConfig::default()
            .with_blur_p(bad)
            .validate()
            .expect_err("out of range");
        assert!(err.to_string().contains("blur_p"), "{err}");
    }
}
