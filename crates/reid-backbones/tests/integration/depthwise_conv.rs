//! The depth-wise convolution's backward kernels (`layers::depthwise`)
//! against burn's own grouped convolution on the flex autodiff device
//! (outputs and the gradients of input, weight and bias), against textbook
//! `f64` loops, the AVX2 build against the plain one, NaN, and the cases the
//! path must decline; the inference forward kernel against burn-flex's to
//! the bit; and `layers::dispatch::conv2d`, the dispatch every family uses.

use crate::common::conv_path::{assert_matches_burn, max_rel};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use reid_backbones::layers::depthwise::forward;
use reid_backbones::layers::depthwise::kernels::{self, Build};
use reid_backbones::layers::depthwise::{self, Depthwise};
use reid_backbones::layers::{dispatch, pointwise, spatial};

/// (batch, channels, [h, w], [kh, kw], stride, [ph, pw], bias).
type Case = (
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    usize,
    [usize; 2],
    bool,
);

/// ConvNeXt's 7×7, GhostNet's 3×3 and 5×5 at strides 1 and 2, RepViT's
/// 1×1, a kernel wider than the input, an odd size and no padding.
const CASES: [Case; 8] = [
    (2, 6, [16, 8], [7, 7], 1, [3, 3], true),
    (3, 5, [9, 7], [3, 3], 1, [1, 1], false),
    (3, 4, [9, 7], [3, 3], 2, [1, 1], true),
    (1, 3, [11, 6], [5, 5], 2, [2, 2], false),
    (2, 4, [5, 3], [1, 1], 1, [0, 0], true),
    (2, 3, [4, 2], [7, 7], 1, [3, 3], false),
    (4, 2, [6, 5], [3, 3], 1, [0, 0], true),
    (2, 3, [7, 6], [3, 5], 1, [1, 2], false),
];

fn depthwise_conv(
    c: usize,
    [kh, kw]: [usize; 2],
    stride: usize,
    [ph, pw]: [usize; 2],
    bias: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([c, c], [kh, kw])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .with_groups(c)
        .with_bias(bias)
        .init(device)
}

/// The depth-wise geometry of a case.
fn geometry(
    (batch, c, input, kernel, stride, padding, _): Case,
) -> reid_backbones::layers::spatial::Geometry {
    reid_backbones::layers::spatial::Geometry {
        batch,
        c_in: c,
        c_out: c,
        input,
        kernel,
        stride: [stride, stride],
        padding,
    }
}

fn describe((batch, c, [h, w], [kh, kw], stride, [ph, pw], bias): Case) -> String {
    format!(
        "batch {batch}, {c} channels, {h}x{w}, kernel {kh}x{kw}, stride {stride}, padding {ph}/{pw}, bias {bias}"
    )
}

#[test]
fn depthwise_matches_burn_values_and_gradients() {
    let device = Device::default().autodiff();
    for case in CASES {
        let (batch, c, [h, w], kernel, stride, padding, bias) = case;
        let conv = depthwise_conv(c, kernel, stride, padding, bias, &device);
        let x: Tensor<4> =
            Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        assert_matches_burn(&conv, &x, &depthwise::try_conv2d, &describe(case));
    }
}

/// Mobile networks' small planes: RepViT's 8×4 and 16×8 maps at 3×3, its
/// stride-2 down-sampling, FastViT's 7×7 at stride 2, a plane wider than
/// one register block, a stride of 3.
const SMALL_PLANES: [Case; 5] = [
    (2, 24, [8, 4], [3, 3], 1, [1, 1], true),
    (3, 16, [16, 8], [3, 3], 2, [1, 1], true),
    (2, 8, [20, 12], [7, 7], 2, [3, 3], false),
    (1, 4, [9, 70], [3, 3], 1, [1, 1], true),
    (2, 3, [10, 11], [5, 3], 3, [2, 1], true),
];

