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
pub mod synthetic;
pub mod union_find;

pub use block::VideoBlock;
pub use calibrate::{CalibrationConfig, CalibrationReport, CalibrationStatus};
pub use distance::Metric;
pub use error::{DenoiseError, Result};
pub use level1::Level1Config;
pub use level2::Level2Config;
pub use level3::Level3Config;
pub use normalize::{NormalizationConfig, VideoNormalization};
pub use pipeline::{DenoiseConfig, DenoiseOutput, DenoiseReport, LevelLabels, ThresholdScale, run};
pub use quality::{Quality, REMOVED, score};
