//! The `k×k` convolution's GEMM backward (`layers::spatial`) against
//! burn's own convolution on the flex autodiff device: outputs and the
//! gradients of input, weight and bias, for ResNet's 3×3 (strides 1 and 2)
//! and 7×7 stem geometries, an asymmetric kernel, batches below and above
//! the thread count; and the cases it must decline.

use crate::common::conv_path::{assert_matches_burn, max_rel};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::spatial;

#[test]
fn gemm_backward_matches_burn_values_and_gradients() {
    let device = Device::default().autodiff();
    for (batch, c_in, c_out, [h, w], [kh, kw], stride, [ph, pw], bias) in [
        (1, 5, 7, [6, 4], [3, 3], 1, [1, 1], false),
        (3, 8, 16, [9, 6], [3, 3], 2, [1, 1], true),
        (4, 3, 8, [16, 8], [7, 7], 2, [3, 3], false),
        (6, 4, 6, [5, 7], [3, 1], 1, [1, 0], true),
        (2, 2, 3, [4, 4], [3, 3], 1, [0, 0], false),
    ] {
        let conv = Conv2dConfig::new([c_in, c_out], [kh, kw])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(bias)
            .init(&device);
        let x: Tensor<4> =
            Tensor::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        let case = format!(
            "batch {batch}, {c_in}->{c_out}, {h}x{w}, kernel {kh}x{kw}, stride {stride}, \
             padding {ph}/{pw}, bias {bias}"
        );
        assert_matches_burn(&conv, &x, &spatial::try_conv2d, &case);
    }
}

#[test]
fn gemm_backward_declines_what_it_does_not_cover() {
    let device = Device::default().autodiff();
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &device);
    for conv in [
        Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 0, 0)),
        Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Same),
        Conv2dConfig::new([4, 6], [3, 3]).with_groups(2),
        Conv2dConfig::new([4, 6], [3, 3]).with_dilation([2, 2]),
        Conv2dConfig::new([4, 6], [9, 9]),
    ] {
        let conv = conv.init(&device);
        assert!(
            spatial::try_conv2d(&conv, &x).is_none(),
            "{conv:?} must decline"
        );
    }
    // Without autodiff there is no backward to speed up: burn's path.
    let plain = Device::default();
    let conv = Conv2dConfig::new([4, 6], [3, 3]).init(&plain);
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &plain);
    assert!(spatial::try_conv2d(&conv, &x).is_none());
    assert!(max_rel(spatial::conv2d(&conv, x.clone()), conv.forward(x)) == 0.0);
}
