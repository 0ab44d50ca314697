//! A whole single-branch ReID model: backbone + embedding head, in
//! fast-reid's `Baseline` layout (`backbone.*`, `heads.*`).

use burn::module::Module;
use burn::tensor::Tensor;

use crate::backbone::TrainBackbone;
use crate::head::{EmbeddingHead, HeadOutput};
use crate::precision::Precision;
use crate::resnet::ResNet;

/// Backbone + BNNeck head. Images are normalised outside the model (fast-reid
/// normalises inside, with 0–255 inputs; the result is the same).
///
/// The trunk is any [`TrainBackbone`] (default a [`ResNet`], fast-reid's
/// layout that [`crate::load_reid_model`] reads); the head pools its
/// feature map `[batch, out_channels, h, w]`.
#[derive(Module, Debug)]
pub struct ReidModel<M: TrainBackbone = ResNet> {
    /// The trunk (fast-reid `backbone`).
    pub backbone: M,
    /// The head (fast-reid `heads`).
    pub heads: EmbeddingHead,
    /// The float type the backbone computes in ([`Precision`]; the head
    /// stays in `f32`). Not saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl<M: TrainBackbone> ReidModel<M> {
    /// `images` `[batch, 3, H, W]` → head outputs (`[batch, dim]` each).
    pub fn forward(&self, images: Tensor<4>) -> HeadOutput {
        self.heads.forward(self.features(images))
    }

    /// A model of `backbone` and `heads` computing in `f32`.
    pub fn new(backbone: M, heads: EmbeddingHead) -> Self {
        Self {
            backbone,
            heads,
            precision: Precision::F32,
        }
    }

    /// The same model with its backbone computing in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The backbone's feature map `[batch, C, h, w]` (in `f32` whatever
    /// the precision).
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        self.precision
            .run(&self.backbone, images, |b, x| b.forward_features(x))
    }

    /// [`ReidModel::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`
    /// ([`crate::Backbone::forward_features_seeded`]).
    pub fn forward_seeded(&self, images: Tensor<4>, seed: u64) -> HeadOutput {
        self.heads
            .forward(self.precision.run(&self.backbone, images, |b, x| {
                b.forward_features_seeded(x, seed)
            }))
    }

    /// The test-time embedding `[batch, dim]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.heads.embed(self.features(images))
    }
}
