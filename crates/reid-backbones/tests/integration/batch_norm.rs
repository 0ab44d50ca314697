//! The fused training-mode BatchNorm (`layers::batch_norm`) against burn's
//! own `batch_norm_train` (+ `relu`) on the flex autodiff backend: output,
//! batch statistics and the gradients of the input, γ and β, for 4-D and
//! 2-D inputs, with and without the ReLU, on a strided input; and a whole
//! ResNet training step (BatchNorm running statistics included) against
//! the same step without the fused path is covered by the families'
//! PyTorch parity tests, which run through it.

use burn::tensor::activation;
use burn::tensor::module;
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::batch_norm;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Largest |a − b| over the largest |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
        / scale
}

/// Output, mean, variance and the three gradients, fused or burn's.
fn step<const D: usize>(
    x: &Tensor<D>,
    upstream: &Tensor<D>,
    (gamma, beta): (&Tensor<1>, &Tensor<1>),
    relu: bool,
    fused: bool,
) -> [Vec<f32>; 6] {
    let (gamma, beta) = (gamma.clone().require_grad(), beta.clone().require_grad());
    let x = x.clone().require_grad();
    let out = if fused {
        batch_norm::try_batch_norm_train(&x, &gamma, &beta, 1e-5, relu)
            .expect("the fused path applies on autodiff flex")
    } else {
        let mut out = module::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        if relu {
            out.output = activation::relu(out.output);
        }
        out
    };
    let grads = (out.output.clone() * upstream.clone()).sum().backward();
    [
        values(out.output.inner()),
        values(out.mean.inner()),
        values(out.variance.inner()),
        values(x.grad(&grads).expect("input gradient")),
        values(gamma.grad(&grads).expect("gamma gradient")),
        values(beta.grad(&grads).expect("beta gradient")),
    ]
}

fn compare<const D: usize>(x: Tensor<D>, what: &str) {
    let device = x.device();
    let upstream: Tensor<D> = Tensor::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
    let c = x.dims()[1];
    let gamma: Tensor<1> = Tensor::random([c], Distribution::Normal(1.0, 0.5), &device);
    let beta: Tensor<1> = Tensor::random([c], Distribution::Normal(0.0, 0.5), &device);
    for relu in [false, true] {
        let fused = step(&x, &upstream, (&gamma, &beta), relu, true);
        let reference = step(&x, &upstream, (&gamma, &beta), relu, false);
        let names = ["output", "mean", "variance", "dx", "dgamma", "dbeta"];
        for ((a, b), name) in fused.iter().zip(&reference).zip(names) {
            let d = rel_diff(a, b);
            assert!(
                d < 2e-5,
                "{what}, relu {relu}: {name} differs by {d:e} (relative)"
            );
        }
    }
}

#[test]
fn four_d_matches_burn_with_and_without_relu() {
    let device = Device::default().autodiff();
    let x: Tensor<4> = Tensor::random([4, 6, 9, 5], Distribution::Normal(0.7, 2.0), &device);
    compare(x, "[4, 6, 9, 5]");
}

#[test]
fn two_d_and_a_strided_input_match_burn() {
    let device = Device::default().autodiff();
    let x: Tensor<2> = Tensor::random([16, 12], Distribution::Normal(-1.0, 0.5), &device);
    compare(x, "[16, 12]");
    // A channel slice, as IBN-a's BatchNorm half sees it: not contiguous.
    let wide: Tensor<4> = Tensor::random([3, 8, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    compare(wide.narrow(1, 3, 5), "[3, 5 of 8, 4, 4]");
}

#[test]
fn declines_what_it_does_not_cover_and_the_fallback_agrees() {
    let device = Device::default().autodiff();
    let x: Tensor<3> = Tensor::random([2, 3, 4], Distribution::Normal(0.0, 1.0), &device);
    let gamma: Tensor<1> = Tensor::ones([4], &device);
    let beta: Tensor<1> = Tensor::zeros([4], &device);
    // γ of the wrong length: the fused path declines (burn's would panic).
    assert!(batch_norm::try_batch_norm_train(&x, &gamma, &beta, 1e-5, false).is_none());
    // The public entry point gives the fused result where it applies.
    let gamma: Tensor<1> = Tensor::ones([3], &device);
    let beta: Tensor<1> = Tensor::zeros([3], &device);
    let a = batch_norm::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, true);
    let b = batch_norm::try_batch_norm_train(&x, &gamma, &beta, 1e-5, true).unwrap();
    assert_eq!(values(a.output.inner()), values(b.output.inner()));
}

/// InstanceNorm (IBN's half, IBN-b's stem and post-norm) goes through the
/// fused BatchNorm over `batch · channels` planes: values and the
/// gradients of input, γ and β against the formula as tensor operations.
#[test]
fn instance_norm_through_the_fused_path_matches_the_formula() {
    use burn::nn::InstanceNormConfig;
    use reid_backbones::norm::instance_norm_forward;
    let device = Device::default().autodiff();
    let [b, c, h, w] = [3, 4, 5, 6];
    let mut norm = InstanceNormConfig::new(c).with_affine(true).init(&device);
    norm.gamma = norm
        .gamma
        .map(|p| p.map(|t| t.add_scalar(0.5).mul_scalar(1.3).detach().require_grad()));
    norm.beta = norm
        .beta
        .map(|p| p.map(|t| t.add_scalar(-0.2).detach().require_grad()));
    let x: Tensor<4> = Tensor::random([b, c, h, w], Distribution::Normal(0.5, 2.0), &device);
    let upstream: Tensor<4> = Tensor::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let run = |fused: bool| {
        let x = x.clone().require_grad();
        let y = if fused {
            instance_norm_forward(&norm, x.clone())
        } else {
            let flat = x.clone().reshape([b, c, h * w]);
            let centred = flat.clone() - flat.mean_dim(2);
            let var = centred.clone().square().mean_dim(2);
            let g = norm.gamma.as_ref().unwrap().val().reshape([1, c, 1]);
            let bt = norm.beta.as_ref().unwrap().val().reshape([1, c, 1]);
            (centred / (var + norm.epsilon).sqrt() * g + bt).reshape([b, c, h, w])
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        [
            values(y.inner()),
            values(x.grad(&grads).unwrap()),
            values(norm.gamma.as_ref().unwrap().grad(&grads).unwrap()),
            values(norm.beta.as_ref().unwrap().grad(&grads).unwrap()),
        ]
    };
    let (fused, reference) = (run(true), run(false));
    for ((a, r), name) in fused
        .iter()
        .zip(&reference)
        .zip(["output", "dx", "dgamma", "dbeta"])
    {
        let d = rel_diff(a, r);
        assert!(d < 2e-5, "instance norm {name} differs by {d:e} (relative)");
    }
}
