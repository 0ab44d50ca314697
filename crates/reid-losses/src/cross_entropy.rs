//! Cross-entropy with label smoothing, in the two conventions of the toolkits.
//!
//! With `N` samples, `K` classes, logits `z` (`[N, K]`), labels `y` (`[N]`)
//! and `p = log_softmax(z)`:
//!
//! - **torchreid / BoT** ([`SmoothingConvention::Torchreid`]):
//!   `t = (1-ε)·onehot(y) + ε/K`, `loss = Σ_i Σ_k −t_ik·p_ik / N`.
//! - **fast-reid** ([`SmoothingConvention::FastReid`]): `t_ik = 1-ε` on the
//!   true class and `ε/(K-1)` elsewhere, `ℓ_i = Σ_k −t_ik·p_ik`,
//!   `loss = Σ_i ℓ_i / max(#{i : ℓ_i ≠ 0}, 1)`. The denominator counts the
//!   non-zero per-sample losses (usually `N`); set
//!   [`CrossEntropyConfig::divide_by_nonzero`] to `false` to divide by `N`.
//!
//! With `ε = 0` both reduce to the plain mean cross-entropy. fast-reid's
//! adaptive smoothing (`ε = −1`) is not implemented.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::LossError;
use crate::validate::{batch_matches, host_labels, labels_in_range, param_in};

const NAME: &str = "cross_entropy_label_smooth";

/// Which toolkit's label-smoothing target to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmoothingConvention {
    /// `(1-ε)·onehot + ε/K` (Szegedy et al.), as in torchreid and BoT.
    #[default]
    Torchreid,
    /// `1-ε` on the true class and `ε/(K-1)` elsewhere, as in fast-reid.
    FastReid,
}

/// Settings of [`cross_entropy_label_smooth`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropyConfig {
    /// Smoothing `ε` in `[0, 1]` (default 0.1).
    pub epsilon: f64,
    /// The target convention (default torchreid).
    pub convention: SmoothingConvention,
    /// fast-reid only: divide the summed loss by the number of non-zero
    /// per-sample losses (upstream behaviour, default `true`) instead of `N`.
    pub divide_by_nonzero: bool,
}

impl Default for CrossEntropyConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.1,
            convention: SmoothingConvention::Torchreid,
            divide_by_nonzero: true,
        }
    }
}

impl CrossEntropyConfig {
    /// The fast-reid convention with `ε = 0.1` and upstream normalisation.
    pub fn fast_reid() -> Self {
        Self {
            convention: SmoothingConvention::FastReid,
            ..Self::default()
        }
    }
}

/// Label-smoothed cross-entropy of `logits` (`[batch, classes]`) against
/// integer `labels` (`[batch]`, each in `0..classes`); returns a scalar
/// tensor of shape `[1]` (nats). See the module docs for the formulas.
///
/// # Errors
/// [`LossError`] when the batch sizes differ, an input is empty, a label is
/// out of range, `ε ∉ [0, 1]`, or the fast-reid convention is asked for
/// `ε > 0` with a single class.
pub fn cross_entropy_label_smooth(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    config: &CrossEntropyConfig,
) -> Result<Tensor<1>, LossError> {
    let [n, k] = logits.dims();
    batch_matches(NAME, "logits", [n, k], &labels)?;
    labels_in_range(NAME, &host_labels(&labels), k)?;
    let eps = config.epsilon;
    param_in(NAME, "epsilon", eps, 0.0, 1.0, "0 <= epsilon <= 1")?;

    let (on, off) = match config.convention {
        SmoothingConvention::Torchreid => (1.0 - eps + eps / k as f64, eps / k as f64),
        SmoothingConvention::FastReid => {
            if k < 2 && eps > 0.0 {
                return Err(LossError::InvalidParameter {
                    loss: NAME,
                    name: "classes",
                    value: k as f64,
                    expected: "at least 2 classes for fast-reid smoothing with epsilon > 0",
                });
            }
            let off = if k < 2 { 0.0 } else { eps / (k - 1) as f64 };
            (1.0 - eps, off)
        }
    };
    let onehot = labels.one_hot::<2>(k).float();
    let target = onehot.mul_scalar(on - off).add_scalar(off);
    let per_sample = log_softmax(logits, 1).mul(target).sum_dim(1).neg(); // [N, 1]

    let loss = match config.convention {
        SmoothingConvention::FastReid if config.divide_by_nonzero => {
            let count = per_sample
                .clone()
                .not_equal_elem(0.0)
                .float()
                .sum()
                .clamp_min(1.0)
                .detach();
            per_sample.sum().div(count)
        }
        _ => per_sample.sum().div_scalar(n as f64),
    };
    Ok(loss)
}
