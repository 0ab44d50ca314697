//! Depth-wise `kh×kw` convolutions (one group per channel: ConvNeXt's and
//! EdgeNeXt's 7×7, GhostNet's cheap and depth-wise operations, RepViT's and
//! FastViT's token mixers) on the flex CPU backend: at inference a forward
//! kernel of their own ([`forward`]), in training a backward of their own
//! ([`kernels`]) registered with burn's autodiff as one custom operation.
//!
//! - **Inference** ([`try_forward`]): burn-flex's depth-wise forward adds
//!   each tap as one pass over a row segment and runs one parallel task per
//!   plane, which suits wide planes but not the 16×8 and 8×4 maps of the
//!   mobile families (a plane-by-plane kernel written the same way measured
//!   no faster). [`forward`] pads each plane once and accumulates every tap
//!   of 64 outputs in registers, to the same bits as burn's; it also covers
//!   a channel multiplier (`c_out = m·c_in`, FastViT's patch embeddings),
//!   which burn computes as one small GEMM per group. Measured in
//!   `docs/benchmarks.md`.
//! - **Training** ([`try_conv2d`]): the forward stays burn-flex's; burn's
//!   generic backward (burn-backend 0.22.1, `backend/ops/modules/conv.rs`:
//!   the input gradient as a grouped transposed convolution, the weight
//!   gradient one group at a time) is replaced by the [`kernels`], which
//!   make each tap one vectorised pass over a row (forward + backward of a
//!   layer in 0.23–0.81× the time, measured in `docs/benchmarks.md`).
//!
//! [`dispatch::conv2d`](super::dispatch::conv2d) takes these paths when the
//! tensors live on flex, are `f32`, and the convolution has `groups = c_in`
//! (`c_out = c_in` for training), dilation 1 and symmetric explicit (or no)
//! padding; anything else goes to burn's own `conv2d`, so the result is the
//! same function either way (up to the order of float additions; the tests
//! check the paths against each other, values and gradients).

pub mod forward;
pub mod kernels;

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;

use super::spatial::Geometry;

/// A depth-wise convolution's shape: a [`Geometry`] with one group per
/// input channel, `c_in = c_out` ([`fast_path`]) or, at inference,
/// `c_out` a multiple of `c_in` ([`inference_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise(pub Geometry);

/// `conv.forward(x)` (`x: [batch, c, h, w]` → `[batch, c, h', w']`) with the
/// plane-by-plane backward, or `None` when it does
/// not apply ([`fast_path`]) or the tensors are not on autodiff flex.
pub fn try_conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    super::conv::through(conv, x, fast_path(conv, x), flex::run)
}

/// `conv.forward(x)` (`x: [batch, c_in, h, w]` → `[batch, c_out, h', w']`,
/// bias included) through [`forward`]'s kernel for plain (inference) flex
/// tensors, or `None` when it does not apply ([`inference_path`]), the
/// tensors are on autodiff or elsewhere, or the bias is not `[c_out]`. For
/// `c_out = c_in` the same bits as burn's own depth-wise convolution; with
/// a channel multiplier (`c_out = m·c_in`, which burn computes as one GEMM
/// per group) the same function up to the order of float additions.
pub fn try_forward(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let g = inference_path(conv, x)?;
    flex::run_plain(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), g)
}

/// The geometry of `conv` applied to `x` when [`forward`]'s kernel computes
/// it at inference: [`fast_path`]'s conditions, except that each input
/// channel may feed several output channels (`groups = c_in`, `c_out` a
/// multiple of `c_in`: FastViT's patch embeddings); `None` otherwise.
pub fn inference_path(conv: &Conv2d, x: &Tensor<4>) -> Option<Depthwise> {
    let per_group = conv.weight.dims()[1];
    super::spatial::geometry(conv, x)
        .filter(|g| {
            conv.groups == g.c_in && g.c_out > 0 && g.c_out.is_multiple_of(g.c_in) && per_group == 1
        })
        .map(Depthwise)
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

    /// Always declines.
    pub fn run_plain(
        _: &Tensor<4>,
        _: Tensor<4>,
        _: Option<Tensor<1>>,
        _: Depthwise,
    ) -> Option<Tensor<4>> {
        None
    }
}
