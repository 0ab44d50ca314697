//! The simulated multi-object tracker of the LUPerson-NL-style corpus.
//!
//! It turns the true tracks of one video into tracklets the way a real
//! detector + tracker does, with the noise LUPerson-NL's labels carry:
//! - **missed detections**: a sampled frame of a track yields no crop;
//! - **fragmentation**: the tracker loses a track and restarts it under a new
//!   tracklet id (one person, several pids);
//! - **identity switches**: two tracklets that are in view at the same frame
//!   swap persons from that frame on (one pid, several persons);
//! - **false detections**: crops of background (true person `-1`), either as
//!   short tracklets of their own or as a tracklet drifting onto background
//!   after its person left.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::invalid;
use super::video::TrueTrack;
use crate::error::Result;

/// The tracker's noise rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackerNoise {
    /// Probability that a sampled frame of a true track (other than its
    /// first) yields no detection.
    pub miss: f32,
    /// Probability per detection (other than a track's first) that the
    /// tracker starts a new tracklet there.
    pub fragment: f32,
    /// Probability per tracklet that it swaps persons with another tracklet
    /// in view at the same frame.
    pub switch: f32,
    /// False detections per true detection (`[0, 0.5]`).
    pub false_detections: f32,
}

impl Default for TrackerNoise {
    /// Rates that give a realistically noisy corpus: with the default
    /// [`super::VideoConfig`], roughly 10–20 % of the crops sit in a tracklet
    /// whose majority person is not theirs.
    fn default() -> Self {
        Self {
            miss: 0.05,
            fragment: 0.06,
            switch: 0.4,
            false_detections: 0.04,
        }
    }
}

impl TrackerNoise {
    /// No noise at all: tracklets = true tracks.
    pub fn none() -> Self {
        Self {
            miss: 0.0,
            fragment: 0.0,
            switch: 0.0,
            false_detections: 0.0,
        }
    }

    /// Checks that every rate is a probability and false detections are at most 0.5.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("miss", self.miss),
            ("fragment", self.fragment),
            ("switch", self.switch),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(format!(
                    "tracker {what} probability {v} is not in [0, 1]"
                )));
            }
        }
        if !(0.0..=0.5).contains(&self.false_detections) {
            return Err(invalid(format!(
                "tracker false-detection rate {} is not in [0, 0.5]",
                self.false_detections
            )));
        }
        Ok(())
    }
}

/// One detection after tracking.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedDet {
    /// Index of the true track (into the slice given to [`track_video`]'s caller), `None` for a false detection.
    pub track: Option<usize>,
    /// Frame index.
    pub frame: u64,
    /// Tracklet label, local to the video (`0..`; not necessarily contiguous).
    pub label: usize,
    /// Horizontal order key (sorts the detections of a frame into `obj` indices).
    pub x: f32,
}

