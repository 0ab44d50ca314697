//! Re-parameterisable convolutions: conv-BN pairs, the MobileOne block
//! (k×k conv-BN branches + 1×1 "scale" conv-BN + BN "skip"), the large-kernel
//! convolution of the patch embedding (7×7 conv-BN + 3×3 conv-BN) and
//! squeeze-and-excitation.
//!
//! Every branch is linear in inference (BN uses its running statistics), so
//! a block's branches add up to one k×k convolution with a bias
//! ([`MobileOneBlock::reparameterize`]): a conv-BN folds to
//! `W·s`, `β − μ·s` with `s = γ/√(σ² + ε)`; a 1×1 kernel is zero-padded to
//! k×k; the BN skip is the identity kernel (1 at the centre tap of each
//! channel's own input) scaled the same way.

use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{relu, sigmoid};

use crate::layers::gelu;
use burn::tensor::{Device, Tensor, TensorData};

use crate::layers::conv2d;
use crate::norm::TorchBatchNorm;
use crate::norm::batch_norm;
use crate::pool::avg_pool_map;

/// `conv` with its weight and bias replaced (a fused convolution).
pub(crate) fn with_weights(conv: &Conv2d, weight: Tensor<4>, bias: Tensor<1>) -> Conv2d {
    let mut fused = conv.clone();
    fused.weight = Param::from_tensor(weight);
    fused.bias = Some(Param::from_tensor(bias));
    fused
}

/// BN in inference as `(scale, shift)`: `bn(x) = x·scale + shift` per channel.
fn bn_affine(bn: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    (scale, shift)
}

/// The identity as a grouped `k×k` kernel `[c, c/groups, k, k]`: 1 at the
/// centre tap of input `i mod (c/groups)` for output channel `i`.
pub(crate) fn identity_kernel(c: usize, groups: usize, k: usize, device: &Device) -> Tensor<4> {
    let per_group = c / groups;
    let mut data = vec![0f32; c * per_group * k * k];
    for i in 0..c {
        let j = i % per_group;
        data[((i * per_group + j) * k + k / 2) * k + k / 2] = 1.0;
    }
    Tensor::from_data(TensorData::new(data, [c, per_group, k, k]), device)
}

/// Zero-pads a `[o, i, s, s]` kernel to `[o, i, k, k]` (centred; `k − s` even).
pub(crate) fn pad_kernel(kernel: Tensor<4>, k: usize) -> Tensor<4> {
    let [o, i, s, _] = kernel.dims();
    if s == k {
        return kernel;
    }
    let p = (k - s) / 2;
    Tensor::zeros([o, i, k, k], &kernel.device())
        .slice_assign([0..o, 0..i, p..p + s, p..p + s], kernel)
}

/// A bias-free convolution followed by BatchNorm (timm `ConvNormAct`
/// without activation, official `nn.Sequential(conv, bn)`): PyTorch names
/// `conv.weight`, `bn.{weight, bias, running_mean, running_var}`. After
/// [`ConvBn::fuse`], `bn` is `None` and `conv` has a bias.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// `[out, in/groups, k, k]`, padding `k/2`.
    pub conv: Conv2d,
    /// BatchNorm over `out` channels; `None` once folded into `conv`.
    pub bn: Option<BatchNorm>,
}

impl ConvBn {
    /// A `c_in → c_out` k×k conv-BN with `stride` and `groups`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        groups: usize,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            conv: conv2d(c_in, c_out, k, stride, groups, false, device),
            bn: Some(batch_norm(c_out, eps, device)),
        }
    }

    /// `[b, in, h, w]` → `[b, out, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = crate::layers::dispatch::conv2d(&self.conv, x);
        match &self.bn {
            Some(bn) => bn.forward_torch(y),
            None => y,
        }
    }

    /// `gelu(self.forward(x))`: once the BN is folded ([`Self::fuse`]), a
    /// 1×1 convolution's GEMM, bias and GELU in one pass at inference
    /// ([`dispatch::conv2d_gelu`](crate::layers::dispatch::conv2d_gelu)).
    pub fn forward_gelu(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.bn {
            None => crate::layers::dispatch::conv2d_gelu(&self.conv, x),
            Some(_) => gelu(self.forward(x)),
        }
    }

    /// The equivalent kernel `[out, in/groups, k, k]` and bias `[out]`.
    pub fn kernel_bias(&self) -> (Tensor<4>, Tensor<1>) {
        let w = self.conv.weight.val();
        let [o, _, _, _] = w.dims();
        let b = match &self.conv.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([o], &w.device()),
        };
        match &self.bn {
            Some(bn) => {
                let (scale, shift) = bn_affine(bn);
                (w * scale.clone().reshape([o, 1, 1, 1]), b * scale + shift)
            }
            None => (w, b),
        }
    }

    /// Folds the BN into the convolution (same function in inference).
    pub fn fuse(self) -> Self {
        let (w, b) = self.kernel_bias();
        Self {
            conv: with_weights(&self.conv, w, b),
            bn: None,
        }
    }
}

