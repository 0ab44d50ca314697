//! Calibration of the re-assignment and merge (level 2) and link (level 3)
//! thresholds for a target precision, on pairs the corpus itself labels.
//!
//! - **Known negatives**: two detections in the same frame of one video are
//!   two persons (a person is in a frame once). For merging, the pairs of
//!   level-1 tracklets of a video that share a frame; for linking, the pairs
//!   of level-2 identities of a video that share a frame; each pair's
//!   distance is taken between the centroids of the two groups' crops in
//!   the frames they share ([`shared_frames_distance`]), so that a group
//!   into which the tracker mixed the other person elsewhere (an identity
//!   switch) still gives a true negative.
//! - **Known positives** (reported, not used for the choice): the two
//!   halves of one tracklet or identity (consecutive crops, mostly one
//!   person). They are far closer than a person seen in two videos, which
//!   is why thresholds set as multiples of the within-tracklet spread link
//!   too little across videos.
//! - **Candidates**: the pairs the stage may join — tracklets of one video
//!   that never share a frame (level 2); identities of two videos that fall
//!   in one Sliding Range window (level 3).
//! - **Re-assignment** (level 2 (a)) pairs an outlier crop with a level-1
//!   tracklet centroid of its video: a known negative when the tracklet
//!   has a crop in the outlier's frame, a candidate otherwise; the known
//!   positives are the tracklets' own crops against the centroid of the
//!   rest of their tracklet. The calibrated distance only ever narrows the
//!   configured `reassign_radius`, and when the merge threshold cannot
//!   reach the target no crop is re-assigned: with features that do not
//!   separate persons, outliers are removed rather than given to a stranger.
//!   (On the demo's untrained features, seed 2, the re-assignment estimate
//!   alone said precision 0.95 while the re-assigned crops lowered level 2's
//!   pairwise precision from 0.843 to 0.710: a dropped crop sits near the
//!   tracklets of its own moment and place whoever it shows, which the
//!   same-frame negatives do not sample.)
//!
//! The threshold is the largest candidate distance whose estimated
//! precision (`decoy`) reaches the target. When no distance does, the stage
//! joins nothing (threshold 0) and the report says so: with features that
//! do not separate persons the pipeline keeps the tracker's tracklets
//! rather than merging strangers. With too few known negatives (frames
//! unknown) the fixed thresholds of the configuration are kept, and the
//! report says that too.
//!
//! Everything is measured once, on the first [`CalibrationConfig::videos`]
//! videos (whatever the chunking), with the features as the stages see them
//! (prepared and normalised per video).

use derive_setters::Setters;
use ndarray::{Array2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::decoy::{NegativeTail, choose_threshold};
use crate::distance::FeatureDistance;
use crate::error::{DenoiseError, Result};
use crate::group::Group;

/// Parameters of the calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Pairwise precision the merges and links must reach, in `(0, 1]`;
    /// `None` keeps the fixed thresholds of the level configurations.
    pub target_precision: Option<f32>,
    /// Videos at the start of the corpus the distributions are measured on (≥ 1).
    pub videos: usize,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            target_precision: Some(0.95),
            videos: 64,
        }
    }
}

