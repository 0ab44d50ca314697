//! Pre-training views: the random augmentations of LUPerson's MoCo v2,
//! LUPerson-NL's PNL and CION's multi-crop self-distillation, built from
//! deterministic image ops that equal Pillow / torchvision-on-PIL byte for
//! byte.
//!
//! - [`color`]: grayscale, brightness / contrast / saturation / hue,
//!   solarize, [`color::ColorJitter`];
//! - [`blur`]: Pillow's `GaussianBlur` (three extended box passes);
//! - [`mod@resized_crop`]: crop + Pillow resize, torchvision's
//!   `RandomResizedCrop` sampler;
//! - [`pipeline`]: [`ViewPipeline`], one random view (crop → flip → jitter →
//!   grayscale → blur → solarize → normalise → erase), with its parameters
//!   drawn separately ([`ViewParams`]) so a draw can be replayed;
//! - [`moco`]: [`TwoCrops`] (LUPerson MoCo) and [`PnlViews`] (PNL weak +
//!   strong);
//! - [`multicrop`]: [`MultiCrop`] (CION / DINO: 2 global + N local crops).
//!
//! Randomness: every draw takes the caller's `rand::Rng`. The algorithms are
//! torchvision's (same distributions, same rounding), not its random stream.

pub mod blur;
pub mod color;
pub mod moco;
pub mod multicrop;
pub mod pipeline;
pub mod resized_crop;

pub use blur::{RandomGaussianBlur, gaussian_blur};
pub use color::{ColorJitter, JitterParams};
pub use moco::{LupView, PnlViews, TwoCrops};
pub use multicrop::MultiCrop;
pub use pipeline::{ViewParams, ViewPipeline};
pub use resized_crop::{CropBox, RandomResizedCrop, resized_crop};
