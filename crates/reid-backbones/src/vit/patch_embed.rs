//! The "ICS" patch embedding of TransReID-SSL's ViT (their
//! `PatchEmbed_VOLO(stem_conv=True, stem_stride=2)`): a three-convolution
//! stem with IBN, then a non-overlapping patch projection.
//!
//! ```text
//! conv.0  Conv 7×7, stride 2, pad 3, no bias (3 → hidden)
//! conv.1  IBN(hidden): affine InstanceNorm on ⌊hidden/2⌋ channels, BatchNorm on the rest
//! conv.2  ReLU
//! conv.3  Conv 3×3, pad 1, no bias (hidden → hidden)
//! conv.4  IBN(hidden)
//! conv.5  ReLU
//! conv.6  Conv 3×3, pad 1, no bias (hidden → hidden)
//! conv.7  BatchNorm(hidden)
//! conv.8  ReLU
//! proj    Conv (patch/2)×(patch/2), stride patch/2, with bias (hidden → dim)
//! ```
//!
//! The layers sit in a `Vec` so their parameter paths carry the PyTorch
//! `nn.Sequential` indices (`patch_embed.conv.4.IN.weight` ↔
//! `patch_embed.conv.4.instance_norm.gamma`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Relu};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::layers::{conv2d, spatial};
use crate::norm::TorchBatchNorm;
use crate::norm::{Ibn, batch_norm};

/// Stride of the ICS stem's first convolution.
pub const STEM_STRIDE: usize = 2;

/// One layer of the ICS stem (the variant name is not part of the
/// parameter path).
#[derive(Module, Debug)]
pub enum StemLayer {
    /// A bias-free convolution.
    Conv(Conv2d),
    /// IBN-a style split normalisation.
    Ibn(Ibn),
    /// Plain BatchNorm.
    Batch(BatchNorm),
    /// ReLU (no parameters; keeps the PyTorch indices).
    Relu(Relu),
}

impl StemLayer {
    /// `[batch, c, h, w]` → `[batch, c', h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(conv) => spatial::conv2d(conv, x),
            Self::Ibn(ibn) => ibn.forward(x),
            Self::Batch(bn) => bn.forward_torch(x),
            Self::Relu(_) => relu(x),
        }
    }

    /// BatchNorm channels (running mean and variance are counted by burn
    /// as parameters).
    pub fn batch_norm_channels(&self) -> usize {
        match self {
            Self::Ibn(ibn) => ibn.batch_norm.gamma.dims()[0],
            Self::Batch(bn) => bn.gamma.dims()[0],
            _ => 0,
        }
    }
}

/// The ICS patch embedding: images `[batch, 3, H, W]` → patch tokens
/// `[batch, dim, ⌈H/2⌉/(p/2), ⌈W/2⌉/(p/2)]` (16×8 for 256×128 with `p` = 16).
#[derive(Module, Debug)]
pub struct IcsPatchEmbed {
    /// The nine stem layers, PyTorch indices 0–8.
    pub conv: Vec<StemLayer>,
    /// The patch projection (kernel = stride = `patch_size / 2`).
    pub proj: Conv2d,
}

impl IcsPatchEmbed {
    /// Builds the stem (`hidden` channels) and the projection to `dim`
    /// channels for a total patch size `patch_size` (the projection's
    /// kernel is `patch_size / 2`); `bn_eps` is the BatchNorm and
    /// InstanceNorm epsilon (1e-5 upstream).
    pub fn new(hidden: usize, dim: usize, patch_size: usize, bn_eps: f64, device: &Device) -> Self {
        let conv =
            |cin, k, stride| StemLayer::Conv(conv2d(cin, hidden, k, stride, 1, false, device));
        let layers = vec![
            conv(3, 7, STEM_STRIDE),
            StemLayer::Ibn(Ibn::new(hidden, bn_eps, device)),
            StemLayer::Relu(Relu),
            conv(hidden, 3, 1),
            StemLayer::Ibn(Ibn::new(hidden, bn_eps, device)),
            StemLayer::Relu(Relu),
            conv(hidden, 3, 1),
            StemLayer::Batch(batch_norm(hidden, bn_eps, device)),
            StemLayer::Relu(Relu),
        ];
        let k = patch_size / STEM_STRIDE;
        let proj = Conv2dConfig::new([hidden, dim], [k, k])
            .with_stride([k, k])
            .init(device);
        Self { conv: layers, proj }
    }

    /// `[batch, 3, H, W]` → `[batch, dim, h, w]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.conv.iter().fold(images, |x, layer| layer.forward(x));
        spatial::conv2d(&self.proj, x)
    }

    /// The token grid `[h, w]` of an input of `height × width` pixels.
    pub fn grid(&self, height: usize, width: usize) -> [usize; 2] {
        let k = self.proj.kernel_size[0];
        let stem = |n: usize| (n + 2 * 3).saturating_sub(7) / STEM_STRIDE + 1;
        [stem(height) / k, stem(width) / k]
    }

    /// BatchNorm channels of the stem (for counting running statistics).
    pub fn batch_norm_channels(&self) -> usize {
        self.conv.iter().map(StemLayer::batch_norm_channels).sum()
    }
}
