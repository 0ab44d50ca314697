//! Temporal stitching inside one video (part of level 2): a tracker that
//! loses a person restarts them under a new tracklet at one of the next
//! sampled frames, so one person's fragments follow each other in time.
//! Stitching joins a group that ends to one that starts shortly after it
//! when their centroids are close, each group continuing at most one other
//! (a chain of fragments is one person's track).
//!
//! The time rule lets the appearance threshold be looser than level 2's
//! merge threshold: among all pairs of groups of a video, few both follow
//! each other within a few frames and look alike. The threshold is not
//! calibrated to the target precision (on the study corpus the
//! calibration's estimate for the adjacent pairs, a best reachable
//! precision of 0.10–0.13, disagreed with the measured precision of the
//! stitched identities, 0.92; docs/denoise.md); under
//! [`ThresholdScale::Calibrated`](crate::pipeline::ThresholdScale) it is a
//! multiple of the measured spread like the fixed thresholds.

use crate::distance::FeatureDistance;
use crate::group::Group;
use crate::union_find::UnionFind;

/// When two groups of one video are fragments of one track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StitchRule {
    /// Largest gap between a group's last frame and the next one's first,
    /// in units of the video's sampling step (the median frame difference
    /// between consecutive crops of a group); 0 = no stitching.
    pub max_gap_steps: f32,
    /// Largest centroid distance of two stitched groups (0 = no stitching).
    pub threshold: f32,
}

impl StitchRule {
    /// Whether the rule stitches anything.
    pub fn is_on(&self) -> bool {
        self.max_gap_steps > 0.0 && self.threshold > 0.0
    }
}

/// The video's sampling step: the median difference between consecutive
/// frames of a group (`None` when no group has two crops).
pub fn sampling_step(groups: &[Group]) -> Option<u64> {
    let mut d: Vec<u64> = groups
        .iter()
        .flat_map(|g| g.frames.windows(2).map(|w| w[1] - w[0]))
        .filter(|&x| x > 0)
        .collect();
    if d.is_empty() {
        return None;
    }
    let mid = d.len() / 2;
    Some(*d.select_nth_unstable(mid).1)
}