/// Squeeze-and-excitation with a ReLU bottleneck and a sigmoid gate:
/// global average → 1×1 conv `c → ⌊c/16⌋` (bias) → ReLU → 1×1 conv back
/// (bias) → sigmoid → scale the input. PyTorch names: timm `fc1`/`fc2`,
/// official `reduce`/`expand`.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// `c → ⌊c·0.0625⌋`, 1×1.
    pub fc1: Conv2d,
    /// `⌊c·0.0625⌋ → c`, 1×1.
    pub fc2: Conv2d,
}

impl SqueezeExcite {
    /// SE over `c` channels; the bottleneck is `⌊c·0.0625⌋` as the official
    /// `SEBlock` computes it (timm rounds instead; equal for the ReIDZoo
    /// models, 1024 → 64).
    pub fn new(c: usize, device: &Device) -> Self {
        let rd = ((c as f64) * 0.0625) as usize;
        let rd = rd.max(1);
        Self {
            fc1: conv2d(c, rd, 1, 1, 1, true, device),
            fc2: conv2d(rd, c, 1, 1, 1, true, device),
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = avg_pool_map(x.clone());
        let s = sigmoid(crate::layers::dispatch::conv2d(
            &self.fc2,
            relu(crate::layers::dispatch::conv2d(&self.fc1, s)),
        ));
        x * s
    }
}

/// The MobileOne block: the sum of `num_conv_branches` k×k conv-BN branches
/// (`conv_kxk.i`, official `rbr_conv.i`), an optional 1×1 conv-BN
/// (`conv_scale`, official `rbr_scale`; when `k > 1` and enabled) and an
/// optional BN of the input (`identity`, official `rbr_skip`; when
/// `in == out` and stride 1), then SE (optional) and GELU (optional).
/// After [`MobileOneBlock::reparameterize`] only `reparam_conv` remains.
#[derive(Module, Debug)]
pub struct MobileOneBlock {
    /// Squeeze-and-excitation after the branch sum (the final `conv_exp`).
    pub se: Option<SqueezeExcite>,
    /// The k×k conv-BN branches.
    pub conv_kxk: Vec<ConvBn>,
    /// The 1×1 conv-BN branch.
    pub conv_scale: Option<ConvBn>,
    /// The BN skip branch.
    pub identity: Option<BatchNorm>,
    /// The fused k×k convolution (with bias) of the inference form.
    pub reparam_conv: Option<Conv2d>,
    /// Whether GELU (erf form) follows.
    pub act: bool,
    /// Input channels.
    pub in_channels: usize,
    /// Convolution groups.
    pub groups: usize,
    /// Kernel size `k`.
    pub kernel_size: usize,
}

/// Options of a [`MobileOneBlock`].
#[derive(Debug, Clone, Copy)]
pub struct MobileOneOptions {
    /// Kernel size `k` (padding `k/2`).
    pub kernel_size: usize,
    /// Stride.
    pub stride: usize,
    /// Convolution groups.
    pub groups: usize,
    /// Number of k×k conv-BN branches (0 in RepMixer's `norm`).
    pub conv_branches: usize,
    /// Whether the 1×1 scale branch exists (when `k > 1`).
    pub scale_branch: bool,
    /// Squeeze-and-excitation.
    pub se: bool,
    /// GELU at the end.
    pub act: bool,
}

impl MobileOneOptions {
    /// One k×k branch, scale branch, no SE, GELU: the defaults of both
    /// implementations.
    pub fn new(kernel_size: usize, stride: usize, groups: usize) -> Self {
        Self {
            kernel_size,
            stride,
            groups,
            conv_branches: 1,
            scale_branch: true,
            se: false,
            act: true,
        }
    }
}

impl MobileOneBlock {
    /// A `c_in → c_out` block.
    pub fn new(c_in: usize, c_out: usize, o: MobileOneOptions, eps: f64, device: &Device) -> Self {
        let k = o.kernel_size;
        Self {
            se: o.se.then(|| SqueezeExcite::new(c_out, device)),
            conv_kxk: (0..o.conv_branches)
                .map(|_| ConvBn::new(c_in, c_out, k, o.stride, o.groups, eps, device))
                .collect(),
            conv_scale: (k > 1 && o.scale_branch)
                .then(|| ConvBn::new(c_in, c_out, 1, o.stride, o.groups, eps, device)),
            identity: (c_in == c_out && o.stride == 1).then(|| batch_norm(c_in, eps, device)),
            reparam_conv: None,
            act: o.act,
            in_channels: c_in,
            groups: o.groups,
            kernel_size: k,
        }
    }

    /// The branch sum before SE and activation.
    fn linear(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(conv) = &self.reparam_conv {
            return crate::layers::dispatch::conv2d(conv, x);
        }
        let mut out: Option<Tensor<4>> =
            self.identity.as_ref().map(|bn| bn.forward_torch(x.clone()));
        let mut add = |y: Tensor<4>| {
            out = Some(match out.take() {
                Some(o) => o + y,
                None => y,
            })
        };
        if let Some(scale) = &self.conv_scale {
            add(scale.forward(x.clone()));
        }
        for branch in &self.conv_kxk {
            add(branch.forward(x.clone()));
        }
        out.unwrap_or_else(|| x.zeros_like())
    }

