//! Training-mode BatchNorm, optionally fused with the ReLU that follows
//! it, on the flex CPU backend as one custom autodiff operation.
//!
//! burn 0.22's `batch_norm_train` on flex is composed of tensor
//! operations: two transposed copies of the input for the statistics and
//! four element-wise passes for the output, and about as many again in
//! the backward step (a `perf` profile of the ResNet-50 BoT step put the
//! transposed copies alone at 6–9 % of the step). [`kernels`] reads the
//! input twice for the statistics and once for the output, and the
//! backward step reads the input and gradient twice and writes once, with
//! the ReLU's mask recomputed instead of stored. [`batch_norm_train`]
//! takes this path for `f32` tensors on flex (with or without autodiff)
//! and burn's own `batch_norm_train` (then `relu`) everywhere else; the
//! tests compare the two, values and gradients.

pub mod kernels;

use burn::tensor::Tensor;
use burn::tensor::activation::relu as relu_op;
use burn::tensor::module::{self, BatchNormTrainOutput};

/// BatchNorm of `x` (`[batch, channels, …]`) with the batch's own
/// statistics, `γ`, `β` (`[channels]`) and `eps` added to the variance,
/// followed by a ReLU when `relu`: the output (shape of `x`) and the batch
/// mean and biased variance (`[channels]`, detached), as burn's
/// `module::batch_norm_train` returns them. The fast path where it applies
/// ([`try_batch_norm_train`]), burn's otherwise.
///
/// # Panics
/// As burn's: when `x` has fewer than two dimensions or `γ`/`β` do not
/// have `channels` values.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    if let Some(out) = try_batch_norm_train(&x, &gamma, &beta, eps, relu) {
        return out;
    }
    let mut out = module::batch_norm_train(x, gamma, beta, eps);
    if relu {
        out.output = relu_op(out.output);
    }
    out
}

/// [`batch_norm_train`] through the fused kernels, or `None` when they do
/// not apply (not `f32`, not on flex, the `fast-cpu` feature off, or
/// shapes that do not fit).
pub fn try_batch_norm_train<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    eps: f64,
    relu: bool,
) -> Option<BatchNormTrainOutput<D>> {
    flex::run(x, gamma, beta, eps, relu)
}

#[cfg(feature = "fast-cpu")]
mod flex;

#[cfg(not(feature = "fast-cpu"))]
mod flex {
    //! Without flex there is no fast path: every call falls back.
    use burn::tensor::Tensor;
    use burn::tensor::module::BatchNormTrainOutput;

    /// Always declines.
    pub fn run<const D: usize>(
        _: &Tensor<D>,
        _: &Tensor<1>,
        _: &Tensor<1>,
        _: f64,
        _: bool,
    ) -> Option<BatchNormTrainOutput<D>> {
        None
    }
}
