//! The 1×1 convolution's GEMM path (`layers::pointwise`) against burn's own
//! convolution: outputs and the gradients of input, weight and bias, on the
//! flex autodiff device, for strides 1 and 2, batches below and above the
//! thread count, with and without bias; and the cases it must decline.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::pointwise;

fn max_rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<4> {
    let n = t.shape().num_elements();
    t.reshape([1, 1, 1, n])
}

#[test]
fn gemm_path_matches_burn_values_and_gradients() {
    let device = Device::default().autodiff();
    for (batch, c_in, c_out, [h, w], stride, bias) in [
        (1, 5, 7, [6, 4], 1, false),
        (3, 8, 16, [8, 6], 2, true),
        (6, 16, 8, [5, 7], 2, false),
        (4, 32, 12, [16, 8], 1, true),
    ] {
        let conv = Conv2dConfig::new([c_in, c_out], [1, 1])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Valid)
            .with_bias(bias)
            .init(&device);
        let x: Tensor<4> =
            Tensor::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        let run = |fast: bool| {
            let x = x.clone().require_grad();
            let conv = conv.clone();
            let y = if fast {
                pointwise::try_conv2d(&conv, &x).expect("the GEMM path applies")
            } else {
                conv.forward(x.clone())
            };
            let g = Tensor::<4>::ones(y.dims(), &device).mul_scalar(0.5) + y.clone().detach().sin();
            let grads = (y.clone() * g).sum().backward();
            let dx = x.grad(&grads).expect("input gradient");
            let dw = conv.weight.grad(&grads).expect("weight gradient");
            let db = conv
                .bias
                .as_ref()
                .map(|b| flat(b.grad(&grads).expect("bias gradient")));
            (y, dx, dw, db)
        };
        let (y, dx, dw, db) = run(true);
        let (y_ref, dx_ref, dw_ref, db_ref) = run(false);
        let case = format!("batch {batch}, {c_in}->{c_out}, {h}x{w}, stride {stride}, bias {bias}");
        assert_eq!(y.dims(), y_ref.dims(), "{case}: output shape");
        for (name, got, want) in [
            ("output", y, y_ref),
            ("input grad", dx, dx_ref),
            ("weight grad", dw, dw_ref),
        ] {
            let err = max_rel(got.detach(), want.detach());
            assert!(err < 1e-5, "{case}: {name} differs by {err:e} (relative)");
        }
        if let (Some(db), Some(db_ref)) = (db, db_ref) {
            let err = max_rel(db, db_ref);
            assert!(err < 1e-5, "{case}: bias grad differs by {err:e}");
        }
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