impl CalibrationConfig {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.target_precision
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(DenoiseError::InvalidParameter(format!(
                "target_precision must be in (0, 1], got {p}"
            )));
        }
        if self.videos == 0 {
            return Err(DenoiseError::InvalidParameter(
                "calibration videos must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Distance quantiles of a set of pairs (metric units; 0 when `count` is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DistanceQuantiles {
    /// Pairs measured.
    pub count: usize,
    /// 0.1 % quantile.
    pub p0_1: f32,
    /// 1 % quantile.
    pub p1: f32,
    /// 5 % quantile.
    pub p5: f32,
    /// Median.
    pub p50: f32,
    /// 90 % quantile.
    pub p90: f32,
    /// 99 % quantile.
    pub p99: f32,
}

impl DistanceQuantiles {
    /// The quantiles of `d` (NaN values are dropped).
    pub fn of(d: &[f32]) -> Self {
        let mut v: Vec<f32> = d.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f32::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        Self {
            count: v.len(),
            p0_1: q(0.001),
            p1: q(0.01),
            p5: q(0.05),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        }
    }
}

/// How a threshold was set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationStatus {
    /// Calibration off: the configuration's fixed threshold.
    #[default]
    Fixed,
    /// Set for the target precision.
    Calibrated,
    /// No distance reaches the target precision (the known negatives are as
    /// close as the candidates): the stage joins nothing.
    TargetUnreachable,
    /// Too few known negatives (frames unknown, or videos with one person):
    /// the configuration's fixed threshold is kept.
    TooFewNegatives,
    /// Re-assignment only: the merge threshold cannot reach the target, so
    /// single crops (noisier than tracklet centroids) are not re-assigned
    /// either, whatever their own estimate says (threshold 0).
    MergeUnreachable,
}

/// The calibration of one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdCalibration {
    /// How the threshold was set.
    pub status: CalibrationStatus,
    /// The threshold used (metric units; 0 = the stage joins nothing).
    pub threshold: f32,
    /// Known negative pairs (same frame of one video).
    pub negatives: DistanceQuantiles,
    /// Known positive pairs (the two halves of a group).
    pub positives: DistanceQuantiles,
    /// Candidate pairs compared.
    pub candidates: u64,
    /// Candidate pairs within the threshold.
    pub accepted: usize,
    /// Expected different-person pairs among them.
    pub expected_false: f64,
    /// Estimated pairwise precision of the accepted pairs.
    pub expected_precision: f64,
    /// The highest estimated precision any threshold reaches (accepting at
    /// least 20 pairs): below the target, the target is unreachable.
    pub best_precision: f64,
}

/// Both calibrations of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// The target precision (`None`: calibration off).
    pub target_precision: Option<f32>,
    /// Videos measured.
    pub videos: usize,
    /// Level 2's re-assignment radius (outlier crop to tracklet centroid).
    #[serde(default)]
    pub reassign: ThresholdCalibration,
    /// Level 2's merge threshold.
    pub merge: ThresholdCalibration,
    /// Level 3's link threshold.
    pub link: ThresholdCalibration,
}

/// Pair distances gathered for one threshold.
#[derive(Debug, Clone, Default)]
pub struct PairSample {
    /// Known negative distances.
    pub negatives: Vec<f32>,
    /// Known positive distances.
    pub positives: Vec<f32>,
    /// Candidate distances (those beyond the known negatives' median may be left out).
    pub candidates: Vec<f32>,
    /// A systematic sample of all candidate distances (for their bulk).
    pub bulk: Vec<f32>,
    /// Candidate pairs compared.
    pub total_candidates: u64,
}

impl PairSample {
    /// Adds another sample.
    pub fn extend(&mut self, o: PairSample) {
        self.negatives.extend(o.negatives);
        self.positives.extend(o.positives);
        self.candidates.extend(o.candidates);
        self.bulk.extend(o.bulk);
        self.total_candidates += o.total_candidates;
    }

