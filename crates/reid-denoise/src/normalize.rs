//! Per-video (per-camera) feature normalisation.
//!
//! A video's camera, light and background shift every crop's feature the
//! same way; across videos that shift, not the person, can dominate the
//! distance. Subtracting each video's mean feature removes it (mean-centring);
//! whitening also divides every dimension by its spread in the video.
//!
//! The mean is balanced over the video's *groups* — every tracklet counts
//! once, whatever its length, and every untracked crop counts once — so that
//! long tracks do not stand for the video. A video with few groups has a mean
//! that is largely its persons' own appearance, so the subtracted mean is
//! shrunk by `groups / (groups + prior_groups)`: a one-person video keeps
//! most of its appearance.
//!
//! Each video is normalised from its own crops only, so the step streams
//! (one pass per chunk of videos) and does not depend on the chunking.

use derive_setters::Setters;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::distance::FeatureDistance;
use crate::error::{DenoiseError, Result};

/// Which per-video normalisation to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoNormalization {
    /// Features as extracted (prepared for the metric).
    None,
    /// Subtract the video's (shrunk, group-balanced) mean feature (default).
    #[default]
    Center,
    /// Centre, then divide every dimension by its group-balanced standard
    /// deviation in the video (diagonal whitening).
    Whiten,
}

impl VideoNormalization {
    /// Parses `"none"`, `"center"` or `"whiten"`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "center" => Some(Self::Center),
            "whiten" => Some(Self::Whiten),
            _ => None,
        }
    }
}

/// Parameters of the per-video normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct NormalizationConfig {
    /// The normalisation.
    pub mode: VideoNormalization,
    /// Shrinkage of the subtracted mean: it is multiplied by
    /// `groups / (groups + prior_groups)` (≥ 0; 0 = plain mean).
    pub prior_groups: f32,
}

impl Default for NormalizationConfig {
    fn default() -> Self {
        Self {
            mode: VideoNormalization::Center,
            prior_groups: 2.0,
        }
    }
}

impl NormalizationConfig {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.prior_groups.is_finite() && self.prior_groups >= 0.0) {
            return Err(DenoiseError::InvalidParameter(format!(
                "normalization prior_groups must be a non-negative number, got {}",
                self.prior_groups
            )));
        }
        Ok(())
    }
}

/// Relative floor of a dimension's standard deviation when whitening (of
/// the mean standard deviation over dimensions).
const STD_FLOOR: f32 = 0.05;

/// The weight of every crop: `1 / len` of its tracklet, 1 when untracked;
/// and the number of groups.
fn group_weights(block: &VideoBlock) -> (Vec<f32>, usize) {
    let mut sizes: BTreeMap<u64, usize> = BTreeMap::new();
    for t in block.tracklets.iter().flatten() {
        *sizes.entry(*t).or_default() += 1;
    }
    let untracked = block.tracklets.iter().filter(|t| t.is_none()).count();
    let w = block
        .tracklets
        .iter()
        .map(|t| match t {
            Some(t) => 1.0 / sizes[t] as f32,
            None => 1.0,
        })
        .collect();
    (w, sizes.len() + untracked)
}

