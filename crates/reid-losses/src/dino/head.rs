//! The DINO projection head used by CION's student and teacher.
//!
//! `x [N, in_dim]` → `Linear(in, hidden)` → GELU → (`Linear(hidden, hidden)`
//! → GELU) × (`nlayers` − 2) → `Linear(hidden, bottleneck)` → row-wise L2
//! normalisation (`x / max(‖x‖, 1e-12)`) → weight-normalised bias-free last
//! layer `W = g · V / ‖V‖` (row-wise) → `[N, out_dim]`. With `nlayers = 1`
//! the MLP is a single `Linear(in, bottleneck)`. GELU is the exact (erf) form.
//! With `use_bn` (`use_bn_in_head`), a BatchNorm follows every hidden
//! `Linear`, before its GELU (its running statistics follow burn's biased
//! update; CION never evaluates the head).
//!
//! **Initialisation** (as the released head): MLP weights truncated normal
//! with std 0.02 (PyTorch's `trunc_normal_` default bounds ±2 are absolute,
//! i.e. ±100σ, so this is a normal clamped at ±2), MLP biases 0. The last
//! layer is created *after* that initialisation in the released code, so its
//! direction `V` keeps PyTorch's default `Linear` initialisation,
//! `U(−1/√bottleneck, 1/√bottleneck)`; its magnitude `g` is filled with 1
//! and frozen (`norm_last_layer = True`).
//!
//! **PyTorch key mapping** (for checkpoint import):
//!
//! | PyTorch (`DINOHead`) | burn path | layout |
//! |---|---|---|
//! | `mlp.0.weight` / `.bias`, `mlp.2.*`, `mlp.4.*` | `mlp.0.*`, `mlp.1.*`, `mlp.2.*` | burn `Linear` (`[in, out]`; `PyTorchToBurnAdapter` transposes; the default contiguous index mapping renumbers 0/2/4 → 0/1/2) |
//! | `mlp.weight` / `mlp.bias` (`nlayers = 1`) | `mlp.0.*` | remap `^mlp\.(weight\|bias)` → `mlp.0.$1` |
//! | `last_layer.weight_g` `[out, 1]` | `last_layer.weight_g` `[out, 1]` | as is (not a `Linear`, no transpose) |
//! | `last_layer.weight_v` `[out, bottleneck]` | `last_layer.weight_v` `[out, bottleneck]` | as is |
//! | `last_layer.parametrizations.weight.original0` / `original1` (new-style `weight_norm`) | `last_layer.weight_g` / `weight_v` | remap |
//!
//! In the CION checkpoints the head sits under `head.` of the
//! `MultiCropWrapper` (plus `module.` for the DDP teacher).

use burn::module::{Module, Param, ParamId};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Distribution, Tensor};
use derive_setters::Setters;

use crate::LossError;
use crate::validate::nonzero_sizes;

const NAME: &str = "DinoHead";

/// CION's output dimension, 65336: the default of the released code's
/// `--output_dim` and loss. It is very likely a typo of DINO's 65536, but the
/// released checkpoints use it.
pub const CION_OUT_DIM: usize = 65336;

/// Settings of a [`DinoHead`]; defaults are CION's.
#[derive(Debug, Clone, PartialEq, Setters)]
#[setters(prefix = "with_")]
pub struct DinoHeadConfig {
    /// Input size: the backbone's embedding dimension (2048 for ResNet50).
    pub in_dim: usize,
    /// Hidden width of the MLP (default 2048).
    pub hidden_dim: usize,
    /// Bottleneck width before the normalisation (default 256).
    pub bottleneck_dim: usize,
    /// Number of prototypes / output logits (default [`CION_OUT_DIM`] = 65336).
    pub out_dim: usize,
    /// Number of `Linear` layers of the MLP, at least 1 (default 3).
    pub nlayers: usize,
    /// Standard deviation of the truncated-normal MLP weights (default 0.02).
    pub init_std: f64,
    /// BatchNorm after every hidden `Linear`, before its GELU (DINO's and
    /// CION's `use_bn_in_head`; default off, as released). γ = 1, β = 0,
    /// momentum 0.1, ε 1e-5; batch statistics on an autodiff device.
    #[setters(rename = "with_bn")]
    pub use_bn: bool,
}

