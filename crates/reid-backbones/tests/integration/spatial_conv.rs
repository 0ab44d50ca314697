//! The `k×k` convolution's GEMM backward (`layers::spatial`) against
//! burn's own convolution on the flex autodiff device: outputs and the
//! gradients of input, weight and bias, for ResNet's 3×3 (strides 1 and 2)
//! and 7×7 stem geometries, an asymmetric kernel, batches below and above
//! the thread count; and the cases it must decline. The inference forward
//! (`spatial::try_forward`, plain flex) against burn's on the same shapes
//! and the mobile stems'.

use crate::common::conv_path::{assert_matches_burn, max_rel};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::{dispatch, spatial};

/// (batch, c_in, c_out, [h, w], [kh, kw], stride, [ph, pw], bias).
type Case = (
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    usize,
    [usize; 2],
    bool,
);

/// ResNet's 3×3 at strides 1 and 2 and its 7×7 stem, an asymmetric kernel,
/// no padding; batches below and above the thread count.
const CASES: [Case; 5] = [
    (1, 5, 7, [6, 4], [3, 3], 1, [1, 1], false),
    (3, 8, 16, [9, 6], [3, 3], 2, [1, 1], true),
    (4, 3, 8, [16, 8], [7, 7], 2, [3, 3], false),
    (6, 4, 6, [5, 7], [3, 1], 1, [1, 0], true),
    (2, 2, 3, [4, 4], [3, 3], 1, [0, 0], false),
];

/// RepViT's and FastViT's stems (3 channels in, stride 2) and a patchify
/// stem (ConvNeXt's 4×4, stride 4, no padding).
const STEMS: [Case; 2] = [
    (2, 3, 12, [32, 16], [3, 3], 2, [1, 1], true),
    (2, 3, 8, [16, 8], [4, 4], 4, [0, 0], true),
];

/// A case's convolution, a random input for it and its description.
fn conv_and_input(
    (batch, c_in, c_out, [h, w], [kh, kw], stride, [ph, pw], bias): Case,
    device: &Device,
) -> (burn::nn::conv::Conv2d, Tensor<4>, String) {
    let conv = Conv2dConfig::new([c_in, c_out], [kh, kw])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .with_bias(bias)
        .init(device);
    let x: Tensor<4> = Tensor::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), device);
    let name = format!(
        "batch {batch}, {c_in}->{c_out}, {h}x{w}, kernel {kh}x{kw}, stride {stride}, \
         padding {ph}/{pw}, bias {bias}"
    );
    (conv, x, name)
}

#[test]
fn gemm_backward_matches_burn_values_and_gradients() {
    let device = Device::default().autodiff();
    for case in CASES {
        let (conv, x, name) = conv_and_input(case, &device);
        assert_matches_burn(&conv, &x, &spatial::try_conv2d, &name);
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
    // Without autodiff there is no backward to speed up: `conv2d` takes
    // the inference forward.
    let plain = Device::default();
    let conv = Conv2dConfig::new([4, 6], [3, 3]).init(&plain);
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &plain);
    assert!(spatial::try_conv2d(&conv, &x).is_none());
    let want = spatial::try_forward(&conv, &x).expect("the inference forward applies");
    assert!(max_rel(spatial::conv2d(&conv, x), want) == 0.0);
}

#[test]
fn inference_forward_matches_burn() {
    let device = Device::default();
    for case in CASES.into_iter().chain(STEMS) {
        let (conv, x, case) = conv_and_input(case, &device);
        let want = conv.forward(x.clone());
        let y = spatial::try_forward(&conv, &x).expect("plain flex takes the inference path");
        assert_eq!(y.dims(), want.dims(), "{case}");
        let err = max_rel(y, want.clone());
        assert!(err < 1e-5, "{case}: {err}");
        let err = max_rel(dispatch::conv2d(&conv, x.clone()), want);
        assert!(err < 1e-5, "{case} through the dispatch: {err}");
    }
    // Under autodiff the inference path declines (the backward path runs).
    let ad = Device::default().autodiff();
    let conv = Conv2dConfig::new([4, 6], [3, 3]).init(&ad);
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &ad);
    assert!(spatial::try_forward(&conv, &x).is_none());
}
