//! # reid-losses
//!
//! The objectives of ReID fine-tuning as burn functions that run on any
//! device, with or without autodiff (`Device::flex().autodiff()` for training).
//!
//! Implemented (value-and-gradient parity with PyTorch references in
//! `tests/parity.rs`):
//! - [`cross_entropy`]: label smoothing in the torchreid/BoT and fast-reid conventions;
//! - [`triplet`]: batch-hard or softmax-weighted triplet (Euclidean / cosine,
//!   margin or soft margin, optional feature normalisation);
//! - [`center`]: BoT's center loss;
//! - [`circle`]: circle-softmax classifier logits and the pair-wise circle loss.
//!
//! Planned (issue 7): MoCo/InfoNCE (LUPerson),
//! PNL (LUPerson-NL) and CION objectives. See `docs/losses.md`.

pub mod center;
pub mod circle;
pub mod cross_entropy;
mod error;
pub mod triplet;
mod validate;

pub use center::{CENTER_LOSS_WEIGHT, center_loss};
pub use circle::{circle_softmax_logits, pairwise_circle_loss};
pub use cross_entropy::{CrossEntropyConfig, SmoothingConvention, cross_entropy_label_smooth};
pub use error::LossError;
pub use triplet::{Mining, TripletConfig, TripletDistance, triplet_loss};
