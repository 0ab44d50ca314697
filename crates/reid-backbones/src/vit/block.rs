//! The pre-norm transformer block of ViT (timm's `Block` without layer
//! scale): `x + attn(norm1(x))`, then `x + mlp(norm2(x))`, each branch
//! optionally dropped per sample (stochastic depth) during training.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

pub use crate::layers::BlockOptions;
use crate::layers::{self, drop_path_seeded, mix};
use crate::norm::layer_norm;

/// Multi-head self-attention with a fused `qkv` projection (PyTorch names
/// `attn.qkv`, `attn.proj`; burn `Linear`s), scale `head_dim^-1/2`.
pub type Attention = layers::Attention<Linear>;

/// The two-layer MLP with exact (erf) GELU (PyTorch names `mlp.fc1`,
/// `mlp.fc2`; burn `Linear`s).
pub type Mlp = layers::Mlp<Linear>;

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

impl Block {
    /// A block with burn's default initialisation of linear layers and
    /// LayerNorm γ = 1, β = 0.
    pub fn new(o: BlockOptions, device: &Device) -> Self {
        let ln = || layer_norm(o.dim, o.ln_eps, device);
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
