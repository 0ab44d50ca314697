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
use reid_data::synth::{Market1501Config, Span, WorldConfig, write_market1501};
use reid_train::{CionConfig, MocoConfig, PnlConfig};

/// Writes (once per test, in a folder of its own named by `kind` and
/// `tag`) a Market-style set of 8 training and `test_ids` test identities
/// at 64×32 pixels from world seed `seed`, and parses it.
fn write_tiny(kind: &str, tag: &str, seed: u64, test_ids: u32) -> (PathBuf, ParsedDataset) {
    let dir = std::env::temp_dir().join(format!("reid-{kind}-{tag}-{}", std::process::id()));
    let world = WorldConfig {
        seed,
        height: 64,
        width: 32,
        overwrite: true,
        ..WorldConfig::default()
    };
    let cfg = Market1501Config {
        train_ids: 8,
        test_ids,
        cameras: 3,
        cams_per_id: Span::new(2, 3),
        images_per_cam: Span::new(2, 3),
        junk: 0,
        distractors: 0,
    };
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
    CionConfig {
        arch: "resnet18".into(),
        base_width: 4,
        global_size: [64, 32],
        local_size: [32, 16],
        local_crops: 2,
        batch_size: 8,
        k_schedule: KSchedule {
            epochs: vec![2, 100],
            instances: vec![2, 4],
        },
        epochs,
        max_steps_per_epoch: Some(steps),
        lr: 0.01,
        warmup_epochs: 0,
        head_hidden_dim: 32,
        head_bottleneck_dim: 16,
        out_dim: 64,
        seed: 7,
        ..CionConfig::default()
    }
}

/// The tiny MOCO recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_moco(epochs: usize) -> MocoConfig {
    MocoConfig {
        arch: "resnet18".into(),
        base_width: 4,
        size: [64, 32],
        batch_size: 8,
        bn_groups: 2,
        epochs,
        max_steps_per_epoch: Some(4),
        lr: 0.05,
        mlp_hidden_dim: 32,
        dim: 16,
        queue_size: 24,
        temperature: 0.2,
        seed: 3,
        ..MocoConfig::default()
    }
}

/// The tiny PNL recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_pnl(epochs: usize) -> PnlConfig {
    PnlConfig {
        arch: "resnet18".into(),
        base_width: 4,
        size: [64, 32],
        batch_size: 8,
        bn_groups: 2,
        epochs,
        max_steps_per_epoch: Some(3),
        lr: 0.05,
        lr_milestones: vec![5],
        cls_dim: 16,
        mlp_hidden_dim: 32,
        dim: 16,
        queue_size: 24,
        key_momentum: 0.9,
        proto_momentum: 0.9,
        start_proto_epoch: 1,
        start_clean_epoch: 2,
        start_supcont_epoch: 2,
        seed: 5,
        ..PnlConfig::default()
    }
}
