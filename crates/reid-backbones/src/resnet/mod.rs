//! ResNet18/34/50/101/152 in torchvision's parameter layout (`conv1`, `bn1`,
//! `layer1.0.conv1`, …, `layerN.0.downsample.{conv,bn}`), v1.5 (stride on the
//! 3×3 convolution of the bottleneck), with the ReID options: last stride 1 or
//! 2, a width multiplier for small test models, fast-reid's stem pooling,
//! IBN-a / IBN-b ([`IbnMode`]) and frozen BatchNorm.
//!
//! Inference vs training: burn's `BatchNorm` uses batch statistics when the
//! device has autodiff enabled and running statistics otherwise, so a model on
//! a plain `Device::flex()` is in evaluation mode.

mod block;
pub mod fused;

pub use block::{BasicBlock, Bottleneck, Downsample, ResidualBlock};
pub use fused::{FoldedReidModel, FusedResNet};

use block::BlockIbn;

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backbone::trunk_backbone;
use crate::error::{BackboneError, check_positive};
use crate::family::trainable_parameters;
use crate::norm::{Norm, batch_norm, instance_norm};

/// The depth of a ResNet, which fixes its block type and blocks per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResNetDepth {
    /// Basic blocks `[2, 2, 2, 2]`.
    R18,
    /// Basic blocks `[3, 4, 6, 3]`.
    R34,
    /// Bottlenecks `[3, 4, 6, 3]`.
    R50,
    /// Bottlenecks `[3, 4, 23, 3]`.
    R101,
    /// Bottlenecks `[3, 8, 36, 3]`.
    R152,
    /// Any block counts (small test models, or depths the named ones lack).
    Custom {
        /// Blocks in each of the four stages (each at least 1).
        blocks: [usize; 4],
        /// Bottleneck blocks (true) or basic blocks (false).
        bottleneck: bool,
    },
}

impl ResNetDepth {
    /// Blocks in each of the four stages.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Self::R18 => [2, 2, 2, 2],
            Self::R34 | Self::R50 => [3, 4, 6, 3],
            Self::R101 => [3, 4, 23, 3],
            Self::R152 => [3, 8, 36, 3],
            Self::Custom { blocks, .. } => blocks,
        }
    }

    /// Whether the stages use bottleneck blocks (channel expansion 4).
    pub fn is_bottleneck(self) -> bool {
        match self {
            Self::R18 | Self::R34 => false,
            Self::R50 | Self::R101 | Self::R152 => true,
            Self::Custom { bottleneck, .. } => bottleneck,
        }
    }

    /// Channel expansion of the last convolution of a block (1 or 4).
    pub fn expansion(self) -> usize {
        if self.is_bottleneck() { 4 } else { 1 }
    }
}

/// How the stem's 3×3 max-pool pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StemPool {
    /// torchvision: padding 1, floor mode (256×128 → 64×32).
    Torchvision,
    /// fast-reid: padding 0, ceil mode. Same output as torchvision when the
    /// stem convolution's output is even (256×128 → 64×32); one pixel smaller
    /// when it is odd.
    FastReid,
}

/// Instance-batch normalisation variants (IBN-Net, Pan et al. 2018) in the
/// layout of IBN-Net / fast-reid / torchreid / CION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IbnMode {
    /// IBN-a: `bn1` of every block of layers 1–3 normalises its first
    /// `⌊planes/2⌋` channels with an affine InstanceNorm and the rest with
    /// BatchNorm. Stem and layer 4 unchanged.
    A,
    /// IBN-b: the stem's `bn1` is an affine InstanceNorm, and the last block
    /// of layers 1 and 2 applies an affine InstanceNorm (`IN`) after the
    /// residual add, before its final ReLU.
    B,
}

/// Configuration of a [`ResNet`]; defaults are torchvision's ResNet50 with
/// the ReID last stride of 1.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Depth (block type and counts).
    #[config(default = "ResNetDepth::R50")]
    pub depth: ResNetDepth,
    /// Channels of the stem and of the first stage's 3×3 convolutions (64 in
    /// the published models; smaller values make fast test models).
    #[config(default = 64)]
    pub base_width: usize,
    /// Stride of the first block of stage 4: 2 (ImageNet) or 1 (ReID, which
    /// doubles the final map to 16×8 at 256×128 input).
    #[config(default = 1)]
    pub last_stride: usize,
    /// Stem max-pool variant.
    #[config(default = "StemPool::Torchvision")]
    pub stem_pool: StemPool,
    /// BatchNorm epsilon (1e-5 in torchvision), also used by InstanceNorm.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// IBN variant, `None` for plain BatchNorm everywhere.
    pub ibn: Option<IbnMode>,
    /// Frozen BatchNorm: running statistics also on an autodiff device, and
    /// no gradient for γ/β (fast-reid's `FrozenBatchNorm`). `false` (train
    /// BN) is the default.
    #[config(default = false)]
    pub frozen_bn: bool,
}

