//! Level 1, single-tracklet denoising: intra-identity consistency.
//!
//! Each tracklet's consistency is the radius of the smallest centred ball
//! holding its crops: the largest distance of a crop to the tracklet's
//! centroid. While that radius exceeds [`Level1Config::radius`], the crop
//! farthest from the centroid is removed and the centroid recomputed. A
//! tracklet left with fewer than [`Level1Config::min_tracklet_size`] crops is
//! dissolved. Removed crops and untracked crops go to the video's outlier pool,
//! where level 2 may re-assign them.

use derive_setters::Setters;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::distance::{FeatureDistance, sub_from};
use crate::error::{Result, check_at_least_one, check_number};
use crate::group::Group;

/// Parameters of level 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct Level1Config {
    /// Largest allowed distance of a crop to its tracklet centroid (in the
    /// metric's units, or in units of the calibrated scale).
    pub radius: f32,
    /// Tracklets smaller than this after pruning are dissolved (≥ 1).
    pub min_tracklet_size: usize,
}

impl Default for Level1Config {
    fn default() -> Self {
        Self {
            radius: 2.0,
            min_tracklet_size: 2,
        }
    }
}

impl Level1Config {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<()> {
        check_number("level-1 radius", self.radius, false)?;
        check_at_least_one("level-1 min_tracklet_size", self.min_tracklet_size)?;
        Ok(())
    }
}

/// What level 1 did to one video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level1Stats {
    /// Tracklets in the input.
    pub tracklets_in: usize,
    /// Crops pruned from tracklets (including those of dissolved tracklets).
    pub images_pruned: usize,
    /// Tracklets dissolved for being too small after pruning.
    pub tracklets_dissolved: usize,
    /// Crops without a tracker label.
    pub untracked: usize,
}

impl Level1Stats {
    /// Adds another video's figures.
    pub fn add(&mut self, o: &Self) {
        self.tracklets_in += o.tracklets_in;
        self.images_pruned += o.images_pruned;
        self.tracklets_dissolved += o.tracklets_dissolved;
        self.untracked += o.untracked;
    }
}

/// Level 1's result for one video.
#[derive(Debug, Clone)]
pub struct Level1Output {
    /// Surviving tracklets, in ascending tracker label.
    pub tracklets: Vec<Group>,
    /// Crops in the outlier pool (local indices, ascending).
    pub outliers: Vec<u32>,
    /// Figures.
    pub stats: Level1Stats,
}

/// Runs level 1 on one prepared video block.
pub fn denoise_tracklets(
    block: &VideoBlock,
    cfg: &Level1Config,
    metric: FeatureDistance,
) -> Level1Output {
    let mut by_label: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut outliers = Vec::new();
    let mut stats = Level1Stats::default();
    for (i, t) in block.tracklets.iter().enumerate() {
        match t {
            Some(t) => by_label.entry(*t).or_default().push(i as u32),
            None => {
                outliers.push(i as u32);
                stats.untracked += 1;
            }
        }
    }
    stats.tracklets_in = by_label.len();
    let dim = block.dim();
    let mut tracklets = Vec::new();
    let mut centroid = vec![0.0; dim];
    for members in by_label.into_values() {
        let mut kept = members;
        let mut sum = vec![0.0; dim];
        for &i in &kept {
            crate::distance::add_into(&mut sum, block.row(i as usize));
        }
        let mut consistent = false;
        while !kept.is_empty() {
            metric.centroid_from_sum(&sum, kept.len(), &mut centroid);
            let (worst, dmax) = kept
                .iter()
                .enumerate()
                .map(|(k, &i)| (k, metric.distance(block.row(i as usize), &centroid)))
                .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            if dmax <= cfg.radius {
                consistent = true;
                break;
            }
            if kept.len() <= cfg.min_tracklet_size {
                break;
            }
            let i = kept.remove(worst);
            sub_from(&mut sum, block.row(i as usize));
            outliers.push(i);
            stats.images_pruned += 1;
        }
        if !consistent || kept.len() < cfg.min_tracklet_size {
            stats.tracklets_dissolved += 1;
            stats.images_pruned += kept.len();
            outliers.extend(kept);
            continue;
        }
        let mut g = Group::empty(dim);
        for &i in &kept {
            g.add(i, block.frames[i as usize], block.row(i as usize));
        }
        tracklets.push(g);
    }
    outliers.sort_unstable();
    Level1Output {
        tracklets,
        outliers,
        stats,
    }
}
