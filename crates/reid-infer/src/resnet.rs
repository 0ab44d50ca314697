//! A CPU inference engine for ResNet trunks: the BN-folded network of
//! [`FusedResNet`] run on host memory in NHWC order, every convolution as one
//! GEMM per row tile (the `gemm` crate's kernels, AVX-512 where the CPU has
//! it) with bias, residual add and ReLU fused into the pass that leaves the
//! tile.
//!
//! Why it exists: burn-flex's convolution works image by image in NCHW
//! (`[out, in] × [in, h·w]`), which leaves the GEMMs of layers 2–4 short
//! (`h·w` = 512 or 128 columns) and costs a pass per BatchNorm/ReLU/add and an
//! NCHW↔NHWC copy around every 3×3 convolution. Keeping NHWC across the
//! network turns each convolution into one `[batch·h·w, kh·kw·in] ×
//! [kh·kw·in, out]` product over the whole batch; see `docs/benchmarks.md`
//! for the measured effect.
//!
//! It computes the same function as [`ResNet`] in inference (IBN-a and IBN-b
//! included: their InstanceNorms run on the host too), parity-tested against
//! the PyTorch fixtures. It is inference-only and host-only: tensors from
//! another device are read back to the host and the result is created on
//! their device.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, InstanceNorm, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};

use std::sync::{Mutex, PoisonError};

use reid_backbones::Backbone;
use reid_backbones::norm::Norm;
use reid_backbones::resnet::fused::{ConvNorm, FusedBlock};
use reid_backbones::resnet::{FusedResNet, ResNet};

use crate::error::InferError;
use crate::kernels::{Act, Conv, MaxPool, Workspace};
use crate::net::{Block, ConvUnit, Net};

/// A ResNet trunk for CPU inference (see the [module documentation](crate::resnet)):
/// images `[batch, 3, H, W]` → feature map `[batch, out_channels, H/s, W/s]`.
///
/// It keeps the buffers of its last forward pass (activations and im2col
/// tiles, a few hundred MB at batch 16 × 256×128 for ResNet50) for the next
/// one; [`Self::release_buffers`] frees them. Concurrent calls on one value
/// run one after the other (each already uses every rayon thread).
#[derive(Debug)]
pub struct HostResNet {
    net: Net,
    in_channels: usize,
    out_channels: usize,
    output_stride: usize,
    workspace: Mutex<Workspace>,
}

impl Clone for HostResNet {
    fn clone(&self) -> Self {
        Self {
            net: self.net.clone(),
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            output_stride: self.output_stride,
            workspace: Mutex::new(Workspace::default()),
        }
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}

fn param_values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    values(p.val())
}

/// Per-channel `(scale, shift)` of a BatchNorm in inference.
fn bn_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    (values(scale), values(shift))
}

fn unsupported(what: &str) -> InferError {
    InferError::Unsupported(format!("HostResNet: {what}"))
}

fn host_conv(conv: &Conv2d) -> Result<Conv, InferError> {
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return Err(unsupported(
            "grouped or dilated convolutions are not supported",
        ));
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(t, l, b, r) => [t, l, b, r],
        PaddingConfig2d::Same => return Err(unsupported("`Same` padding is not supported")),
    };
    let dims: [usize; 4] = conv.weight.dims();
    let bias = conv.bias.as_ref().map(param_values);
    Ok(Conv::from_oihw(
        &param_values(&conv.weight),
        bias.as_deref(),
        dims,
        conv.stride,
        padding,
    ))
}

/// Scales output channels `from..` of `conv` by `scale` and adds `shift` to
/// their bias (BatchNorm folding on the host).
fn fold_channels(conv: &mut Conv, from: usize, scale: &[f32], shift: &[f32]) {
    let n = conv.out_channels;
    for row in conv.weight.chunks_exact_mut(n) {
        for (w, s) in row[from..].iter_mut().zip(scale) {
            *w *= s;
        }
    }
    for ((b, s), t) in conv.bias[from..].iter_mut().zip(scale).zip(shift) {
        *b = *b * s + t;
    }
}

fn host_instance_norm(
    norm: &InstanceNorm,
    first: usize,
    channels: usize,
) -> crate::kernels::InstanceNorm {
    crate::kernels::InstanceNorm {
        first,
        gamma: norm
            .gamma
            .as_ref()
            .map_or_else(|| vec![1.0; channels], param_values),
        beta: norm
            .beta
            .as_ref()
            .map_or_else(|| vec![0.0; channels], param_values),
        eps: norm.epsilon,
    }
}

fn host_unit(cn: &ConvNorm) -> Result<ConvUnit, InferError> {
    let mut conv = host_conv(&cn.conv)?;
    let instance_norm = match &cn.norm {
        None => None,
        Some(Norm::Batch(bn)) => {
            let (scale, shift) = bn_affine(bn);
            fold_channels(&mut conv, 0, &scale, &shift);
            None
        }
        Some(Norm::Ibn(ibn)) => {
            let (scale, shift) = bn_affine(&ibn.batch_norm);
            fold_channels(&mut conv, ibn.half, &scale, &shift);
            Some(host_instance_norm(&ibn.instance_norm, 0, ibn.half))
        }
        Some(Norm::Instance(inorm)) => Some(host_instance_norm(inorm, 0, conv.out_channels)),
    };
    Ok(ConvUnit {
        conv,
        instance_norm,
    })
}

