//! # reid-data
//!
//! Everything between images on disk and tensors:
//! - [`record`]: the common data model (`ImageRecord`, `Splits`, statistics);
//! - [`synth`]: a seeded synthetic ReID world that writes Market-1501-,
//!   DukeMTMC-reID-, MSMT17-, CUHK03-NP-, LUPerson- and LUPerson-NL-style
//!   datasets with a ground-truth sidecar;
//! - [`datasets`]: parsers of the public dataset layouts;
//! - [`transform`] and `batch`: image transforms and the burn batcher;
//! - `loader`: the training loader (burn `Dataset` + `Batcher`, parallel
//!   decode + augmentation, corrupt-image policy, bounded prefetch);
//! - [`views`]: Pillow-exact pre-training views (LUPerson MoCo, PNL, CION
//!   multi-crop) and [`sampler_identity`]: CION's identity sampler.
//!
//! `batch` and `loader` need the cargo feature `burn` (on by default);
//! without it the crate does not depend on burn.
//!
//! Errors are [`DataError`]; every one names the file or directory involved.

#![warn(missing_docs)]

pub mod augment;
#[cfg(feature = "burn")]
pub mod batch;
pub mod datasets;
pub mod error;
#[cfg(feature = "burn")]
pub mod loader;
pub mod normalize;
pub mod record;
pub mod sampler;
pub mod sampler_identity;
pub mod synth;
pub mod transform;
pub mod views;

pub use error::{DataError, Result};
pub use record::{CorpusStats, DatasetStats, ImageLocation, ImageRecord, SplitStats, Splits};
