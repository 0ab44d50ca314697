//! The fused self-attention (`layers::attention`) against the same
//! attention as burn tensor operations (`self_attention_reference`) on the
//! flex autodiff backend: output and the gradient of the `qkv` projection,
//! for several batch, token and head counts; the plain (inference) flex
//! path; and the cases it declines. The ViT, VOLO and zoo parity tests
//! against PyTorch run through it as well.

use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::layers::{attention, self_attention, self_attention_reference};

fn max_rel(a: Tensor<3>, b: Tensor<3>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

#[test]
fn fused_attention_matches_tensor_ops_values_and_gradients() {
    let device = Device::default().autodiff();
    for (batch, tokens, heads, head_dim) in
        [(2, 7, 3, 4), (5, 17, 6, 8), (1, 1, 2, 3), (3, 129, 2, 16)]
    {
        let c3 = 3 * heads * head_dim;
        let qkv: Tensor<3> =
            Tensor::random([batch, tokens, c3], Distribution::Normal(0.0, 1.5), &device);
        let upstream: Tensor<3> = Tensor::random(
            [batch, tokens, heads * head_dim],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let run = |fused: bool| {
            let x = qkv.clone().require_grad();
            let y = if fused {
                attention::try_attention(&x, heads).expect("the fused path applies")
            } else {
                self_attention_reference(x.clone(), heads)
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y.inner(), x.grad(&grads).expect("qkv gradient"))
        };
        let (y, dx) = run(true);
        let (y_ref, dx_ref) = run(false);
        let case = format!("batch {batch}, tokens {tokens}, heads {heads}, head_dim {head_dim}");
        let e = max_rel(y, y_ref);
        assert!(e < 1e-5, "{case}: output differs by {e:e}");
        let e = max_rel(dx, dx_ref);
        assert!(e < 1e-5, "{case}: qkv gradient differs by {e:e}");
    }
}

#[test]
fn plain_flex_takes_the_fused_path_and_others_decline() {
    let device = Device::default();
    let qkv: Tensor<3> = Tensor::random([2, 9, 24], Distribution::Normal(0.0, 1.0), &device);
    let fused = attention::try_attention(&qkv, 2).expect("the fused path applies on flex");
    assert!(max_rel(fused.clone(), self_attention_reference(qkv.clone(), 2)) < 1e-5);
    // The public entry point takes it too.
    assert!(max_rel(self_attention(qkv.clone(), 2), fused) == 0.0);
    // 24 channels are not 3 × 5 heads × head_dim.
    assert!(attention::try_attention(&qkv, 5).is_none());
    assert!(attention::try_attention(&qkv, 0).is_none());
}