/// Runs the tracker over one video's true tracks, given as
/// `(global track index, track)`. Frames stay below `video_frames`; `step`
/// is the sampling step of the tracks.
pub fn track_video<R: Rng + ?Sized>(
    tracks: &[(usize, &TrueTrack)],
    noise: &TrackerNoise,
    video_frames: u64,
    step: u64,
    rng: &mut R,
) -> Vec<TrackedDet> {
    let mut dets: Vec<TrackedDet> = Vec::new();
    let mut next_label = 0usize;
    for &(ti, t) in tracks {
        let mut label = next_label;
        next_label += 1;
        for (i, &f) in t.frames.iter().enumerate() {
            if i > 0 && rng.random_bool(f64::from(noise.miss)) {
                continue;
            }
            if i > 0 && rng.random_bool(f64::from(noise.fragment)) {
                label = next_label;
                next_label += 1;
            }
            dets.push(TrackedDet {
                track: Some(ti),
                frame: f,
                label,
                x: t.style.x,
            });
        }
    }

    // Identity switches.
    let n_labels = next_label;
    for la in 0..n_labels {
        if !rng.random_bool(f64::from(noise.switch)) {
            continue;
        }
        // (label, frame) -> track at that frame.
        let mut at: BTreeMap<(usize, u64), Option<usize>> = BTreeMap::new();
        let mut first: BTreeMap<usize, u64> = BTreeMap::new();
        for d in &dets {
            at.insert((d.label, d.frame), d.track);
            let e = first.entry(d.label).or_insert(d.frame);
            *e = (*e).min(d.frame);
        }
        let Some(&first_a) = first.get(&la) else {
            continue;
        };
        let mut candidates: Vec<(usize, u64)> = Vec::new();
        for (&(l, f), &track) in at.range((la, 0)..=(la, u64::MAX)) {
            debug_assert_eq!(l, la);
            if f <= first_a {
                continue;
            }
            for (&lb, &first_b) in &first {
                if lb == la || f <= first_b {
                    continue;
                }
                if let Some(&other) = at.get(&(lb, f))
                    && other != track
                {
                    candidates.push((lb, f));
                }
            }
        }
        if candidates.is_empty() {
            continue;
        }
        let (lb, t) = candidates[rng.random_range(0..candidates.len())];
        for d in dets.iter_mut().filter(|d| d.frame >= t) {
            if d.label == la {
                d.label = lb;
            } else if d.label == lb {
                d.label = la;
            }
        }
    }

    // False detections.
    let n_true = dets.len();
    for i in 0..n_true {
        if !rng.random_bool(f64::from(noise.false_detections)) {
            continue;
        }
        let (f, l, x) = (dets[i].frame, dets[i].label, dets[i].x);
        let drift = rng.random_bool(0.5);
        let last = dets
            .iter()
            .filter(|d| d.label == l)
            .map(|d| d.frame)
            .max()
            .unwrap_or(f);
        if drift && last + step < video_frames {
            dets.push(TrackedDet {
                track: None,
                frame: last + step,
                label: l,
                x,
            });
        } else {
            let label = next_label;
            next_label += 1;
            let x = rng.random::<f32>();
            for j in 0..rng.random_range(1..=3u64) {
                let fr = f + j * step;
                if fr >= video_frames {
                    break;
                }
                dets.push(TrackedDet {
                    track: None,
                    frame: fr,
                    label,
                    x,
                });
            }
        }
    }
    dets
}

/// How noisy a tracked corpus is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseSummary {
    /// Crops.
    pub images: usize,
    /// Tracklets (distinct pids).
    pub tracklets: usize,
    /// True tracks (a person's passage through a video) with at least one crop.
    pub true_tracks: usize,
    /// Distinct true persons with at least one crop.
    pub persons: usize,
    /// Persons seen in more than one video.
    pub persons_in_several_videos: usize,
    /// Crops that show no person (true person `-1`).
    pub false_detections: usize,
    /// Tracklets holding crops of more than one true person (`-1` counts as one).
    pub mixed_tracklets: usize,
    /// Fraction of crops whose true person differs from the majority person of their tracklet.
    pub mislabeled_fraction: f64,
    /// Tracklets per true track (fragmentation; 1 = none).
    pub tracklets_per_track: f64,
}

/// One crop as the summary needs it.
#[derive(Debug, Clone, Copy)]
pub struct LabeledCrop {
    /// True person, `-1` for none.
    pub person: i64,
    /// Global tracklet pid.
    pub tracklet: u64,
    /// Video index.
    pub video: u32,
    /// True track index, `None` for a false detection.
    pub track: Option<usize>,
}

