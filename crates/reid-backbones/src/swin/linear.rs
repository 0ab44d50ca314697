//! A linear layer that stores its weight in PyTorch's `[out, in]` layout.
//!
//! burn's `nn::Linear` keeps `[in, out]`; storing PyTorch's orientation lets
//! checkpoints load key for key without transposition and lets
//! [`crate::import::save_safetensors`] write tensors Python can load as is.

use burn::module::{Module, Param};
use burn::tensor::module::linear;
use burn::tensor::{Device, Distribution, Tensor};

use crate::layers::{Mlp, Projection};

/// `y = x · Wᵀ + b` with `W` `[out, in]` (PyTorch's `nn.Linear`).
#[derive(Module, Debug)]
pub struct TorchLinear {
    /// Weight `[out_features, in_features]`.
    pub weight: Param<Tensor<2>>,
    /// Optional bias `[out_features]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl TorchLinear {
    /// A layer with truncated-normal-like weights (normal, std 0.02, as the
    /// Swin code initialises its linear layers before loading) and zero bias.
    pub fn new(in_features: usize, out_features: usize, bias: bool, device: &Device) -> Self {
        let weight = Tensor::random(
            [out_features, in_features],
            Distribution::Normal(0.0, 0.02),
            device,
        );
        Self {
            weight: Param::from_tensor(weight),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([out_features], device))),
        }
    }

    /// Applies the layer to `x` `[..., in_features]` → `[..., out_features]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(
            x,
            self.weight.val().transpose(),
            self.bias.as_ref().map(|b| b.val()),
        )
    }
}

impl Projection for TorchLinear {
    fn project<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward(x)
    }
}

impl Mlp<TorchLinear> {
    /// `dim → hidden → dim`, both layers with bias ([`TorchLinear::new`]'s
    /// initialisation), as Swin and VOLO build their MLPs.
    pub fn new(dim: usize, hidden: usize, device: &Device) -> Self {
        Self {
            fc1: TorchLinear::new(dim, hidden, true, device),
            fc2: TorchLinear::new(hidden, dim, true, device),
        }
    }
}