/// `a` and `b` hold the same bits, any NaN against any NaN.
fn assert_same_bits(a: Tensor<4>, b: Tensor<4>, what: &str) {
    let a: Vec<f32> = a.into_data().try_to_vec().expect("f32");
    let b: Vec<f32> = b.into_data().try_to_vec().expect("f32");
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (k, (p, q)) in a.iter().zip(&b).enumerate() {
        assert!(
            p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
            "{what}[{k}]: {p} against burn's {q}"
        );
    }
}

#[test]
fn depthwise_inference_gives_burns_bits() {
    // At inference the forward kernel runs in place of burn-flex's own, to
    // the bit, through the dispatch too; under autodiff it declines (the
    // backward path's forward is burn's).
    let device = Device::default();
    for case in CASES.into_iter().chain(SMALL_PLANES) {
        let (batch, c, [h, w], kernel, stride, padding, bias) = case;
        let conv = depthwise_conv(c, kernel, stride, padding, bias, &device);
        let x: Tensor<4> =
            Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let name = describe(case);
        let y = depthwise::try_forward(&conv, &x).expect("the inference kernel applies");
        assert_same_bits(y, conv.forward(x.clone()), &name);
        assert_same_bits(
            dispatch::conv2d(&conv, x.clone()),
            conv.forward(x.clone()),
            &name,
        );
        let ad = Device::default().autodiff();
        let conv = depthwise_conv(c, kernel, stride, padding, bias, &ad);
        let x: Tensor<4> = Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &ad);
        assert!(depthwise::try_forward(&conv, &x).is_none(), "{name}");
    }
}

#[test]
fn depthwise_inference_covers_channel_multipliers() {
    // FastViT's patch embedding: groups = c_in, two (or more) outputs per
    // input channel; burn computes it as one GEMM per group, so the sums
    // differ in order only.
    let device = Device::default();
    for (batch, c, m, [h, w], k, stride, bias) in [
        (2, 4, 2, [14, 10], 7, 2, true),
        (1, 3, 3, [9, 6], 3, 1, false),
    ] {
        let conv = Conv2dConfig::new([c, c * m], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .with_groups(c)
            .with_bias(bias)
            .init(&device);
        let x: Tensor<4> =
            Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        assert!(depthwise::fast_path(&conv, &x).is_none());
        let y = depthwise::try_forward(&conv, &x).expect("the inference kernel applies");
        let err = max_rel(y, conv.forward(x.clone()));
        assert!(err < 1e-6, "multiplier {m}: {err}");
        let err = max_rel(dispatch::conv2d(&conv, x.clone()), conv.forward(x));
        assert!(err < 1e-6, "multiplier {m} through the dispatch: {err}");
    }
}

#[test]
fn depthwise_inference_builds_agree_and_keep_non_finite_values() {
    for (k, case) in CASES.into_iter().chain(SMALL_PLANES).enumerate() {
        let (batch, c, input, kernel, _, _, bias) = case;
        let g = geometry(case);
        let x = random(batch * c * input[0] * input[1], 10 + k as u64);
        let w = random(c * kernel[0] * kernel[1], 20 + k as u64);
        let b = bias.then(|| random(c, 30));
        let best = forward::forward(&g, &x, &w, b.as_deref(), Build::Best).expect("fits");
        let plain = forward::forward(&g, &x, &w, b.as_deref(), Build::Plain).expect("fits");
        assert_eq!(best, plain, "{}", describe(case));
        // Slices that do not fit the geometry are refused, not read past.
        assert!(forward::forward(&g, &x[1..], &w, b.as_deref(), Build::Best).is_none());
        assert!(forward::forward(&g, &x, &w[1..], b.as_deref(), Build::Best).is_none());
    }
    // An empty input row (all padding) gives the bias alone.
    let empty = reid_backbones::layers::spatial::Geometry {
        batch: 2,
        c_in: 3,
        c_out: 3,
        input: [4, 0],
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 2],
    };
    let bias = [0.5f32, -1.0, 2.0];
    let y = forward::forward(&empty, &[], &random(27, 7), Some(&bias), Build::Best).expect("fits");
    assert_eq!(empty.output(), Some([4, 2]));
    assert_eq!(y.len(), 2 * 3 * 4 * 2);
    for (p, plane) in y.chunks(8).enumerate() {
        assert!(plane.iter().all(|&v| v == bias[p % 3]), "{plane:?}");
    }
    // An infinite weight makes NaN every output whose window reaches the
    // padding (0·∞), as burn's kernel marks them; a NaN input spreads to
    // its window.
    let device = Device::default();
    let mut conv = depthwise_conv(2, [3, 3], 1, [1, 1], true, &device);
    let mut weight: Vec<f32> = conv.weight.val().into_data().try_to_vec().expect("f32");
    weight[0] = f32::INFINITY;
    conv.weight = burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(weight, [2, 1, 3, 3]),
        &device,
    ));
    let mut values = vec![0.5f32; 2 * 5 * 4];
    values[20 + 6] = f32::NAN;
    let x = Tensor::<4>::from_data(TensorData::new(values, [1, 2, 5, 4]), &device);
    let y = depthwise::try_forward(&conv, &x).expect("applies");
    let count = |t: Tensor<4>| t.is_nan().int().sum().into_scalar::<i64>();
    // Channel 0: tap (0, 0) reads the padding for row 0 and column 0 (8
    // outputs); channel 1: the NaN's 3×3 neighbourhood.
    assert_eq!(count(y.clone()), 8 + 9);
    assert_same_bits(y, conv.forward(x), "non-finite");
}

