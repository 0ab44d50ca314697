//! The pre-norm transformer block of ViT (timm's `Block` without layer
//! scale): `x + attn(norm1(x))`, then `x + mlp(norm2(x))`, each branch
//! optionally dropped per sample (stochastic depth) during training.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor};

use crate::layers::{drop_path_seeded, mix};

/// Multi-head self-attention with a fused `qkv` projection (PyTorch names
/// `attn.qkv`, `attn.proj`), scale `head_dim^-1/2`.
#[derive(Module, Debug)]
pub struct Attention {
    /// `dim → 3·dim` projection; output channels `[q | k | v]`, each split
    /// into heads of `dim / num_heads` consecutive channels.
    pub qkv: Linear,
    /// Output projection `dim → dim`.
    pub proj: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl Attention {
    /// `[batch, tokens, dim]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let h = self.num_heads;
        let hd = c / h;
        let qkv = self.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * c, c)
                .reshape([b, n, h, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scale = (hd as f64).powf(-0.5);
        let attn = softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3);
        let out = attn.matmul(v).swap_dims(1, 2).reshape([b, n, c]);
        self.proj.forward(out)
    }
}

/// The two-layer MLP with exact (erf) GELU (PyTorch names `mlp.fc1`,
/// `mlp.fc2`).
#[derive(Module, Debug)]
pub struct Mlp {
    /// `dim → hidden`.
    pub fc1: Linear,
    /// `hidden → dim`.
    pub fc2: Linear,
}

impl Mlp {
    /// `[batch, tokens, dim]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
    /// Stochastic-depth drop probability of both residual branches
    /// (training only).
    pub drop_path: f64,
}

/// Options of a [`Block`].
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

impl Block {
    /// A block with burn's default initialisation of linear layers and
    /// LayerNorm γ = 1, β = 0.
    pub fn new(o: BlockOptions, device: &Device) -> Self {
        let ln = || {
            LayerNormConfig::new(o.dim)
                .with_epsilon(o.ln_eps)
                .init(device)
        };
        Self {
            norm1: ln(),
            attn: Attention {
                qkv: LinearConfig::new(o.dim, 3 * o.dim)
                    .with_bias(o.qkv_bias)
                    .init(device),
                proj: LinearConfig::new(o.dim, o.dim).init(device),
                num_heads: o.num_heads,
            },
            norm2: ln(),
            mlp: Mlp {
                fc1: LinearConfig::new(o.dim, o.mlp_hidden).init(device),
                fc2: LinearConfig::new(o.mlp_hidden, o.dim).init(device),
            },
            drop_path: o.drop_path,
        }
    }

    /// `[batch, tokens, dim]` → same shape. `drop_seed`: `None` at
    /// inference (stochastic depth is the identity); `Some(seed)` drops each
    /// residual branch per sample with probability [`Block::drop_path`]
    /// and scales kept ones by `1 / (1 − p)` (timm's `DropPath`).
    pub fn forward(&self, x: Tensor<3>, drop_seed: Option<u64>) -> Tensor<3> {
        let attn = self.attn.forward(self.norm1.forward(x.clone()));
        let x = x + self.drop(attn, drop_seed.map(|s| mix(s, 0)));
        let mlp = self.mlp.forward(self.norm2.forward(x.clone()));
        x + self.drop(mlp, drop_seed.map(|s| mix(s, 1)))
    }

    fn drop(&self, branch: Tensor<3>, seed: Option<u64>) -> Tensor<3> {
        match seed {
            Some(seed) if self.drop_path > 0.0 => drop_path_seeded(branch, self.drop_path, seed),
            _ => branch,
        }
    }
}
