//! Residual blocks of [`super::ResNet`].

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, InstanceNorm};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::layers::conv2d;
use crate::layers::pointwise::conv2d as pointwise;
use crate::layers::spatial::conv2d as spatial;
use crate::norm::{
    Ibn, Norm, TorchBatchNorm, batch_norm, freeze_batch_norm, instance_norm, instance_norm_forward,
};

fn bn(c: usize, eps: f64, device: &Device) -> BatchNorm {
    batch_norm(c, eps, device)
}

/// Which IBN variant a block takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockIbn {
    /// IBN-a: `bn1` is an [`Ibn`] split.
    pub first_norm_ibn: bool,
    /// IBN-b: an InstanceNorm after the residual add, before the last ReLU.
    pub post_instance_norm: bool,
}

/// The projection shortcut: 1×1 convolution (with the block's stride) + BN.
/// torchvision names it `downsample.0` / `downsample.1`.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 convolution, no bias.
    pub conv: Conv2d,
    /// BatchNorm after it.
    pub bn: BatchNorm,
}

impl Downsample {
    fn new(in_ch: usize, out_ch: usize, stride: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: conv2d(in_ch, out_ch, 1, stride, 1, false, device),
            bn: bn(out_ch, eps, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward_torch(pointwise(&self.conv, x))
    }

    fn freeze_batch_norm(self) -> Self {
        Self {
            conv: self.conv,
            bn: freeze_batch_norm(self.bn),
        }
    }
}

/// Two 3×3 convolutions (ResNet18/34).
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 convolution (carries the stride).
    pub conv1: Conv2d,
    /// Norm after `conv1`: BN, or IBN-a's split (PyTorch `bn1.IN` / `bn1.BN`).
    pub bn1: Norm,
    /// Second 3×3 convolution.
    pub conv2: Conv2d,
    /// BN after `conv2`.
    pub bn2: BatchNorm,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
    /// IBN-b's InstanceNorm after the residual add (PyTorch name `IN`).
    pub post_norm: Option<InstanceNorm>,
}

/// 1×1 → 3×3 (stride) → 1×1 ×4 (ResNet50/101/152, torchvision v1.5).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// Norm after `conv1`: BN, or IBN-a's split (PyTorch `bn1.IN` / `bn1.BN`).
    pub bn1: Norm,
    /// 3×3 convolution (carries the stride).
    pub conv2: Conv2d,
    /// BN after `conv2`.
    pub bn2: BatchNorm,
    /// 1×1 expansion (×4).
    pub conv3: Conv2d,
    /// BN after `conv3`.
    pub bn3: BatchNorm,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
    /// IBN-b's InstanceNorm after the residual add (PyTorch name `IN`).
    pub post_norm: Option<InstanceNorm>,
}

/// One residual block of either kind.
// The variants differ in size by a few conv/BN handles; blocks live in a
// `Vec` built once, so boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    /// ResNet18/34 block.
    Basic(BasicBlock),
    /// ResNet50/101/152 block.
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    /// A block taking `in_ch` channels, with `planes` inner channels, `stride`
    /// on its first spatial convolution.
    pub(crate) fn new(
        bottleneck: bool,
        in_ch: usize,
        planes: usize,
        stride: usize,
        eps: f64,
        ibn: BlockIbn,
        device: &Device,
    ) -> Self {
        let out_ch = if bottleneck { planes * 4 } else { planes };
        let downsample = (stride != 1 || in_ch != out_ch)
            .then(|| Downsample::new(in_ch, out_ch, stride, eps, device));
        let bn1 = if ibn.first_norm_ibn {
            Norm::Ibn(Ibn::new(planes, eps, device))
        } else {
            Norm::Batch(bn(planes, eps, device))
        };
        let post_norm = ibn
            .post_instance_norm
            .then(|| instance_norm(out_ch, eps, device));
        if bottleneck {
            Self::Bottleneck(Bottleneck {
                conv1: conv2d(in_ch, planes, 1, 1, 1, false, device),
                bn1,
                conv2: conv2d(planes, planes, 3, stride, 1, false, device),
                bn2: bn(planes, eps, device),
                conv3: conv2d(planes, out_ch, 1, 1, 1, false, device),
                bn3: bn(out_ch, eps, device),
                downsample,
                post_norm,
            })
        } else {
            Self::Basic(BasicBlock {
                conv1: conv2d(in_ch, planes, 3, stride, 1, false, device),
                bn1,
                conv2: conv2d(planes, planes, 3, 1, 1, false, device),
                bn2: bn(planes, eps, device),
                downsample,
                post_norm,
            })
        }
    }

    /// `[batch, in_ch, h, w]` → `[batch, out_ch, h/stride, w/stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(b) => {
                let identity = match &b.downsample {
                    Some(d) => d.forward(x.clone()),
                    None => x.clone(),
                };
                let y = b.bn1.forward_relu(spatial(&b.conv1, x));
                let y = b.bn2.forward_torch(spatial(&b.conv2, y));
                relu(post(&b.post_norm, y + identity))
            }
            Self::Bottleneck(b) => {
                let identity = match &b.downsample {
                    Some(d) => d.forward(x.clone()),
                    None => x.clone(),
                };
                let y = b.bn1.forward_relu(pointwise(&b.conv1, x));
                let y = b.bn2.forward_torch_relu(spatial(&b.conv2, y));
                let y = b.bn3.forward_torch(pointwise(&b.conv3, y));
                relu(post(&b.post_norm, y + identity))
            }
        }
    }

    /// Total channels over this block's BatchNorm layers (for counting their
    /// running statistics).
    pub fn bn_channels(&self) -> usize {
        let ds = |d: &Option<Downsample>| d.as_ref().map_or(0, |d| d.bn.gamma.dims()[0]);
        match self {
            Self::Basic(b) => {
                b.bn1.batch_norm_channels() + b.bn2.gamma.dims()[0] + ds(&b.downsample)
            }
            Self::Bottleneck(b) => {
                b.bn1.batch_norm_channels()
                    + b.bn2.gamma.dims()[0]
                    + b.bn3.gamma.dims()[0]
                    + ds(&b.downsample)
            }
        }
    }

    /// Freezes every BatchNorm of the block (see [`crate::norm::Norm::freeze_batch_norm`]).
    pub fn freeze_batch_norm(self) -> Self {
        match self {
            Self::Basic(b) => Self::Basic(BasicBlock {
                bn1: b.bn1.freeze_batch_norm(),
                bn2: freeze_batch_norm(b.bn2),
                downsample: b.downsample.map(Downsample::freeze_batch_norm),
                ..b
            }),
            Self::Bottleneck(b) => Self::Bottleneck(Bottleneck {
                bn1: b.bn1.freeze_batch_norm(),
                bn2: freeze_batch_norm(b.bn2),
                bn3: freeze_batch_norm(b.bn3),
                downsample: b.downsample.map(Downsample::freeze_batch_norm),
                ..b
            }),
        }
    }
}

/// Applies IBN-b's post-add InstanceNorm when the block has one.
fn post(norm: &Option<InstanceNorm>, x: Tensor<4>) -> Tensor<4> {
    match norm {
        Some(n) => instance_norm_forward(n, x),
        None => x,
    }
}
