//! MGN fine-tuning from a pre-trained trunk (`finetune_mgn`): the
//! shared trunk and the three branches start as copies of the trunk and stay
//! so while frozen, then train; a trunk of another width is an error.

use crate::common;
use reid_train::MgnStart;
use reid_train::RunOptions;

use burn::tensor::Device;
use common::{assert_error_names, resnet50_trunk, tiny_mgn, tiny_records};
use reid_backbones::resnet::ResidualBlock;
use reid_train::finetune::mgn::{MgnEvent, finetune_mgn};

fn conv2(b: &ResidualBlock) -> Vec<f32> {
    let w = match b {
        ResidualBlock::Bottleneck(b) => b.conv2.weight.val(),
        ResidualBlock::Basic(b) => b.conv2.weight.val(),
    };
    w.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn branches_start_from_the_trunk_and_train_after_the_frozen_epochs() {
    let (dir, recs) = tiny_records("mgn-trunk");
    let device = Device::flex();
    let cfg = tiny_mgn(2, 2).with_seed(5);
    let trunk = resnet50_trunk(cfg.base_width, &device);
    let layer3_2 = conv2(&trunk.layer3[2]);
    let layer4_0 = conv2(&trunk.layer4[0]);
    let mut epochs = Vec::new();
    let plain = RunOptions::default();
    let out = finetune_mgn(&cfg, MgnStart::Trunk(&trunk), &recs, &device, &plain, |e| {
        if let MgnEvent::EpochEnd { model, .. } = e {
            let branches = [&model.b1, &model.b2, &model.b3];
            epochs.push(branches.map(|b| (conv2(&b.res_conv4[1]), conv2(&b.res_conv5[0]))));
        }
    })
    .unwrap();
    assert_eq!(out.log.len(), 4);
    assert!(out.log.iter().all(|l| l.loss_ce.is_finite()));
    // Epoch 0 is frozen: every branch still holds the trunk's weights.
    for (res_conv4, res_conv5) in &epochs[0] {
        assert_eq!(res_conv4, &layer3_2);
        assert_eq!(res_conv5, &layer4_0);
    }
    // Then each branch trains on its own.
    for (res_conv4, res_conv5) in &epochs[1] {
        assert_ne!(res_conv4, &layer3_2);
        assert_ne!(res_conv5, &layer4_0);
    }
    assert_ne!(epochs[1][0].1, epochs[1][1].1, "b1 and b2 moved together");
    assert_ne!(epochs[1][1].1, epochs[1][2].1, "b2 and b3 moved together");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_trunk_of_another_width_is_an_error() {
    let (dir, recs) = tiny_records("mgn-trunk-bad");
    let device = Device::flex();
    let cfg = tiny_mgn(2, 2).with_seed(5);
    let wide = resnet50_trunk(8, &device);
    let plain = RunOptions::default();
    let result = finetune_mgn(&cfg, MgnStart::Trunk(&wide), &recs, &device, &plain, |_| {});
    assert_error_names(result, "stem width");
    std::fs::remove_dir_all(dir).ok();
}
