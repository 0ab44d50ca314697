//! The layers the transformer families share (ViT, VOLO, Swin): multi-head
//! self-attention with a fused `qkv` projection ([`Attention`], and the
//! arithmetic of splitting projections into heads) and the two-layer MLP
//! ([`Mlp`]), generic over the fully-connected layer ([`Projection`]:
//! burn's `Linear` with `[in, out]` weights in ViT, the PyTorch-oriented
//! `TorchLinear` in VOLO and Swin).

use burn::module::{Module, ModuleDisplay};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use crate::layers::gelu;

/// Options of a pre-norm transformer block: ViT's
/// [`Block`](crate::vit::Block), VOLO's
/// [`TransformerBlock`](crate::volo::TransformerBlock) and
/// [`ClassBlock`](crate::volo::ClassBlock) (which has no stochastic depth).
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    /// Token dimension.
    pub dim: usize,
    /// Attention heads (must divide `dim`).
    pub num_heads: usize,
    /// MLP hidden width (`⌊dim · mlp_ratio⌋`).
    pub mlp_hidden: usize,
    /// Bias on the `qkv` projection.
    pub qkv_bias: bool,
    /// LayerNorm epsilon.
    pub ln_eps: f64,
    /// Stochastic-depth probability.
    pub drop_path: f64,
}

/// A fully-connected layer of a transformer block: `[..., in]` →
/// `[..., out]`.
pub trait Projection: Module + ModuleDisplay {
    /// Applies the layer to the last axis of `x`.
    fn project<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl Projection for Linear {
    fn project<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward(x)
    }
}

/// Multi-head self-attention with a fused `qkv` projection (PyTorch names
/// `attn.qkv`, `attn.proj`), scale `head_dim^-1/2`: [`self_attention`]
/// between the two projections.
#[derive(Module, Debug)]
pub struct Attention<L: Projection> {
    /// `dim → 3·dim` projection; output channels `[q | k | v]`, each split
    /// into heads of `dim / num_heads` consecutive channels.
    pub qkv: L,
    /// Output projection `dim → dim`.
    pub proj: L,
    /// Number of heads.
    pub num_heads: usize,
}

impl<L: Projection> Attention<L> {
    /// `[batch, tokens, dim]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let heads = self_attention(self.qkv.project(x), self.num_heads);
        self.proj.project(heads)
    }
}

/// The two-layer MLP with exact (erf) GELU between the layers (PyTorch
/// names `fc1`, `fc2`).
#[derive(Module, Debug)]
pub struct Mlp<L: Projection> {
    /// `dim → hidden`.
    pub fc1: L,
    /// `hidden → dim`.
    pub fc2: L,
}

impl<L: Projection> Mlp<L> {
    /// `[..., dim]` → same shape.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.project(gelu(self.fc1.project(x)))
    }
}

/// Part `index` of a fused projection `x` `[batch, tokens, parts·dim]`
/// (channels `[part 0 | part 1 | …]`, each `dim` wide), split into `heads`
/// heads of consecutive channels: `[batch, heads, tokens, dim / heads]`.
pub fn split_heads(x: &Tensor<3>, index: usize, dim: usize, heads: usize) -> Tensor<4> {
    let [b, n, _] = x.dims();
    x.clone()
        .narrow(2, index * dim, dim)
        .reshape([b, n, heads, dim / heads])
        .swap_dims(1, 2)
}

/// `q`, `k` and `v` of a fused projection holding `batch × tokens` rows of
/// `3·heads·head_dim` channels (`[q | k | v]`, heads of consecutive
/// channels), each `[batch, heads, tokens, head_dim]` and contiguous.
pub(crate) fn split_qkv<const D: usize>(
    qkv: Tensor<D>,
    [batch, tokens, heads, head_dim]: [usize; 4],
) -> [Tensor<4>; 3] {
    let qkv = qkv
        .reshape([batch, tokens, 3, heads, head_dim])
        .permute([2, 0, 3, 1, 4]);
    let part = |i: usize| {
        qkv.clone()
            .slice([i..i + 1, 0..batch, 0..heads, 0..tokens, 0..head_dim])
            .reshape([batch, heads, tokens, head_dim])
    };
    [part(0), part(1), part(2)]
}

/// Multi-head self-attention of a fused `qkv` projection `[batch, tokens,
/// 3·dim]` (channels `[q | k | v]`): `softmax(q·kᵀ / √head_dim)·v` per head,
/// the heads concatenated again, `[batch, tokens, dim]` (before the output
/// projection).
///
/// On flex (`f32`) this runs as one fused operation
/// ([`crate::layers::attention`]); elsewhere as the tensor operations of
/// [`self_attention_reference`].
pub fn self_attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    crate::layers::attention::try_attention(&qkv, heads)
        .unwrap_or_else(|| self_attention_reference(qkv, heads))
}

/// [`self_attention`] as burn tensor operations: the path on every backend
/// but flex, and the reference the fused one is tested against.
pub fn self_attention_reference(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, c3] = qkv.dims();
    let c = c3 / 3;
    let (q, k, v) = (
        split_heads(&qkv, 0, c, heads),
        split_heads(&qkv, 1, c, heads),
        split_heads(&qkv, 2, c, heads),
    );
    let scale = ((c / heads) as f64).powf(-0.5);
    let attn = softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3);
    attn.matmul(v).swap_dims(1, 2).reshape([b, n, c])
}
