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

#![warn(missing_docs)]

pub mod backend;
#[cfg(feature = "cli")]
pub mod cli;
pub mod demo;
pub mod error;
pub mod study;

pub use backend::{Backend, BackendError};
pub use burn;
pub use error::PipelineError;
pub use reid_backbones as backbones;
pub use reid_data as data;
pub use reid_denoise as denoise;
pub use reid_losses as losses;
pub use reid_metrics as metrics;
pub use reid_train as train;
pub use reid_viz as viz;
