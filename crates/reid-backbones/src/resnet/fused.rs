//! An inference-only ResNet with every BatchNorm folded into the convolution
//! before it.
//!
//! In inference BatchNorm is a per-channel affine map,
//! `y = γ·(x − μ)/√(σ² + ε) + β`, so `BN(conv(x; W))` equals
//! `conv(x; W·s) + (β − μ·s)` with `s = γ/√(σ² + ε)` applied per output
//! channel. Folding removes one full pass (several, as burn evaluates the
//! affine map op by op) over every activation tensor. InstanceNorm (IBN-a's
//! `IN` half, IBN-b) depends on the input and is kept; a convolution followed
//! by an IBN split is left unfolded.
//!
//! Build one with [`ResNet::fold_batch_norm`] after loading weights; the
//! result computes the same function as the source model in inference
//! (up to float rounding) and is not meant for training or checkpointing.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, InstanceNorm};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::{Downsample, ResNet, ResidualBlock};
use crate::backbone::trunk_backbone;
use crate::family::trainable_parameters;
use crate::norm::{Norm, instance_norm_forward};

/// `conv` with `bn` folded in (a new conv with a bias).
fn fold(conv: &Conv2d, bn: &BatchNorm) -> Conv2d {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    let [out_ch] = scale.dims();
    let weight = conv.weight.val() * scale.clone().reshape([out_ch, 1, 1, 1]);
    let bias = match &conv.bias {
        Some(b) => b.val() * scale + shift,
        None => shift,
    };
    let mut folded = conv.clone();
    folded.weight = Param::from_tensor(weight);
    folded.bias = Some(Param::from_tensor(bias));
    folded
}

/// A convolution and what remains of the norm after it.
#[derive(Module, Debug)]
pub struct ConvNorm {
    /// The convolution (with the BatchNorm folded in when `norm` is `None`).
    pub conv: Conv2d,
    /// A norm that could not be folded (IBN-a split, InstanceNorm).
    pub norm: Option<Norm>,
}

impl ConvNorm {
    fn new(conv: &Conv2d, norm: &Norm) -> Self {
        match norm {
            Norm::Batch(bn) => Self {
                conv: fold(conv, bn),
                norm: None,
            },
            other => Self {
                conv: conv.clone(),
                norm: Some(other.clone()),
            },
        }
    }

    fn from_bn(conv: &Conv2d, bn: &BatchNorm) -> Self {
        Self {
            conv: fold(conv, bn),
            norm: None,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = crate::layers::dispatch::conv2d(&self.conv, x);
        match &self.norm {
            Some(n) => n.forward(y),
            None => y,
        }
    }
}

/// A residual block with folded norms: 2 (basic) or 3 (bottleneck)
/// convolutions, the shortcut, and IBN-b's post-add InstanceNorm.
#[derive(Module, Debug)]
pub struct FusedBlock {
    /// The block's convolutions in order; ReLU after all but the last.
    pub convs: Vec<ConvNorm>,
    /// Projection shortcut (1×1 conv with its BN folded).
    pub downsample: Option<Conv2d>,
    /// IBN-b's InstanceNorm after the residual add.
    pub post_norm: Option<InstanceNorm>,
}

impl FusedBlock {
    fn new(block: &ResidualBlock) -> Self {
        let ds = |d: &Option<Downsample>| d.as_ref().map(|d| fold(&d.conv, &d.bn));
        match block {
            ResidualBlock::Basic(b) => Self {
                convs: vec![
                    ConvNorm::new(&b.conv1, &b.bn1),
                    ConvNorm::from_bn(&b.conv2, &b.bn2),
                ],
                downsample: ds(&b.downsample),
                post_norm: b.post_norm.clone(),
            },
            ResidualBlock::Bottleneck(b) => Self {
                convs: vec![
                    ConvNorm::new(&b.conv1, &b.bn1),
                    ConvNorm::from_bn(&b.conv2, &b.bn2),
                    ConvNorm::from_bn(&b.conv3, &b.bn3),
                ],
                downsample: ds(&b.downsample),
                post_norm: b.post_norm.clone(),
            },
        }
    }

    /// `[batch, in, h, w]` → `[batch, out, h/stride, w/stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => crate::layers::dispatch::conv2d(d, x.clone()),
            None => x.clone(),
        };
        let last = self.convs.len().saturating_sub(1);
        let mut y = x;
        for (i, c) in self.convs.iter().enumerate() {
            y = c.forward(y);
            if i < last {
                y = relu(y);
            }
        }
        let y = y + identity;
        relu(match &self.post_norm {
            Some(n) => instance_norm_forward(n, y),
            None => y,
        })
    }
}

/// The inference-only ResNet of [`ResNet::fold_batch_norm`].
#[derive(Module, Debug)]
pub struct FusedResNet {
    /// Stem convolution and norm.
    pub stem: ConvNorm,
    /// Stem max-pool.
    pub maxpool: MaxPool2d,
    /// All blocks of the four stages, in order.
    pub blocks: Vec<FusedBlock>,
    /// Channels of the output feature map.
    pub out_channels: usize,
    /// Total down-sampling factor.
    pub output_stride: usize,
}

impl ResNet {
    /// The same network with every BatchNorm folded into its convolution,
    /// for inference (see the [module documentation](self)).
    pub fn fold_batch_norm(&self) -> FusedResNet {
        FusedResNet {
            stem: ConvNorm::new(&self.conv1, &self.bn1),
            maxpool: self.maxpool.clone(),
            blocks: self.blocks().map(FusedBlock::new).collect(),
            out_channels: self.out_channels,
            output_stride: self.output_stride,
        }
    }
}

impl FusedResNet {
    /// The stem convolution and its (folded) norm, before ReLU and max-pool.
    pub fn stem_forward(&self, images: Tensor<4>) -> Tensor<4> {
        self.stem.forward(images)
    }

    /// `[batch, 3, H, W]` → `[batch, out_channels, H/s, W/s]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = self.maxpool.forward(relu(self.stem.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        x
    }
}

impl FusedResNet {
    /// Trainable parameters (BatchNorm running statistics excluded), the
    /// ReIDZoo table's convention: torchvision's trunk without `fc`.
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }
}

trunk_backbone!(FusedResNet, stride: output_stride);

/// A whole BoT model in inference form: the trunk with every BatchNorm
/// folded ([`FusedResNet`]) and the unchanged embedding head (pooling and
/// BNNeck). Built by [`crate::ReidModel::fold_batch_norm`]; written with
/// fast-reid names by [`crate::import::save_folded_safetensors`].
#[derive(Module, Debug)]
pub struct FoldedReidModel {
    /// The folded trunk (fast-reid `backbone`).
    pub backbone: FusedResNet,
    /// The head (fast-reid `heads`): pooling, embedding, BNNeck.
    pub heads: crate::EmbeddingHead,
}

impl FoldedReidModel {
    /// The test-time embedding `[batch, dim]` of `images`
    /// `[batch, 3, H, W]`: the same feature as the source model's
    /// [`crate::ReidModel::embed`], up to float rounding.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.heads.embed(self.backbone.forward(images))
    }
}

impl crate::ReidModel<ResNet> {
    /// The model in inference form: every BatchNorm of the trunk folded into
    /// its convolution (see the [module documentation](self)); the head is
    /// kept as it is.
    pub fn fold_batch_norm(&self) -> FoldedReidModel {
        FoldedReidModel {
            backbone: self.backbone.fold_batch_norm(),
            heads: self.heads.clone(),
        }
    }
}
