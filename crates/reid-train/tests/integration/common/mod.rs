#![allow(dead_code)] // each test binary uses a part of these helpers
//! Shared by the training tests: a tiny synthetic image set, a fixed probe
//! input, exact step comparisons, a ResNet50 trunk.

pub mod parity;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::{Arch, ResNet};

use reid_data::ImageRecord;
use reid_data::datasets::{ImageDatasetOptions, ParsedDataset, market1501};
use reid_data::sampler_identity::KSchedule;
use reid_synth::{Market1501Config, Span, WorldConfig, write_market1501};
use reid_train::{CionConfig, MocoConfig, PnlConfig};

/// Writes (once per test, in a folder of its own named by `kind` and
/// `tag`) a Market-style set of 8 training and `test_ids` test identities
/// at 64×32 pixels from world seed `seed`, and parses it.
fn write_tiny(kind: &str, tag: &str, seed: u64, test_ids: u32) -> (PathBuf, ParsedDataset) {
    let dir = std::env::temp_dir().join(format!("reid-{kind}-{tag}-{}", std::process::id()));
    let world = WorldConfig::default()
        .with_seed(seed)
        .with_height(64)
        .with_width(32)
        .with_overwrite(true);
    let cfg = Market1501Config::default()
        .with_train_ids(8)
        .with_test_ids(test_ids)
        .with_cameras(3)
        .with_cams_per_id(Span::new(2, 3))
        .with_images_per_cam(Span::new(2, 3))
        .with_junk(0)
        .with_distractors(0);
    let report = write_market1501(&dir, &world, &cfg).unwrap();
    let parsed = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default()).unwrap();
    (dir, parsed)
}

/// 8 training and 4 test identities at 64×32 pixels (the fine-tuning
/// tests' set), in a folder of its own named by `tag`.
pub fn tiny_market(tag: &str) -> (PathBuf, ParsedDataset) {
    write_tiny("market", tag, 3, 4)
}

/// 8 identities × 4–9 images at 64×32 pixels (a Market-style train split).
pub fn tiny_records(tag: &str) -> (PathBuf, Vec<ImageRecord>) {
    let (dir, parsed) = write_tiny("pretrain", tag, 5, 2);
    (dir, parsed.splits.train)
}

/// A fixed `[2, 3, height, width]` input, for weight comparisons through
/// a forward pass.
pub fn probe_input(height: usize, width: usize, device: &Device) -> Tensor<4> {
    let n = 2 * 3 * height * width;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::<4>::from_data(TensorData::new(x, [2, 3, height, width]), device)
}

/// `(iteration, epoch, ce bits, triplet bits, lr bits)` of each
/// fine-tuning step, for exact comparisons.
pub fn step_bits(log: &[reid_train::IterationLog]) -> Vec<(usize, usize, u32, u32, u64)> {
    log.iter()
        .map(|l| {
            (
                l.iteration,
                l.epoch,
                l.loss_ce.to_bits(),
                l.loss_tri.to_bits(),
                l.lr.to_bits(),
            )
        })
        .collect()
}

/// A ResNet50 trunk of stem width `base_width`, drawn by burn's
/// initialisers (build it once and clone it for runs that must agree).
pub fn resnet50_trunk(base_width: usize, device: &Device) -> ResNet {
    Arch::from_name("resnet50")
        .unwrap()
        .config()
        .with_base_width(base_width)
        .init(device)
        .unwrap()
}

/// `(step, loss bits, lr bits)` of each log line, for exact comparisons.
pub fn loss_bits(lines: &[reid_train::LogLine]) -> Vec<(usize, u64, u64)> {
    lines
        .iter()
        .map(|l| {
            (
                l.step,
                l.get("loss").unwrap().to_bits(),
                l.get("lr").unwrap().to_bits(),
            )
        })
        .collect()
}

/// The tiny CION recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_cion(epochs: usize, steps: usize) -> CionConfig {
    CionConfig::default()
        .with_arch("resnet18".into())
        .with_base_width(4)
        .with_global_size([64, 32])
        .with_local_size([32, 16])
        .with_local_crops(2)
        .with_batch_size(8)
        .with_k_schedule(KSchedule {
            epochs: vec![2, 100],
            instances: vec![2, 4],
        })
        .with_epochs(epochs)
        .with_max_steps_per_epoch(Some(steps))
        .with_lr(0.01)
        .with_warmup_epochs(0)
        .with_head_hidden_dim(32)
        .with_head_bottleneck_dim(16)
        .with_out_dim(64)
        .with_seed(7)
}

/// The tiny MOCO recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_moco(epochs: usize) -> MocoConfig {
    MocoConfig::default()
        .with_arch("resnet18".into())
        .with_base_width(4)
        .with_size([64, 32])
        .with_batch_size(8)
        .with_bn_groups(2)
        .with_epochs(epochs)
        .with_max_steps_per_epoch(Some(4))
        .with_lr(0.05)
        .with_mlp_hidden_dim(32)
        .with_dim(16)
        .with_queue_size(24)
        .with_temperature(0.2)
        .with_seed(3)
}

/// The tiny PNL recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_pnl(epochs: usize) -> PnlConfig {
    PnlConfig::default()
        .with_arch("resnet18".into())
        .with_base_width(4)
        .with_size([64, 32])
        .with_batch_size(8)
        .with_bn_groups(2)
        .with_epochs(epochs)
        .with_max_steps_per_epoch(Some(3))
        .with_lr(0.05)
        .with_lr_milestones(vec![5])
        .with_cls_dim(16)
        .with_mlp_hidden_dim(32)
        .with_dim(16)
        .with_queue_size(24)
        .with_key_momentum(0.9)
        .with_proto_momentum(0.9)
        .with_start_proto_epoch(1)
        .with_start_clean_epoch(2)
        .with_start_supcont_epoch(2)
        .with_seed(5)
}
