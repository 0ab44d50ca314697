//! # reid-train
//!
//! Composes the other crates into the loops a researcher runs:
//! - [`extract`]: embeddings of a list of images with any backbone and pooling
//!   (batched, in inference mode), as a plain `ndarray` matrix for
//!   `reid-metrics`;
//!
//! and, as they land, the training recipes (LUPerson MoCo v2, LUPerson-NL
//! PNL, CION pre-training; BoT and MGN fine-tuning), schedules, EMA,
//! checkpoints with exact resume, progress and metrics logs.

pub mod error;
pub mod extract;

pub use error::TrainError;
pub use extract::{ExtractOptions, extract_features, extract_features_from_array};
