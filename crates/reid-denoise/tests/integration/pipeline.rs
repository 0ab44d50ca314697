//! End-to-end behaviour of the three levels on the feature-level synthetic
//! corpus (oracle-noised features with known truth).

use reid_denoise::synthetic::SyntheticConfig;
use reid_denoise::{
    FeatureDistance, REMOVED, ThresholdScale, VideoBlock, level1, level2, run, score,
};

use crate::common::{corpus, recorded, run_chunked, run_on};

fn small() -> SyntheticConfig {
    SyntheticConfig::default().with_videos(40).with_dim(32)
}

#[test]
fn every_level_improves_the_f_score_over_the_tracker() {
    let (blocks, truth) = corpus(small());
    let out = run_on(&recorded(), &blocks);
    let lv = out.levels.as_ref().unwrap();
    let raw = score(&lv.raw, &truth).unwrap();
    let l1 = score(&lv.level1, &truth).unwrap();
    let l2 = score(&lv.level2, &truth).unwrap();
    let l3 = score(&out.labels, &truth).unwrap();
    for (name, q) in [("raw", raw), ("l1", l1), ("l2", l2), ("l3", l3)] {
        eprintln!("{name}: {q:?}");
    }
    assert!(l1.precision > raw.precision, "level 1 must raise precision");
    assert!(l1.f_score > raw.f_score);
    assert!(l2.f_score > l1.f_score);
    assert!(l3.f_score > l2.f_score);
    assert!(
        l3.recall_all > raw.recall_all,
        "linking must recover cross-video pairs"
    );
    assert!(out.report.level3.links > 0);
    assert!(out.identities < raw.identities);
}

#[test]
fn deterministic_and_independent_of_chunking() {
    let (blocks, _) = corpus(small());
    let (a, b) = run_chunked(&recorded(), &blocks, 64);
    // The calibrated scale is measured on the first chunk, so use absolute thresholds
    // scaled the same way to compare chunkings.
    assert_eq!(a.labels.len(), b.labels.len());
    let mut abs = recorded().scaled(a.report.scale);
    abs.scale = ThresholdScale::Absolute;
    let (c, d) = run_chunked(&abs, &blocks, 1);
    assert_eq!(c.labels, d.labels);
    assert_eq!(c.labels, a.labels);
}

#[test]
fn labels_are_dense_and_numbered_by_first_appearance() {
    let (blocks, _) = corpus(small());
    let out = run_on(&recorded(), &blocks);
    let mut next = 0u32;
    for &l in out.labels.iter().filter(|&&l| l != REMOVED) {
        assert!(l <= next, "label {l} appears before {next}");
        if l == next {
            next += 1;
        }
    }
    assert_eq!(next as usize, out.identities);
    assert_eq!(
        out.report.images_kept as usize,
        out.labels.iter().filter(|&&l| l != REMOVED).count()
    );
}

#[test]
fn level1_prunes_an_outlier_and_dissolves_a_broken_pair() {
    // Tracklet 0: four crops near e0 and one near e1; tracklet 1: two far-apart crops.
    let rows = [
        [1.0, 0.0, 0.0],
        [0.99, 0.1, 0.0],
        [0.98, -0.1, 0.0],
        [0.99, 0.0, 0.1],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0],
    ];
    let mut b = VideoBlock {
        video: 0,
        first_row: 0,
        tracklets: vec![
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(1),
            Some(1),
        ],
        frames: vec![0, 1, 2, 3, 4, 0, 1],
        features: ndarray::Array2::from_shape_fn((7, 3), |(i, j)| rows[i][j]),
    };
    b.prepare(FeatureDistance::Cosine).unwrap();
    let cfg = reid_denoise::Level1Config::default()
        .with_radius(0.1)
        .with_min_tracklet_size(2);
    let out = level1::denoise_tracklets(&b, &cfg, FeatureDistance::Cosine);
    assert_eq!(out.tracklets.len(), 1);
    assert_eq!(out.tracklets[0].members, vec![0, 1, 2, 3]);
    assert_eq!(out.outliers, vec![4, 5, 6]);
    assert_eq!(out.stats.tracklets_dissolved, 1);
    assert_eq!(out.stats.images_pruned, 3);
    // Level 2 re-assigns nothing far away, and removes the three outliers.
    let l2cfg = reid_denoise::Level2Config::default()
        .with_reassign_radius(0.1)
        .with_merge_threshold(0.1)
        .with_forbid_frame_overlap(true);
    let l2 = level2::denoise_video(&b, out, &l2cfg, FeatureDistance::Cosine);
    assert_eq!(l2.identities.len(), 1);
    assert_eq!(l2.removed, vec![4, 5, 6]);
}