/// Computes the [`NoiseSummary`] of a corpus.
pub fn summarize(crops: &[LabeledCrop]) -> NoiseSummary {
    let mut per_tracklet: BTreeMap<u64, BTreeMap<i64, usize>> = BTreeMap::new();
    let mut videos_of: BTreeMap<i64, BTreeSet<u32>> = BTreeMap::new();
    let mut tracks: BTreeSet<usize> = BTreeSet::new();
    for c in crops {
        *per_tracklet
            .entry(c.tracklet)
            .or_default()
            .entry(c.person)
            .or_default() += 1;
        if c.person >= 0 {
            videos_of.entry(c.person).or_default().insert(c.video);
        }
        if let Some(t) = c.track {
            tracks.insert(t);
        }
    }
    let mut majority: BTreeMap<u64, i64> = BTreeMap::new();
    let mut mixed = 0;
    for (&t, counts) in &per_tracklet {
        if counts.len() > 1 {
            mixed += 1;
        }
        // Largest count; ties go to the smallest person id (BTreeMap order, first max kept).
        let mut best = (i64::MIN, 0usize);
        for (&p, &n) in counts {
            if n > best.1 {
                best = (p, n);
            }
        }
        majority.insert(t, best.0);
    }
    let mislabeled = crops
        .iter()
        .filter(|c| c.person < 0 || majority.get(&c.tracklet) != Some(&c.person))
        .count();
    let n = crops.len();
    NoiseSummary {
        images: n,
        tracklets: per_tracklet.len(),
        true_tracks: tracks.len(),
        persons: videos_of.len(),
        persons_in_several_videos: videos_of.values().filter(|v| v.len() > 1).count(),
        false_detections: crops.iter().filter(|c| c.person < 0).count(),
        mixed_tracklets: mixed,
        mislabeled_fraction: if n == 0 {
            0.0
        } else {
            mislabeled as f64 / n as f64
        },
        tracklets_per_track: if tracks.is_empty() {
            0.0
        } else {
            per_tracklet.len() as f64 / tracks.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{VideoConfig, VideoWorld};
    use crate::{Layout, WorldConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn world() -> VideoWorld {
        VideoWorld::simulate(
            Layout::LupersonNl,
            &WorldConfig::default(),
            &VideoConfig::default(),
        )
    }

    fn tracks_of(w: &VideoWorld, v: u32) -> Vec<(usize, &TrueTrack)> {
        w.tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.video == v)
            .collect()
    }

    #[test]
    fn no_noise_gives_true_tracks() {
        let w = world();
        let tr = tracks_of(&w, 0);
        let dets = track_video(
            &tr,
            &TrackerNoise::none(),
            400,
            5,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        let total: usize = tr.iter().map(|(_, t)| t.frames.len()).sum();
        assert_eq!(dets.len(), total);
        // One label per track, and each label holds exactly one track.
        let mut by_label: BTreeMap<usize, BTreeSet<Option<usize>>> = BTreeMap::new();
        for d in &dets {
            by_label.entry(d.label).or_default().insert(d.track);
        }
        assert_eq!(by_label.len(), tr.len());
        assert!(by_label.values().all(|s| s.len() == 1));
    }

    #[test]
    fn switches_mix_tracklets_without_duplicate_frames() {
        let w = world();
        let noise = TrackerNoise {
            switch: 1.0,
            ..TrackerNoise::none()
        };
        let mut mixed = 0;
        for v in 0..w.videos.len() as u32 {
            let tr = tracks_of(&w, v);
            let dets = track_video(&tr, &noise, 400, 5, &mut ChaCha8Rng::seed_from_u64(2));
            let mut seen = BTreeSet::new();
            let mut by_label: BTreeMap<usize, BTreeSet<Option<usize>>> = BTreeMap::new();
            for d in &dets {
                assert!(
                    seen.insert((d.label, d.frame)),
                    "a tracklet has two crops in one frame"
                );
                by_label.entry(d.label).or_default().insert(d.track);
            }
            mixed += by_label.values().filter(|s| s.len() > 1).count();
        }
        assert!(mixed > 0);
    }

    #[test]
    fn summary_counts_minorities() {
        let c = |person, tracklet, track| LabeledCrop {
            person,
            tracklet,
            video: 0,
            track,
        };
        let crops = [
            c(1, 0, Some(0)),
            c(1, 0, Some(0)),
            c(2, 0, Some(1)),
            c(-1, 1, None),
            c(2, 2, Some(1)),
        ];
        let s = summarize(&crops);
        assert_eq!(s.tracklets, 3);
        assert_eq!(s.mixed_tracklets, 1);
        assert_eq!(s.false_detections, 1);
        // The person-2 crop in tracklet 0 and the false detection.
        assert!((s.mislabeled_fraction - 2.0 / 5.0).abs() < 1e-12);
        assert!((s.tracklets_per_track - 1.5).abs() < 1e-12);
    }
}
