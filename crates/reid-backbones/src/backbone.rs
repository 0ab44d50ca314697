//! The trait every backbone implements.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

use crate::error::BackboneError;
use crate::pool::GlobalPool;

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

    /// The model's own pooled feature, the one CION evaluates and the
    /// pre-training recipes put their projection heads on: `[batch, 3, H,
    /// W]` → `[batch, self.pooled_dim()]`, in the module's current mode
    /// (training statistics on an autodiff device after `train()`).
    ///
    /// Default: global average pooling of [`Backbone::forward_features`]
    /// (ResNet, RepViT, Swin, FastViT). Families with their own feature
    /// override it: GhostNet (`conv_head` → ReLU after the pooling),
    /// ConvNeXt and EdgeNeXt (`LayerNorm` of the pooled map), ViT and VOLO
    /// (the class token).
    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        GlobalPool::Avg.forward(self.forward_features(images))
    }

    /// Channels of [`Backbone::forward_pooled`]'s output (default
    /// [`Backbone::out_channels`]).
    fn pooled_dim(&self) -> usize {
        self.out_channels()
    }

    /// [`Backbone::forward_features`] of a training step, with stochastic
    /// depth drawn from `seed` where the family draws it from a seed (ViT,
    /// Swin: the same seed gives the same dropped paths, so a resumed run
    /// repeats them). Default: the seed is unused (ResNet has no drop-path;
    /// ConvNeXt and VOLO apply theirs on an autodiff device by themselves).
    fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        let _ = seed;
        self.forward_features(images)
    }

    /// [`Backbone::forward_pooled`] of a training step, with stochastic
    /// depth drawn from `seed` (see [`Backbone::forward_features_seeded`]).
    fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        let _ = seed;
        self.forward_pooled(images)
    }
}

/// A backbone a training recipe can own: a burn [`Module`] (so it can be
/// moved to an autodiff device, optimised, checkpointed and averaged) that
/// is also a [`Backbone`]. Implemented for every such type; the recipes of
/// `reid-train` are generic over it, so any family of this crate — or a
/// user's own module — trains through the same code.
pub trait TrainBackbone: Backbone + Module + ModuleDisplay {}

impl<T: Backbone + Module + ModuleDisplay> TrainBackbone for T {}

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

/// Implements [`Backbone`] for a trunk whose inherent `forward(images)`
/// computes the feature map `[batch, out_channels, h, w]` and whose
/// `out_channels` field holds its channels. `stride:` is the output stride,
/// a number or the name of the field holding it; `pooled:` names the
/// model's own pooled feature `[batch, pooled_dim]` (default: global
/// average pooling of the map) and `pooled_dim:` the field path of a layer
/// whose weight's first dimension is its width (default `out_channels`).
macro_rules! trunk_backbone {
    (
        $ty:ty,
        stride: $stride:tt
        $(, pooled: $pooled:ident)?
        $(, pooled_dim: $($dim:ident).+)?
    ) => {
        impl $crate::backbone::Backbone for $ty {
            fn forward_features(
                &self,
                images: ::burn::tensor::Tensor<4>,
            ) -> ::burn::tensor::Tensor<4> {
                self.forward(images)
            }

            fn out_channels(&self) -> usize {
                self.out_channels
            }

            fn output_stride(&self) -> usize {
                $crate::backbone::trunk_backbone!(@stride self, $stride)
            }

            $(
                fn forward_pooled(
                    &self,
                    images: ::burn::tensor::Tensor<4>,
                ) -> ::burn::tensor::Tensor<2> {
                    self.$pooled(images)
                }
            )?

            $(
                fn pooled_dim(&self) -> usize {
                    self.$($dim).+.weight.dims()[0]
                }
            )?
        }
    };
    (@stride $self:ident, $stride:literal) => {
        $stride
    };
    (@stride $self:ident, $field:ident) => {
        $self.$field
    };
}

pub(crate) use trunk_backbone;