impl DinoHeadConfig {
    /// CION's head on an `in_dim`-dimensional embedding: hidden 2048,
    /// bottleneck 256, 65336 outputs, 3 layers, init std 0.02.
    pub fn new(in_dim: usize) -> Self {
        Self {
            in_dim,
            hidden_dim: 2048,
            bottleneck_dim: 256,
            out_dim: CION_OUT_DIM,
            nlayers: 3,
            init_std: 0.02,
            use_bn: false,
        }
    }

    /// Builds the head on `device` with the initialisation of the module docs
    /// (random numbers from the device's generator; seed it for determinism).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] when a dimension or `nlayers` is 0 or
    /// `init_std` is not positive and finite.
    pub fn init(&self, device: &Device) -> Result<DinoHead, LossError> {
        nonzero_sizes(
            NAME,
            &[
                ("in_dim", self.in_dim),
                ("hidden_dim", self.hidden_dim),
                ("bottleneck_dim", self.bottleneck_dim),
                ("out_dim", self.out_dim),
                ("nlayers", self.nlayers),
            ],
            "a positive size",
        )?;
        if !(self.init_std.is_finite() && self.init_std > 0.0) {
            return Err(LossError::InvalidParameter {
                loss: NAME,
                name: "init_std",
                value: self.init_std,
                expected: "a positive finite standard deviation",
            });
        }
        let mut dims = vec![self.in_dim];
        dims.extend(std::iter::repeat_n(self.hidden_dim, self.nlayers - 1));
        dims.push(self.bottleneck_dim);
        let mlp = dims
            .windows(2)
            .map(|w| trunc_normal_linear(w[0], w[1], self.init_std, device))
            .collect();
        let bound = 1.0 / (self.bottleneck_dim as f64).sqrt();
        let weight_v = Tensor::random(
            [self.out_dim, self.bottleneck_dim],
            Distribution::Uniform(-bound, bound),
            device,
        );
        let weight_g = Tensor::ones([self.out_dim, 1], device);
        let bn = if self.use_bn {
            (1..self.nlayers)
                .map(|_| BatchNormConfig::new(self.hidden_dim).init(device))
                .collect()
        } else {
            Vec::new()
        };
        Ok(DinoHead {
            mlp,
            bn,
            last_layer: WeightNormLinear::new(weight_g, weight_v),
        })
    }
}

/// `Linear(d_in, d_out)` with weights `N(0, std²)` clamped at ±2 and zero bias.
fn trunc_normal_linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    let weight =
        Tensor::random([d_in, d_out], Distribution::Normal(0.0, std), device).clamp(-2.0, 2.0);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

/// A bias-free linear layer with weight normalisation (Salimans & Kingma,
/// 2016) over output rows: `W = g · V / ‖V‖`, `y = x Wᵀ`.
#[derive(Module, Debug)]
pub struct WeightNormLinear {
    /// Magnitudes `g`, `[out, 1]` (PyTorch `weight_g`); 1 and frozen (no
    /// gradient) in CION, so every row of `W` has unit norm.
    pub weight_g: Param<Tensor<2>>,
    /// Directions `V`, `[out, in]` in PyTorch layout (`weight_v`); trainable.
    pub weight_v: Param<Tensor<2>>,
}

impl WeightNormLinear {
    /// Wraps `weight_g` (`[out, 1]`, frozen: no gradient) and `weight_v`
    /// (`[out, in]`, trainable) as parameters.
    pub fn new(weight_g: Tensor<2>, weight_v: Tensor<2>) -> Self {
        Self {
            weight_g: Param::from_tensor(weight_g).set_require_grad(false),
            weight_v: Param::from_tensor(weight_v),
        }
    }

    /// The effective weight `g · V / ‖V‖` (row norms clamped at 1e-12), `[out, in]`.
    pub fn weight(&self) -> Tensor<2> {
        let v = self.weight_v.val();
        let norm = v.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        v.div(norm).mul(self.weight_g.val())
    }

