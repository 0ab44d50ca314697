//! Depth-wise `kh×kw` convolutions (one group per channel: ConvNeXt's and
//! EdgeNeXt's 7×7, GhostNet's cheap and depth-wise operations, RepViT's and
//! FastViT's token mixers) whose backward products run as direct
//! plane-by-plane kernels on the flex CPU backend, registered with burn's
//! autodiff as one custom operation.
//!
//! burn-flex has a vectorised depth-wise forward kernel, which stays (a
//! plane-by-plane forward written like the [`kernels`] here measured 1.3–1.7×
//! its time), but takes burn's generic backward (burn-backend 0.22.1,
//! `backend/ops/modules/conv.rs`: the input gradient as a grouped transposed
//! convolution, the weight gradient one group at a time); the [`kernels`]
//! make each tap one vectorised pass over a row (forward + backward of a
//! layer in 0.23–0.81× the time, measured in `docs/benchmarks.md`). [`try_conv2d`] (and so
//! [`dispatch::conv2d`](super::dispatch::conv2d)) takes this path when the tensors live
//! on flex with autodiff, are `f32`, and the convolution has
//! `groups = c_in = c_out`, dilation 1 and symmetric explicit (or no)
//! padding; anything else goes to burn's own `conv2d`, so the result is the
//! same function either way (up to the order of float additions; the tests
//! check both paths against each other, values and gradients).

pub mod kernels;

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;

use super::spatial::Geometry;

/// A depth-wise convolution's shape: a [`Geometry`] with `c_in = c_out`
/// (the channels), one group per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise(pub Geometry);

/// `conv.forward(x)` (`x: [batch, c, h, w]` → `[batch, c, h', w']`) with the
/// plane-by-plane backward, or `None` when it does
/// not apply ([`fast_path`]) or the tensors are not on autodiff flex.
pub fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    super::conv::through(conv, x, fast_path(conv, x), flex::run)
}

/// The geometry of `conv` applied to `x` when the depth-wise kernels compute
/// its gradients: `groups = c_in = c_out` (weight `[c, 1, kh, kw]`), dilation 1,
/// symmetric explicit (or no) padding, `f32` tensors, an output of at least
/// one pixel and the `fast-cpu` feature; `None` otherwise.
pub fn fast_path(conv: &Conv2d, x: &Tensor<4>) -> Option<Depthwise> {
    let per_group = conv.weight.dims()[1];
    super::spatial::geometry(conv, x)
        .filter(|g| conv.groups == g.c_in && g.c_out == g.c_in && per_group == 1)
        .map(Depthwise)
}

/// burn's grouped `conv2d` with the options of a [`Depthwise`] geometry: the
/// forward product of the fast path, and the reference it is checked
/// against.
pub fn reference(x: Tensor<4>, weight: Tensor<4>, geometry: &Depthwise) -> Tensor<4> {
    let g = &geometry.0;
    module::conv2d(
        x,
        weight,
        None,
        ConvOptions::new(g.stride, g.padding, [1, 1], g.c_in),
    )
}

#[cfg(feature = "fast-cpu")]
mod flex;

#[cfg(not(feature = "fast-cpu"))]
mod flex {
    //! Without flex there is no fast path: every call falls back.
    use super::Depthwise;
    use burn::tensor::Tensor;

    /// Always declines.
    pub fn run(_: &Tensor<4>, _: Tensor<4>, _: Depthwise) -> Option<Tensor<4>> {
        None
    }
}
