//! The demo's pipeline at a tiny size: synthetic world → parser → backbone
//! features → evaluation, checking that each stage agrees with the previous
//! one (counts reported by the generator = counts found by the parser; one
//! feature row per image; every query with a true match is scored).

use std::path::PathBuf;

use reid::Backend;
use reid::backbones::{GlobalPool, ResNetConfig, ResNetDepth};
use reid::data::batch::TestTransform;
use reid::data::datasets::{ImageDatasetOptions, market1501};
use reid::data::{ImageLocation, ImageRecord};
use reid::metrics::{EvalConfig, Labels, Metric, evaluate_features};
use reid::synth::{Market1501Config, Span, WorldConfig, write_market1501};
use reid::train::{ExtractOptions, extract_features};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn paths(records: &[ImageRecord]) -> Vec<PathBuf> {
    records
        .iter()
        .map(|r| match &r.location {
            ImageLocation::Path(p) => p.clone(),
            ImageLocation::LmdbKey(k) => panic!("unexpected LMDB record {k}"),
        })
        .collect()
}

fn labels(records: &[ImageRecord]) -> Labels {
    Labels::new(
        records.iter().map(|r| r.pid).collect(),
        records.iter().map(|r| i64::from(r.camid)).collect(),
    )
    .unwrap()
}

#[test]
fn synthetic_market_through_backbone_and_evaluation() {
    let out = tmp("pipeline");
    let world = WorldConfig::sized(3, 64, 32);
    let cfg = Market1501Config::small(4, 6)
        .with_images_per_cam(Span::new(1, 2))
        .with_junk(3)
        .with_distractors(2);
    let report = write_market1501(&out, &world, &cfg).unwrap();
    let parsed = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default()).unwrap();
    assert_eq!(Some(parsed.splits.stats()), report.dataset_stats());
    assert_eq!(parsed.num_train_ids, 4);

    let device = Backend::Flex.device().unwrap();
    device.seed(1);
    let model = ResNetConfig::new()
        .with_depth(ResNetDepth::R18)
        .with_base_width(4)
        .init(&device)
        .unwrap();
    let options = ExtractOptions::default()
        .with_transform(TestTransform::new(64, 32))
        .with_batch_size(8)
        .with_pool(GlobalPool::Avg)
        .with_normalize(true);
    let query = &parsed.splits.query;
    let gallery = &parsed.splits.gallery;
    let q = extract_features(&model, &paths(query), &options, &device).unwrap();
    let g = extract_features(&model, &paths(gallery), &options, &device).unwrap();
    assert_eq!(q.dim(), (query.len(), 32));
    assert_eq!(g.dim(), (gallery.len(), 32));
    assert!(q.iter().chain(g.iter()).all(|v| v.is_finite()));

    let result = evaluate_features(
        q.view(),
        g.view(),
        &labels(query),
        &labels(gallery),
        Metric::Cosine,
        false,
        &EvalConfig::default(),
    )
    .unwrap();
    // Every query identity is seen by at least two cameras, so every query has
    // a cross-camera match in the gallery.
    assert_eq!(result.num_valid_queries, query.len());
    assert!((0.0..=1.0).contains(&result.map));
    assert!(result.cmc.windows(2).all(|w| w[0] <= w[1]));
    std::fs::remove_dir_all(&out).ok();
}