    /// Sets the threshold for `target` precision, or keeps `fixed` (the
    /// configuration's threshold, metric units) when there are too few
    /// known negatives.
    pub fn calibrate(self, target: f32, fixed: f32) -> ThresholdCalibration {
        let negatives = DistanceQuantiles::of(&self.negatives);
        let positives = DistanceQuantiles::of(&self.positives);
        let base = ThresholdCalibration {
            negatives,
            positives,
            candidates: self.total_candidates,
            ..Default::default()
        };
        let Some(tail) = NegativeTail::fit(self.negatives).map(|t| t.matched_to(&self.bulk)) else {
            return ThresholdCalibration {
                status: CalibrationStatus::TooFewNegatives,
                threshold: fixed,
                ..base
            };
        };
        let c = choose_threshold(
            self.candidates,
            self.total_candidates,
            &tail,
            f64::from(target),
        );
        let base = ThresholdCalibration {
            best_precision: c.best_precision,
            ..base
        };
        match c.threshold {
            Some(t) => ThresholdCalibration {
                status: CalibrationStatus::Calibrated,
                threshold: t,
                accepted: c.accepted,
                expected_false: c.expected_false,
                expected_precision: c.expected_precision,
                ..base
            },
            None => ThresholdCalibration {
                status: CalibrationStatus::TargetUnreachable,
                threshold: 0.0,
                expected_precision: 1.0,
                ..base
            },
        }
    }
}

/// The distance between the centroids of the two halves of `g` (members in
/// order); `None` under 4 crops.
fn halves_distance(block: &VideoBlock, g: &Group, metric: FeatureDistance) -> Option<f32> {
    if g.len() < 4 {
        return None;
    }
    let h = g.len() / 2;
    let dim = block.dim();
    let (mut a, mut b) = (vec![0.0; dim], vec![0.0; dim]);
    for (k, &m) in g.members.iter().enumerate() {
        let acc = if k < h { &mut a } else { &mut b };
        crate::distance::add_into(acc, block.row(m as usize));
    }
    let (mut ca, mut cb) = (vec![0.0; dim], vec![0.0; dim]);
    metric.centroid_from_sum(&a, h, &mut ca);
    metric.centroid_from_sum(&b, g.len() - h, &mut cb);
    Some(metric.distance(&ca, &cb))
}

/// The known-negative distance of two groups of one video that share a
/// frame: the distance between the centroids of their crops *in the
/// frames they share* — in each of those frames the two crops are two
/// persons, even when a tracker error mixed another person into one of the
/// groups elsewhere. `None` when they share no frame.
pub fn shared_frames_distance(
    block: &VideoBlock,
    a: &Group,
    b: &Group,
    metric: FeatureDistance,
) -> Option<f32> {
    if !a.frames_overlap(b) {
        return None;
    }
    let dim = block.dim();
    let centroid = |g: &Group, other: &Group| {
        let mut sum = vec![0.0; dim];
        let mut n = 0;
        for &m in &g.members {
            if other.has_frame(block.frames[m as usize]) {
                crate::distance::add_into(&mut sum, block.row(m as usize));
                n += 1;
            }
        }
        let mut c = vec![0.0; dim];
        metric.centroid_from_sum(&sum, n, &mut c);
        c
    };
    Some(metric.distance(&centroid(a, b), &centroid(b, a)))
}

/// The re-assignment sample of one video: distances from each outlier crop
/// to each level-1 tracklet centroid, split into known negatives (the
/// tracklet has a crop in the outlier's frame) and candidates; the known
/// positives are each tracklet crop's distance to the centroid of the
/// other crops of its tracklet (tracklets of 3 or more crops).
pub fn reassign_sample(
    block: &VideoBlock,
    tracklets: &[Group],
    outliers: &[u32],
    metric: FeatureDistance,
) -> PairSample {
    let mut s = PairSample::default();
    let centroids: Vec<Vec<f32>> = tracklets.iter().map(|g| g.centroid(metric)).collect();
    for &i in outliers {
        let x = block.row(i as usize);
        let frame = block.frames[i as usize];
        for (g, c) in tracklets.iter().zip(&centroids) {
            let d = metric.distance(x, c);
            if g.has_frame(frame) {
                s.negatives.push(d);
            } else {
                s.candidates.push(d);
                s.bulk.push(d);
                s.total_candidates += 1;
            }
        }
    }
    let dim = block.dim();
    let mut rest = vec![0.0; dim];
    let mut c = vec![0.0; dim];
    for g in tracklets.iter().filter(|g| g.len() >= 3) {
        for &m in &g.members {
            let x = block.row(m as usize);
            for ((r, &total), &v) in rest.iter_mut().zip(&g.sum).zip(x) {
                *r = total - v;
            }
            metric.centroid_from_sum(&rest, g.len() - 1, &mut c);
            s.positives.push(metric.distance(x, &c));
        }
    }
    s
}

