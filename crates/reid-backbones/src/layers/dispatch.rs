//! [`conv2d`]: any convolution through the fastest exact path for its shape
//! (kept apart from the paths it picks, which share [`conv`](super::conv)'s
//! helpers).

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv.forward(x)` (`[batch, c_in, h, w]` → `[batch, c_out, h', w']`)
/// through the fastest exact path for its shape on the flex CPU backend:
/// [`pointwise`](super::pointwise)'s GEMMs for 1×1; for one group per
/// channel [`depthwise`](super::depthwise)'s forward kernel (inference) or
/// backward (autodiff); under autodiff [`spatial`](super::spatial)'s for
/// other `k×k` convolutions; else burn's
/// own convolution (every other backend and shape). The result is the same
/// function on every path, up to the order of float additions.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if let Some(y) = super::depthwise::try_conv2d(conv, &x) {
        return y;
    }
    if let Some(y) = super::depthwise::try_forward(conv, &x) {
        return y;
    }
    if let Some(y) = super::pointwise::try_conv2d(conv, &x) {
        return y;
    }
    if let Some(y) = super::spatial::try_forward(conv, &x) {
        return y;
    }
    super::spatial::conv2d(conv, x)
}

/// `gelu(conv2d(conv, x))` (the exact GELU, [`gelu`](super::gelu())): for
/// plain (inference) flex tensors and a 1×1 convolution, one pass that
/// applies the bias and GELU to each image's GEMM output while it is in
/// cache ([`pointwise::try_conv2d_gelu`](super::pointwise::try_conv2d_gelu));
/// else the two calls. The same values either way.
pub fn conv2d_gelu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if let Some(y) = super::pointwise::try_conv2d_gelu(conv, &x) {
        return y;
    }
    super::gelu(conv2d(conv, x))
}
