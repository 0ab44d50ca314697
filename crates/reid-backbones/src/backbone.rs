//! The trait every backbone implements.

use burn::tensor::Tensor;

use crate::error::BackboneError;

/// A feature extractor: a batch of normalised images in, a feature map out.
///
/// Pooling and embedding belong to the head (see [`crate::pool`]), so that
/// part-based heads (MGN) can slice the map themselves.
pub trait Backbone {
    /// Runs the backbone.
    ///
    /// - `images`: `[batch, 3, height, width]`, normalised (e.g. ImageNet
    ///   mean/std).
    /// - returns `[batch, self.out_channels(), height / s, width / s]` where
    ///   `s` is [`Backbone::output_stride`].
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4>;

    /// Number of channels of the feature map (2048 for ResNet50).
    fn out_channels(&self) -> usize;

    /// Total down-sampling factor of the feature map (32, or 16 with last stride 1).
    fn output_stride(&self) -> usize;
}

/// A model with its own pooled feature (the embedding a ReID evaluation
/// compares), e.g. a ViT's class token or ConvNeXt's `LayerNorm(GAP)`.
pub trait Embed {
    /// Images `[batch, 3, height, width]` (normalised) → embeddings
    /// `[batch, self.embedding_dim()]`, in inference mode. Errors on inputs
    /// the model cannot take.
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError>;

    /// Channels of [`Embed::embed`]'s output.
    fn embedding_dim(&self) -> usize;
}
