//! A feature-level synthetic video corpus with known truth, for tests and the
//! scaling benchmark ("oracle-noised" features).
//!
//! Every person has a random unit prototype in `dim` dimensions; each of its
//! tracks adds a per-track offset (pose, camera, light) of norm about
//! `track_spread`, and each crop adds isotropic noise of norm about
//! `crop_noise`. The simulated tracker then corrupts the labels as real
//! trackers do: a track is fragmented into two tracklets with probability
//! `fragment_prob`; with probability `switch_prob` its second half continues
//! under the label of another track of the same video (an identity switch);
//! each crop is replaced by a false detection (a random feature, truth `-1`)
//! with probability `false_detection_prob`. A person reappears in a later
//! video with probability `recurrence` (drawn from the persons of the last
//! `recurrence_span` videos), which is what level 3 must find.
//!
//! Generation streams: one video at a time, memory independent of the corpus.

use derive_setters::Setters;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use ndarray::Array2;

use crate::block::VideoBlock;
use crate::error::{DenoiseError, Result};

/// Shape and noise of the synthetic corpus.
///
/// The fields after `recurrence_span` make the corpus harder (per-video
/// appearance shift, look-alike persons); they default to off, and with them
/// off the generator produces exactly the corpus it produced before they
/// existed (they draw from their own random streams).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Number of videos.
    pub videos: usize,
    /// Persons per video, inclusive range.
    pub persons_per_video: (usize, usize),
    /// Crops per track, inclusive range.
    pub track_len: (usize, usize),
    /// Feature dimension.
    pub dim: usize,
    /// Norm of the per-track offset.
    pub track_spread: f32,
    /// Norm of the per-crop noise.
    pub crop_noise: f32,
    /// Probability that a track is split into two tracklets.
    pub fragment_prob: f64,
    /// Probability of an identity switch in a track.
    pub switch_prob: f64,
    /// Probability that a crop is a false detection.
    pub false_detection_prob: f64,
    /// Probability that a person in a video is one seen recently.
    pub recurrence: f64,
    /// How many previous videos recurring persons come from.
    pub recurrence_span: usize,
    /// Norm of a per-video appearance shift (camera, light, background)
    /// added to every crop of the video, false detections included; a
    /// random direction per video. 0 = off (default).
    #[serde(default)]
    pub video_shift: f32,
    /// Probability that a new person is a look-alike of a person seen in the
    /// last `recurrence_span` videos or earlier in the same video. 0 = off
    /// (default).
    #[serde(default)]
    pub lookalike_prob: f64,
    /// Cosine similarity between a look-alike's prototype and the prototype
    /// of the person it resembles, in `[0, 1)`.
    #[serde(default = "default_lookalike_similarity")]
    pub lookalike_similarity: f32,
}

fn default_lookalike_similarity() -> f32 {
    0.7
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            videos: 200,
            persons_per_video: (3, 12),
            track_len: (6, 30),
            dim: 64,
            track_spread: 0.35,
            crop_noise: 0.45,
            fragment_prob: 0.2,
            switch_prob: 0.1,
            false_detection_prob: 0.03,
            recurrence: 0.3,
            recurrence_span: 8,
            video_shift: 0.0,
            lookalike_prob: 0.0,
            lookalike_similarity: default_lookalike_similarity(),
        }
    }
}

impl SyntheticConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DenoiseError::InvalidParameter(m));
        if self.dim == 0 || self.videos == 0 {
            return bad("synthetic corpus needs dim >= 1 and videos >= 1".into());
        }
        if self.persons_per_video.0 == 0 || self.persons_per_video.0 > self.persons_per_video.1 {
            return bad(format!(
                "persons_per_video {:?} must be 1 <= min <= max",
                self.persons_per_video
            ));
        }
        if self.track_len.0 < 2 || self.track_len.0 > self.track_len.1 {
            return bad(format!(
                "track_len {:?} must be 2 <= min <= max",
                self.track_len
            ));
        }
        for (n, p) in [
            ("fragment_prob", self.fragment_prob),
            ("switch_prob", self.switch_prob),
            ("false_detection_prob", self.false_detection_prob),
            ("recurrence", self.recurrence),
            ("lookalike_prob", self.lookalike_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{n} must be in [0, 1], got {p}"));
            }
        }
        for (n, v) in [
            ("track_spread", self.track_spread),
            ("crop_noise", self.crop_noise),
            ("video_shift", self.video_shift),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{n} must be a non-negative number, got {v}"));
            }
        }
        if !(0.0..1.0).contains(&self.lookalike_similarity) {
            return bad(format!(
                "lookalike_similarity must be in [0, 1), got {}",
                self.lookalike_similarity
            ));
        }
        Ok(())
    }
}

