//! The BNNeck embedding head (Luo et al., "Bag of Tricks", 2019) in
//! fast-reid's `EmbeddingHead` layout, with the TransReID variant.
//!
//! feature map `[batch, C, h, w]` → pool → (optional 1×1 conv to `E`,
//! no bias) → BatchNorm with a frozen bias (the BNNeck) → class logits
//! against a bias-free weight `[num_classes, E]`.
//!
//! PyTorch names (fast-reid ≥ v1.3): `pool_layer.p` (GeM only),
//! `bottleneck.0.weight` (conv, with an embedding) and `bottleneck.{0|1}.*`
//! (the BN), `weight`. burn paths: `pool_layer.p`, `embedding.weight`,
//! `neck.*`, `weight` (see `crate::import`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::classifier::ClassifierKind;
use crate::error::BackboneError;
use crate::norm::{TorchBatchNorm, batch_norm};
use crate::pool::{GemPool, GemPoolConfig, GlobalPool};

/// Pooling of the head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum HeadPool {
    /// Global average pooling (BoT, TransReID-style CNNs).
    Avg,
    /// Global max pooling.
    Max,
    /// GeM with a trainable exponent initialised to 3, clamp 1e-6 (fast-reid
    /// `gempoolP`, SBS/MGN).
    Gem,
}

/// Which feature the head returns at test time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NeckFeat {
    /// The pooled (and embedded) feature before the BNNeck (TransReID's
    /// `NECK_FEAT: before`, the CION recipes).
    Before,
    /// The BNNeck output (fast-reid's evaluation output, always).
    After,
}

/// Configuration of an [`EmbeddingHead`].
#[derive(Config, Debug)]
pub struct EmbeddingHeadConfig {
    /// Channels of the backbone's feature map (2048 for ResNet50).
    pub in_channels: usize,
    /// Output size of the 1×1 embedding conv; 0 for none (BoT), 256 in MGN.
    #[config(default = 0)]
    pub embedding_dim: usize,
    /// Number of training identities; 0 for no classifier (inference only).
    #[config(default = 0)]
    pub num_classes: usize,
    /// Pooling.
    #[config(default = "HeadPool::Avg")]
    pub pool: HeadPool,
    /// Feature returned by [`EmbeddingHead::embed`].
    #[config(default = "NeckFeat::After")]
    pub test_feature: NeckFeat,
    /// Logit computation.
    #[config(default = "ClassifierKind::Linear")]
    pub classifier: ClassifierKind,
    /// Standard deviation of the normal initialisation of the class weights
    /// (0.01 in fast-reid, 0.001 in TransReID).
    #[config(default = 0.01)]
    pub classifier_std: f64,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
}

impl EmbeddingHeadConfig {
    /// fast-reid's BoT head: average pooling, BNNeck, linear classifier
    /// (std 0.01), BNNeck output at test time.
    pub fn fastreid(in_channels: usize, num_classes: usize) -> Self {
        Self::new(in_channels).with_num_classes(num_classes)
    }

    /// TransReID's head (used by the CION fine-tuning recipes): BNNeck with a
    /// frozen bias, bias-free linear classifier initialised with std 0.001,
    /// pre-BN feature at test time.
    pub fn transreid(in_channels: usize, num_classes: usize) -> Self {
        Self::new(in_channels)
            .with_num_classes(num_classes)
            .with_classifier_std(0.001)
            .with_test_feature(NeckFeat::Before)
    }

    /// Builds the head on `device`: BNNeck γ=1, β=0 with β frozen (no
    /// gradient), class weights `N(0, classifier_std²)`.
    pub fn init(&self, device: &Device) -> Result<EmbeddingHead, BackboneError> {
        if self.in_channels == 0 {
            return Err(BackboneError::InvalidConfig(
                "head in_channels must be positive".into(),
            ));
        }
        if !(self.classifier_std.is_finite() && self.classifier_std > 0.0) {
            return Err(BackboneError::InvalidConfig(format!(
                "classifier_std must be positive, got {}",
                self.classifier_std
            )));
        }
        let dim = if self.embedding_dim > 0 {
            self.embedding_dim
        } else {
            self.in_channels
        };
        let embedding = (self.embedding_dim > 0).then(|| {
            Conv2dConfig::new([self.in_channels, self.embedding_dim], [1, 1])
                .with_bias(false)
                .init(device)
        });
        let mut neck = batch_norm(dim, self.bn_eps, device);
        neck.beta = neck.beta.set_require_grad(false);
        let weight = (self.num_classes > 0).then(|| {
            Param::from_tensor(Tensor::random(
                [self.num_classes, dim],
                Distribution::Normal(0.0, self.classifier_std),
                device,
            ))
        });
        let (pool_layer, pool) = match self.pool {
            HeadPool::Gem => (Some(GemPoolConfig::new().init(device)), GlobalPool::Avg),
            HeadPool::Avg => (None, GlobalPool::Avg),
            HeadPool::Max => (None, GlobalPool::Max),
        };
        Ok(EmbeddingHead {
            pool_layer,
            pool,
            embedding,
            neck,
            weight,
            test_feature: self.test_feature,
            classifier: self.classifier,
        })
    }
}