    /// `x [N, in]` → `x Wᵀ [N, out]`.
    ///
    /// # Errors
    /// [`LossError::InvalidShape`] when `x` does not have `in` columns.
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>, LossError> {
        let [_, d_in] = self.weight_v.dims();
        let dims = x.dims();
        if dims[1] != d_in {
            return Err(LossError::InvalidShape {
                loss: "WeightNormLinear",
                what: "input",
                shape: dims.to_vec(),
                expected: format!("[N, {d_in}]"),
            });
        }
        Ok(x.matmul(self.weight().transpose()))
    }
}

/// DINO / CION projection head (see the module docs for the layout, the
/// initialisation and the PyTorch key mapping).
#[derive(Module, Debug)]
pub struct DinoHead {
    /// The MLP's `Linear` layers (GELU between them, none after the last).
    pub mlp: Vec<Linear>,
    /// With `use_bn`: one BatchNorm per hidden layer (`mlp.len() − 1`),
    /// applied before the GELU; empty otherwise (no parameters saved).
    pub bn: Vec<BatchNorm>,
    /// The weight-normalised prototype layer.
    pub last_layer: WeightNormLinear,
}

impl DinoHead {
    /// Input size (`in_dim`).
    pub fn in_dim(&self) -> usize {
        self.mlp.first().map_or(0, |l| l.weight.dims()[0])
    }

    /// Output size (`out_dim`).
    pub fn out_dim(&self) -> usize {
        self.last_layer.weight_v.dims()[0]
    }

    /// Embeddings `[N, in_dim]` → prototype logits `[N, out_dim]` (each row
    /// is a vector of cosine similarities times `g`, i.e. in `[−1, 1]` in CION).
    ///
    /// # Errors
    /// [`LossError::InvalidShape`] when `x` does not have `in_dim` columns.
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>, LossError> {
        let dims = x.dims();
        if self.mlp.is_empty() || dims[1] != self.in_dim() {
            return Err(LossError::InvalidShape {
                loss: NAME,
                what: "input",
                shape: dims.to_vec(),
                expected: format!("[N, {}]", self.in_dim()),
            });
        }
        let last = self.mlp.len() - 1;
        let mut h = x;
        for (i, layer) in self.mlp.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                if let Some(bn) = self.bn.get(i) {
                    h = bn.forward(h);
                }
                h = gelu(h);
            }
        }
        let norm = h.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        self.last_layer.forward(h.div(norm))
    }

    /// Ids of the last layer's parameters (`weight_g`, `weight_v`): the ones
    /// DINO/CION keep fixed during the first epoch (`freeze_last_layer = 1`).
    pub fn last_layer_param_ids(&self) -> Vec<ParamId> {
        vec![self.last_layer.weight_g.id, self.last_layer.weight_v.id]
    }

    /// Drops the last layer's gradients from `grads`, so the optimiser skips
    /// those parameters for this step (no update, no weight decay, no moment
    /// update), like upstream's `cancel_gradients_last_layer` which sets
    /// their `.grad` to `None`. Call it during epoch 0 of the recipe.
    pub fn cancel_last_layer_gradients(&self, grads: &mut GradientsParams) {
        for id in self.last_layer_param_ids() {
            let _ = grads.remove::<2>(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// With `use_bn`, every hidden layer is batch-normalised before its
    /// GELU: inputs that differ only by a shared offset and a common scale
    /// give the same output rows as the centred inputs, while without it
    /// the offset dominates.
    #[test]
    fn batch_norm_in_the_head_removes_what_every_image_shares() {
        let device = Device::flex().autodiff();
        let cfg = DinoHeadConfig::new(4)
            .with_hidden_dim(8)
            .with_bottleneck_dim(4)
            .with_out_dim(6);
        let with = cfg.clone().with_bn(true).init(&device).unwrap();
        assert_eq!(with.bn.len(), 2);
        assert!(cfg.init(&device).unwrap().bn.is_empty());
        let x: Vec<f32> = (0..16).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let base = Tensor::<2>::from_data(TensorData::new(x, [4, 4]), &device);
        let shifted = base.clone().add_scalar(100.0);
        let a: Vec<f32> = with.forward(base).unwrap().into_data().iter().collect();
        let b: Vec<f32> = with.forward(shifted).unwrap().into_data().iter().collect();
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff < 1e-3,
            "the shared offset changed the output by {diff}"
        );
    }
}