/// The ordered pairs `(a, b)` of `groups` (one video's) where `b` starts
/// after `a` ends, at most `max_gap_steps` sampling steps later.
pub fn adjacent_pairs(groups: &[Group], max_gap_steps: f32) -> Vec<(usize, usize)> {
    let Some(step) = sampling_step(groups).filter(|_| max_gap_steps > 0.0) else {
        return Vec::new();
    };
    let max_gap = (f64::from(max_gap_steps) * step as f64).floor() as u64;
    let bounds: Vec<Option<(u64, u64)>> = groups
        .iter()
        .map(|g| Some((*g.frames.first()?, *g.frames.last()?)))
        .collect();
    let mut pairs = Vec::new();
    for (a, ba) in bounds.iter().enumerate() {
        let Some((_, last_a)) = *ba else { continue };
        for (b, bb) in bounds.iter().enumerate() {
            let Some((first_b, _)) = *bb else { continue };
            if first_b > last_a && first_b - last_a <= max_gap {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// Joins the fragments of `groups` (one video's) under `rule`; returns the
/// groups (in order of their lowest crop) and the number of joins. Pairs
/// are taken closest first; a pair is joined when the first group has no
/// successor yet, the second no predecessor, and they share no frame.
pub fn stitch(
    groups: Vec<Group>,
    rule: &StitchRule,
    metric: FeatureDistance,
) -> (Vec<Group>, usize) {
    if !rule.is_on() {
        return (groups, 0);
    }
    let centroids: Vec<Vec<f32>> = groups.iter().map(|g| g.centroid(metric)).collect();
    let mut pairs: Vec<(f32, usize, usize)> = adjacent_pairs(&groups, rule.max_gap_steps)
        .into_iter()
        .map(|(a, b)| (metric.distance(&centroids[a], &centroids[b]), a, b))
        .filter(|&(d, _, _)| d <= rule.threshold)
        .collect();
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let n = groups.len();
    let (mut has_next, mut has_prev) = (vec![false; n], vec![false; n]);
    let mut uf = UnionFind::new(n);
    let mut slots: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
    let mut joins = 0;
    for (_, a, b) in pairs {
        if has_next[a] || has_prev[b] {
            continue;
        }
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        let (Some(ga), Some(gb)) = (slots[ra].as_ref(), slots[rb].as_ref()) else {
            continue;
        };
        if ga.frames_overlap(gb) {
            continue;
        }
        if let Some((root, absorbed)) = uf.union(ra, rb) {
            let taken = slots[absorbed].take();
            if let (Some(t), Some(r)) = (taken, slots[root].as_mut()) {
                r.absorb(t);
            }
            has_next[a] = true;
            has_prev[b] = true;
            joins += 1;
        }
    }
    let mut out: Vec<Group> = slots.into_iter().flatten().collect();
    out.sort_by_key(|g| g.members.first().copied());
    (out, joins)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group of crops `members` at `frames`, every feature `x`.
    fn group(members: &[u32], frames: &[u64], x: [f32; 2]) -> Group {
        let mut g = Group::empty(2);
        for (&m, &f) in members.iter().zip(frames) {
            g.add(m, f, &x);
        }
        g
    }

    const RULE: StitchRule = StitchRule {
        max_gap_steps: 2.0,
        threshold: 0.3,
    };

    #[test]
    fn fragments_that_follow_each_other_and_look_alike_are_joined() {
        // Person A: frames 0-20 then 25-40 (step 5); person B close in
        // appearance to nobody; a look-alike of A that starts too late.
        let groups = vec![
            group(&[0, 1, 2, 3, 4], &[0, 5, 10, 15, 20], [1.0, 0.0]),
            group(&[5, 6, 7, 8], &[25, 30, 35, 40], [0.95, 0.1]),
            group(&[9, 10], &[25, 30], [0.0, 1.0]),
            group(&[11, 12], &[80, 85], [1.0, 0.05]),
        ];
        let (out, joins) = stitch(groups, &RULE, FeatureDistance::Cosine);
        assert_eq!(joins, 1);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].members, vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(out[0].frames, vec![0, 5, 10, 15, 20, 25, 30, 35, 40]);
    }

    #[test]
    fn each_fragment_continues_one_other_the_closest_and_chains_form() {
        // Two candidates continue group 0 at the same time: the closer
        // wins, the other stays apart. Group 3 continues group 1.
        let groups = vec![
            group(&[0, 1], &[0, 4], [1.0, 0.0]),
            group(&[2, 3], &[8, 12], [1.0, 0.02]),
            group(&[4, 5], &[8, 12], [1.0, 0.2]),
            group(&[6, 7], &[16, 20], [1.0, 0.0]),
        ];
        let (out, joins) = stitch(groups, &RULE, FeatureDistance::Cosine);
        assert_eq!(joins, 2);
        let sizes: Vec<usize> = out.iter().map(Group::len).collect();
        assert_eq!(sizes, vec![6, 2]);
        assert_eq!(out[0].members, vec![0, 1, 2, 3, 6, 7]);
    }

    #[test]
    fn off_or_without_a_sampling_step_nothing_changes() {
        let groups = vec![group(&[0], &[0], [1.0, 0.0]), group(&[1], &[1], [1.0, 0.0])];
        assert_eq!(sampling_step(&groups), None);
        let (out, joins) = stitch(groups.clone(), &RULE, FeatureDistance::Cosine);
        assert_eq!((out, joins), (groups.clone(), 0));
        let off = StitchRule {
            max_gap_steps: 0.0,
            ..RULE
        };
        let two = vec![
            group(&[0, 1], &[0, 2], [1.0, 0.0]),
            group(&[2, 3], &[4, 6], [1.0, 0.0]),
        ];
        assert_eq!(stitch(two.clone(), &off, FeatureDistance::Cosine).1, 0);
        assert_eq!(stitch(two, &RULE, FeatureDistance::Cosine).1, 1);
    }
}