#[test]
fn level2_merges_fragments_but_never_two_crops_of_one_frame() {
    // Three tracklets of the same appearance; 0 and 1 share frame 5.
    let mut b = VideoBlock {
        video: 0,
        first_row: 0,
        tracklets: vec![Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)],
        frames: vec![4, 5, 5, 6, 10, 11],
        features: ndarray::Array2::from_shape_fn((6, 2), |(i, j)| {
            if j == 0 { 1.0 } else { 0.01 * i as f32 }
        }),
    };
    b.prepare(FeatureDistance::Cosine).unwrap();
    let l1 = level1::denoise_tracklets(
        &b,
        &reid_denoise::Level1Config::default(),
        FeatureDistance::Cosine,
    );
    let cfg = reid_denoise::Level2Config::default()
        .with_reassign_radius(0.5)
        .with_merge_threshold(0.5)
        .with_forbid_frame_overlap(true);
    let l2 = level2::denoise_video(&b, l1.clone(), &cfg, FeatureDistance::Cosine);
    assert_eq!(l2.identities.len(), 2, "0 and 1 overlap in frame 5");
    assert_eq!(l2.stats.tracklets_merged, 1);
    let free = cfg.with_forbid_frame_overlap(false);
    let l2 = level2::denoise_video(&b, l1, &free, FeatureDistance::Cosine);
    assert_eq!(l2.identities.len(), 1);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (mut blocks, _) = corpus(SyntheticConfig::default().with_videos(3).with_dim(8));
    blocks[1].features[[0, 3]] = f32::NAN;
    let first = blocks[1].first_row;
    let err = run(&recorded(), blocks.into_iter().map(Ok), |_| {}).unwrap_err();
    assert!(err.to_string().contains(&format!("row {first}")), "{err}");

    let (mut blocks, _) = corpus(SyntheticConfig::default().with_videos(3).with_dim(8));
    blocks.swap(1, 2);
    let err = run(&recorded(), blocks.into_iter().map(Ok), |_| {}).unwrap_err();
    assert!(err.to_string().contains("row order"), "{err}");

    let mut cfg = recorded();
    cfg.level3.stride = 100;
    assert!(run(&cfg, std::iter::empty(), |_| {}).is_err());
    cfg = recorded();
    cfg.level1.radius = -1.0;
    assert!(run(&cfg, std::iter::empty(), |_| {}).is_err());
}

#[test]
fn constant_features_are_an_error_that_says_so_under_both_metrics() {
    for metric in [FeatureDistance::Cosine, FeatureDistance::Euclidean] {
        let (mut blocks, _) = corpus(SyntheticConfig::default().with_videos(3).with_dim(8));
        for b in &mut blocks {
            b.features.fill(0.25);
        }
        let cfg = recorded().with_metric(metric);
        let err = run(&cfg, blocks.into_iter().map(Ok), |_| {}).unwrap_err();
        assert!(
            err.to_string().contains("identical features"),
            "{metric:?}: {err}"
        );
    }
}

#[test]
fn euclidean_metric_also_improves() {
    let (blocks, truth) = corpus(small());
    let mut cfg = recorded();
    cfg.metric = FeatureDistance::Euclidean;
    let out = run_on(&cfg, &blocks);
    let raw = score(&out.levels.as_ref().unwrap().raw, &truth).unwrap();
    let l3 = score(&out.labels, &truth).unwrap();
    assert!(
        l3.f_score > raw.f_score,
        "{} vs {}",
        l3.f_score,
        raw.f_score
    );
}

#[test]
fn stitching_joins_fragments_that_follow_each_other() {
    // Every other track fragmented, and half the persons have a look-alike
    // in their video: the time rule joins the fragments and not the
    // look-alikes.
    let cfg = small()
        .with_fragment_prob(0.5)
        .with_switch_prob(0.0)
        .with_recurrence(0.0)
        .with_lookalike_prob(0.5)
        .with_lookalike_similarity(0.9);
    let (blocks, truth) = corpus(cfg);
    let mut base = recorded();
    base.calibration.target_precision = None;
    base.level2.merge_threshold = 0.0;
    base.level3.link_threshold = 0.0;
    let mut on = base;
    on.level2.stitch_gap_steps = 2.0;
    on.level2.stitch_threshold = 4.0;
    let (off_out, on_out) = (run_on(&base, &blocks), run_on(&on, &blocks));
    let level2 = |o: &reid_denoise::DenoiseOutput| {
        score(&o.levels.as_ref().unwrap().level2, &truth).unwrap()
    };
    let (off, with) = (level2(&off_out), level2(&on_out));
    eprintln!("off {off:?}\non {with:?}");
    assert_eq!(off_out.report.level2.tracklets_stitched, 0);
    assert!(on_out.report.level2.tracklets_stitched > 0);
    assert!(with.recall > off.recall + 0.05, "{with:?} vs {off:?}");
    assert!(with.precision > off.precision - 0.02, "{with:?} vs {off:?}");
    // Stitched identities never hold two crops of one frame.
    for b in &blocks {
        let rows = b.first_row as usize..b.first_row as usize + b.frames.len();
        let mut seen = std::collections::BTreeSet::new();
        for (r, &f) in rows.zip(&b.frames) {
            let l = on_out.levels.as_ref().unwrap().level2[r];
            if l != REMOVED {
                assert!(
                    seen.insert((l, f)),
                    "two crops of frame {f} in identity {l}"
                );
            }
        }
    }
}
