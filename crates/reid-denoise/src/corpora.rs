//! Named difficulty settings of the feature-level synthetic corpus
//! ([`crate::synthetic`]), from easy to features that barely separate
//! persons, for tests, the sweep example and the docs.
//!
//! All share one shape, close to a LUPerson-NL city: 64-d features, 10–40
//! persons per video, tracks of 6–40 crops (≈ 570 crops per video), half of
//! a video's persons seen in one of the 16 videos before. Per-crop noise,
//! per-track offsets and the per-video shift are norms relative to a
//! person's unit appearance.

use serde::{Deserialize, Serialize};

use crate::synthetic::SyntheticConfig;

/// A difficulty setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    /// The shape above with the base noise (offset 0.35, crop noise 0.45)
    /// and tracker errors (20 % fragmented tracks, 10 % identity switches,
    /// 3 % false detections); no per-video shift.
    Base,
    /// [`Difficulty::Base`] plus a per-video appearance shift of norm 1 — as
    /// large as a person's appearance.
    Shift,
    /// [`Difficulty::Shift`] where a person's tracks differ more than its
    /// crops do (per-track pose/camera offset 0.7, crop noise 0.3): the
    /// within-tracklet spread says little about a person across videos.
    Pose,
    /// [`Difficulty::Shift`] with more pose and crop noise (offset 0.6, crop
    /// noise 0.8) and a worse tracker (30 % fragmented, 15 % switches, 5 %
    /// false detections).
    Noisy,
    /// [`Difficulty::Shift`] where 30 % of new persons are look-alikes of a
    /// recent person (prototype cosine 0.5).
    LookAlikes,
    /// [`Difficulty::Noisy`] with 30 % look-alikes at cosine 0.8: a
    /// look-alike is about as close as the person itself seen in another
    /// video.
    Hard,
    /// Features that barely separate persons: crop noise 2.5 times a
    /// person's appearance, shift 0.5.
    Weak,
}

impl Difficulty {
    /// Every setting, easiest first.
    pub const ALL: [Difficulty; 7] = [
        Difficulty::Base,
        Difficulty::Shift,
        Difficulty::Pose,
        Difficulty::Noisy,
        Difficulty::LookAlikes,
        Difficulty::Hard,
        Difficulty::Weak,
    ];

    /// The setting's name (as in serde: `"base"`, `"look_alikes"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Base => "base",
            Difficulty::Shift => "shift",
            Difficulty::Pose => "pose",
            Difficulty::Noisy => "noisy",
            Difficulty::LookAlikes => "look_alikes",
            Difficulty::Hard => "hard",
            Difficulty::Weak => "weak",
        }
    }

    /// Parses a name of [`Difficulty::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The corpus of `videos` videos generated from `seed`.
    pub fn config(self, seed: u64, videos: usize) -> SyntheticConfig {
        let base = SyntheticConfig {
            seed,
            videos,
            persons_per_video: (10, 40),
            track_len: (6, 40),
            dim: 64,
            recurrence: 0.5,
            recurrence_span: 16,
            ..SyntheticConfig::default()
        };
        let shift = SyntheticConfig {
            video_shift: 1.0,
            ..base
        };
        let noisy = SyntheticConfig {
            track_spread: 0.6,
            crop_noise: 0.8,
            fragment_prob: 0.3,
            switch_prob: 0.15,
            false_detection_prob: 0.05,
            ..shift
        };
        match self {
            Difficulty::Base => base,
            Difficulty::Shift => shift,
            Difficulty::Pose => SyntheticConfig {
                track_spread: 0.7,
                crop_noise: 0.3,
                ..shift
            },
            Difficulty::Noisy => noisy,
            Difficulty::LookAlikes => SyntheticConfig {
                lookalike_prob: 0.3,
                lookalike_similarity: 0.5,
                ..shift
            },
            Difficulty::Hard => SyntheticConfig {
                lookalike_prob: 0.3,
                lookalike_similarity: 0.8,
                ..noisy
            },
            Difficulty::Weak => SyntheticConfig {
                video_shift: 0.5,
                crop_noise: 2.5,
                track_spread: 0.3,
                ..base
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_configs_are_valid() {
        for d in Difficulty::ALL {
            assert_eq!(Difficulty::from_name(d.name()), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
            d.config(0, 3).validate().unwrap();
        }
        assert_eq!(Difficulty::from_name("extreme"), None);
    }
}
