//! 1×1 convolutions as whole-image GEMMs on the flex CPU backend, forward
//! and both backward products, registered with burn's autodiff as one
//! custom operation.
//!
//! burn-flex runs a convolution's weight gradient as a convolution whose
//! kernel is the whole output gradient and its input gradient as a
//! transposed 3-D convolution. For a 1×1 convolution both are single
//! matrix products per image; [`kernels`] computes them so (on a ResNet-50
//! layer at batch 16, 256×128: 3–9× faster than burn's backward, measured
//! in `docs/benchmarks.md`). [`conv2d`] takes this path when the tensors
//! live on flex (with or without autodiff), are `f32`, and the convolution
//! is 1×1 with no padding, no dilation and one group; anything else goes
//! to burn's own `conv2d`, so the result is the same function either way
//! (up to the order of float additions; the parity tests check both paths
//! against each other and against PyTorch).

pub mod kernels;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

pub use kernels::Geometry;

/// `conv.forward(x)` (`x: [batch, c_in, h, w]` → `[batch, c_out, h', w']`)
/// through the GEMM kernels where they apply ([`try_conv2d`]), else through
/// burn's own convolution.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    try_conv2d(conv, &x).unwrap_or_else(|| conv.forward(x))
}

/// `conv.forward(x)` through the GEMM kernels, or `None` when they do not
/// apply: not a 1×1 convolution with zero padding, dilation 1 and one group
/// ([`fast_path`]), or tensors not on flex.
pub fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    super::conv::through(conv, x, fast_path(conv, x), flex::run)
}

/// `gelu(conv.forward(x))` in one pass over the output (GEMM, bias and
/// GELU per image while it is in cache), for inference: `None` where
/// [`try_conv2d`] declines, under autodiff, or without the vectorised GELU
/// (not `f32`). The same values as the two calls one after the other.
pub fn try_conv2d_gelu(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let g = fast_path(conv, x)?;
    flex::run_gelu(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), g)
}

/// The geometry of `conv` applied to `x` when the GEMM kernels compute it:
/// a 1×1 kernel, zero padding, dilation 1, one group, `f32` tensors and the
/// `fast-cpu` feature (flex); `None` otherwise.
pub fn fast_path(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    let zero_padding = matches!(
        conv.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    let [c_out, c_in, kh, kw] = conv.weight.dims();
    let [batch, x_c, h, w] = x.dims();
    let plain = [kh, kw] == [1, 1]
        && zero_padding
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && x_c == c_in
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32;
    (cfg!(feature = "fast-cpu") && plain && batch * h * w > 0).then_some(Geometry {
        batch,
        c_in,
        c_out,
        input: [h, w],
        stride: conv.stride,
    })
}

/// burn's `conv2d` with the options of a [`Geometry`]: the reference the
/// fast path is checked against.
pub fn reference(x: Tensor<4>, weight: Tensor<4>, geometry: &Geometry) -> Tensor<4> {
    module::conv2d(
        x,
        weight,
        None,
        ConvOptions::new(geometry.stride, [0, 0], [1, 1], 1),
    )
}

#[cfg(feature = "fast-cpu")]
mod flex;

#[cfg(not(feature = "fast-cpu"))]
mod flex {
    //! Without flex there is no fast path: every call falls back.
    use super::Geometry;
    use burn::tensor::Tensor;

    /// Always declines.
    pub fn run(_: &Tensor<4>, _: Tensor<4>, _: Geometry) -> Option<Tensor<4>> {
        None
    }

    /// Always declines.
    pub fn run_gelu(
        _: &Tensor<4>,
        _: Tensor<4>,
        _: Option<Tensor<1>>,
        _: Geometry,
    ) -> Option<Tensor<4>> {
        None
    }
}