/// The input and weight gradients by their definitions, in `f64`.
fn textbook(
    g: &reid_backbones::layers::spatial::Geometry,
    x: &[f32],
    w: &[f32],
    grad: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let [oh, ow] = g.output().expect("an output");
    let [h, wd] = g.input;
    let [kh, kw] = g.kernel;
    let c = g.c_in;
    let mut dx = vec![0f64; g.batch * c * h * wd];
    let mut dw = vec![0f64; c * kh * kw];
    for n in 0..g.batch {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = ((n * c + ch) * oh + oy) * ow + ox;
                    for i in 0..kh {
                        for j in 0..kw {
                            let iy = (oy * g.stride[0] + i) as isize - g.padding[0] as isize;
                            let ix = (ox * g.stride[1] + j) as isize - g.padding[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                continue;
                            }
                            let xi = ((n * c + ch) * h + iy as usize) * wd + ix as usize;
                            let wi = (ch * kh + i) * kw + j;
                            dx[xi] += f64::from(w[wi]) * f64::from(grad[o]);
                            dw[wi] += f64::from(grad[o]) * f64::from(x[xi]);
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    // A small LCG: the values only need to be varied and reproducible.
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    for (k, (&a, &b)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(a) - b).abs() / scale;
        assert!(err < 1e-6, "{what}[{k}]: {a} against {b}");
    }
}

#[test]
fn depthwise_gradients_match_the_definitions_in_both_builds() {
    for case in CASES {
        let (batch, c, input, kernel, ..) = case;
        let g = geometry(case);
        let [oh, ow] = g.output().expect("an output");
        let x = random(batch * c * input[0] * input[1], 1);
        let w = random(c * kernel[0] * kernel[1], 2);
        let grad = random(batch * c * oh * ow, 3);
        let (dx, dw) = textbook(&g, &x, &w, &grad);
        let name = describe(case);
        for build in [Build::Best, Build::Plain] {
            assert_close(
                &kernels::input_grad(&g, &w, &grad, build),
                &dx,
                &format!("{name}: input grad"),
            );
            assert_close(
                &kernels::weight_grad(&g, &x, &grad, build),
                &dw,
                &format!("{name}: weight grad"),
            );
        }
        // The AVX2 build runs the same operations in the same order.
        assert_eq!(
            kernels::input_grad(&g, &w, &grad, Build::Best),
            kernels::input_grad(&g, &w, &grad, Build::Plain)
        );
        assert_eq!(
            kernels::weight_grad(&g, &x, &grad, Build::Best),
            kernels::weight_grad(&g, &x, &grad, Build::Plain)
        );
    }
}

#[test]
fn depthwise_keeps_nan() {
    let device = Device::default().autodiff();
    let conv = depthwise_conv(2, [3, 3], 1, [1, 1], false, &device);
    let mut values = vec![0.5f32; 2 * 4 * 4];
    values[5] = f32::NAN;
    let x = Tensor::<4>::from_data(TensorData::new(values, [1, 2, 4, 4]), &device).require_grad();
    let y = depthwise::try_conv2d(&conv, &x).expect("fast path");
    let count = |t: Tensor<4>| t.is_nan().int().sum().into_scalar::<i64>();
    // The NaN at (row 1, column 1) of channel 0 reaches its 3×3 neighbourhood…
    assert_eq!(count(y.clone()), 9);
    let grads = y.sum().backward();
    // …and every tap of channel 0's weight gradient (each tap reads the pixel
    // for some output); the input gradient of a sum does not read `x`.
    let dw = conv.weight.grad(&grads).expect("weight gradient");
    assert_eq!(count(dw), 9);
    assert_eq!(count(x.grad(&grads).expect("input gradient")), 0);
    // A NaN in the output's gradient reaches the input gradient.
    let x = x.detach().require_grad();
    let y = depthwise::try_conv2d(&conv, &x).expect("fast path");
    let grads = (y.clone() * y).sum().backward();
    assert!(count(x.grad(&grads).expect("input gradient")) > 0);
}

#[test]
fn depthwise_declines_what_it_does_not_cover() {
    let device = Device::default().autodiff();
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &device);
    for conv in [
        Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 0, 0)),
        Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Same),
        Conv2dConfig::new([4, 4], [3, 3]).with_groups(2),
        Conv2dConfig::new([4, 8], [3, 3]).with_groups(4),
        Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .with_dilation([2, 2]),
        Conv2dConfig::new([4, 4], [9, 9]).with_groups(4),
        Conv2dConfig::new([4, 4], [3, 3]),
    ] {
        let conv = conv.init(&device);
        assert!(
            depthwise::try_conv2d(&conv, &x).is_none(),
            "{conv:?} must decline"
        );
    }
}

