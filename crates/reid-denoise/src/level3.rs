//! Level 3, long-range cross-video denoising: the Sliding Range and the
//! Linking Relations.
//!
//! Every video's identities (level 2's output) become *elements*, numbered in
//! corpus order. The Sliding Range is a window of [`Level3Config::window`]
//! consecutive videos that moves by [`Level3Config::stride`] videos; two videos
//! are compared when they fall in one window, i.e. when they are at most
//! `window − stride` apart in corpus order (LUPerson-NL's corpus order groups
//! a city's videos together, where persons recur). Inside a window the element
//! centroids are compared by blocked matrix products (rows in blocks of
//! [`BLOCK_ROWS`], in parallel).
//!
//! A **Linking Relation** joins two elements of different videos when their
//! centroid distance is at most [`Level3Config::link_threshold`] and, if
//! `mutual_top_k > 0`, each is among the other's `mutual_top_k` nearest
//! cross-video elements in the window. Relations are applied closest first
//! with union-find, so identities spanning many windows become one; a
//! relation is refused when the two identities it would join (their whole
//! current extent, across earlier windows) have centroids farther apart than
//! the threshold — the inter-identity criterion applied to the joined
//! identities, which stops chains from drifting. Identities with fewer than
//! [`Level3Config::min_images`] crops are removed at the end.
//!
//! Memory: the features of the window's elements (`window × identities per
//! video × dim` floats) plus one running sum per identity (`dim` floats); the
//! per-image features never reach this level.

use derive_setters::Setters;
use std::collections::VecDeque;

use ndarray::{Array2, ArrayView2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::{FeatureDistance, add_into};
use crate::error::{DenoiseError, Result, check_at_least_one, check_number};
use crate::group::Group;
use crate::union_find::UnionFind;

/// Rows per block of the window's distance matrix.
pub const BLOCK_ROWS: usize = 256;

/// Parameters of level 3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct Level3Config {
    /// Videos per Sliding Range window (≥ 1; 1 disables cross-video linking).
    pub window: usize,
    /// Videos the window moves by (1 ≤ stride ≤ window).
    pub stride: usize,
    /// Largest centroid distance of a Linking Relation (0 = no linking).
    pub link_threshold: f32,
    /// Mutual nearest-neighbour rank required of a relation (0 = off).
    pub mutual_top_k: usize,
    /// Identities with fewer crops are removed (≥ 1).
    pub min_images: usize,
}

impl Default for Level3Config {
    fn default() -> Self {
        Self {
            window: 64,
            stride: 32,
            link_threshold: 2.5,
            mutual_top_k: 4,
            min_images: 2,
        }
    }
}

impl Level3Config {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<()> {
        if self.window == 0 || self.stride == 0 || self.stride > self.window {
            return Err(DenoiseError::InvalidParameter(format!(
                "level-3 window and stride must satisfy 1 <= stride <= window, got window {} stride {}",
                self.window, self.stride
            )));
        }
        check_number("level-3 link_threshold", self.link_threshold, true)?;
        check_at_least_one("level-3 min_images", self.min_images)?;
        Ok(())
    }
}

/// What level 3 did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level3Stats {
    /// Windows processed.
    pub windows: usize,
    /// Candidate relations found (pairs within the threshold, after the mutual rule).
    pub candidate_links: usize,
    /// Relations applied (identities joined).
    pub links: usize,
    /// Relations refused by the joined-identity check.
    pub links_refused: usize,
    /// Identities removed for having fewer than `min_images` crops.
    pub identities_removed: usize,
    /// Crops in those identities.
    pub images_removed: usize,
}

struct WindowVideo {
    pos: usize,
    video: u32,
    elements: Vec<u32>,
    /// Element centroids `[elements, dim]`.
    centroids: Array2<f32>,
}

/// The streaming state of level 3.
pub struct Linker {
    cfg: Level3Config,
    metric: FeatureDistance,
    dim: usize,
    uf: UnionFind,
    /// Running feature sum per element `[elements × dim]`, valid at roots.
    sums: Vec<f32>,
    /// Crop count per element, valid at roots.
    counts: Vec<u64>,
    buffer: VecDeque<WindowVideo>,
    videos_seen: usize,
    next_start: usize,
    last_end: usize,
    stats: Level3Stats,
}

