//! GhostNet 0.5× / 1.0× / 1.3× (Han et al., CVPR 2020) as used by CION's
//! ReIDZoo: Huawei's official architecture (also timm's `ghostnet_*`, same
//! parameter names), without the classifier.
//!
//! Stem: 3×3 conv stride 2 (no bias) → BN → ReLU; nine stages of
//! [`GhostBottleneck`]s (the published table, see [`STAGES`]); a 1×1
//! conv-BN-ReLU to `make_divisible(960·width)` channels (the feature map);
//! CION's embedding: global average pool → 1×1 `conv_head` (bias) to 1280
//! → ReLU ([`GhostNet::forward_embedding`]). Every channel count is
//! `make_divisible(c · width, 4)`. BatchNorm eps 1e-5; as elsewhere in the
//! crate, BN uses running statistics on a plain device and batch statistics
//! on an autodiff device.

mod block;
mod import;

pub use block::{ConvBnAct, GhostBottleneck, GhostModule, Shortcut, SqueezeExcite};
pub use import::{GhostNetImportReport, ghostnet_file_key, ghostnet_model_path, load_ghostnet};

use block::BottleneckSpec;

use burn::config::Config;
use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::backbone::trunk_backbone;
use crate::error::{BackboneError, check_positive};
use crate::family::trainable_parameters;
use crate::layers::conv2d;
use crate::norm::batch_norm;
use crate::pool::avg_pool_map;
use crate::registry::presets;

/// One bottleneck of the published table: `(kernel, expansion channels,
/// output channels, SE ratio (0 = none), stride)`, before width scaling.
pub type StageRow = (usize, usize, usize, f64, usize);

/// GhostNet's nine stages (Huawei's `cfgs`), at width 1.0.
pub const STAGES: [&[StageRow]; 9] = [
    &[(3, 16, 16, 0.0, 1)],
    &[(3, 48, 24, 0.0, 2)],
    &[(3, 72, 24, 0.0, 1)],
    &[(5, 72, 40, 0.25, 2)],
    &[(5, 120, 40, 0.25, 1)],
    &[(3, 240, 80, 0.0, 2)],
    &[
        (3, 200, 80, 0.0, 1),
        (3, 184, 80, 0.0, 1),
        (3, 184, 80, 0.0, 1),
        (3, 480, 112, 0.25, 1),
        (3, 672, 112, 0.25, 1),
    ],
    &[(5, 672, 160, 0.25, 2)],
    &[
        (5, 960, 160, 0.0, 1),
        (5, 960, 160, 0.25, 1),
        (5, 960, 160, 0.0, 1),
        (5, 960, 160, 0.25, 1),
    ],
];

/// Channels of the last feature layer at width 1.0 (the last expansion).
const LAST_EXPANSION: usize = 960;

/// Rounds `v` to a multiple of `divisor` (at least `divisor`), going up one
/// step when rounding lost more than 10 % (MobileNet's `_make_divisible`).
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((v + d / 2.0) / d).floor() * d).max(d);
    let rounded = if rounded < 0.9 * v {
        rounded + d
    } else {
        rounded
    };
    rounded as usize
}

/// Configuration of a [`GhostNet`]; [`GhostNetConfig::w050`],
/// [`GhostNetConfig::w100`], [`GhostNetConfig::w130`] are the ReIDZoo
/// models.
#[derive(Config, Debug)]
pub struct GhostNetConfig {
    /// Width multiplier (0.5, 1.0, 1.3).
    pub width: f64,
    /// Channels of `conv_head`, i.e. of the embedding (1280; smaller for
    /// test models).
    #[config(default = 1280)]
    pub num_features: usize,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
}

presets! {
    GhostNetConfig {
        /// GhostNet 0.5× (1.31 M parameters with `conv_head`).
        w050 "ghostnet_0_5" => Self::new(0.5);
        /// GhostNet 1.0× (3.90 M).
        w100 "ghostnet_1_0" => Self::new(1.0);
        /// GhostNet 1.3× (6.08 M).
        w130 "ghostnet_1_3" => Self::new(1.3);
    }
}