    /// `[b, in, h, w]` → `[b, out, h/stride, w/stride]` (rounded up).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.linear(x);
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        if self.act { gelu(y) } else { y }
    }

    /// The kernel `[out, in/groups, k, k]` and bias `[out]` of the single
    /// convolution equal to the branch sum (inference); `None` for a block
    /// without any branch.
    pub fn kernel_bias(&self) -> Option<(Tensor<4>, Tensor<1>)> {
        if let Some(conv) = &self.reparam_conv {
            let w = conv.weight.val();
            let [o, _, _, _] = w.dims();
            let b = match &conv.bias {
                Some(b) => b.val(),
                None => Tensor::zeros([o], &w.device()),
            };
            return Some((w, b));
        }
        let k = self.kernel_size;
        let mut acc: Option<(Tensor<4>, Tensor<1>)> = None;
        let mut add = |(w, b): (Tensor<4>, Tensor<1>)| {
            acc = Some(match acc.take() {
                Some((aw, ab)) => (aw + w, ab + b),
                None => (w, b),
            })
        };
        for branch in &self.conv_kxk {
            add(branch.kernel_bias());
        }
        if let Some(scale) = &self.conv_scale {
            let (w, b) = scale.kernel_bias();
            add((pad_kernel(w, k), b));
        }
        if let Some(bn) = &self.identity {
            let device = bn.gamma.val().device();
            let id = identity_kernel(self.in_channels, self.groups, k, &device);
            let (scale, shift) = bn_affine(bn);
            let [c] = scale.dims();
            add((id * scale.reshape([c, 1, 1, 1]), shift));
        }
        acc
    }

    /// The inference form: one k×k convolution (stride, padding and groups
    /// of the branches, with bias) replaces every branch; SE and GELU stay.
    pub fn reparameterize(self) -> Self {
        if self.reparam_conv.is_some() {
            return self;
        }
        let Some((w, b)) = self.kernel_bias() else {
            return self;
        };
        let template = match self.conv_kxk.first() {
            Some(branch) => branch.conv.clone(),
            None => {
                let [o, _, k, _] = w.dims();
                // RepMixer's `norm` (BN skip only, depth-wise, stride 1).
                conv2d(self.in_channels, o, k, 1, self.groups, true, &w.device())
            }
        };
        Self {
            se: self.se,
            conv_kxk: Vec::new(),
            conv_scale: None,
            identity: None,
            reparam_conv: Some(with_weights(&template, w, b)),
            act: self.act,
            in_channels: self.in_channels,
            groups: self.groups,
            kernel_size: self.kernel_size,
        }
    }
}

/// The large-kernel convolution of the patch embedding (RepLKNet style):
/// a k×k conv-BN (`large_conv`, official `lkb_origin`) plus a 3×3 conv-BN
/// (`small_conv`), same stride and groups, no activation (as the released
/// weights were trained). [`ReparamLargeKernelConv::reparameterize`] folds
/// both into `reparam_conv`.
#[derive(Module, Debug)]
pub struct ReparamLargeKernelConv {
    /// k×k conv-BN.
    pub large_conv: Option<ConvBn>,
    /// 3×3 conv-BN.
    pub small_conv: Option<ConvBn>,
    /// The fused k×k convolution of the inference form.
    pub reparam_conv: Option<Conv2d>,
    /// Kernel size `k` of the large branch.
    pub kernel_size: usize,
}

impl ReparamLargeKernelConv {
    /// `c_in → c_out`, kernel `k` (and 3), `stride`, `groups`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        groups: usize,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            large_conv: Some(ConvBn::new(c_in, c_out, k, stride, groups, eps, device)),
            small_conv: Some(ConvBn::new(c_in, c_out, 3, stride, groups, eps, device)),
            reparam_conv: None,
            kernel_size: k,
        }
    }

    /// `[b, in, h, w]` → `[b, out, h/stride, w/stride]` (rounded up).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(conv) = &self.reparam_conv {
            return crate::layers::dispatch::conv2d(conv, x);
        }
        let mut out = None;
        for branch in [&self.large_conv, &self.small_conv].into_iter().flatten() {
            let y = branch.forward(x.clone());
            out = Some(match out {
                Some(o) => o + y,
                None => y,
            });
        }
        out.unwrap_or(x)
    }

    /// The inference form (one k×k convolution with bias).
    pub fn reparameterize(self) -> Self {
        let Some(large) = &self.large_conv else {
            return self;
        };
        let (mut w, mut b) = large.kernel_bias();
        if let Some(small) = &self.small_conv {
            let (sw, sb) = small.kernel_bias();
            w = w + pad_kernel(sw, self.kernel_size);
            b = b + sb;
        }
        Self {
            reparam_conv: Some(with_weights(&large.conv, w, b)),
            large_conv: None,
            small_conv: None,
            kernel_size: self.kernel_size,
        }
    }
}
