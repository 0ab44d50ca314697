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
//! - [`precision`]: mixed precision ([`Precision`]: a backbone computing in
//!   `f16`/`bf16` with `f32` master weights, heads and losses);
//! - [`registry`]: architectures by name (`"resnet50"`), for CLIs and
//!   configs, and the one name parser of the families' presets
//!   ([`registry::preset_by_name`]).
//! - [`family`]: the ReIDZoo families ([`ZooFamily`]) and the parameter
//!   count every family reports ([`family::trainable_parameters`]).
//! - [`layers`]: what the families share: stochastic depth, the padded
//!   convolution, the transformer blocks' attention and MLP.
//!
//! - [`mgn`]: fast-reid's MGN (three branches, eight heads, extra BN).
//! - [`convnext`]: ConvNeXt T/S/B (official / CION layout), with CION's
//!   `LayerNorm(GAP)` embedding; loaded by [`import::load_convnext`].
//! - [`ghostnet`]: GhostNet 0.5×/1.0×/1.3× (Huawei / timm layout), with
//!   CION's GAP → `conv_head` → ReLU embedding; [`import::load_ghostnet`].
//! - [`vit`]: ViT-T/S/B in TransReID-SSL's "ICS" variant (IBN conv stem),
//!   CLS-token embedding, bicubic `pos_embed` resizing; loaded by
//!   [`import::load_vit`].
//! - [`swin`]: Swin-T/S/B, Microsoft's detection-style backbone (window 8,
//!   padded windows) as CION uses it, GAP of `norm3` as the embedding;
//!   loaded by [`import::load_swin`] (official / CION / timm names).
//! - [`fastvit`]: FastViT S12, SA12 and SA24 (Apple ml-fastvit, training form)
//!   with `GAP(conv_exp)` 1024-d embedding and structural
//!   re-parameterisation ([`FastVit::reparameterize`]); loaded by
//!   [`import::load_fastvit`] (official / CION / timm names).
//!
//! - [`edgenext`]: EdgeNeXt XS/S/B (official mmaaz60 / CION layout), with
//!   CION's `LayerNorm(GAP)` embedding; loaded by [`import::load_edgenext`].
//!
//! - [`repvit`]: RepViT M0.9/M1.0/M1.5 (THU-MIG, training form; timm's or
//!   CION's squeeze-and-excitation, [`RepVitSeKind`]) with GAP embedding
//!   and [`RepVit::reparameterize`]; loaded by [`import::load_repvit`].
//! - [`zoo`]: every ReIDZoo model by CION's name ([`ZooModel`]: build,
//!   strict load, CION embedding through [`Embed`], inference form,
//!   table parameter count, [`ZooModel::from_scratch`]).
//! - [`init`]: seeded from-scratch initialisation of each family as CION's
//!   model code initialises it ([`init::init_from_scratch`]).
//!
//! - [`volo`]: VOLO D1/D2/D3 (sail-sg / CION layout: outlookers,
//!   transformers, class attention), class-token embedding, DINO-style
//!   `pos_embed` resizing; checked against timm / CION (≤ 6.3e-7 relative);
//!   loaded by [`import::load_volo`].
//!
//! # Example
//!
//! A ResNet18 trunk with the ReID last stride of 1 (a base width of 4
//! instead of the published 64, to keep the example fast) turns a batch of
//! person crops into a feature map and a pooled embedding:
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use reid_backbones::{Backbone, ResNetConfig, ResNetDepth};
//!
//! fn main() -> Result<(), reid_backbones::BackboneError> {
//!     let device = Device::flex();
//!     let resnet = ResNetConfig::new()
//!         .with_depth(ResNetDepth::R18)
//!         .with_base_width(4)
//!         .init(&device)?;
//!
//!     // One normalised 64×32 crop, [batch, 3, height, width].
//!     let images = Tensor::<4>::random([1, 3, 64, 32], Distribution::Normal(0.0, 1.0), &device);
//!     let map = resnet.forward_features(images.clone());
//!     assert_eq!(resnet.out_channels(), 32); // 8 × base width (basic blocks)
//!     assert_eq!(resnet.output_stride(), 16); // last stride 1
//!     assert_eq!(map.dims(), [1, 32, 4, 2]);
//!
//!     let embedding = resnet.forward_pooled(images); // global average pooling
//!     assert_eq!(embedding.dims(), [1, 32]);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod backbone;
pub mod convnext;
pub mod edgenext;
pub mod error;
pub mod family;
pub mod fastvit;
pub mod ghostnet;
pub mod head;
pub mod import;
pub mod init;
pub mod layers;
pub mod mgn;
pub mod model;
pub mod norm;
pub mod pool;
pub mod precision;
pub mod registry;
pub mod repvit;
pub mod resnet;
pub mod swin;
pub mod visit;
pub mod vit;
pub mod volo;
pub mod zoo;

#[cfg(test)]
mod testing;

pub use backbone::{Backbone, Embed, TrainBackbone};
pub use convnext::{ConvNeXt, ConvNeXtConfig};
pub use edgenext::{EdgeNeXt, EdgeNeXtConfig};
pub use error::{BackboneError, ImportError, KeyMismatch};
pub use fastvit::{FastVit, FastVitConfig};
pub use ghostnet::{GhostNet, GhostNetConfig};
pub use head::{ClassifierKind, EmbeddingHead, EmbeddingHeadConfig, HeadPool, NeckFeat};
pub use import::load_swin;
pub use import::load_vit;
pub use import::load_volo;
pub use import::{
    ImportOptions, ImportReport, Layout, WeightsFormat, checkpoint_keys, load_backbone, load_mgn,
    load_reid_model, safetensors_metadata, save_folded_safetensors,
    save_mgn_safetensors_with_metadata, save_safetensors_with_metadata,
};
pub use mgn::{Mgn, MgnConfig};
pub use model::ReidModel;
pub use pool::{GemPool, GlobalPool};
pub use precision::Precision;
pub use registry::{Arch, build_backbone};
pub use repvit::{RepVit, RepVitConfig, RepVitSeKind};
pub use resnet::{
    FoldedReidModel, FusedResNet, IbnMode, ResNet, ResNetConfig, ResNetDepth, StemPool,
};
pub use swin::{SwinConfig, SwinTransformer, SwinVariant};
pub use vit::{PosEmbedInterpolation, ViT, ViTConfig};
pub use volo::{Volo, VoloConfig};
pub use zoo::{ZOO, ZooEntry, ZooFamily, ZooModel, ZooNet, zoo_entry};
