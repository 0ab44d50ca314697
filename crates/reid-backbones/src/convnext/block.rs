//! The ConvNeXt block and its point-wise linear layers.
//!
//! Block (official `Block`, timm `ConvNeXtBlock` with `conv_mlp=False`):
//! depth-wise 7×7 convolution (padding 3, bias) → channels-last LayerNorm →
//! linear `C → 4C` → GELU (erf form) → linear `4C → C` → multiply by the
//! layer-scale `gamma` → stochastic depth → add to the input. EdgeNeXt's
//! conv encoder is the same block with a `k×k` kernel and an expansion
//! ratio `r` ([`ConvNeXtBlock::with_kernel`]); its SDTA encoder shares the
//! inverted bottleneck ([`inverted_bottleneck`]) and the layer scale
//! ([`layer_scale`], [`scaled`]).

use crate::layers::gelu;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Distribution, Tensor};

use super::layer_norm::ChannelNorm;
use crate::layers::{conv2d, drop_path};

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
    /// Depth-wise `k×k` convolution (7×7 in ConvNeXt), `weight`
    /// `[dim, 1, k, k]`, with bias.
    pub dwconv: Conv2d,
    /// Channels-last LayerNorm.
    pub norm: ChannelNorm,
    /// `dim → r·dim` (expansion ratio `r`: 4 in ConvNeXt).
    pub pwconv1: PointwiseLinear,
    /// `r·dim → dim`.
    pub pwconv2: PointwiseLinear,
    /// Layer scale `[dim]` (initialised to `layer_scale_init`, 1e-6); absent
    /// when the configuration's `layer_scale_init` is 0.
    pub gamma: Option<Param<Tensor<1>>>,
    /// Stochastic-depth rate of this block (training only).
    pub drop_path: f64,
}

impl ConvNeXtBlock {
    /// A ConvNeXt block of width `dim`: 7×7 depth-wise kernel, hidden
    /// width `4 · dim`.
    pub fn new(
        dim: usize,
        layer_scale_init: f64,
        drop_path: f64,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self::with_kernel(dim, 7, 4, layer_scale_init, drop_path, eps, device)
    }

    /// A block of width `dim` with a `kernel × kernel` depth-wise
    /// convolution (padding `kernel / 2`) and hidden width
    /// `expan_ratio · dim` (EdgeNeXt's conv encoder).
    pub fn with_kernel(
        dim: usize,
        kernel: usize,
        expan_ratio: usize,
        layer_scale_init: f64,
        drop_path: f64,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            dwconv: conv2d(dim, dim, kernel, 1, dim, true, device),
            norm: ChannelNorm::new(dim, eps, device),
            pwconv1: PointwiseLinear::new(dim, expan_ratio * dim, device),
            pwconv2: PointwiseLinear::new(expan_ratio * dim, dim, device),
            gamma: layer_scale(dim, layer_scale_init, device),
            drop_path,
        }
    }

    /// `x` `[batch, dim, h, w]` → `[batch, dim, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let y = crate::layers::dispatch::conv2d(&self.dwconv, x.clone());
        let y = y.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
        let y = inverted_bottleneck(y, &self.norm, &self.pwconv1, &self.pwconv2, &self.gamma);
        let y = y.reshape([b, h, w, c]).permute([0, 3, 1, 2]);
        x + drop_path(y, self.drop_path)
    }
}

/// Layer scale `[dim]` initialised to `init`; `None` when `init` is 0
/// (official semantics: the branch is then not scaled).
pub(crate) fn layer_scale(dim: usize, init: f64, device: &Device) -> Option<Param<Tensor<1>>> {
    (init > 0.0).then(|| Param::from_tensor(Tensor::<1>::ones([dim], device).mul_scalar(init)))
}

/// `y` `[rows, dim]` times the layer scale (if any).
pub(crate) fn scaled(y: Tensor<2>, gamma: &Option<Param<Tensor<1>>>) -> Tensor<2> {
    match gamma {
        Some(g) => y * g.val().unsqueeze::<2>(),
        None => y,
    }
}

/// The inverted bottleneck of the ConvNeXt block and of EdgeNeXt's two
/// encoders, on channels-last rows `[rows, dim]`: LayerNorm → `pwconv1` →
/// GELU (erf) → `pwconv2` → layer scale; `[rows, dim]` out.
pub(crate) fn inverted_bottleneck(
    y: Tensor<2>,
    norm: &ChannelNorm,
    pwconv1: &PointwiseLinear,
    pwconv2: &PointwiseLinear,
    gamma: &Option<Param<Tensor<1>>>,
) -> Tensor<2> {
    let y = pwconv2.forward(gelu(pwconv1.forward(norm.forward_last(y))));
    scaled(y, gamma)
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