impl Linker {
    /// A linker for features of dimension `dim`.
    pub fn new(cfg: Level3Config, metric: FeatureDistance, dim: usize) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            metric,
            dim,
            uf: UnionFind::new(0),
            sums: Vec::new(),
            counts: Vec::new(),
            buffer: VecDeque::new(),
            videos_seen: 0,
            next_start: 0,
            last_end: 0,
            stats: Level3Stats::default(),
        })
    }

    /// Number of elements so far.
    pub fn num_elements(&self) -> usize {
        self.uf.len()
    }

    /// Adds the next video's identities (level 2's output, in corpus order)
    /// and returns their element numbers. Processes a window when it is full.
    pub fn add_video(&mut self, video: u32, identities: &[Group]) -> Result<Vec<u32>> {
        let mut elements = Vec::with_capacity(identities.len());
        let mut centroids = Array2::<f32>::zeros((identities.len(), self.dim));
        for (k, g) in identities.iter().enumerate() {
            if g.sum.len() != self.dim {
                return Err(DenoiseError::Inconsistent(format!(
                    "video {video}: identity of dimension {} (expected {})",
                    g.sum.len(),
                    self.dim
                )));
            }
            let e = self.uf.push();
            elements.push(e as u32);
            self.sums.extend_from_slice(&g.sum);
            self.counts.push(g.len() as u64);
            let c = g.centroid(self.metric);
            centroids
                .row_mut(k)
                .assign(&ndarray::ArrayView1::from(&c[..]));
        }
        self.buffer.push_back(WindowVideo {
            pos: self.videos_seen,
            video,
            elements: elements.clone(),
            centroids,
        });
        self.videos_seen += 1;
        if self.videos_seen - self.next_start == self.cfg.window {
            self.process_window(self.next_start, self.videos_seen);
            self.next_start += self.cfg.stride;
            while self.buffer.front().is_some_and(|v| v.pos < self.next_start) {
                self.buffer.pop_front();
            }
        }
        Ok(elements)
    }

    /// Processes the last, partial window and assigns final identity numbers:
    /// returns, per element, its identity (`u32::MAX` = removed) and the
    /// number of identities.
    pub fn finish(mut self) -> (Vec<u32>, usize, Level3Stats) {
        if self.videos_seen > self.last_end && self.videos_seen > self.next_start {
            self.process_window(self.next_start, self.videos_seen);
        }
        let n = self.uf.len();
        let mut root_id = vec![u32::MAX; n];
        let mut next = 0u32;
        let mut out = vec![u32::MAX; n];
        for (e, slot) in out.iter_mut().enumerate() {
            let r = self.uf.find(e);
            if r == e && self.counts[r] < self.cfg.min_images as u64 {
                self.stats.identities_removed += 1;
                self.stats.images_removed += self.counts[r] as usize;
            }
            if self.counts[r] < self.cfg.min_images as u64 {
                continue;
            }
            if root_id[r] == u32::MAX {
                root_id[r] = next;
                next += 1;
            }
            *slot = root_id[r];
        }
        (out, next as usize, self.stats)
    }

    fn component_centroid(&self, root: usize) -> Vec<f32> {
        let mut c = vec![0.0; self.dim];
        let sum = &self.sums[root * self.dim..(root + 1) * self.dim];
        self.metric
            .centroid_from_sum(sum, self.counts[root] as usize, &mut c);
        c
    }

    fn process_window(&mut self, start: usize, end: usize) {
        self.stats.windows += 1;
        self.last_end = end;
        let vids: Vec<&WindowVideo> = self
            .buffer
            .iter()
            .filter(|v| v.pos >= start && v.pos < end)
            .collect();
        let n: usize = vids.iter().map(|v| v.elements.len()).sum();
        if n < 2 || vids.len() < 2 || self.cfg.link_threshold == 0.0 {
            return;
        }
        let mut cent = Array2::<f32>::zeros((n, self.dim));
        let mut elem = Vec::with_capacity(n);
        let mut video = Vec::with_capacity(n);
        let mut r = 0;
        for v in &vids {
            let k = v.elements.len();
            cent.slice_mut(s![r..r + k, ..]).assign(&v.centroids);
            elem.extend_from_slice(&v.elements);
            video.extend(std::iter::repeat_n(v.video, k));
            r += k;
        }
        let sq: Vec<f32> = cent.rows().into_iter().map(|x| x.dot(&x)).collect();
        let cands = neighbours(
            cent.view(),
            &sq,
            &video,
            self.metric,
            self.cfg.link_threshold,
            self.cfg.mutual_top_k,
        );
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (i, list) in cands.iter().enumerate() {
            for &(d, j) in list {
                if i < j && (self.cfg.mutual_top_k == 0 || cands[j].iter().any(|&(_, x)| x == i)) {
                    pairs.push((d, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        self.stats.candidate_links += pairs.len();
        for (_, i, j) in pairs {
            let (ra, rb) = (
                self.uf.find(elem[i] as usize),
                self.uf.find(elem[j] as usize),
            );
            if ra == rb {
                continue;
            }
            let d = self
                .metric
                .distance(&self.component_centroid(ra), &self.component_centroid(rb));
            if d > self.cfg.link_threshold {
                self.stats.links_refused += 1;
                continue;
            }
            if let Some((root, absorbed)) = self.uf.union(ra, rb) {
                let (dst, src) = (root * self.dim, absorbed * self.dim);
                let moved: Vec<f32> = self.sums[src..src + self.dim].to_vec();
                add_into(&mut self.sums[dst..dst + self.dim], &moved);
                self.counts[root] += self.counts[absorbed];
                self.stats.links += 1;
            }
        }
    }
}

/// For every row, its cross-video neighbours within `threshold`, closest
/// first, at most `top_k` of them (all when `top_k == 0`), as `(distance, row)`.
fn neighbours(
    cent: ArrayView2<f32>,
    sq: &[f32],
    video: &[u32],
    metric: FeatureDistance,
    threshold: f32,
    top_k: usize,
) -> Vec<Vec<(f32, usize)>> {
    let n = cent.nrows();
    let starts: Vec<usize> = (0..n).step_by(BLOCK_ROWS).collect();
    let blocks: Vec<Vec<Vec<(f32, usize)>>> = starts
        .par_iter()
        .map(|&b0| {
            let b1 = (b0 + BLOCK_ROWS).min(n);
            let prod = cent.slice(s![b0..b1, ..]).dot(&cent.t());
            prod.axis_iter(Axis(0))
                .enumerate()
                .map(|(r, row)| {
                    let i = b0 + r;
                    let mut list: Vec<(f32, usize)> = row
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| video[j] != video[i])
                        .map(|(j, &p)| (metric.from_dot(p, sq[i], sq[j]), j))
                        .filter(|&(d, _)| d <= threshold)
                        .collect();
                    list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    if top_k > 0 {
                        list.truncate(top_k);
                    }
                    list
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}
