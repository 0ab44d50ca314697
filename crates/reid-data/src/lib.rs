//! # reid-data
//!
//! Everything between images on disk and tensors:
//! - [`record`]: the common data model (`ImageRecord`, `Splits`, statistics);
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
//!
//! # Example
//!
//! Write a tiny synthetic Market-1501 (seeded, with a ground-truth sidecar;
//! the `reid-synth` crate) into a temporary folder, then read it back with
//! the Market-1501 parser, as a real download would be read:
//!
//! ```
//! use reid_data::datasets::{ImageDatasetOptions, market1501};
//! use reid_synth::{Market1501Config, Span, WorldConfig, write_market1501};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let out = tempfile::tempdir()?;
//!     let world = WorldConfig::default().with_height(32).with_width(16);
//!     let sizes = Market1501Config::default()
//!         .with_train_ids(4)
//!         .with_test_ids(3)
//!         .with_cameras(2)
//!         .with_cams_per_id(Span::new(2, 2))
//!         .with_images_per_cam(Span::new(1, 1))
//!         .with_junk(0)
//!         .with_distractors(0);
//!     let report = write_market1501(out.path(), &world, &sizes)?;
//!
//!     let parsed = market1501::parse(out.path(), &ImageDatasetOptions::default())?;
//!     assert_eq!(parsed.num_train_ids, 4); // relabelled to 0..4
//!     assert_eq!(Some(parsed.splits.stats()), report.dataset_stats());
//!     let first = &parsed.splits.train[0];
//!     assert!(first.pid < 4 && first.camid < 2);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod augment;
#[cfg(feature = "burn")]
pub mod batch;
pub mod datasets;
pub mod error;
pub mod fused;
#[cfg(feature = "burn")]
pub mod loader;
pub mod normalize;
pub mod record;
pub mod sampler;
pub mod sampler_identity;
pub mod transform;
pub mod views;

pub use error::{DataError, Result};
pub use record::{CorpusStats, DatasetStats, ImageLocation, ImageRecord, SplitStats, Splits};
