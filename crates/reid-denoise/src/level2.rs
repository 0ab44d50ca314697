//! Level 2, short-range single-video denoising: inter-identity
//! discrimination inside one video.
//!
//! 1. **Re-assignment.** Each crop in the video's outlier pool (pruned by
//!    level 1, or untracked) joins the tracklet whose centroid is nearest, if
//!    that distance is at most [`Level2Config::reassign_radius`] (the level-1
//!    consistency criterion, so the receiving tracklet stays consistent) and,
//!    with `forbid_frame_overlap`, the tracklet has no crop in the same frame.
//!    Otherwise the crop is removed. Centroids are those after level 1, so the
//!    outcome does not depend on the pool's order.
//! 2. **Stitching** ([`crate::stitch`], when on). A group that starts at
//!    most [`Level2Config::stitch_gap_steps`] sampling steps after another
//!    ends, with centroids within [`Level2Config::stitch_threshold`], is its
//!    continuation: the tracker lost the person and restarted them.
//! 3. **Merging.** Two groups whose centroids are closer than
//!    [`Level2Config::merge_threshold`] are the same person: the tracker
//!    fragmented or re-identified them. Candidate pairs are taken closest first
//!    and joined (union-find) when the two current groups' centroids are still
//!    within the threshold and, with `forbid_frame_overlap`, they never appear
//!    in the same frame (one person is in a frame once). After merging, all
//!    centroids are at least `merge_threshold` apart, except pairs kept apart by
//!    the frame rule.

use derive_setters::Setters;
use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::distance::FeatureDistance;
use crate::error::{Result, check_number};
use crate::group::Group;
use crate::level1::Level1Output;
use crate::stitch::{StitchRule, stitch};
use crate::union_find::UnionFind;

/// Parameters of level 2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct Level2Config {
    /// Largest distance of an outlier to the centroid of the tracklet it
    /// joins (0 = no re-assignment).
    pub reassign_radius: f32,
    /// Groups with centroids closer than this are merged (0 = no merging).
    pub merge_threshold: f32,
    /// Forbid two crops of the same frame in one identity (default true).
    pub forbid_frame_overlap: bool,
    /// Stitching: the largest gap between a group's last frame and its
    /// continuation's first, in sampling steps of the video (0 = no
    /// stitching, the default).
    #[serde(default)]
    pub stitch_gap_steps: f32,
    /// Stitching: the largest centroid distance of a group and its
    /// continuation (0 = no stitching).
    #[serde(default)]
    pub stitch_threshold: f32,
}

impl Default for Level2Config {
    fn default() -> Self {
        Self {
            reassign_radius: 2.0,
            merge_threshold: 2.5,
            forbid_frame_overlap: true,
            stitch_gap_steps: 0.0,
            stitch_threshold: 0.0,
        }
    }
}

impl Level2Config {
    /// Checks the parameter ranges (a threshold of 0 disables its step).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("reassign_radius", self.reassign_radius),
            ("merge_threshold", self.merge_threshold),
            ("stitch_gap_steps", self.stitch_gap_steps),
            ("stitch_threshold", self.stitch_threshold),
        ] {
            check_number(&format!("level-2 {name}"), v, true)?;
        }
        Ok(())
    }
}

/// What level 2 did to one video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level2Stats {
    /// Outlier crops re-assigned to a tracklet.
    pub images_reassigned: usize,
    /// Outlier crops removed.
    pub images_removed: usize,
    /// Merges performed (groups in − groups out).
    pub tracklets_merged: usize,
    /// Fragments stitched to the group they continue.
    #[serde(default)]
    pub tracklets_stitched: usize,
}

impl Level2Stats {
    /// Adds another video's figures.
    pub fn add(&mut self, o: &Self) {
        self.images_reassigned += o.images_reassigned;
        self.images_removed += o.images_removed;
        self.tracklets_merged += o.tracklets_merged;
        self.tracklets_stitched += o.tracklets_stitched;
    }
}

/// Level 2's result for one video.
#[derive(Debug, Clone)]
pub struct Level2Output {
    /// The video's identities (local to the video), in order of their lowest crop.
    pub identities: Vec<Group>,
    /// Crops removed (local indices).
    pub removed: Vec<u32>,
    /// Figures.
    pub stats: Level2Stats,
}

/// Runs level 2 on one video, after level 1.
pub fn denoise_video(
    block: &VideoBlock,
    l1: Level1Output,
    cfg: &Level2Config,
    metric: FeatureDistance,
) -> Level2Output {
    let mut stats = Level2Stats::default();
    let mut groups = l1.tracklets;
    let mut removed = Vec::new();

    // 1. Re-assignment against the level-1 centroids.
    let centroids: Vec<Vec<f32>> = groups.iter().map(|g| g.centroid(metric)).collect();
    for &i in &l1.outliers {
        let x = block.row(i as usize);
        let frame = block.frames[i as usize];
        let mut best: Option<(usize, f32)> = None;
        for (gi, c) in centroids.iter().enumerate() {
            let d = metric.distance(x, c);
            if d > cfg.reassign_radius || cfg.reassign_radius == 0.0 {
                continue;
            }
            if cfg.forbid_frame_overlap && groups[gi].has_frame(frame) {
                continue;
            }
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((gi, d));
            }
        }
        match best {
            Some((gi, _)) => {
                groups[gi].add(i, frame, x);
                stats.images_reassigned += 1;
            }
            None => {
                removed.push(i);
                stats.images_removed += 1;
            }
        }
    }

    // 2. Stitching fragments that follow each other.
    let rule = StitchRule {
        max_gap_steps: cfg.stitch_gap_steps,
        threshold: cfg.stitch_threshold,
    };
    let (groups, stitched) = stitch(groups, &rule, metric);
    stats.tracklets_stitched = stitched;

    // 3. Merging, closest pairs first.
    let n = groups.len();
    let centroids: Vec<Vec<f32>> = groups.iter().map(|g| g.centroid(metric)).collect();
    let mut pairs = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            let d = metric.distance(&centroids[a], &centroids[b]);
            if d <= cfg.merge_threshold && cfg.merge_threshold > 0.0 {
                pairs.push((d, a, b));
            }
        }
    }
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut uf = UnionFind::new(n);
    let mut slots: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
    for (_, a, b) in pairs {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        let (Some(ga), Some(gb)) = (slots[ra].as_ref(), slots[rb].as_ref()) else {
            continue;
        };
        if cfg.forbid_frame_overlap && ga.frames_overlap(gb) {
            continue;
        }
        if metric.distance(&ga.centroid(metric), &gb.centroid(metric)) > cfg.merge_threshold {
            continue;
        }
        if let Some((root, absorbed)) = uf.union(ra, rb) {
            let taken = slots[absorbed].take();
            if let (Some(t), Some(r)) = (taken, slots[root].as_mut()) {
                r.absorb(t);
            }
            stats.tracklets_merged += 1;
        }
    }
    let mut identities: Vec<Group> = slots.into_iter().flatten().collect();
    identities.sort_by_key(|g| g.members.first().copied());
    removed.sort_unstable();
    Level2Output {
        identities,
        removed,
        stats,
    }
}
