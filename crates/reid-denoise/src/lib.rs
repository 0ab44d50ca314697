//! # reid-denoise
//!
//! CION's progressive multi-level denoising of noisy tracklet labels
//! (videos → tracklets → identities): a first public implementation, built
//! from the paper's description (the authors released no code; the choices
//! made where the paper is silent are in `docs/denoise.md`).
//!
//! - [`normalize`]: per-video feature normalisation (mean-centring,
//!   whitening) against camera/light shifts;
//! - [`level1`]: single-tracklet denoising (intra-identity consistency: prune
//!   crops far from the tracklet centroid until its radius is small enough);
//! - [`level2`]: single-video denoising (re-assign pruned crops, merge
//!   tracklets of one person, never two crops of one frame in an identity);
//! - [`stitch`]: level 2's temporal stitching of a fragmented track;
//! - [`level3`]: cross-video linking with a Sliding Range of videos and
//!   Linking Relations joined by union-find;
//! - [`calibrate`], [`decoy`]: merge and link thresholds for a target
//!   precision, from pairs the corpus labels itself (two crops of one frame
//!   are two persons);
//! - [`pipeline`]: the three levels as one streaming, parallel pass;
//! - [`quality`]: pairwise precision/recall, purity against ground truth;
//! - [`annos`]: CION-AL style `annos.json` output;
//! - [`source`], [`npy`]: corpora with in-memory or streamed `.npy` features;
//! - [`synthetic`]: a feature-level synthetic corpus with truth (tests,
//!   benchmark), and [`corpora`]: its named difficulty settings.
//!
//! Features are `[crops, dim]` `f32` rows in corpus order; no burn dependency.
//!
//! # Example
//!
//! Two videos of a tracker's output: in the first, persons 0 and 1 are
//! tracked as tracklets 0 and 1; in the second, person 0 comes back
//! (tracklet 0 again, but the tracker's labels are per video) next to
//! person 2. Denoising keeps the three persons apart and links person 0
//! across the videos, which no tracker label says. (Two videos are too few
//! for the target-precision calibration, so the default thresholds apply,
//! as multiples of the spread measured on the data; see
//! [`CalibrationReport`].)
//!
//! ```
//! use ndarray::Array2;
//! use reid_denoise::{DenoiseConfig, VideoBlock, run, score};
//!
//! /// Four crops (frames 0–3) of each of two persons: the person's direction
//! /// in a 4-d feature space plus per-crop noise.
//! fn video(video: u32, first_row: u64, persons: [usize; 2]) -> VideoBlock {
//!     let features = Array2::from_shape_fn((8, 4), |(row, col)| {
//!         let (person, crop) = (persons[row / 4], row % 4);
//!         let noise = 0.3 * ((row * 7 + col * 3 + crop) as f32).sin();
//!         if col == person { 1.0 + noise } else { noise }
//!     });
//!     VideoBlock {
//!         video,
//!         first_row,
//!         tracklets: [0, 0, 0, 0, 1, 1, 1, 1].map(Some).to_vec(),
//!         frames: vec![0, 1, 2, 3, 0, 1, 2, 3],
//!         features,
//!     }
//! }
//!
//! fn main() -> Result<(), reid_denoise::DenoiseError> {
//!     let corpus = vec![video(0, 0, [0, 1]), video(1, 8, [0, 2])];
//!     let out = run(&DenoiseConfig::default(), corpus.into_iter().map(Ok), |_| {})?;
//!
//!     assert_eq!(out.labels.len(), 16); // one label per crop, in corpus order
//!     assert_eq!(out.labels[..4], out.labels[8..12]); // person 0 in both videos
//!     assert_eq!(out.identities, 3);
//!     assert_eq!(out.report.level3.links, 1);
//!     let truth: Vec<i64> = [0, 1, 0, 2].iter().flat_map(|&p| [p; 4]).collect();
//!     let quality = score(&out.labels, &truth)?;
//!     assert_eq!(quality.precision, 1.0);
//!     assert_eq!(quality.recall, 1.0);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod annos;
pub mod block;
pub mod calibrate;
pub mod corpora;
pub mod decoy;
pub mod distance;
mod error;
pub mod group;
pub mod level1;
pub mod level2;
pub mod level3;
pub mod normalize;
pub mod npy;
pub mod pipeline;
pub mod quality;
pub mod source;
pub mod stitch;
pub mod synthetic;
pub mod union_find;

pub use block::VideoBlock;
pub use calibrate::{CalibrationConfig, CalibrationReport, CalibrationStatus};
pub use distance::{FeatureDistance, Metric};
pub use error::{DenoiseError, Result};
pub use level1::Level1Config;
pub use level2::Level2Config;
pub use level3::Level3Config;
pub use normalize::{NormalizationConfig, VideoNormalization};
pub use pipeline::{DenoiseConfig, DenoiseOutput, DenoiseReport, LevelLabels, ThresholdScale, run};
pub use quality::{Quality, REMOVED, score};
