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
//! - [`norm`]: BatchNorm / InstanceNorm / IBN-a normalisation slots;
//! - [`head`]: the BNNeck embedding head (fast-reid and TransReID variants)
//!   and linear / circle-softmax classifiers; [`model`]: backbone + head;
//! - [`import`]: loading torchvision, LUPerson, CION and fast-reid
//!   checkpoints (`.pth` or safetensors) with strict key checking, and
//!   exporting to safetensors with PyTorch names;
//! - [`registry`]: architectures by name (`"resnet50"`), for CLIs and configs.
//!
//! - [`mgn`]: fast-reid's MGN (three branches, eight heads, extra BN).
//!
//! The non-ResNet ReIDZoo backbones are not implemented yet (see
//! `docs/backbones.md`).

pub mod backbone;
pub mod error;
pub mod head;
pub mod import;
pub mod mgn;
pub mod model;
pub mod norm;
pub mod pool;
pub mod registry;
pub mod resnet;

pub use backbone::Backbone;
pub use error::{BackboneError, ImportError, KeyMismatch};
pub use head::{ClassifierKind, EmbeddingHead, EmbeddingHeadConfig, HeadPool, NeckFeat};
pub use import::{
    ImportOptions, ImportReport, Layout, WeightsFormat, load_backbone, load_mgn, load_reid_model,
};
pub use mgn::{Mgn, MgnConfig};
pub use model::ReidModel;
pub use pool::{GemPool, GlobalPool};
pub use registry::{Arch, build_backbone};
pub use resnet::{FusedResNet, IbnMode, ResNet, ResNetConfig, ResNetDepth, StemPool};
