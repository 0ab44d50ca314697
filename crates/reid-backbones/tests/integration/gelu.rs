//! The vectorised GELU (`layers::gelu`) against burn's own `gelu` (libm
//! `erff` per element): values on a dense grid, the input gradient through
//! autodiff, both builds (AVX2 and plain) equal, NaN kept, and the fallback
//! where the fast path declines. The families' PyTorch parity tests run
//! through it as well (ConvNeXt, EdgeNeXt, FastViT, RepViT, ViT, Swin,
//! VOLO).

use burn::tensor::activation;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use reid_backbones::layers::gelu::{self, kernels};

/// Every 1/1024 from -12 to 12, plus the far tails and zero.
fn grid() -> Vec<f32> {
    let mut v: Vec<f32> = (-12 * 1024..=12 * 1024)
        .map(|i| i as f32 / 1024.0)
        .collect();
    v.extend([-1e4, -60.0, -20.0, 20.0, 60.0, 1e4, 1e-30, -1e-30, 0.0]);
    v
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn values_match_burn_within_an_ulp_or_two() {
    let device = Device::default();
    let xs = grid();
    let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
    let fast = values(gelu::try_gelu(&x).expect("the fast path applies on flex"));
    let reference = values(activation::gelu(x));
    let mut worst = 0f32;
    for ((&x, &a), &b) in xs.iter().zip(&fast).zip(&reference) {
        // One or two f32 ulps of the larger of |x| and 1e-6 (GELU ~ x for
        // large x; near zero both are ~x/2).
        let err = (a - b).abs() / x.abs().max(1e-6);
        worst = worst.max(err);
        assert!(err <= 4e-7, "gelu({x}) = {a}, burn {b}");
    }
    eprintln!("largest error relative to |x|: {worst:e}");
}

#[test]
fn gradients_match_burn() {
    let device = Device::default().autodiff();
    let x: Tensor<3> = Tensor::random([3, 37, 129], Distribution::Normal(0.0, 3.0), &device);
    let g: Tensor<3> = Tensor::random([3, 37, 129], Distribution::Normal(0.0, 1.0), &device);
    let run = |fast: bool| {
        let x = x.clone().require_grad();
        let y = if fast {
            gelu::try_gelu(&x).expect("the fast path applies on autodiff flex")
        } else {
            activation::gelu(x.clone())
        };
        let grads = (y.clone() * g.clone()).sum().backward();
        let dx = x.grad(&grads).expect("input gradient");
        (values(y.inner()), values(dx))
    };
    let (y, dx) = run(true);
    let (y_ref, dx_ref) = run(false);
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max)
    };
    assert!(
        max_diff(&y, &y_ref) < 1e-5,
        "output {}",
        max_diff(&y, &y_ref)
    );
    assert!(
        max_diff(&dx, &dx_ref) < 1e-5,
        "gradient {}",
        max_diff(&dx, &dx_ref)
    );
    // The public entry point takes the same path.
    let y2 = values(gelu::gelu(x.clone()).inner());
    assert_eq!(y2, y);
}

#[test]
fn both_builds_agree_bit_for_bit_and_nan_propagates() {
    let mut xs = grid();
    xs.push(f32::NAN);
    let gs: Vec<f32> = xs.iter().map(|x| (x * 0.37).sin()).collect();
    let (a, b) = (kernels::forward(&xs), kernels::forward_plain(&xs));
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    let (c, d) = (
        kernels::backward(&xs, &gs),
        kernels::backward_plain(&xs, &gs),
    );
    assert!(c.iter().zip(&d).all(|(p, q)| p.to_bits() == q.to_bits()));
    assert!(a.last().unwrap().is_nan() && c.last().unwrap().is_nan());
    assert!(kernels::erf(f64::NAN).is_nan());
    // Odd, bounded, 0 at 0.
    assert_eq!(kernels::erf(0.0), 0.0);
    for x in [0.1, 0.7, 2.0, 3.5, 10.0] {
        assert_eq!(kernels::erf(-x), -kernels::erf(x));
        assert!(kernels::erf(x) <= 1.0 + 1e-12);
    }
}

#[test]
fn other_dtypes_fall_back_to_burn() {
    let device = Device::default();
    let x = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device)
        .cast(burn::tensor::DType::F64);
    assert!(gelu::try_gelu(&x).is_none());
    let y = gelu::gelu(x.clone());
    assert_eq!(y.into_data(), activation::gelu(x).into_data());
}
