//! Per-video normalisation and the target-precision calibration on small
//! harder synthetic corpora (strong per-video shift; features that barely
//! separate persons).

use reid_denoise::synthetic::SyntheticConfig;
use reid_denoise::{
    CalibrationStatus, DenoiseConfig, DenoiseOutput, Quality, VideoBlock, VideoNormalization, score,
};

use crate::common::{corpus, recorded as config, run_chunked, run_on};

/// The labelling after each level and at the end, scored.
fn scores(out: &DenoiseOutput, truth: &[i64]) -> [Quality; 4] {
    let lv = out.levels.as_ref().unwrap();
    [&lv.raw, &lv.level1, &lv.level2, &out.labels].map(|l| score(l, truth).unwrap())
}

/// The default pipeline on the synthetic corpus `corpus_cfg`: the blocks,
/// the true persons, the output and its scores (printed under `name`).
fn scored(
    corpus_cfg: SyntheticConfig,
    name: &str,
) -> (Vec<VideoBlock>, Vec<i64>, DenoiseOutput, [Quality; 4]) {
    let (blocks, truth) = corpus(corpus_cfg);
    let out = run_on(&config(), &blocks);
    let q = scores(&out, &truth);
    show(name, &q);
    (blocks, truth, out, q)
}

fn show(name: &str, q: &[Quality; 4]) {
    for (level, q) in ["tracker", "level 1", "level 2", "level 3"].iter().zip(q) {
        eprintln!(
            "{name} {level}: P {:.3} R {:.3} F {:.3} ids {}",
            q.precision, q.recall, q.f_score, q.identities
        );
    }
}

/// 40 videos of 6 to 16 persons each, 32-dimensional features.
fn crowded() -> SyntheticConfig {
    SyntheticConfig::default()
        .with_videos(40)
        .with_dim(32)
        .with_persons_per_video((6, 16))
}

/// 40 videos in which every crop of a video carries the same appearance
/// shift, as strong as the persons' own appearance.
fn shifted() -> SyntheticConfig {
    crowded().with_video_shift(1.0)
}

/// Features that barely separate persons: the per-crop noise is 2.5 times
/// a person's appearance.
fn weak() -> SyntheticConfig {
    crowded()
        .with_crop_noise(2.5)
        .with_track_spread(0.3)
        .with_video_shift(0.5)
}

#[test]
fn centring_and_calibration_link_across_a_strong_video_shift() {
    let (blocks, truth, out, q) = scored(shifted(), "shifted, defaults");
    assert!(q[3].precision >= 0.95, "{:?}", q[3]);
    assert!(q[3].f_score >= 0.9, "{:?}", q[3]);
    assert!(q[3].f_score > q[0].f_score);
    let c = out.report.calibration;
    assert_eq!(c.target_precision, Some(0.95));
    assert_eq!(c.link.status, CalibrationStatus::Calibrated);
    assert!(c.link.threshold > 0.0 && c.link.expected_precision >= 0.95);
    assert!(c.link.negatives.count > 0 && c.link.positives.count > 0);
    assert!(c.link.accepted > 0 && c.link.candidates > c.link.accepted as u64);
    // The known positives (halves of one track) are far closer than the
    // link threshold: multiples of their spread link too little.
    assert!(c.link.positives.p90 < c.link.threshold);

    // Without the normalisation and the calibration (the former pipeline),
    // the shift hides the persons: little is linked.
    let mut old = config();
    old.normalization.mode = VideoNormalization::None;
    old.calibration.target_precision = None;
    old.level3.mutual_top_k = 2;
    let before = scores(&run_on(&old, &blocks), &truth);
    show("shifted, former pipeline", &before);
    assert!(q[3].f_score > before[3].f_score + 0.1);
}