/// Normalises a prepared block in place (see the module doc) and prepares
/// its rows for `metric` again. A block without crops is left as it is.
pub fn normalize_video(block: &mut VideoBlock, cfg: &NormalizationConfig, metric: FeatureDistance) {
    if cfg.mode == VideoNormalization::None || block.is_empty() {
        return;
    }
    let dim = block.dim();
    let (w, groups) = group_weights(block);
    let total: f32 = w.iter().sum();
    let mut mean = vec![0.0f32; dim];
    for (i, &wi) in w.iter().enumerate() {
        for (m, x) in mean.iter_mut().zip(block.row(i)) {
            *m += wi * x;
        }
    }
    let shrink = groups as f32 / (groups as f32 + cfg.prior_groups) / total;
    for m in mean.iter_mut() {
        *m *= shrink;
    }
    let mut scale = vec![1.0f32; dim];
    if cfg.mode == VideoNormalization::Whiten && groups >= 2 {
        let mut var = vec![0.0f32; dim];
        for (i, &wi) in w.iter().enumerate() {
            for ((v, x), m) in var.iter_mut().zip(block.row(i)).zip(&mean) {
                *v += wi * (x - m) * (x - m);
            }
        }
        let std: Vec<f32> = var.iter().map(|v| (v / total).sqrt()).collect();
        let floor = STD_FLOOR * std.iter().sum::<f32>() / dim as f32;
        for (s, sd) in scale.iter_mut().zip(&std) {
            let sd = sd.max(floor);
            *s = if sd > 0.0 { 1.0 / sd } else { 1.0 };
        }
    }
    for mut row in block.features.rows_mut() {
        if let Some(x) = row.as_slice_mut() {
            for ((v, m), s) in x.iter_mut().zip(&mean).zip(&scale) {
                *v = (*v - m) * s;
            }
            metric.prepare(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn block(rows: &[[f32; 3]], tracklets: Vec<Option<u64>>) -> VideoBlock {
        VideoBlock {
            video: 0,
            first_row: 0,
            frames: (0..rows.len() as u64).collect(),
            tracklets,
            features: Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i][j]),
        }
    }

    #[test]
    fn centring_removes_a_shared_shift() {
        // Two persons along e0 and e1, both shifted by 5 e2.
        let rows = [
            [1.0, 0.0, 5.0],
            [1.0, 0.0, 5.0],
            [0.0, 1.0, 5.0],
            [0.0, 1.0, 5.0],
        ];
        let mut b = block(&rows, vec![Some(0), Some(0), Some(1), Some(1)]);
        let cfg = NormalizationConfig {
            mode: VideoNormalization::Center,
            prior_groups: 0.0,
        };
        normalize_video(&mut b, &cfg, FeatureDistance::Euclidean);
        assert_eq!(b.row(0), &[0.5, -0.5, 0.0]);
        assert_eq!(b.row(2), &[-0.5, 0.5, 0.0]);
        // Cosine: the two persons end up opposite instead of nearly equal.
        let mut b = block(&rows, vec![Some(0), Some(0), Some(1), Some(1)]);
        b.prepare(FeatureDistance::Cosine).unwrap();
        assert!(FeatureDistance::Cosine.distance(b.row(0), b.row(2)) < 0.05);
        normalize_video(&mut b, &cfg, FeatureDistance::Cosine);
        assert!((FeatureDistance::Cosine.distance(b.row(0), b.row(2)) - 2.0).abs() < 1e-5);
    }

    #[test]
    fn the_mean_is_balanced_over_tracklets_and_shrunk() {
        // Tracklet 0 has three crops at e0, tracklet 1 one crop at e1: the
        // balanced mean is (0.5, 0.5, 0), shrunk by 2 / (2 + 2).
        let rows = [
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
        ];
        let mut b = block(&rows, vec![Some(0), Some(0), Some(0), Some(1)]);
        normalize_video(
            &mut b,
            &NormalizationConfig::default(),
            FeatureDistance::Euclidean,
        );
        assert_eq!(b.row(0), &[0.75, -0.25, 0.0]);
        assert_eq!(b.row(3), &[-0.25, 0.75, 0.0]);
    }

    #[test]
    fn whitening_equalises_the_spread_of_dimensions() {
        let rows = [
            [10.0, 1.0, 0.0],
            [-10.0, -1.0, 0.0],
            [10.0, -1.0, 0.0],
            [-10.0, 1.0, 0.0],
        ];
        let mut b = block(&rows, vec![None; 4]);
        let cfg = NormalizationConfig {
            mode: VideoNormalization::Whiten,
            prior_groups: 0.0,
        };
        normalize_video(&mut b, &cfg, FeatureDistance::Euclidean);
        for i in 0..4 {
            assert!((b.row(i)[0].abs() - b.row(i)[1].abs()).abs() < 1e-5);
        }
        // The constant dimension stays 0 (floored spread, no division by 0).
        assert!(b.row(0)[2].is_finite());
    }

    #[test]
    fn none_leaves_features_alone() {
        let rows = [[1.0, 2.0, 3.0]];
        let mut b = block(&rows, vec![Some(0)]);
        let cfg = NormalizationConfig {
            mode: VideoNormalization::None,
            ..Default::default()
        };
        normalize_video(&mut b, &cfg, FeatureDistance::Euclidean);
        assert_eq!(b.row(0), &[1.0, 2.0, 3.0]);
    }
}
