//! # reid
//!
//! Person re-identification on [burn](https://burn.dev): the facade crate that
//! re-exports the workspace's libraries and picks the compute backends.
//!
//! | crate | what it holds |
//! | --- | --- |
//! | [`data`] | dataset parsers, records, samplers, transforms, batching, the synthetic ReID world |
//! | [`backbones`] | ResNet family and ReIDZoo backbones, heads, pooling, checkpoint import |
//! | [`losses`] | ReID, MoCo, PNL and CION objectives |
//! | [`denoise`] | CION's progressive multi-level denoising of noisy tracklets |
//! | [`metrics`] | distances, CMC / mAP / mINP, re-ranking (no burn dependency) |
//! | [`train`] | pre-training and fine-tuning recipes |
//! | [`study`] | the pre-training study: every method under one compute budget, then BoT, over seeds |
//!
//! Backends are cargo features of this crate: `flex` (default, pure-Rust CPU),
//! `wgpu` and `cuda`. The device is chosen at run time with [`backend::Backend`].
//!
//! # Example
//!
//! The crates used together through the facade: a device from a backend
//! name, a (tiny, randomly initialised) ResNet18 from [`backbones`],
//! embeddings from [`train`]'s extractor, and an evaluation by [`metrics`].
//! The gallery's first three crops are the queries again, seen by another
//! camera, so each query finds itself at Rank-1:
//!
//! ```
//! use ndarray::{Array4, s};
//! use reid::Backend;
//! use reid::backbones::{GlobalPool, ResNetConfig, ResNetDepth};
//! use reid::metrics::{Distance, EvalConfig, Labels, evaluate_features};
//! use reid::train::extract_features_from_array;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let backend: Backend = "flex".parse()?; // or "cuda", "wgpu" when compiled in
//!     let device = backend.device()?;
//!     let model = ResNetConfig::new()
//!         .with_depth(ResNetDepth::R18)
//!         .with_base_width(4)
//!         .init(&device)?;
//!
//!     // Five normalised 64×32 gallery crops, [n, 3, height, width].
//!     let gallery = Array4::from_shape_fn((5, 3, 64, 32), |(n, c, y, x)| {
//!         ((n * 131 + c * 17 + y * 5 + x) as f32 * 0.37).sin()
//!     });
//!     let query = gallery.slice(s![..3, .., .., ..]).to_owned();
//!     let embed = |images: &Array4<f32>| {
//!         extract_features_from_array(&model, images.view(), 8, GlobalPool::Avg, true, &device)
//!     };
//!     let (q, g) = (embed(&query)?, embed(&gallery)?);
//!     assert_eq!(q.dim(), (3, 32)); // [n, channels]
//!
//!     let query_ids = Labels::new(vec![0, 1, 2], vec![0; 3])?;
//!     let gallery_ids = Labels::new(vec![0, 1, 2, 3, 4], vec![1; 5])?;
//!     let cfg = EvalConfig::default();
//!     let result = evaluate_features(q.view(), g.view(), &query_ids, &gallery_ids, Distance::Cosine, false, &cfg)?;
//!     assert_eq!(result.rank(1), Some(1.0));
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod allocator;
pub mod backend;
#[cfg(feature = "cli")]
pub mod cli;
pub mod demo;
pub mod error;
mod gap_eval;
pub mod study;

pub use backend::{Backend, BackendError};
pub use burn;
pub use error::PipelineError;
pub use reid_backbones as backbones;
pub use reid_data as data;
pub use reid_denoise as denoise;
pub use reid_infer as infer;
pub use reid_losses as losses;
pub use reid_metrics as metrics;
pub use reid_synth as synth;
pub use reid_train as train;
pub use reid_viz as viz;
