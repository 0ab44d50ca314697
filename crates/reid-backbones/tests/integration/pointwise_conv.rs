//! The 1×1 convolution's GEMM path (`layers::pointwise`) against burn's own
//! convolution: outputs and the gradients of input, weight and bias, on the
//! flex autodiff device, for strides 1 and 2, batches below and above the
//! thread count, with and without bias; and the cases it must decline.

use crate::common::conv_path::{assert_matches_burn, max_rel};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::pointwise;

/// `(batch, c_in, c_out, [h, w], stride, bias)`: batches below and above
/// the thread count, strides 1 and 2, with and without bias.
const CASES: [(usize, usize, usize, [usize; 2], usize, bool); 4] = [
    (1, 5, 7, [6, 4], 1, false),
    (3, 8, 16, [8, 6], 2, true),
    (6, 16, 8, [5, 7], 2, false),
    (4, 32, 12, [16, 8], 1, true),
];

/// A 1×1 convolution and an input `~ N(0, std²)` for one of [`CASES`], and
/// the case's name.
fn case_on(
    (batch, c_in, c_out, [h, w], stride, bias): (usize, usize, usize, [usize; 2], usize, bool),
    std: f64,
    device: &Device,
) -> (Conv2d, Tensor<4>, String) {
    let conv = Conv2dConfig::new([c_in, c_out], [1, 1])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Valid)
        .with_bias(bias)
        .init(device);
    let x = Tensor::random([batch, c_in, h, w], Distribution::Normal(0.0, std), device);
    let case = format!("batch {batch}, {c_in}->{c_out}, {h}x{w}, stride {stride}, bias {bias}");
    (conv, x, case)
}

#[test]
fn gemm_path_matches_burn_values_and_gradients() {
    let device = Device::default().autodiff();
    for case in CASES {
        let (conv, x, case) = case_on(case, 1.0, &device);
        assert_matches_burn(&conv, &x, &pointwise::try_conv2d, &case);
    }
}

#[test]
fn gemm_path_runs_without_autodiff_and_declines_other_convolutions() {
    let device = Device::default();
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &device);
    let pointwise_conv = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
    let y = pointwise::try_conv2d(&pointwise_conv, &x).expect("the GEMM path applies");
    assert!(max_rel(y, pointwise_conv.forward(x.clone())) < 1e-6);
    for conv in [
        Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
        Conv2dConfig::new([4, 6], [1, 1]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
        Conv2dConfig::new([4, 6], [1, 1]).with_groups(2),
        Conv2dConfig::new([4, 6], [1, 1]).with_dilation([2, 2]),
    ] {
        let conv = conv.init(&device);
        assert!(
            pointwise::try_conv2d(&conv, &x).is_none(),
            "{conv:?} must decline"
        );
        // `conv2d` falls back to burn's convolution for them.
        assert!(max_rel(pointwise::conv2d(&conv, x.clone()), conv.forward(x.clone())) == 0.0);
    }
}

#[test]
fn gemm_path_propagates_nan() {
    let device = Device::default().autodiff();
    let conv = Conv2dConfig::new([3, 2], [1, 1]).init(&device);
    let x = Tensor::<4>::zeros([2, 3, 2, 2], &device).slice_assign(
        [0..1, 0..1, 0..1, 0..1],
        Tensor::<4>::full([1, 1, 1, 1], f32::NAN, &device),
    );
    let y = pointwise::try_conv2d(&conv, &x).expect("the GEMM path applies");
    let v = y.into_data().try_to_vec::<f32>().unwrap();
    assert!(v[0].is_nan() && v[4].is_nan(), "{v:?}");
    assert!(v[1..4].iter().all(|x| x.is_finite()), "{v:?}");
}

/// `conv2d_gelu`'s one pass (GEMM, bias, GELU per image) gives exactly the
/// values of the GEMM path followed by GELU, for batches below and above
/// the thread count (the epilogue inside each image's task, and the
/// parallel pass after), with and without bias and stride; it declines
/// autodiff tensors, and `dispatch::conv2d_gelu` then takes the two calls.
#[test]
fn fused_gelu_pass_is_bit_identical_to_the_two_calls() {
    use reid_backbones::layers::{dispatch, gelu};
    let device = Device::default();
    for case in CASES {
        let (conv, x, case) = case_on(case, 2.0, &device);
        let fused = pointwise::try_conv2d_gelu(&conv, &x).expect("the fused pass applies");
        let two = gelu(pointwise::try_conv2d(&conv, &x).expect("the GEMM path applies"));
        assert_eq!(fused.dims(), two.dims());
        let (a, b) = (
            fused.into_data().try_to_vec::<f32>().unwrap(),
            two.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{case}"
        );
        // And against burn's own convolution and GELU.
        let burn = burn::tensor::activation::gelu(conv.forward(x.clone()));
        assert!(
            max_rel(dispatch::conv2d_gelu(&conv, x), burn) < 1e-5,
            "{case}"
        );
    }
    let autodiff = Device::default().autodiff();
    let conv = Conv2dConfig::new([4, 6], [1, 1]).init(&autodiff);
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &autodiff);
    assert!(pointwise::try_conv2d_gelu(&conv, &x).is_none());
    let y = dispatch::conv2d_gelu(&conv, x.clone());
    let expected = burn::tensor::activation::gelu(conv.forward(x));
    assert!(max_rel(y, expected) < 1e-5);
}