/// What the head computes for a batch.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Pooled (and embedded) feature before the BNNeck, `[batch, dim]`.
    pub before_neck: Tensor<2>,
    /// BNNeck output, `[batch, dim]`.
    pub after_neck: Tensor<2>,
}

/// BNNeck embedding head; see the module documentation.
#[derive(Module, Debug)]
pub struct EmbeddingHead {
    /// GeM pooling (when configured), PyTorch `pool_layer`.
    pub pool_layer: Option<GemPool>,
    /// Parameter-free pooling used when `pool_layer` is `None`.
    #[module(skip)]
    pub pool: GlobalPool,
    /// 1×1 embedding conv `[E, C, 1, 1]`, no bias.
    pub embedding: Option<Conv2d>,
    /// The BNNeck (bias frozen).
    pub neck: BatchNorm,
    /// Class weights `[num_classes, dim]` (fast-reid `weight`).
    pub weight: Option<Param<Tensor<2>>>,
    /// Feature returned by [`EmbeddingHead::embed`].
    #[module(skip)]
    pub test_feature: NeckFeat,
    /// Logit computation.
    #[module(skip)]
    pub classifier: ClassifierKind,
}

impl EmbeddingHead {
    /// `features` `[batch, C, h, w]` → [`HeadOutput`] (`[batch, dim]` each).
    pub fn forward(&self, features: Tensor<4>) -> HeadOutput {
        let pooled = match &self.pool_layer {
            Some(gem) => gem.forward(features),
            None => self.pool.forward(features),
        };
        let [b, c] = pooled.dims();
        let mut x = pooled.reshape([b, c, 1, 1]);
        if let Some(conv) = &self.embedding {
            x = conv.forward(x);
        }
        let [_, d, _, _] = x.dims();
        let after = self.neck.forward_torch(x.clone()).reshape([b, d]);
        HeadOutput {
            before_neck: x.reshape([b, d]),
            after_neck: after,
        }
    }

    /// The test-time embedding `[batch, dim]` (see [`NeckFeat`]).
    pub fn embed(&self, features: Tensor<4>) -> Tensor<2> {
        let out = self.forward(features);
        match self.test_feature {
            NeckFeat::Before => out.before_neck,
            NeckFeat::After => out.after_neck,
        }
    }

    /// Class logits `[batch, num_classes]` of the BNNeck output (as in
    /// fast-reid and TransReID); `targets` `[batch]` are needed by the
    /// circle softmax. An error when the head has no classifier.
    pub fn logits(
        &self,
        output: &HeadOutput,
        targets: Tensor<1, Int>,
    ) -> Result<Tensor<2>, BackboneError> {
        let weight = self.weight.as_ref().ok_or_else(|| {
            BackboneError::InvalidConfig("this head has no classifier (num_classes 0)".into())
        })?;
        Ok(self
            .classifier
            .logits(output.after_neck.clone(), weight.val(), targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bnneck_bias_is_frozen_and_shapes_follow_the_config() {
        let device = Device::flex();
        let head = EmbeddingHeadConfig::fastreid(8, 5)
            .with_embedding_dim(4)
            .with_pool(HeadPool::Gem)
            .init(&device)
            .unwrap();
        assert!(!head.neck.beta.is_require_grad());
        let x = Tensor::<4>::ones([3, 8, 2, 2], &device);
        let out = head.forward(x);
        assert_eq!(out.before_neck.dims(), [3, 4]);
        assert_eq!(out.after_neck.dims(), [3, 4]);
        let t = Tensor::<1, Int>::from_ints([0, 1, 4], &device);
        assert_eq!(head.logits(&out, t).unwrap().dims(), [3, 5]);
        let bare = EmbeddingHeadConfig::new(8).init(&device).unwrap();
        let out = bare.forward(Tensor::<4>::ones([1, 8, 2, 2], &device));
        let t = Tensor::<1, Int>::from_ints([0], &device);
        assert!(bare.logits(&out, t).is_err());
    }

    #[test]
    fn transreid_variant_returns_the_pre_bn_feature() {
        let device = Device::flex();
        let head = EmbeddingHeadConfig::transreid(2, 3).init(&device).unwrap();
        let x = Tensor::<4>::from_floats([[[[1.0, 3.0]], [[2.0, 6.0]]]], &device);
        let v: Vec<f32> = head.embed(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, vec![2.0, 4.0]);
    }
}
