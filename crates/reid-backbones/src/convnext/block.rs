//! The ConvNeXt block and its point-wise linear layers.
//!
//! Block (official `Block`, timm `ConvNeXtBlock` with `conv_mlp=False`):
//! depth-wise 7×7 convolution (padding 3, bias) → channels-last LayerNorm →
//! linear `C → 4C` → GELU (erf form) → linear `4C → C` → multiply by the
//! layer-scale `gamma` → stochastic depth → add to the input.

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Distribution, Tensor};

use super::layer_norm::ChannelNorm;
use crate::layers::drop_path;

/// A fully-connected layer with PyTorch's weight orientation
/// (`weight` `[out, in]`, `bias` `[out]`), so checkpoints load without a
/// transpose. Initialised as PyTorch's `nn.Linear`: both uniform in
/// `±1/sqrt(in)`.
#[derive(Module, Debug)]
pub struct PointwiseLinear {
    /// `[out_features, in_features]`.
    pub weight: Param<Tensor<2>>,
    /// `[out_features]`.
    pub bias: Param<Tensor<1>>,
}

impl PointwiseLinear {
    /// A `d_in → d_out` layer with PyTorch's default initialisation.
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        Self {
            weight: Param::from_tensor(Tensor::random([d_out, d_in], dist, device)),
            bias: Param::from_tensor(Tensor::random([d_out], dist, device)),
        }
    }

    /// `x` `[rows, in]` → `[rows, out]` = `x · weightᵀ + bias`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val().transpose()) + self.bias.val().unsqueeze::<2>()
    }
}

/// One ConvNeXt block on `[batch, dim, h, w]` (shape preserved). PyTorch
/// names (official): `dwconv`, `norm`, `pwconv1`, `pwconv2`, `gamma`.
#[derive(Module, Debug)]
pub struct ConvNeXtBlock {
    /// Depth-wise 7×7 convolution, `weight` `[dim, 1, 7, 7]`, with bias.
    pub dwconv: Conv2d,
    /// Channels-last LayerNorm.
    pub norm: ChannelNorm,
    /// `dim → 4·dim`.
    pub pwconv1: PointwiseLinear,
    /// `4·dim → dim`.
    pub pwconv2: PointwiseLinear,
    /// Layer scale `[dim]` (initialised to `layer_scale_init`, 1e-6); absent
    /// when the configuration's `layer_scale_init` is 0.
    pub gamma: Option<Param<Tensor<1>>>,
    /// Stochastic-depth rate of this block (training only).
    pub drop_path: f64,
}

impl ConvNeXtBlock {
    /// A block of width `dim`.
    pub fn new(
        dim: usize,
        layer_scale_init: f64,
        drop_path: f64,
        eps: f64,
        device: &Device,
    ) -> Self {
        let dwconv = Conv2dConfig::new([dim, dim], [7, 7])
            .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
            .with_groups(dim)
            .init(device);
        let gamma = (layer_scale_init > 0.0).then(|| {
            Param::from_tensor(Tensor::<1>::ones([dim], device).mul_scalar(layer_scale_init))
        });
        Self {
            dwconv,
            norm: ChannelNorm::new(dim, eps, device),
            pwconv1: PointwiseLinear::new(dim, 4 * dim, device),
            pwconv2: PointwiseLinear::new(4 * dim, dim, device),
            gamma,
            drop_path,
        }
    }

    /// `x` `[batch, dim, h, w]` → `[batch, dim, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let y = self.dwconv.forward(x.clone());
        let y = y.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
        let y = self.norm.forward_last(y);
        let y = self.pwconv2.forward(gelu(self.pwconv1.forward(y)));
        let y = match &self.gamma {
            Some(gamma) => y * gamma.val().unsqueeze::<2>(),
            None => y,
        };
        let y = y.reshape([b, h, w, c]).permute([0, 3, 1, 2]);
        x + drop_path(y, self.drop_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_path_is_the_identity_outside_training() {
        let device = Device::flex();
        let x = Tensor::<4>::random([4, 3, 2, 2], Distribution::Default, &device);
        let y = drop_path(x.clone(), 0.5);
        let diff: f32 = (y - x).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
    }
}
