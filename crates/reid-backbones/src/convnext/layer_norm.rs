//! ConvNeXt's LayerNorm, in its two data formats.
//!
//! The official ConvNeXt normalises over the channel axis in both places it
//! uses LayerNorm: on `[batch, channels, h, w]` maps ("channels_first": the
//! stem and downsampling norms) and on channels-last rows inside the blocks
//! and after global pooling. Both are the same function of a channel vector:
//! `(x − mean) / sqrt(var + eps) · weight + bias` with the biased variance,
//! `eps` = 1e-6. The parameters keep PyTorch's names (`weight`, `bias`).

use burn::module::{Module, Param};
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Tensor};

use crate::pool::GlobalPool;

/// LayerNorm over a channel axis with an affine `weight` / `bias`
/// (`[channels]` each; initialised to 1 and 0).
#[derive(Module, Debug)]
pub struct ChannelNorm {
    /// Scale, `[channels]`.
    pub weight: Param<Tensor<1>>,
    /// Shift, `[channels]`.
    pub bias: Param<Tensor<1>>,
    /// Added to the variance (1e-6 in ConvNeXt).
    pub eps: f64,
}

impl ChannelNorm {
    /// A norm over `channels` channels with weight 1, bias 0.
    pub fn new(channels: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([channels], device)),
            bias: Param::from_tensor(Tensor::zeros([channels], device)),
            eps,
        }
    }

    /// Number of channels normalised.
    pub fn channels(&self) -> usize {
        self.weight.shape().dims::<1>()[0]
    }

    /// Normalises `x` `[batch, channels, h, w]` over its channel axis, at
    /// every position (official `LayerNorm(data_format="channels_first")`,
    /// timm `LayerNorm2d`); returns the same shape.
    pub fn forward_channels_first(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.channels();
        let mean = x.clone().mean_dim(1);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(1);
        let y = centred / (var + self.eps).sqrt();
        y * self.weight.val().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1])
    }

    /// Normalises `x` `[..., channels]` over its last axis (PyTorch
    /// `nn.LayerNorm(channels, eps)`); returns the same shape.
    pub fn forward_last<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }

    /// The feature of ConvNeXt and EdgeNeXt: the map `[batch, channels, h,
    /// w]` averaged over its positions, then normalised, `[batch,
    /// channels]`.
    pub fn forward_pooled(&self, features: Tensor<4>) -> Tensor<2> {
        self.forward_last(GlobalPool::Avg.forward(features))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn both_formats_compute_the_same_function() {
        let device = Device::flex();
        let mut norm = ChannelNorm::new(5, 1e-6, &device);
        norm.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, -1.0, 3.0], [5]),
            &device,
        ));
        norm.bias = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.1f32, -0.2, 0.0, 0.3, 1.0], [5]),
            &device,
        ));
        let x = Tensor::<4>::random([2, 5, 3, 4], Distribution::Normal(1.0, 2.0), &device);
        let first = norm.forward_channels_first(x.clone());
        let last = norm
            .forward_last(x.permute([0, 2, 3, 1]))
            .permute([0, 3, 1, 2]);
        let diff: f32 = (first - last).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