/// A ResNet trunk without its classifier: images `[batch, 3, H, W]` → feature
/// map `[batch, base_width·8·expansion, H/s, W/s]` with `s` = 16 (last stride
/// 1) or 32 (last stride 2).
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution, 7×7 stride 2, no bias.
    pub conv1: Conv2d,
    /// Stem norm: BatchNorm, or an affine InstanceNorm with IBN-b.
    pub bn1: Norm,
    /// Stem 3×3 max-pool, stride 2.
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 1).
    pub layer1: Vec<ResidualBlock>,
    /// Stage 2 (stride 2).
    pub layer2: Vec<ResidualBlock>,
    /// Stage 3 (stride 2).
    pub layer3: Vec<ResidualBlock>,
    /// Stage 4 (stride = `last_stride`).
    pub layer4: Vec<ResidualBlock>,
    /// Channels of the output feature map.
    pub out_channels: usize,
    /// Total down-sampling factor.
    pub output_stride: usize,
}

impl ResNetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        if self.base_width == 0 {
            return Err(BackboneError::InvalidConfig(
                "base_width must be positive".into(),
            ));
        }
        if self.depth.blocks().contains(&0) {
            return Err(BackboneError::InvalidConfig(format!(
                "every stage needs at least one block, got {:?}",
                self.depth.blocks()
            )));
        }
        if self.last_stride != 1 && self.last_stride != 2 {
            return Err(BackboneError::InvalidConfig(format!(
                "last_stride must be 1 or 2, got {}",
                self.last_stride
            )));
        }
        check_positive("bn_eps", self.bn_eps)
    }

    /// Builds the network with random weights (Kaiming-uniform convolutions,
    /// BN γ=1 β=0, as burn initialises them) on `device`.
    pub fn init(&self, device: &Device) -> Result<ResNet, BackboneError> {
        self.validate()?;
        let w = self.base_width;
        let conv1 = Conv2dConfig::new([3, w], [7, 7])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
            .with_bias(false)
            .init(device);
        let maxpool = match self.stem_pool {
            StemPool::Torchvision => MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            StemPool::FastReid => MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_ceil_mode(true),
        }
        .init();
        let expansion = self.depth.expansion();
        let blocks = self.depth.blocks();
        let strides = [1, 2, 2, self.last_stride];
        let mut in_ch = w;
        let mut stages = Vec::with_capacity(4);
        for (stage, (&n, &stride)) in blocks.iter().zip(strides.iter()).enumerate() {
            let planes = w << stage;
            let mut layer = Vec::with_capacity(n);
            for i in 0..n {
                let s = if i == 0 { stride } else { 1 };
                let ibn = BlockIbn {
                    first_norm_ibn: self.ibn == Some(IbnMode::A) && stage < 3,
                    post_instance_norm: self.ibn == Some(IbnMode::B) && stage < 2 && i + 1 == n,
                };
                let block = ResidualBlock::new(
                    self.depth.is_bottleneck(),
                    in_ch,
                    planes,
                    s,
                    self.bn_eps,
                    ibn,
                    device,
                );
                layer.push(if self.frozen_bn {
                    block.freeze_batch_norm()
                } else {
                    block
                });
                in_ch = planes * expansion;
            }
            stages.push(layer);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        let bn1 = if self.ibn == Some(IbnMode::B) {
            Norm::Instance(instance_norm(w, self.bn_eps, device))
        } else {
            Norm::Batch(batch_norm(w, self.bn_eps, device))
        };
        let bn1 = if self.frozen_bn {
            bn1.freeze_batch_norm()
        } else {
            bn1
        };
        Ok(ResNet {
            conv1,
            bn1,
            maxpool,
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            out_channels: in_ch,
            output_stride: 16 * self.last_stride,
        })
    }
}

impl ResNet {
    /// Runs the stem and the four stages: `[batch, 3, H, W]` →
    /// `[batch, out_channels, H/s, W/s]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self
            .bn1
            .forward_relu(crate::layers::spatial::conv2d(&self.conv1, images));
        let x = self.maxpool.forward(x);
        self.blocks().fold(x, |x, block| block.forward(x))
    }

    /// Every residual block in order of computation: `layer1`, then
    /// `layer2`, `layer3` and `layer4`.
    pub fn blocks(&self) -> impl Iterator<Item = &ResidualBlock> {
        self.layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
    }
}

impl ResNet {
    /// Trainable parameters (BatchNorm running statistics excluded), the
    /// ReIDZoo table's convention: torchvision's trunk without `fc`.
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }
}

