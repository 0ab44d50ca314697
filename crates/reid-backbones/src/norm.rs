//! Normalisation layers of the ResNet family: BatchNorm, InstanceNorm, and
//! IBN-a's split of the two (Pan et al., "Two at Once", ECCV 2018); and
//! the LayerNorm constructor the transformer families share
//! ([`layer_norm`]).
//!
//! Inference vs training: [`BatchNorm`] uses batch statistics only on an
//! autodiff device with its training flag on, running statistics otherwise;
//! [`InstanceNorm`] always normalises each sample and channel over its own
//! spatial positions (PyTorch's `track_running_stats=False`, which is what
//! IBN-Net, fast-reid, torchreid and CION use), in training and inference.

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm, LayerNormConfig,
};
use burn::tensor::{Device, Tensor, activation};

/// A LayerNorm over the last `dim` channels with epsilon `eps` (γ = 1,
/// β = 0): `[..., dim]` → same shape.
pub fn layer_norm(dim: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(dim).with_epsilon(eps).init(device)
}

/// A BatchNorm with PyTorch's defaults (`eps` given, momentum 0.1).
pub(crate) fn batch_norm(channels: usize, eps: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(eps)
        .init(device)
}

/// BatchNorm with PyTorch's running statistics.
///
/// burn 0.22's `BatchNorm::forward` moves `running_var` towards the *biased*
/// batch variance; PyTorch's `BatchNorm{1,2}d` (and so every upstream model)
/// towards the *unbiased* one, `var · n/(n − 1)` with `n` the values per
/// channel (`batch · h · w`). The normalisation itself uses the biased
/// variance in both. The difference reaches a few per cent of `running_var`
/// on small maps (found by the CION step parity test,
/// `reid-train/tests/integration/cion_step_parity.rs`), and running statistics are what
/// evaluation and fine-tuning start from. [`TorchBatchNorm::forward_torch`]
/// is burn's forward with PyTorch's update; every BatchNorm of this crate's
/// models goes through it.
pub trait TorchBatchNorm {
    /// `[batch, channels, …]` → same shape: batch statistics and the
    /// PyTorch running-statistics update on an autodiff device with the
    /// layer's training flag on; running statistics otherwise (as burn).
    fn forward_torch<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;

    /// `relu(self.forward_torch(x))`, with the ReLU fused into the
    /// BatchNorm where the training path is the fused one
    /// ([`crate::layers::batch_norm`]).
    fn forward_torch_relu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl TorchBatchNorm for BatchNorm {
    fn forward_torch<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        torch_forward(self, x, false)
    }

    fn forward_torch_relu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        torch_forward(self, x, true)
    }
}

/// [`TorchBatchNorm`]'s forward, followed by a ReLU when `relu`.
fn torch_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    let device = x.device();
    if !(device.is_autodiff() && bn.training.is_enabled()) {
        let y = bn.forward(x);
        return if relu { activation::relu(y) } else { y };
    }
    let dims = x.dims();
    let n = dims.iter().product::<usize>() / dims.get(1).copied().unwrap_or(1).max(1);
    let result = crate::layers::batch_norm::batch_norm_train(
        x,
        bn.gamma.val(),
        bn.beta.val(),
        bn.epsilon,
        relu,
    );
    let unbias = if n > 1 {
        n as f64 / (n - 1) as f64
    } else {
        1.0
    };
    let m = bn.momentum;
    let mean = bn
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(result.mean.detach().mul_scalar(m));
    let var = bn
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(result.variance.detach().mul_scalar(m * unbias));
    bn.running_mean.update(mean.detach());
    bn.running_var.update(var.detach());
    result.output
}

/// An affine InstanceNorm (`InstanceNorm2d(c, affine=True)`).
pub(crate) fn instance_norm(channels: usize, eps: f64, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels)
        .with_epsilon(eps)
        .with_affine(true)
        .init(device)
}

/// Freezes a BatchNorm: running statistics at training time too, and no
/// gradient for γ/β (fast-reid's `FrozenBatchNorm`).
pub(crate) fn freeze_batch_norm(bn: BatchNorm) -> BatchNorm {
    bn.freeze()
}

/// Applies `norm` to `x` `[batch, channels, h, w]`: each sample and channel
/// normalised by its own spatial mean and biased variance, then the affine
/// transform (PyTorch `InstanceNorm2d`). Written here rather than calling
/// `InstanceNorm::forward`, which panics on inputs of two elements or fewer.
pub fn instance_norm_forward(norm: &InstanceNorm, x: Tensor<4>) -> Tensor<4> {
    instance_norm_act(norm, x, false)
}

/// [`instance_norm_forward`], followed by a ReLU when `relu`.
///
/// On flex (`f32`) it runs as the fused training-mode BatchNorm of
/// [`crate::layers::batch_norm`] over the `batch · channels` planes (an
/// InstanceNorm is a BatchNorm of `[1, batch·channels, h, w]` with γ and β
/// repeated per sample, the repeat's gradient summing them back); anywhere
/// else as tensor operations.
pub(crate) fn instance_norm_act(norm: &InstanceNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let (gamma, beta) = match (&norm.gamma, &norm.beta) {
        (Some(g), Some(bt)) => (g.val(), bt.val()),
        _ => (Tensor::ones([c], &device), Tensor::zeros([c], &device)),
    };
    let per_sample = |t: Tensor<1>| t.reshape([1, c]).repeat_dim(0, b).reshape([b * c]);
    let planes = x.clone().reshape([1, b * c, h, w]);
    if let Some(out) = crate::layers::batch_norm::try_batch_norm_train(
        &planes,
        &per_sample(gamma.clone()),
        &per_sample(beta.clone()),
        norm.epsilon,
        relu,
    ) {
        return out.output.reshape([b, c, h, w]);
    }
    let flat = x.reshape([b, c, h * w]);
    let mean = flat.clone().mean_dim(2);
    let centred = flat - mean;
    let var = centred.clone().square().mean_dim(2);
    let mut y = centred / (var + norm.epsilon).sqrt();
    if norm.gamma.is_some() {
        y = y * gamma.reshape([1, c, 1]) + beta.reshape([1, c, 1]);
    }
    let y = y.reshape([b, c, h, w]);
    if relu { activation::relu(y) } else { y }
}