fn host_block(block: &FusedBlock) -> Result<Block, InferError> {
    let convs = block
        .convs
        .iter()
        .map(host_unit)
        .collect::<Result<Vec<_>, _>>()?;
    match convs.last() {
        None => return Err(unsupported("a block without convolutions")),
        Some(u) if u.instance_norm.is_some() => {
            return Err(unsupported("an InstanceNorm on a block's last convolution"));
        }
        Some(_) => {}
    }
    let post_norm = block
        .post_norm
        .as_ref()
        .map(|n| host_instance_norm(n, 0, convs[convs.len() - 1].conv.out_channels));
    Ok(Block {
        convs,
        downsample: block.downsample.as_ref().map(host_conv).transpose()?,
        post_norm,
    })
}

fn host_pool(pool: &MaxPool2d) -> Result<MaxPool, InferError> {
    if pool.dilation != [1, 1] {
        return Err(unsupported("dilated max-pooling is not supported"));
    }
    let padding = match pool.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => [t, l],
        _ => return Err(unsupported("asymmetric or `Same` max-pool padding")),
    };
    Ok(MaxPool {
        kernel: pool.kernel_size,
        stride: pool.stride,
        padding,
        ceil_mode: pool.ceil_mode,
    })
}

impl HostResNet {
    /// Copies the weights of a BN-folded ResNet to the host.
    ///
    /// # Errors
    /// [`InferError::Unsupported`] for layers the engine does not run
    /// (grouped/dilated convolutions, `Same` padding); none occur in the
    /// models [`ResNet`] builds.
    pub fn from_fused(model: &FusedResNet) -> Result<Self, InferError> {
        let stem = host_unit(&model.stem)?;
        let in_channels = stem.conv.in_channels;
        Ok(Self {
            net: Net {
                stem,
                pool: host_pool(&model.maxpool)?,
                blocks: model
                    .blocks
                    .iter()
                    .map(host_block)
                    .collect::<Result<_, _>>()?,
            },
            in_channels,
            out_channels: model.out_channels,
            output_stride: model.output_stride,
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// [`ResNet::fold_batch_norm`] then [`Self::from_fused`].
    ///
    /// # Errors
    /// As [`Self::from_fused`].
    pub fn from_resnet(model: &ResNet) -> Result<Self, InferError> {
        Self::from_fused(&model.fold_batch_norm())
    }

    fn check_input(&self, len: usize, dims: [usize; 4]) -> Result<(), InferError> {
        let [b, c, h, w] = dims;
        if c != self.in_channels || len != b * c * h * w || h < 7 || w < 7 {
            return Err(InferError::InvalidInput(format!(
                "HostResNet input: expected [batch, {}, H ≥ 7, W ≥ 7] with batch·{}·H·W values, got {dims:?} with {len} values",
                self.in_channels, self.in_channels
            )));
        }
        Ok(())
    }

    /// The feature map for NCHW images `[batch, 3, H, W]` (`images` holds
    /// their values row-major): `[batch, out_channels, h, w]` row-major, and
    /// its shape.
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] when `dims` do not describe
    /// `images` or the channel count is not the stem's.
    pub fn forward_nchw(
        &self,
        images: &[f32],
        dims: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 4]), InferError> {
        let y = self.run(images, dims)?;
        let out = y.to_nchw();
        let shape = [y.batch, y.channels, y.height, y.width];
        self.recycle(y);
        Ok((out, shape))
    }

    /// The globally average-pooled feature `[batch, out_channels]`
    /// (row-major) for NCHW images `[batch, 3, H, W]`.
    ///
    /// # Errors
    /// As [`Self::forward_nchw`].
    pub fn forward_pooled_nchw(
        &self,
        images: &[f32],
        dims: [usize; 4],
    ) -> Result<Vec<f32>, InferError> {
        let y = self.run(images, dims)?;
        let pooled = y.mean_pool();
        self.recycle(y);
        Ok(pooled)
    }

    /// Frees the buffers kept from the last forward pass.
    pub fn release_buffers(&self) {
        *self.lock() = Workspace::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Workspace> {
        // A panic mid-pass leaves only stale buffers behind, which are
        // overwritten before use: the workspace stays valid.
        self.workspace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, images: &[f32], dims: [usize; 4]) -> Result<Act, InferError> {
        self.check_input(images.len(), dims)?;
        let mut ws = self.lock();
        let x = Act::from_nchw(images, dims, &mut ws);
        let y = self.net.forward(&x, &mut ws);
        ws.give(x.data);
        Ok(y)
    }

    fn recycle(&self, y: Act) {
        self.lock().give(y.data);
    }

    /// `[batch, 3, H, W]` → `[batch, out_channels, H/s, W/s]` on the input's
    /// device.
    ///
    /// # Panics
    /// When `images` does not have the stem's channel count (as burn's own
    /// convolution would).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let device = images.device();
        let dims = images.dims();
        let (out, shape) = self
            .forward_nchw(&values(images), dims)
            .unwrap_or_else(|e| panic!("{e}"));
        Tensor::from_data(TensorData::new(out, shape), &device)
    }
}

impl Backbone for HostResNet {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.forward(images)
    }

    fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn output_stride(&self) -> usize {
        self.output_stride
    }

    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        let device = images.device();
        let [b, c, h, w] = images.dims();
        let pooled = self
            .forward_pooled_nchw(&values(images), [b, c, h, w])
            .unwrap_or_else(|e| panic!("{e}"));
        Tensor::from_data(TensorData::new(pooled, [b, self.out_channels]), &device)
    }
}
