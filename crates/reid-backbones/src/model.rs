//! A whole single-branch ReID model: backbone + embedding head, in
//! fast-reid's `Baseline` layout (`backbone.*`, `heads.*`).

use burn::module::Module;
use burn::tensor::Tensor;

use crate::head::{EmbeddingHead, HeadOutput};
use crate::resnet::ResNet;

/// Backbone + BNNeck head. Images are normalised outside the model (fast-reid
/// normalises inside, with 0–255 inputs; the result is the same).
#[derive(Module, Debug)]
pub struct ReidModel {
    /// The trunk (fast-reid `backbone`).
    pub backbone: ResNet,
    /// The head (fast-reid `heads`).
    pub heads: EmbeddingHead,
}

impl ReidModel {
    /// `images` `[batch, 3, H, W]` → head outputs (`[batch, dim]` each).
    pub fn forward(&self, images: Tensor<4>) -> HeadOutput {
        self.heads.forward(self.backbone.forward(images))
    }

    /// The test-time embedding `[batch, dim]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.heads.embed(self.backbone.forward(images))
    }
}