/// The merge sample of one video: its level-1 tracklets' centroid distances,
/// split into known negatives (sharing a frame) and candidates.
pub fn merge_sample(
    block: &VideoBlock,
    tracklets: &[Group],
    metric: FeatureDistance,
) -> PairSample {
    let mut s = PairSample::default();
    let centroids: Vec<Vec<f32>> = tracklets.iter().map(|g| g.centroid(metric)).collect();
    for a in 0..tracklets.len() {
        s.positives
            .extend(halves_distance(block, &tracklets[a], metric));
        for b in a + 1..tracklets.len() {
            let d = metric.distance(&centroids[a], &centroids[b]);
            if let Some(n) = shared_frames_distance(block, &tracklets[a], &tracklets[b], metric) {
                s.negatives.push(n);
            } else {
                s.candidates.push(d);
                s.bulk.push(d);
                s.total_candidates += 1;
            }
        }
    }
    s
}

/// One video's level-2 identities, as the link calibration sees them.
pub struct VideoIdentities<'a> {
    /// Position of the video in the stream (0-based).
    pub pos: usize,
    /// The video's block (for the halves of its identities).
    pub block: &'a VideoBlock,
    /// Its level-2 identities.
    pub identities: &'a [Group],
}

/// Whether level 3 compares videos at stream positions `i < j`: some
/// window `[k × stride, k × stride + window)` holds both.
pub fn compared(i: usize, j: usize, window: usize, stride: usize) -> bool {
    i != j && (i / stride) * stride + window > j
}

/// Rows per block of the calibration's distance matrix.
const ROWS: usize = 256;
/// One candidate pair in this many enters the bulk sample of the link calibration.
const BULK_STRIDE: u64 = 16;

