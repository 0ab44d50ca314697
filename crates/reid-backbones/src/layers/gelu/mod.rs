//! The exact GELU, `0.5 · x · (1 + erf(x / √2))` (PyTorch's default
//! `nn.GELU()`), with a vectorised erf on the flex CPU backend, forward and
//! backward registered with burn's autodiff as one custom operation.
//!
//! burn-flex computes GELU with a library `erff` call per element (and its
//! derivative with another erf and an exp), which a profile of ConvNeXt-T
//! inference put at 15–20 % of the time. [`kernels`] evaluates erf as a
//! rational function in double precision (within about one `f32` ulp of
//! the exact value; tests below and in
//! `tests/integration/gelu.rs`). [`gelu`] takes this path for `f32`
//! tensors on flex (with or without autodiff) and burn's own `gelu`
//! everywhere else.

pub mod kernels;

use burn::tensor::Tensor;
use burn::tensor::activation;

/// GELU of `x` (any shape `[d_0, …, d_{D-1}]`, element-wise): the fast path
/// where it applies ([`try_gelu`]), else burn's `activation::gelu`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    try_gelu(&x).unwrap_or_else(|| activation::gelu(x))
}

/// GELU through the vectorised kernels, or `None` when they do not apply
/// (not `f32`, not on flex, or the `fast-cpu` feature off).
pub fn try_gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    flex::run(x)
}

#[cfg(feature = "fast-cpu")]
mod flex;

#[cfg(not(feature = "fast-cpu"))]
mod flex {
    //! Without flex there is no fast path: every call falls back.
    use burn::tensor::Tensor;

    /// Always declines.
    pub fn run<const D: usize>(_: &Tensor<D>) -> Option<Tensor<D>> {
        None
    }
}
