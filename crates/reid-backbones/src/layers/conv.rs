//! The convolution every family builds the same way, and the helpers the
//! fast paths share.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

/// A `k×k` convolution `c_in → c_out` with padding `k/2` on every side
/// (PyTorch's `Conv2d(c_in, c_out, k, stride, padding=k//2, groups=groups,
/// bias=bias)`), burn's default initialisation: `[batch, c_in, h, w]` →
/// `[batch, c_out, ⌈h/stride⌉, ⌈w/stride⌉]` for odd `k`.
pub fn conv2d(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    groups: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(groups)
        .with_bias(bias)
        .init(device)
}

/// `y + conv`'s bias (per output channel) when it has one: `[batch, c_out,
/// h, w]` → same shape. For the fast paths that compute the product
/// without it ([`pointwise`](super::pointwise), [`spatial`](super::spatial)).
pub fn add_bias(conv: &Conv2d, y: Tensor<4>) -> Tensor<4> {
    match &conv.bias {
        Some(b) => {
            let b = b.val();
            let c = b.dims()[0];
            y + b.reshape([1, c, 1, 1])
        }
        None => y,
    }
}

/// The padding `[rows, columns]` of a convolution padded alike on opposite
/// sides (`Valid` = `[0, 0]`); `None` for `Same` or uneven explicit padding,
/// which the fast paths leave to burn.
pub(crate) fn symmetric_padding(padding: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

/// A fast path's `try_conv2d`: `conv.forward(x)` computed by `run` on the
/// path's `geometry`, plus `conv`'s bias; `None` when the path does not
/// apply (`geometry` is `None`) or `run` declines the tensors.
pub(crate) fn through<G>(
    conv: &Conv2d,
    x: &Tensor<4>,
    geometry: Option<G>,
    run: impl FnOnce(&Tensor<4>, Tensor<4>, G) -> Option<Tensor<4>>,
) -> Option<Tensor<4>> {
    let y = run(x, conv.weight.val(), geometry?)?;
    Some(add_bias(conv, y))
}