/// The link sample: known negatives are identities of one video sharing a
/// frame, candidates the identity pairs of two videos that level 3 compares
/// (`window`, `stride`). Candidate distances beyond the known negatives'
/// median are counted but not kept (no threshold reaches them).
pub fn link_sample(
    videos: &[VideoIdentities<'_>],
    metric: FeatureDistance,
    window: usize,
    stride: usize,
) -> PairSample {
    let mut s = PairSample::default();
    let dim = videos.first().map_or(0, |v| v.block.dim());
    let mut pos = Vec::new();
    let mut rows: Vec<f32> = Vec::new();
    for v in videos {
        for (a, g) in v.identities.iter().enumerate() {
            s.positives.extend(halves_distance(v.block, g, metric));
            for h in &v.identities[a + 1..] {
                s.negatives
                    .extend(shared_frames_distance(v.block, g, h, metric));
            }
            pos.push(v.pos);
            rows.extend(g.centroid(metric));
        }
    }
    let n = pos.len();
    if n < 2 || dim == 0 {
        return s;
    }
    let cap = match DistanceQuantiles::of(&s.negatives) {
        q if q.count > 0 => q.p50,
        _ => f32::INFINITY,
    };
    let Ok(cent) = Array2::from_shape_vec((n, dim), rows) else {
        return s;
    };
    let sq: Vec<f32> = cent.rows().into_iter().map(|x| x.dot(&x)).collect();
    let starts: Vec<usize> = (0..n).step_by(ROWS).collect();
    let parts: Vec<(Vec<f32>, Vec<f32>, u64)> = starts
        .par_iter()
        .map(|&r0| {
            let r1 = (r0 + ROWS).min(n);
            let prod = cent.slice(s![r0..r1, ..]).dot(&cent.t());
            let (mut kept, mut bulk) = (Vec::new(), Vec::new());
            let mut total = 0u64;
            for (r, row) in prod.axis_iter(Axis(0)).enumerate() {
                let i = r0 + r;
                for j in i + 1..n {
                    if !compared(pos[i], pos[j], window, stride) {
                        continue;
                    }
                    let d = metric.from_dot(row[j], sq[i], sq[j]);
                    if total.is_multiple_of(BULK_STRIDE) {
                        bulk.push(d);
                    }
                    total += 1;
                    if d <= cap {
                        kept.push(d);
                    }
                }
            }
            (kept, bulk, total)
        })
        .collect();
    for (kept, bulk, total) in parts {
        s.candidates.extend(kept);
        s.bulk.extend(bulk);
        s.total_candidates += total;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_compare_videos_that_share_one() {
        // window 4, stride 2: windows [0,4), [2,6), [4,8) ...
        assert!(compared(0, 3, 4, 2));
        assert!(!compared(0, 4, 4, 2));
        assert!(compared(1, 3, 4, 2));
        assert!(compared(2, 5, 4, 2));
        assert!(!compared(1, 4, 4, 2));
        assert!(!compared(3, 3, 4, 2));
        // window = stride: disjoint windows.
        assert!(compared(4, 7, 4, 4) && !compared(3, 4, 4, 4));
    }

    #[test]
    fn shared_frames_give_a_true_negative_despite_a_switch() {
        // Group A: person X (e0) in frames 0 and 1, then person Y (e1) in
        // frames 5 and 6 (an identity switch); group B: person Y in frames 0, 1.
        let rows = [
            [1.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [0.0, 1.0],
            [0.0, 1.0],
            [0.0, 1.0],
        ];
        let block = VideoBlock {
            video: 0,
            first_row: 0,
            tracklets: vec![Some(0), Some(0), Some(0), Some(0), Some(1), Some(1)],
            frames: vec![0, 1, 5, 6, 0, 1],
            features: ndarray::Array2::from_shape_fn((6, 2), |(i, j)| rows[i][j]),
        };
        let mut a = Group::empty(2);
        let mut b = Group::empty(2);
        for i in 0..4 {
            a.add(i, block.frames[i as usize], block.row(i as usize));
        }
        for i in 4..6 {
            b.add(i, block.frames[i as usize], block.row(i as usize));
        }
        let m = FeatureDistance::Cosine;
        let shared = shared_frames_distance(&block, &a, &b, m).unwrap();
        assert!((shared - 1.0).abs() < 1e-6, "{shared}");
        let whole = m.distance(&a.centroid(m), &b.centroid(m));
        assert!(whole < 0.5, "{whole}");
        let mut c = Group::empty(2);
        c.add(2, 5, block.row(2));
        assert_eq!(shared_frames_distance(&block, &b, &c, m), None);
    }

    #[test]
    fn quantiles_and_statuses() {
        let q = DistanceQuantiles::of(&[3.0, 1.0, 2.0, f32::NAN]);
        assert_eq!((q.count, q.p0_1, q.p50, q.p99), (3, 1.0, 2.0, 3.0));
        assert_eq!(DistanceQuantiles::of(&[]).count, 0);
        let few = PairSample {
            negatives: vec![1.0; 3],
            candidates: vec![0.1],
            total_candidates: 1,
            ..Default::default()
        };
        let c = few.calibrate(0.95, 0.3);
        assert_eq!(c.status, CalibrationStatus::TooFewNegatives);
        assert_eq!(c.threshold, 0.3);
        let overlap = PairSample {
            negatives: (0..100).map(|i| i as f32 / 100.0).collect(),
            candidates: (0..1000).map(|i| i as f32 / 1000.0).collect(),
            total_candidates: 1000,
            ..Default::default()
        };
        let c = overlap.calibrate(0.95, 0.3);
        assert_eq!(c.status, CalibrationStatus::TargetUnreachable);
        assert_eq!(c.threshold, 0.0);
    }
}