/// Features in which the crop noise drowns the persons: no merge can reach
/// the target, and then no single crop is re-assigned either (a dropped
/// crop would join a stranger), so level 2 keeps level 1's precision.
#[test]
fn features_without_persons_reassign_nothing() {
    let (_, _, out, q) = scored(weak().with_crop_noise(12.0), "no persons, defaults");
    let c = out.report.calibration;
    assert_eq!(c.merge.status, CalibrationStatus::TargetUnreachable);
    assert_eq!(c.reassign.status, CalibrationStatus::MergeUnreachable);
    assert_eq!(c.reassign.threshold, 0.0);
    assert_eq!(out.report.level2.images_reassigned, 0);
    assert!(out.report.level2.images_removed > 0);
    // Removing a crop may cost a true pair, never add a false one.
    for level in &q[1..] {
        assert!(
            level.precision >= q[0].precision - 1e-3,
            "{level:?} vs {:?}",
            q[0]
        );
        assert!(
            level.f_score >= q[0].f_score - 1e-3,
            "{level:?} vs {:?}",
            q[0]
        );
    }
}

#[test]
fn weak_features_never_end_below_the_tracker() {
    let (blocks, truth, out, q) = scored(weak(), "weak, defaults");
    for level in &q[1..] {
        assert!(level.f_score >= q[0].f_score, "{level:?} vs {:?}", q[0]);
    }
    let c = out.report.calibration;
    assert_eq!(c.link.status, CalibrationStatus::TargetUnreachable);
    assert_eq!(c.link.threshold, 0.0);
    assert!(c.link.best_precision < 0.95);
    assert_eq!(out.report.level3.links, 0);
    assert!(q[2].precision >= q[1].precision, "{:?} vs {:?}", q[2], q[1]);

    // Fixed multiples of the within-tracklet spread merge strangers here.
    let mut fixed = config();
    fixed.calibration.target_precision = None;
    let f = scores(&run_on(&fixed, &blocks), &truth);
    show("weak, fixed thresholds", &f);
    assert!(f[3].f_score < q[0].f_score);
}

#[test]
fn the_calibration_does_not_depend_on_the_chunking() {
    let (blocks, _) = corpus(shifted());
    let (a, b) = run_chunked(&config(), &blocks, 1);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.report.calibration, b.report.calibration);
}

#[test]
fn without_known_negatives_the_fixed_thresholds_are_kept() {
    // Distinct frames everywhere: no two crops of a video share one.
    let (mut blocks, _) = corpus(shifted());
    for b in &mut blocks {
        let base = b.first_row;
        for (i, f) in b.frames.iter_mut().enumerate() {
            *f = base + i as u64;
        }
    }
    let out = run_on(&config(), &blocks);
    let c = out.report.calibration;
    assert_eq!(c.merge.status, CalibrationStatus::TooFewNegatives);
    assert_eq!(c.link.status, CalibrationStatus::TooFewNegatives);
    let fixed = config().scaled(out.report.scale);
    assert_eq!(c.link.threshold, fixed.level3.link_threshold);
    assert_eq!(c.merge.threshold, fixed.level2.merge_threshold);
}

#[test]
fn configuration_files_without_the_new_sections_still_parse() {
    let mut json = serde_json::to_value(DenoiseConfig::default()).unwrap();
    let obj = json.as_object_mut().unwrap();
    obj.remove("normalization");
    obj.remove("calibration");
    let cfg: DenoiseConfig = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(cfg, DenoiseConfig::default());
    json["colour"] = serde_json::json!(1);
    assert!(serde_json::from_value::<DenoiseConfig>(json).is_err());
    let mut json = serde_json::to_value(DenoiseConfig::default()).unwrap();
    json["level3"]["linkthreshold"] = serde_json::json!(1.0);
    assert!(serde_json::from_value::<DenoiseConfig>(json).is_err());
    let mut cfg = DenoiseConfig::default();
    cfg.calibration.target_precision = Some(1.5);
    assert!(cfg.validate().is_err());
    cfg.calibration.target_precision = Some(f32::NAN);
    assert!(cfg.validate().is_err());
}