#[test]
fn conv_forward_dispatches_by_shape() {
    let device = Device::default();
    let x: Tensor<4> = Tensor::random([2, 4, 6, 4], Distribution::Normal(0.0, 1.0), &device);
    // 1×1: the pointwise GEMMs.
    let conv = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
    let want = pointwise::try_conv2d(&conv, &x).expect("pointwise applies");
    assert_eq!(max_rel(dispatch::conv2d(&conv, x.clone()), want), 0.0);
    // Grouped but not depth-wise: burn's own.
    let conv = Conv2dConfig::new([4, 4], [3, 3])
        .with_groups(2)
        .init(&device);
    assert_eq!(
        max_rel(dispatch::conv2d(&conv, x.clone()), conv.forward(x.clone())),
        0.0
    );
    // 3×3 with one group at inference: the spatial path's columns and GEMM.
    let conv = Conv2dConfig::new([4, 6], [3, 3]).init(&device);
    let want = spatial::try_forward(&conv, &x).expect("spatial applies");
    assert_eq!(max_rel(dispatch::conv2d(&conv, x.clone()), want), 0.0);
    // The depth-wise geometry is a spatial one with one group per channel.
    let dw = depthwise_conv(4, [3, 3], 1, [1, 1], false, &device);
    let Depthwise(g) = depthwise::fast_path(&dw, &x).expect("depth-wise applies");
    assert_eq!((g.c_in, g.c_out, g.output()), (4, 4, Some([6, 4])));
}