/// IBN-a's normalisation: InstanceNorm on the first `half = ⌊channels/2⌋`
/// channels, BatchNorm on the rest, concatenated back in that order.
///
/// PyTorch names: `IN` (`InstanceNorm2d(half, affine=True)`) and `BN`
/// (`BatchNorm2d(channels - half)`); here `instance_norm` and `batch_norm`.
#[derive(Module, Debug)]
pub struct Ibn {
    /// Affine InstanceNorm over channels `[0, half)`.
    pub instance_norm: InstanceNorm,
    /// BatchNorm over channels `[half, channels)`.
    pub batch_norm: BatchNorm,
    /// Number of instance-normalised channels.
    pub half: usize,
}

impl Ibn {
    /// IBN over `channels` channels (`half = channels / 2`, rounded down).
    pub fn new(channels: usize, eps: f64, device: &Device) -> Self {
        let half = channels / 2;
        Self {
            instance_norm: instance_norm(half, eps, device),
            batch_norm: batch_norm(channels - half, eps, device),
            half,
        }
    }

    /// `[batch, channels, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_act(x, false)
    }

    /// `relu(self.forward(x))`, the ReLU fused into both halves.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_act(x, true)
    }

    fn forward_act(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let [_, c, _, _] = x.dims();
        let a = instance_norm_act(&self.instance_norm, x.clone().narrow(1, 0, self.half), relu);
        let rest = x.narrow(1, self.half, c - self.half);
        let b = if relu {
            self.batch_norm.forward_torch_relu(rest)
        } else {
            self.batch_norm.forward_torch(rest)
        };
        Tensor::cat(vec![a, b], 1)
    }
}

/// One normalisation slot of a ResNet (`bn1` of the stem or of a block).
///
/// The variant name does not appear in parameter paths (checkpoint import
/// and export skip enum variants), so all three load from the PyTorch keys
/// of the layer they replace (`bn1.weight`, `bn1.IN.weight`, …).
#[derive(Module, Debug)]
pub enum Norm {
    /// Plain BatchNorm.
    Batch(BatchNorm),
    /// IBN-a split (blocks of layers 1–3).
    Ibn(Ibn),
    /// Affine InstanceNorm (IBN-b stem).
    Instance(InstanceNorm),
}

impl Norm {
    /// `[batch, channels, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Batch(bn) => bn.forward_torch(x),
            Self::Ibn(ibn) => ibn.forward(x),
            Self::Instance(inorm) => instance_norm_forward(inorm, x),
        }
    }

    /// `relu(self.forward(x))`, the ReLU fused into a plain BatchNorm's
    /// training path ([`TorchBatchNorm::forward_torch_relu`]).
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Batch(bn) => bn.forward_torch_relu(x),
            Self::Ibn(ibn) => ibn.forward_relu(x),
            Self::Instance(inorm) => instance_norm_act(inorm, x, true),
        }
    }

    /// Channels normalised.
    pub fn channels(&self) -> usize {
        match self {
            Self::Batch(bn) => bn.gamma.dims()[0],
            Self::Ibn(ibn) => ibn.half + ibn.batch_norm.gamma.dims()[0],
            Self::Instance(inorm) => inorm.num_channels,
        }
    }

    /// Channels carrying BatchNorm running statistics (for counting them).
    pub fn batch_norm_channels(&self) -> usize {
        match self {
            Self::Batch(bn) => bn.gamma.dims()[0],
            Self::Ibn(ibn) => ibn.batch_norm.gamma.dims()[0],
            Self::Instance(_) => 0,
        }
    }

    /// Freezes the BatchNorm part (see [`Module::freeze`]); InstanceNorm
    /// has no running statistics and is left trainable.
    pub fn freeze_batch_norm(self) -> Self {
        match self {
            Self::Batch(bn) => Self::Batch(freeze_batch_norm(bn)),
            Self::Ibn(ibn) => Self::Ibn(Ibn {
                batch_norm: freeze_batch_norm(ibn.batch_norm),
                ..ibn
            }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibn_instance_half_normalises_each_sample_and_batch_half_uses_running_stats() {
        let device = Device::flex();
        let ibn = Ibn::new(3, 1e-5, &device);
        assert_eq!(ibn.half, 1);
        // Channel 0 (IN): [1, 3] → mean 2, biased var 1 → [-1, 1].
        // Channels 1–2 (BN, running mean 0, var 1): unchanged up to eps.
        let x = Tensor::<4>::from_floats([[[[1.0, 3.0]], [[5.0, 7.0]], [[-2.0, 4.0]]]], &device);
        let y: Vec<f32> = ibn.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let expected = [-1.0, 1.0, 5.0, 7.0, -2.0, 4.0];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 1e-3, "{y:?}");
        }
    }
}
