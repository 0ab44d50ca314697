//! The convolution every family builds the same way.

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
