#![allow(dead_code)] // each test binary uses a part of these helpers
//! Shared by the pre-training tests: a tiny synthetic image set.

use std::path::PathBuf;

use reid_data::ImageRecord;
use reid_data::datasets::{ImageDatasetOptions, market1501};
use reid_data::synth::{Market1501Config, Span, WorldConfig, write_market1501};

/// 8 identities × 4–9 images at 64×32 pixels (a Market-style train split).
pub fn tiny_records(tag: &str) -> (PathBuf, Vec<ImageRecord>) {
    let dir = std::env::temp_dir().join(format!("reid-pretrain-{tag}-{}", std::process::id()));
    let world = WorldConfig {
        seed: 5,
        height: 64,
        width: 32,
        overwrite: true,
        ..WorldConfig::default()
    };
    let cfg = Market1501Config {
        train_ids: 8,
        test_ids: 2,
        cameras: 3,
        cams_per_id: Span::new(2, 3),
        images_per_cam: Span::new(2, 3),
        junk: 0,
        distractors: 0,
    };
    let report = write_market1501(&dir, &world, &cfg).unwrap();
    let parsed = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default()).unwrap();
    (dir, parsed.splits.train)
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
