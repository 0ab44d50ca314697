//! `kh×kw` convolutions (ResNet's 3×3 and its 7×7 stem, the stems and
//! patch embeddings of the other families) whose three products run as
//! whole-image GEMMs on the flex CPU backend, registered with burn's
//! autodiff as one custom operation.
//!
//! burn-flex computes a convolution's weight gradient as a convolution
//! whose kernel is the whole output gradient (a long, skinny product per
//! image) and its input gradient as a transposed 3-D convolution. Through
//! each image's columns ([`kernels`]) both are single matrix products:
//! `dW = Σ_n G_n · C_nᵀ` and `dC_n = Wᵀ · G_n` folded back onto the image.
//! The forward product is the same columns times the weight, one GEMM per
//! image whose output is already NCHW: burn-flex's generic convolution
//! converts the batch to NHWC in one sequential pass and writes its GEMM
//! tiles back one strided element at a time (on BoT's ResNet-50 step the
//! forward took 0.49 s against 0.65 s through burn-flex's; on the mobile
//! stems and patch embeddings at inference a fraction of its time:
//! docs/benchmarks.md). [`conv2d`] takes this path when the tensors live
//! on flex (the custom operation with autodiff, [`try_forward`] without),
//! are `f32`, and the convolution has one group, dilation 1 and symmetric
//! explicit padding; anything else goes to burn's own `conv2d`, so the
//! result is the same function either way (up to the order of float
//! additions; the tests check both paths against each other, values and
//! gradients).

pub mod kernels;

use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};

pub use kernels::Geometry;

/// `conv.forward(x)` (`x: [batch, c_in, h, w]` → `[batch, c_out, h', w']`)
/// with the GEMM backward where it applies ([`try_conv2d`]), the column
/// GEMM forward at inference ([`try_forward`]), else burn's own
/// convolution.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    try_conv2d(conv, &x)
        .or_else(|| try_forward(conv, &x))
        .unwrap_or_else(|| conv.forward(x))
}

/// `conv.forward(x)` with the GEMM backward, or `None` when it does not
/// apply ([`fast_path`]) or the tensors are not on autodiff flex.
pub fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    super::conv::through(conv, x, fast_path(conv, x), flex::run)
}

/// `conv.forward(x)` (`x: [batch, c_in, h, w]` → `[batch, c_out, h', w']`,
/// bias included) for plain (inference) flex tensors through the
/// [`kernels`]' forward: each image's columns (`[c_in·kh·kw, h'·w']`, NCHW
/// order) times the weight as one GEMM whose output is already NCHW. `None` where
/// [`fast_path`] does not apply or the tensors are on autodiff or
/// elsewhere. The same function as burn's, up to the order of float
/// additions.
pub fn try_forward(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    super::conv::through(conv, x, fast_path(conv, x), flex::run_plain)
}

/// The geometry of `conv` applied to `x` when the GEMM backward computes
/// it: one group, dilation 1, symmetric explicit (or no) padding, `f32`
/// tensors, an output of at least one pixel and the `fast-cpu` feature;
/// `None` otherwise.
pub fn fast_path(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    let per_group = conv.weight.dims()[1];
    geometry(conv, x).filter(|g| conv.groups == 1 && per_group == g.c_in && g.c_out > 0)
}

/// The shape of `conv` applied to `x` (`c_in` = the input's channels,
/// `c_out` = the weight's first dimension) when a fast path can compute it
/// at all: symmetric explicit (or no) padding, dilation 1, `f32` input and
/// weight, a non-empty batch and output, the `fast-cpu` feature; `None`
/// otherwise. Each path adds its own conditions on the groups.
pub(crate) fn geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
    let padding = super::conv::symmetric_padding(&conv.padding)?;
    let [c_out, _, kh, kw] = conv.weight.dims();
    let [batch, c_in, h, w] = x.dims();
    let usable = cfg!(feature = "fast-cpu")
        && conv.dilation == [1, 1]
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && batch * c_in > 0;
    let g = Geometry {
        batch,
        c_in,
        c_out,
        input: [h, w],
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
    };
    (usable && g.output().is_some_and(|[oh, ow]| oh * ow > 0)).then_some(g)
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
    pub fn run_plain(_: &Tensor<4>, _: Tensor<4>, _: Geometry) -> Option<Tensor<4>> {
        None
    }
}