/// A unit-norm Gaussian direction of dimension `dim` from `rng`, times `norm`.
fn gaussian(rng: &mut ChaCha8Rng, dim: usize, norm: f32, out: &mut [f32]) {
    let mut i = 0;
    let mut sq = 0.0f32;
    while i < dim {
        // Box–Muller.
        let u1: f32 = rng.random::<f32>().max(1e-12);
        let u2: f32 = rng.random::<f32>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
        out[i] = r * c;
        sq += out[i] * out[i];
        if i + 1 < dim {
            out[i + 1] = r * s;
            sq += out[i + 1] * out[i + 1];
        }
        i += 2;
    }
    let k = if sq > 0.0 { norm / sq.sqrt() } else { 0.0 };
    for v in out.iter_mut().take(dim) {
        *v *= k;
    }
}

/// The prototype of `person` (deterministic in `(seed, person)`).
pub fn prototype(seed: u64, person: u64, dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ 0x9e37_79b9_7f4a_7c15 ^ person.wrapping_mul(0x2545_f491_4f6c_dd1d),
    );
    let mut v = vec![0.0; dim];
    gaussian(&mut rng, dim, 1.0, &mut v);
    v
}

/// The random stream of the harder-corpus knobs of video `v` (separate from
/// the base stream, so the knobs off reproduce the base corpus exactly).
fn knob_rng(seed: u64, v: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ v ^ 0x005e_ed0f_5417_u64)
}

/// The streaming generator: yields one video block and its truth at a time.
pub struct SyntheticCorpus {
    cfg: SyntheticConfig,
    video: usize,
    row: u64,
    next_person: u64,
    next_tracklet: u64,
    recent: std::collections::VecDeque<Vec<u64>>,
    /// Prototypes of look-alike persons (and of the persons they copy), by person.
    lookalikes: std::collections::HashMap<u64, Vec<f32>>,
}