trunk_backbone!(ResNet, stride: output_stride);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use burn::module::Module;

    /// Trainable parameters of torchvision's models without `fc`
    /// (`sum(p.numel() for n, p in m.named_parameters() if not n.startswith('fc'))`).
    const TORCHVISION_TRUNK_PARAMS: [(ResNetDepth, usize); 5] = [
        (ResNetDepth::R18, 11_176_512),
        (ResNetDepth::R34, 21_284_672),
        (ResNetDepth::R50, 23_508_032),
        (ResNetDepth::R101, 42_500_160),
        (ResNetDepth::R152, 58_143_808),
    ];

    /// BN running statistics (mean + var), which burn counts as parameters.
    fn bn_running_stats(m: &ResNet) -> usize {
        let mut n = 2 * m.bn1.batch_norm_channels();
        for b in m.blocks() {
            n += 2 * b.bn_channels();
        }
        n
    }

    #[test]
    fn parameter_counts_match_torchvision() {
        let device = Device::flex();
        for (depth, expected) in TORCHVISION_TRUNK_PARAMS {
            let m = ResNetConfig::new().with_depth(depth).init(&device).unwrap();
            let trainable = m.num_params() - bn_running_stats(&m);
            assert_eq!(trainable, expected, "{depth:?}");
        }
    }

    #[test]
    fn feature_map_shapes_follow_last_stride() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([2, 3, 64, 32], &device);
        for (last_stride, hw) in [(1, [4, 2]), (2, [2, 1])] {
            let m = ResNetConfig::new()
                .with_depth(ResNetDepth::R18)
                .with_base_width(8)
                .with_last_stride(last_stride)
                .init(&device)
                .unwrap();
            assert_eq!(m.out_channels(), 64);
            assert_eq!(m.forward(x.clone()).dims(), [2, 64, hw[0], hw[1]]);
        }
        let m = ResNetConfig::new()
            .with_depth(ResNetDepth::R50)
            .with_base_width(4)
            .init(&device)
            .unwrap();
        assert_eq!(m.forward(x).dims(), [2, 128, 4, 2]);
    }

    #[test]
    fn fastreid_stem_uses_ceil_mode_without_padding() {
        let device = Device::flex();
        // 66×34 → stem conv 33×17 (odd) → torchvision pool 17×9, fast-reid 16×8.
        let x = Tensor::<4>::zeros([1, 3, 66, 34], &device);
        for (stem_pool, hw) in [
            (StemPool::Torchvision, [3, 2]),
            (StemPool::FastReid, [2, 1]),
        ] {
            let m = ResNetConfig::new()
                .with_depth(ResNetDepth::R18)
                .with_base_width(4)
                .with_last_stride(2)
                .with_stem_pool(stem_pool)
                .init(&device)
                .unwrap();
            assert_eq!(
                m.forward(x.clone()).dims(),
                [1, 32, hw[0], hw[1]],
                "{stem_pool:?}"
            );
        }
    }

    #[test]
    fn frozen_bn_disables_training_statistics_and_ibn_layouts_follow_the_mode() {
        let device = Device::flex();
        let training = |n: &Norm| match n {
            Norm::Batch(bn) => bn.training.val().is_enabled(),
            Norm::Ibn(ibn) => ibn.batch_norm.training.val().is_enabled(),
            Norm::Instance(_) => panic!("no BatchNorm"),
        };
        let cfg = ResNetConfig::new()
            .with_depth(ResNetDepth::R50)
            .with_base_width(2);
        let train = cfg.clone().init(&device).unwrap();
        let frozen = cfg.clone().with_frozen_bn(true).init(&device).unwrap();
        assert!(training(&train.bn1));
        assert!(!training(&frozen.bn1));
        let ResidualBlock::Bottleneck(b) = &frozen.layer4[2] else {
            panic!("bottleneck expected")
        };
        assert!(!b.bn3.training.val().is_enabled());
        assert!(!b.bn3.beta.is_require_grad());

        // IBN-a: bn1 of every block of layers 1–3 is split, layer 4 plain.
        let a = cfg
            .clone()
            .with_ibn(Some(IbnMode::A))
            .init(&device)
            .unwrap();
        let bn1 = |blk: &ResidualBlock| match blk {
            ResidualBlock::Bottleneck(b) => matches!(b.bn1, Norm::Ibn(_)),
            ResidualBlock::Basic(b) => matches!(b.bn1, Norm::Ibn(_)),
        };
        assert!(a.layer1.iter().chain(&a.layer2).chain(&a.layer3).all(bn1));
        assert!(!a.layer4.iter().any(bn1));
        // IBN-b: stem InstanceNorm; post-add IN on the last block of layers 1, 2.
        let b = cfg.with_ibn(Some(IbnMode::B)).init(&device).unwrap();
        assert!(matches!(b.bn1, Norm::Instance(_)));
        let post = |blk: &ResidualBlock| match blk {
            ResidualBlock::Bottleneck(b) => b.post_norm.is_some(),
            ResidualBlock::Basic(b) => b.post_norm.is_some(),
        };
        let flags: Vec<bool> = b.blocks().map(post).collect();
        let mut expected = vec![false; 16];
        expected[2] = true; // layer1[2]
        expected[6] = true; // layer2[3]
        assert_eq!(flags, expected);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let device = Device::flex();
        assert!(
            ResNetConfig::new()
                .with_last_stride(3)
                .init(&device)
                .is_err()
        );
        assert!(
            ResNetConfig::new()
                .with_base_width(0)
                .init(&device)
                .is_err()
        );
    }
}
