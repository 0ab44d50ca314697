//! # reid-backbones
//!
//! Backbones and ReID heads as burn modules. In burn 0.22 modules carry no
//! backend type: every constructor takes a `&Device` and the device chosen at
//! run time (flex, wgpu, cuda, with or without autodiff) decides where the
//! computation happens.
//!
//! - [`backbone`]: the [`Backbone`] trait every architecture implements
//!   (image batch `[batch, 3, height, width]` → feature map
//!   `[batch, channels, h, w]`);
//! - [`resnet`]: ResNet18/34/50/101/152 in torchvision's layout, with the ReID
//!   options (last stride, width);
//! - [`pool`]: global pooling (average, max, GeM) turning a feature map into
//!   an embedding `[batch, channels]`;
//! - [`registry`]: architectures by name (`"resnet50"`), for CLIs and configs.
//!
//! Checkpoint import, IBN variants, BNNeck/MGN heads and the rest of ReIDZoo
//! are the subject of later modules (see `docs/architecture.md`).

pub mod backbone;
pub mod error;
pub mod pool;
pub mod registry;
pub mod resnet;

pub use backbone::Backbone;
pub use error::BackboneError;
pub use pool::{GemPool, GlobalPool};
pub use registry::{Arch, build_backbone};
pub use resnet::{ResNet, ResNetConfig, ResNetDepth};