impl SyntheticCorpus {
    /// A generator for `cfg`.
    pub fn new(cfg: SyntheticConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            video: 0,
            row: 0,
            next_person: 0,
            next_tracklet: 0,
            recent: Default::default(),
            lookalikes: Default::default(),
        })
    }

    /// The prototype of `person` `[dim]`: [`prototype`], or the look-alike's
    /// own prototype.
    fn prototype_of(&self, person: u64) -> Vec<f32> {
        match self.lookalikes.get(&person) {
            Some(p) => p.clone(),
            None => prototype(self.cfg.seed, person, self.cfg.dim),
        }
    }

    /// Makes `person` a look-alike of `model`: a unit prototype at cosine
    /// `lookalike_similarity` from `model`'s.
    fn make_lookalike(&mut self, person: u64, model: u64) {
        let c = self.cfg;
        let base = self.prototype_of(model);
        let fresh = prototype(c.seed, person, c.dim);
        // The part of `fresh` orthogonal to `base`, normalised.
        let along: f32 = base.iter().zip(&fresh).map(|(a, b)| a * b).sum();
        let mut ortho: Vec<f32> = fresh
            .iter()
            .zip(&base)
            .map(|(f, b)| f - along * b)
            .collect();
        crate::distance::l2_normalize(&mut ortho);
        let s = c.lookalike_similarity;
        let t = (1.0 - s * s).max(0.0).sqrt();
        let p: Vec<f32> = base
            .iter()
            .zip(&ortho)
            .map(|(b, o)| s * b + t * o)
            .collect();
        self.lookalikes.insert(model, base);
        self.lookalikes.insert(person, p);
    }

    /// The next video and the true person of each of its crops (`-1` false detection).
    pub fn next_video(&mut self) -> Option<(VideoBlock, Vec<i64>)> {
        let c = self.cfg;
        if self.video >= c.videos {
            return None;
        }
        let v = self.video as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed.wrapping_mul(0x1000_0000_01b3) ^ v);
        let n_persons = rng.random_range(c.persons_per_video.0..=c.persons_per_video.1);
        let pool: Vec<u64> = self.recent.iter().flatten().copied().collect();
        let mut knobs = knob_rng(c.seed, v);
        let mut persons = Vec::with_capacity(n_persons);
        for _ in 0..n_persons {
            let p = if !pool.is_empty() && rng.random_bool(c.recurrence) {
                pool[rng.random_range(0..pool.len())]
            } else {
                self.next_person += 1;
                let p = self.next_person - 1;
                if c.lookalike_prob > 0.0 && knobs.random_bool(c.lookalike_prob) {
                    let models = pool.len() + persons.len();
                    if models > 0 {
                        let k = knobs.random_range(0..models);
                        let model = if k < pool.len() {
                            pool[k]
                        } else {
                            persons[k - pool.len()]
                        };
                        self.make_lookalike(p, model);
                    }
                }
                p
            };
            if !persons.contains(&p) {
                persons.push(p);
            }
        }
        let mut shift = vec![0.0f32; c.dim];
        if c.video_shift > 0.0 {
            gaussian(&mut knobs, c.dim, c.video_shift, &mut shift);
        }
        // Tracks: (person, start frame, length).
        let mut tracks: Vec<(u64, u64, usize)> = persons
            .iter()
            .map(|&p| {
                let len = rng.random_range(c.track_len.0..=c.track_len.1);
                (p, rng.random_range(0..100u64), len)
            })
            .collect();
        tracks.sort_by_key(|t| t.0);
        // Tracklet labels per crop of each track, before switches.
        let mut crops: Vec<(u64, u64, i64, Vec<f32>)> = Vec::new(); // (tracklet, frame, truth, feature)
        let mut labels_per_track: Vec<(u64, u64)> = Vec::new(); // (first label, second label)
        for _ in &tracks {
            let a = self.next_tracklet;
            let b = if rng.random_bool(c.fragment_prob) {
                self.next_tracklet += 1;
                a + 1
            } else {
                a
            };
            self.next_tracklet += 1;
            labels_per_track.push((a, b));
        }
        let nt = tracks.len();
        let mut offset = vec![0.0f32; c.dim];
        let mut noise = vec![0.0f32; c.dim];
        for (t, &(person, start, len)) in tracks.iter().enumerate() {
            let proto = self.prototype_of(person);
            gaussian(&mut rng, c.dim, c.track_spread, &mut offset);
            let (a, mut b) = labels_per_track[t];
            if nt > 1 && rng.random_bool(c.switch_prob) {
                let other = (t + rng.random_range(1..nt)) % nt;
                b = labels_per_track[other].0;
            }
            for k in 0..len {
                let label = if k < len / 2 { a } else { b };
                let frame = start + k as u64;
                let mut f = vec![0.0f32; c.dim];
                let truth = if rng.random_bool(c.false_detection_prob) {
                    gaussian(&mut rng, c.dim, 1.0, &mut f);
                    -1
                } else {
                    gaussian(&mut rng, c.dim, c.crop_noise, &mut noise);
                    for d in 0..c.dim {
                        f[d] = proto[d] + offset[d] + noise[d];
                    }
                    person as i64
                };
                if c.video_shift > 0.0 {
                    crate::distance::add_into(&mut f, &shift);
                }
                crops.push((label, frame, truth, f));
            }
        }
        // Corpus order: tracklets ascending, crops by frame.
        crops.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
        let n = crops.len();
        let mut feats = Vec::with_capacity(n * c.dim);
        let mut tracklets = Vec::with_capacity(n);
        let mut frames = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for (l, f, t, x) in crops {
            tracklets.push(Some(l));
            frames.push(f);
            truth.push(t);
            feats.extend_from_slice(&x);
        }
        let block = VideoBlock {
            video: self.video as u32,
            first_row: self.row,
            tracklets,
            frames,
            features: Array2::from_shape_vec((n, c.dim), feats).ok()?,
        };
        self.recent.push_back(persons);
        if self.recent.len() > c.recurrence_span
            && let Some(gone) = self.recent.pop_front()
            && !self.lookalikes.is_empty()
        {
            // A person out of the recent pool never appears again.
            for p in gone {
                if !self.recent.iter().any(|v| v.contains(&p)) {
                    self.lookalikes.remove(&p);
                }
            }
        }
        self.video += 1;
        self.row += n as u64;
        Some((block, truth))
    }
}
