//! VOLO's token blocks on `[batch, tokens, dim]`: the MLP, the pre-norm
//! transformer block of stages 2–4, and CaiT's class-attention block of the
//! post network. Linear layers keep PyTorch's `[out, in]` weights.

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::layers::{self, BlockOptions, drop_path, split_heads};
use crate::norm::layer_norm;
use crate::swin::TorchLinear;

/// Two linear layers with exact (erf) GELU between them (PyTorch names
/// `fc1`, `fc2`; [`Mlp::new`] builds it).
pub type Mlp = layers::Mlp<TorchLinear>;

/// Multi-head self-attention (PyTorch names `qkv`, `proj`; `qkv` has no
/// bias in VOLO), scale `head_dim^-1/2`.
pub type Attention = layers::Attention<TorchLinear>;

/// VOLO's `Transformer` block: `x + attn(norm1(x))`, `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    /// LayerNorm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
    /// Stochastic-depth rate (training only).
    pub drop_path: f64,
}

impl TransformerBlock {
    /// A block of width `o.dim`.
    pub fn new(o: BlockOptions, device: &Device) -> Self {
        let dim = o.dim;
        Self {
            norm1: layer_norm(dim, o.ln_eps, device),
            attn: Attention {
                qkv: TorchLinear::new(dim, 3 * dim, o.qkv_bias, device),
                proj: TorchLinear::new(dim, dim, true, device),
                num_heads: o.num_heads,
            },
            norm2: layer_norm(dim, o.ln_eps, device),
            mlp: Mlp::new(dim, o.mlp_hidden, device),
            drop_path: o.drop_path,
        }
    }

    /// `[b, n, dim]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self.attn.forward(self.norm1.forward(x.clone()));
        let x = x + drop_path(y, self.drop_path);
        let y = self.mlp.forward(self.norm2.forward(x.clone()));
        x + drop_path(y, self.drop_path)
    }
}

/// CaiT class attention: only the class token (first) queries all tokens
/// (PyTorch names `q`, `kv`, `proj`).
#[derive(Module, Debug)]
pub struct ClassAttention {
    /// `dim → dim` query of the class token.
    pub q: TorchLinear,
    /// `dim → 2·dim`, output channels `[k | v]`.
    pub kv: TorchLinear,
    /// `dim → dim`.
    pub proj: TorchLinear,
    /// Number of heads.
    pub num_heads: usize,
}

impl ClassAttention {
    /// `[b, 1 + n, dim]` → the new class token `[b, 1, dim]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let h = self.num_heads;
        let hd = c / h;
        let kv = self.kv.forward(x.clone());
        let (k, v) = (split_heads(&kv, 0, c, h), split_heads(&kv, 1, c, h));
        let q = self
            .q
            .forward(x.narrow(1, 0, 1))
            .reshape([b, 1, h, hd])
            .swap_dims(1, 2)
            * (hd as f64).powf(-0.5);
        let attn = softmax(q.matmul(k.swap_dims(2, 3)), 3);
        self.proj
            .forward(attn.matmul(v).swap_dims(1, 2).reshape([b, 1, c]))
    }
}

/// A class-attention block of VOLO's `post_network`: the class token is
/// updated by `cls + attn(norm1(x))`, then `cls + mlp(norm2(cls))`; the
/// patch tokens pass through unchanged.
#[derive(Module, Debug)]
pub struct ClassBlock {
    /// LayerNorm of all tokens before the class attention.
    pub norm1: LayerNorm,
    /// Class attention.
    pub attn: ClassAttention,
    /// LayerNorm of the class token before the MLP.
    pub norm2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
}

impl ClassBlock {
    /// A block of width `o.dim` (`o.drop_path` is not used: VOLO's class
    /// blocks have no stochastic depth).
    pub fn new(o: BlockOptions, device: &Device) -> Self {
        let dim = o.dim;
        Self {
            norm1: layer_norm(dim, o.ln_eps, device),
            attn: ClassAttention {
                q: TorchLinear::new(dim, dim, o.qkv_bias, device),
                kv: TorchLinear::new(dim, 2 * dim, o.qkv_bias, device),
                proj: TorchLinear::new(dim, dim, true, device),
                num_heads: o.num_heads,
            },
            norm2: layer_norm(dim, o.ln_eps, device),
            mlp: Mlp::new(dim, o.mlp_hidden, device),
        }
    }

    /// `[b, 1 + n, dim]` → same shape (class token first).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, n, _] = x.dims();
        let cls = x.clone().narrow(1, 0, 1);
        let cls = cls + self.attn.forward(self.norm1.forward(x.clone()));
        let cls = cls.clone() + self.mlp.forward(self.norm2.forward(cls));
        Tensor::cat(vec![cls, x.narrow(1, 1, n - 1)], 1)
    }
}
