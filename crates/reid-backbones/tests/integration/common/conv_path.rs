//! Checks a convolution fast path (`layers::pointwise`, `layers::spatial`)
//! against burn's own convolution: output and the input, weight and bias
//! gradients of the same upstream gradient.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// Largest `|a − b|` over the largest `|b|`.
pub fn max_rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// A convolution's fast path: `Some(output)` where it applies.
pub type FastPath = dyn Fn(&Conv2d, &Tensor<4>) -> Option<Tensor<4>>;

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<4> {
    let n = t.shape().num_elements();
    t.reshape([1, 1, 1, n])
}

/// Output, input gradient, weight gradient and (flattened) bias gradient
/// of `conv` at `x`, through `fast` (which must apply) or burn.
fn products(
    conv: &Conv2d,
    x: &Tensor<4>,
    fast: Option<&FastPath>,
) -> Vec<(&'static str, Tensor<4>)> {
    let x = x.clone().require_grad();
    let conv = conv.clone();
    let y = match fast {
        Some(f) => f(&conv, &x).expect("the fast path applies"),
        None => conv.forward(x.clone()),
    };
    let device = y.device();
    let g = Tensor::<4>::ones(y.dims(), &device).mul_scalar(0.5) + y.clone().detach().sin();
    let grads = (y.clone() * g).sum().backward();
    let mut out = vec![
        ("output", y.detach()),
        ("input grad", x.grad(&grads).expect("input gradient")),
        (
            "weight grad",
            conv.weight.grad(&grads).expect("weight gradient"),
        ),
    ];
    if let Some(b) = &conv.bias {
        out.push(("bias grad", flat(b.grad(&grads).expect("bias gradient"))));
    }
    out
}

/// Asserts that `fast` gives burn's output and gradients within 1e-5
/// relative; `case` names the convolution in the messages.
pub fn assert_matches_burn(conv: &Conv2d, x: &Tensor<4>, fast: &FastPath, case: &str) {
    let ours = products(conv, x, Some(fast));
    let reference = products(conv, x, None);
    assert_eq!(ours.len(), reference.len(), "{case}: gradient count");
    for ((name, got), (_, want)) in ours.into_iter().zip(reference) {
        assert_eq!(got.dims(), want.dims(), "{case}: {name} shape");
        let err = max_rel(got, want);
        assert!(err < 1e-5, "{case}: {name} differs by {err:e} (relative)");
    }
}
