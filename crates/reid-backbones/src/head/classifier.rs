//! Classifier logits on top of an embedding head.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// How class logits are computed from the head's feature `[batch, dim]` and
/// the class weights `[num_classes, dim]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClassifierKind {
    /// Plain inner product `f · W_jᵀ` (fast-reid `Linear`, TransReID's
    /// bias-free `nn.Linear`).
    Linear,
    /// fast-reid's `CircleSoftmax` (Sun et al. 2020, classifier form) with
    /// scale `s` and margin `m` (64 and 0.35 in SBS/MGN): with
    /// `sim = cos(f, W_j)`, `α_p = relu(1 + m − sim)` and
    /// `α_n = relu(sim + m)` (both without gradient), the target logit is
    /// `s·α_p·(sim − (1 − m))` and the others `s·α_n·(sim − m)`.
    CircleSoftmax {
        /// Scale `s`.
        scale: f64,
        /// Margin `m`.
        margin: f64,
    },
}

impl ClassifierKind {
    /// fast-reid's circle-softmax defaults (scale 64, margin 0.35).
    pub fn circle() -> Self {
        Self::CircleSoftmax {
            scale: 64.0,
            margin: 0.35,
        }
    }

    /// Logits `[batch, num_classes]` of `features` `[batch, dim]` against
    /// `weight` `[num_classes, dim]`; `targets` `[batch]` (class indices)
    /// place the circle-softmax target margin and are unused by
    /// [`ClassifierKind::Linear`].
    pub fn logits(
        self,
        features: Tensor<2>,
        weight: Tensor<2>,
        targets: Tensor<1, Int>,
    ) -> Tensor<2> {
        match self {
            Self::Linear => features.matmul(weight.transpose()),
            Self::CircleSoftmax { scale, margin } => {
                let [b, _] = features.dims();
                let [c, _] = weight.dims();
                let sim = l2_normalize(features).matmul(l2_normalize(weight).transpose());
                let alpha_p = (sim.clone().neg() + (1.0 + margin)).clamp_min(0.0).detach();
                let alpha_n = (sim.clone() + margin).clamp_min(0.0).detach();
                let s_p = alpha_p * (sim.clone() - (1.0 - margin)) * scale;
                let s_n = alpha_n * (sim - margin) * scale;
                let device = targets.device();
                let classes = Tensor::<1, Int>::arange(0..c as i64, &device)
                    .reshape([1, c])
                    .expand([b, c]);
                let mask = targets.reshape([b, 1]).expand([b, c]).equal(classes);
                s_n.mask_where(mask, s_p)
            }
        }
    }
}

/// Rows divided by their L2 norm (clamped at 1e-12, like `F.normalize`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
