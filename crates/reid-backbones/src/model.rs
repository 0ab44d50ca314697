//! A whole single-branch ReID model: backbone + embedding head, in
//! fast-reid's `Baseline` layout (`backbone.*`, `heads.*`).

use burn::module::Module;
use burn::tensor::Tensor;

use crate::backbone::TrainBackbone;
use crate::head::{EmbeddingHead, HeadOutput};
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
}

impl<M: TrainBackbone> ReidModel<M> {
    /// `images` `[batch, 3, H, W]` → head outputs (`[batch, dim]` each).
    pub fn forward(&self, images: Tensor<4>) -> HeadOutput {
        self.heads.forward(self.backbone.forward_features(images))
    }

    /// [`ReidModel::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`
    /// ([`crate::Backbone::forward_features_seeded`]).
    pub fn forward_seeded(&self, images: Tensor<4>, seed: u64) -> HeadOutput {
        self.heads
            .forward(self.backbone.forward_features_seeded(images, seed))
    }

    /// The test-time embedding `[batch, dim]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.heads.embed(self.backbone.forward_features(images))
    }
}
