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
//! With `ε = 0` both reduce to the plain mean cross-entropy.
//!
//! **fast-reid adaptive smoothing** (`ε = −1`, [`ADAPTIVE_EPSILON`], fast-reid
//! convention only): each sample gets its own
//! `ε_i = α·softmax(z_i)[y_i]` with `α` = [`ADAPTIVE_SMOOTHING_ALPHA`] = 0.2
//! (fast-reid's `CE.ALPHA`), computed without gradient (upstream builds the
//! targets under `no_grad`), then the fast-reid target and normalisation
//! above. [`cross_entropy_adaptive_smooth`] takes another `α`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use derive_setters::Setters;

use crate::LossError;
use crate::validate::{batch_matches, host_labels, labels_in_range, param_in};

const NAME: &str = "cross_entropy_label_smooth";

/// The `ε` that switches on fast-reid's adaptive smoothing (`CE.EPSILON = -1`).
pub const ADAPTIVE_EPSILON: f64 = -1.0;

/// fast-reid's `α` of adaptive smoothing (`CE.ALPHA`, 0.2).
pub const ADAPTIVE_SMOOTHING_ALPHA: f64 = 0.2;

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
#[derive(Debug, Clone, Copy, PartialEq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct CrossEntropyConfig {
    /// Smoothing `ε` in `[0, 1]` (default 0.1), or [`ADAPTIVE_EPSILON`]
    /// (`−1`) for fast-reid's adaptive smoothing (fast-reid convention only).
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

    /// The fast-reid convention with adaptive smoothing (`ε = −1`, `α = 0.2`)
    /// and upstream normalisation.
    pub fn fast_reid_adaptive() -> Self {
        Self {
            epsilon: ADAPTIVE_EPSILON,
            ..Self::fast_reid()
        }
    }
}

/// Label-smoothed cross-entropy of `logits` (`[batch, classes]`) against
/// integer `labels` (`[batch]`, each in `0..classes`); returns a scalar
/// tensor of shape `[1]` (nats). See the module docs for the formulas.
///
/// # Errors
/// [`LossError`] when the batch sizes differ, an input is empty, a label is
/// out of range, `ε ∉ [0, 1]` (other than `−1` with the fast-reid
/// convention), or the fast-reid convention is asked for `ε ≠ 0` with a
/// single class.
pub fn cross_entropy_label_smooth(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    config: &CrossEntropyConfig,
) -> Result<Tensor<1>, LossError> {
    if config.epsilon == ADAPTIVE_EPSILON && config.convention == SmoothingConvention::FastReid {
        return cross_entropy_adaptive_smooth(
            logits,
            labels,
            ADAPTIVE_SMOOTHING_ALPHA,
            config.divide_by_nonzero,
        );
    }
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
        SmoothingConvention::FastReid if config.divide_by_nonzero => mean_over_nonzero(per_sample),
        _ => per_sample.sum().div_scalar(n as f64),
    };
    Ok(loss)
}

/// fast-reid's adaptive label smoothing with a chosen `α` (`[0, 1]`):
/// `ε_i = α·softmax(z_i)[y_i]` (no gradient through it), target `1 − ε_i`
/// on the true class and `ε_i/(K−1)` elsewhere, `ℓ_i = Σ_k −t_ik·log_softmax(z)_ik`,
/// summed and divided by the number of non-zero `ℓ_i` (or by `N` when
/// `divide_by_nonzero` is `false`). `logits` `[batch, classes]`, `labels`
/// `[batch]` → `[1]` (nats). `α = 0.2` is what `ε = −1` in
/// [`CrossEntropyConfig`] selects.
///
/// # Errors
/// [`LossError`] when the batch sizes differ, an input is empty, a label is
/// out of range, `α ∉ [0, 1]`, or there are fewer than 2 classes.
pub fn cross_entropy_adaptive_smooth(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    alpha: f64,
    divide_by_nonzero: bool,
) -> Result<Tensor<1>, LossError> {
    let [n, k] = logits.dims();
    batch_matches(NAME, "logits", [n, k], &labels)?;
    labels_in_range(NAME, &host_labels(&labels), k)?;
    param_in(NAME, "alpha", alpha, 0.0, 1.0, "0 <= alpha <= 1")?;
    if k < 2 {
        return Err(LossError::InvalidParameter {
            loss: NAME,
            name: "classes",
            value: k as f64,
            expected: "at least 2 classes for fast-reid adaptive smoothing",
        });
    }
    let onehot = labels.one_hot::<2>(k).float();
    let eps = burn::tensor::activation::softmax(logits.clone(), 1)
        .mul(onehot.clone())
        .sum_dim(1)
        .mul_scalar(alpha)
        .detach(); // [N, 1]
    let off = eps.clone().div_scalar((k - 1) as f64);
    let on = eps.neg().add_scalar(1.0);
    // t = onehot·on + (1 − onehot)·off
    let target = onehot.clone().mul(on) + onehot.neg().add_scalar(1.0).mul(off);
    let per_sample = log_softmax(logits, 1).mul(target).sum_dim(1).neg(); // [N, 1]
    Ok(if divide_by_nonzero {
        mean_over_nonzero(per_sample)
    } else {
        per_sample.sum().div_scalar(n as f64)
    })
}

/// The sum of the per-sample losses (`[N, 1]`) divided by how many of them
/// are non-zero (at least 1; the count carries no gradient).
fn mean_over_nonzero(per_sample: Tensor<2>) -> Tensor<1> {
    let count = per_sample
        .clone()
        .not_equal_elem(0.0)
        .float()
        .sum()
        .clamp_min(1.0)
        .detach();
    per_sample.sum().div(count)
}