impl GhostNetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(BackboneError::InvalidConfig(format!(
                "GhostNet width must be in (0, 16], got {}",
                self.width
            )));
        }
        if self.num_features == 0 {
            return Err(BackboneError::InvalidConfig(
                "num_features must be positive".into(),
            ));
        }
        check_positive("bn_eps", self.bn_eps)
    }

    /// Builds the network (burn's default initialisation: Kaiming-uniform
    /// convolutions, BN γ = 1, β = 0) on `device`.
    pub fn init(&self, device: &Device) -> Result<GhostNet, BackboneError> {
        self.validate()?;
        let eps = self.bn_eps;
        let scaled = |c: usize| make_divisible(c as f64 * self.width, 4);
        let stem = scaled(16);
        let mut c_in = stem;
        let mut blocks = Vec::with_capacity(STAGES.len());
        for stage in STAGES {
            let mut layer = Vec::with_capacity(stage.len());
            for &(kernel, exp, c, se, stride) in stage {
                let mid = scaled(exp);
                let c_out = scaled(c);
                let se_reduced = (se > 0.0).then(|| make_divisible(mid as f64 * se, 4));
                let spec = BottleneckSpec {
                    c_in,
                    mid,
                    c_out,
                    kernel,
                    stride,
                    se_reduced,
                };
                layer.push(GhostBottleneck::new(spec, eps, device));
                c_in = c_out;
            }
            blocks.push(layer);
        }
        let out_channels = scaled(LAST_EXPANSION);
        Ok(GhostNet {
            conv_stem: conv2d(3, stem, 3, 2, 1, false, device),
            bn1: Some(batch_norm(stem, eps, device)),
            blocks,
            final_conv: ConvBnAct::new(c_in, out_channels, eps, device),
            conv_head: Conv2dConfig::new([out_channels, self.num_features], [1, 1]).init(device),
            out_channels,
        })
    }
}

/// GhostNet trunk: images `[batch, 3, H, W]` → feature map
/// `[batch, make_divisible(960·width), H/32, W/32]`, and the CION embedding
/// `[batch, num_features]`.
#[derive(Module, Debug)]
pub struct GhostNet {
    /// Stem 3×3 conv, stride 2, no bias.
    pub conv_stem: Conv2d,
    /// Stem BN; `None` once folded ([`GhostNet::fold_batch_norm`]).
    pub bn1: Option<BatchNorm>,
    /// The nine stages (PyTorch `blocks.0` … `blocks.8`).
    pub blocks: Vec<Vec<GhostBottleneck>>,
    /// Last 1×1 conv-BN-ReLU (PyTorch `blocks.9.0`).
    pub final_conv: ConvBnAct,
    /// 1×1 conv with bias to `num_features`, applied to the pooled map.
    pub conv_head: Conv2d,
    /// Channels of the feature map.
    pub out_channels: usize,
}

impl GhostNet {
    /// `[batch, 3, H, W]` → `[batch, out_channels, H/32, W/32]` (after the
    /// last conv-BN-ReLU, before pooling).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu(block::norm(
            &self.bn1,
            crate::layers::dispatch::conv2d(&self.conv_stem, images),
        ));
        for block in self.blocks.iter().flatten() {
            x = block.forward(x);
        }
        self.final_conv.forward(x)
    }

    /// The inference form `extract` uses: every BatchNorm folded into the
    /// convolution before it (with running statistics the same function,
    /// up to float rounding).
    pub fn fold_batch_norm(self) -> Self {
        Self {
            conv_stem: block::fold(self.conv_stem, self.bn1),
            bn1: None,
            blocks: self
                .blocks
                .into_iter()
                .map(|stage| stage.into_iter().map(|b| b.fold_batch_norm()).collect())
                .collect(),
            final_conv: self.final_conv.fold_batch_norm(),
            ..self
        }
    }

    /// CION's GhostNet feature: GAP → `conv_head` → ReLU,
    /// `[batch, 3, H, W]` → `[batch, num_features]` (1280).
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// The head part of [`GhostNet::forward_embedding`] on a feature map
    /// `[batch, C, h, w]` → `[batch, num_features]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        let b = features.dims()[0];
        let y = relu(crate::layers::dispatch::conv2d(
            &self.conv_head,
            avg_pool_map(features),
        ));
        let n = y.dims()[1];
        y.reshape([b, n])
    }

    /// Trainable parameters (BN running statistics excluded), `conv_head`
    /// included: the ReIDZoo table's convention (0.5× 1.31 M, 1.0× 3.90 M,
    /// 1.3× 6.08 M).
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }
}

// The pooled feature is [`GhostNet::forward_embedding`]: GAP → `conv_head`
// → ReLU, `num_features` wide.
trunk_backbone!(
    GhostNet,
    stride: 32,
    pooled: forward_embedding,
    pooled_dim: conv_head
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;

    #[test]
    fn shapes_and_make_divisible() {
        assert_eq!(make_divisible(8.0, 4), 8);
        assert_eq!(make_divisible(16.0 * 0.5, 4), 8);
        assert_eq!(make_divisible(72.0 * 0.25, 4), 20);
        assert_eq!(make_divisible(960.0 * 1.3, 4), 1248);
        assert_eq!(make_divisible(1.0, 4), 4);
        let device = Device::flex();
        let m = GhostNetConfig::new(0.25)
            .with_num_features(16)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 32], &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 240, 2, 1]);
        assert_eq!(m.forward_embedding(x).dims(), [2, 16]);
        assert!(GhostNetConfig::new(0.0).init(&device).is_err());
    }
}
