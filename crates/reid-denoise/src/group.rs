//! A set of crops believed to show one person, with its running feature sum.

use crate::distance::{FeatureDistance, add_into};

/// Crops of one video believed to show one person (a tracklet after level 1,
/// a local identity after level 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Local crop indices within the video block, ascending.
    pub members: Vec<u32>,
    /// Frames of the members, ascending (a person appears once per frame).
    pub frames: Vec<u64>,
    /// Sum of the members' prepared features `[dim]`.
    pub sum: Vec<f32>,
}

impl Group {
    /// An empty group of dimension `dim`.
    pub fn empty(dim: usize) -> Self {
        Self {
            members: Vec::new(),
            frames: Vec::new(),
            sum: vec![0.0; dim],
        }
    }

    /// Number of crops.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no crops.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds crop `i` with feature `x` seen in `frame`.
    pub fn add(&mut self, i: u32, frame: u64, x: &[f32]) {
        let pos = self.members.partition_point(|&m| m < i);
        self.members.insert(pos, i);
        let fpos = self.frames.partition_point(|&f| f < frame);
        self.frames.insert(fpos, frame);
        add_into(&mut self.sum, x);
    }

    /// The centroid under `metric` `[dim]`.
    pub fn centroid(&self, metric: FeatureDistance) -> Vec<f32> {
        let mut c = vec![0.0; self.sum.len()];
        metric.centroid_from_sum(&self.sum, self.members.len(), &mut c);
        c
    }

    /// Whether the group already has a crop in `frame`.
    pub fn has_frame(&self, frame: u64) -> bool {
        self.frames.binary_search(&frame).is_ok()
    }

    /// Whether two groups share a frame (then they cannot be one person).
    pub fn frames_overlap(&self, other: &Group) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.frames.len() && j < other.frames.len() {
            match self.frames[i].cmp(&other.frames[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Moves every crop of `other` into `self`.
    pub fn absorb(&mut self, other: Group) {
        self.members.extend(other.members);
        self.members.sort_unstable();
        self.frames.extend(other.frames);
        self.frames.sort_unstable();
        add_into(&mut self.sum, &other.sum);
    }
}
