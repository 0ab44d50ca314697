//! Depth-wise `kh×kw` convolutions (one group per channel: ConvNeXt's and
//! EdgeNeXt's 7×7, GhostNet's cheap and depth-wise operations, RepViT's and
//! FastViT's token mixers) whose backward products run as direct
//! plane-by-plane kernels on the flex CPU backend, registered with burn's
//! autodiff as one custom operation.
//!
//! burn-flex has a vectorised depth-wise forward kernel, which stays (a
//! plane-by-plane forward written like the [`kernels`] here measured 1.3–1.7×
//! its time), but computes the gradients as grouped convolutions; the
//! [`kernels`] make each tap one vectorised pass over a row (measured in
//! `docs/benchmarks.md`). [`conv2d`] takes this path when the tensors live
//! on flex with autodiff, are `f32`, and the convolution has
//! `groups = c_in = c_out`, dilation 1 and symmetric explicit (or no)
//! padding; anything else goes to burn's own `conv2d`, so the result is the
//! same function either way (up to the order of float additions; the tests
//! check both paths against each other, values and gradients).

pub mod kernels;

use burn::nn::conv::Conv2d;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

use super::spatial::Geometry;

/// A depth-wise convolution's shape: a [`Geometry`] with `c_in = c_out`
/// (the channels), one group per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise(pub Geometry);

/// `conv.forward(x)` (`x: [batch, c, h, w]` → `[batch, c, h', w']`) with the
/// plane-by-plane backward where it applies ([`try_conv2d`]), else burn's
/// own convolution.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    try_conv2d(conv, &x).unwrap_or_else(|| conv.forward(x))
}

/// `conv.forward(x)` with the plane-by-plane backward, or `None` when it does
/// not apply ([`fast_path`]) or the tensors are not on autodiff flex.
pub fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let geometry = fast_path(conv, x)?;
    let y = flex::run(x, conv.weight.val(), geometry)?;
    Some(super::conv::add_bias(conv, y))
}

/// The geometry of `conv` applied to `x` when the depth-wise kernels compute
/// its gradients: `groups = c_in = c_out` (weight `[c, 1, kh, kw]`), dilation 1,
/// symmetric explicit (or no) padding, `f32` tensors, an output of at least
/// one pixel and the `fast-cpu` feature; `None` otherwise.
pub fn fast_path(conv: &Conv2d, x: &Tensor<4>) -> Option<Depthwise> {
    let padding = super::conv::symmetric_padding(&conv.padding)?;
    let [c_out, per_group, kh, kw] = conv.weight.dims();
    let [batch, c_in, h, w] = x.dims();
    let depthwise = conv.groups == c_in
        && c_out == c_in
        && per_group == 1
        && conv.dilation == [1, 1]
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32;
    let geometry = Geometry {
        batch,
        c_in,
        c_out,
        input: [h, w],
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
    };
    (cfg!(feature = "fast-cpu") && depthwise && batch * c_in > 0)
        .then_some(Depthwise(geometry))
        .filter(|d| d.0.output().is_some_and(|[oh, ow]| oh * ow > 0))
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
