//! RepViT building blocks in their training form, each with its structural
//! re-parameterisation: conv-BN pairs ([`ConvBn`], shared with FastViT), the
//! RepVGG depth-wise token mixer [`RepVggDw`], squeeze-and-excitation
//! [`RepVitSe`] (timm's or CION's, [`RepVitSeKind`]), the 1×1 FFN
//! [`RepVitMlp`], the block [`RepVitBlock`] and the stage-entry
//! down-sampling [`RepVitDownsample`].
//!
//! In inference every BN is affine, so `bn(conv(x) + conv1(x) + x)` is one
//! k×k depth-wise convolution with bias: the 1×1 kernel is zero-padded to
//! k×k, the identity is a 1 at each channel's centre tap, and the outer BN
//! `x·s + t` (`s = γ/√(σ² + ε)`, `t = β − μ·s`) scales the summed kernel
//! and maps the summed bias `b` to `b·s + t`.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{relu, sigmoid};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use crate::fastvit::ConvBn;
use crate::fastvit::mobileone::{identity_kernel, pad_kernel, with_weights};
use crate::layers::conv2d;
use crate::norm::TorchBatchNorm;
use crate::norm::batch_norm;
use crate::pool::avg_pool_map;

/// timm's `make_divisible(v, 8, round_limit=0)`: `max(8, ⌊(v + 4)/8⌋·8)`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    (((v + d / 2.0) / d).floor() as usize * divisor).max(divisor)
}

/// The MobileNet rounding CION's `RepViT.py` uses for its SE
/// (`_make_divisible(v, divisor)` with the minimum `divisor`):
/// `r = max(d, ⌊(v + d/2)/d⌋·d)`, plus `d` when `r < 0.9·v`.
pub fn make_divisible_min90(v: f64, divisor: usize) -> usize {
    let r = make_divisible(v, divisor);
    if (r as f64) < 0.9 * v { r + divisor } else { r }
}

/// Which squeeze-and-excitation a RepViT uses. Both are global average →
/// 1×1 conv `c → rd` (bias) → ReLU → 1×1 conv `rd → c` (bias) → gate →
/// scale; they differ in the gate, in `rd` and in their checkpoint keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RepVitSeKind {
    /// timm's `SqueezeExcite(c, 0.25)`, which the official THU-MIG code and
    /// timm's `RepVit` use: sigmoid gate, `rd = make_divisible(c/4, 8)`
    /// ([`make_divisible`]), keys `fc1` / `fc2`.
    #[default]
    Timm,
    /// CION's own `SqueezeExcite` in its `RepViT.py` (pre-training and
    /// fine-tuning copies alike): hard-sigmoid gate `relu6(x + 3)/6`,
    /// `rd = make_divisible(c/4, 4)` with the 90 % rule
    /// ([`make_divisible_min90`]), keys `conv_reduce` / `conv_expand`.
    /// Differs in `rd` from timm at `c` = 8, 16, 40, 48, 112, ….
    Cion,
}

impl RepVitSeKind {
    /// The reduced width `rd` of an SE over `c` channels.
    pub fn reduced_channels(self, c: usize) -> usize {
        match self {
            Self::Timm => make_divisible(c as f64 * 0.25, 8),
            Self::Cion => make_divisible_min90(c as f64 * 0.25, 4),
        }
    }
}

/// The RepVGG depth-wise token mixer: `bn(conv(x) + conv1(x) + x)` with a
/// k×k depth-wise conv-BN `conv`, a 1×1 depth-wise conv with bias `conv1`
/// (no BN: the official non-legacy form, as in timm with `legacy=False`)
/// and an outer BN. `[b, c, h, w]` → `[b, c, h, w]`. After
/// [`RepVggDw::reparameterize`], `conv1` and `bn` are `None` and `conv` is
/// a single k×k convolution with bias.
#[derive(Module, Debug)]
pub struct RepVggDw {
    /// k×k depth-wise conv-BN (official/timm `conv.{c,bn}`).
    pub conv: ConvBn,
    /// 1×1 depth-wise convolution with bias; `None` once fused.
    pub conv1: Option<Conv2d>,
    /// Outer BatchNorm; `None` once fused.
    pub bn: Option<BatchNorm>,
    /// Kernel size `k`.
    pub kernel_size: usize,
}

impl RepVggDw {
    /// Over `c` channels with kernel `k`.
    pub fn new(c: usize, k: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: ConvBn::new(c, c, k, 1, c, eps, device),
            conv1: Some(conv2d(c, c, 1, 1, c, true, device)),
            bn: Some(batch_norm(c, eps, device)),
            kernel_size: k,
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(conv1) = &self.conv1 else {
            return self.conv.forward(x);
        };
        let y =
            self.conv.forward(x.clone()) + crate::layers::dispatch::conv2d(conv1, x.clone()) + x;
        match &self.bn {
            Some(bn) => bn.forward_torch(y),
            None => y,
        }
    }

    /// The inference form: one k×k depth-wise convolution with bias.
    pub fn reparameterize(self) -> Self {
        let Some(conv1) = &self.conv1 else {
            return self;
        };
        let k = self.kernel_size;
        let (mut w, mut b) = self.conv.kernel_bias();
        let [c, _, _, _] = w.dims();
        let device = w.device();
        w = w + pad_kernel(conv1.weight.val(), k) + identity_kernel(c, c, k, &device);
        if let Some(b1) = &conv1.bias {
            b = b + b1.val();
        }
        if let Some(bn) = &self.bn {
            let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
            let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
            w = w * scale.clone().reshape([c, 1, 1, 1]);
            b = b * scale + shift;
        }
        Self {
            conv: ConvBn {
                conv: with_weights(&self.conv.conv, w, b),
                bn: None,
            },
            conv1: None,
            bn: None,
            kernel_size: k,
        }
    }
}

/// Squeeze-and-excitation of a [`RepVitSeKind`]: global average → 1×1
/// conv `c → rd` (bias) → ReLU → 1×1 conv `rd → c` (bias) → gate (sigmoid,
/// or `relu6(x + 3)/6` for [`RepVitSeKind::Cion`]) → scale, with `rd` from
/// [`RepVitSeKind::reduced_channels`]. `[b, c, h, w]` → `[b, c, h, w]`.
#[derive(Module, Debug)]
pub struct RepVitSe {
    /// `c → rd`, 1×1 (timm `fc1`, CION `conv_reduce`).
    pub fc1: Conv2d,
    /// `rd → c`, 1×1 (timm `fc2`, CION `conv_expand`).
    pub fc2: Conv2d,
    /// Gate and width rule; not saved with the weights.
    #[module(skip)]
    pub kind: RepVitSeKind,
}

impl RepVitSe {
    /// SE of `kind` over `c` channels.
    pub fn new(c: usize, kind: RepVitSeKind, device: &Device) -> Self {
        let rd = kind.reduced_channels(c);
        Self {
            fc1: conv2d(c, rd, 1, 1, 1, true, device),
            fc2: conv2d(rd, c, 1, 1, 1, true, device),
            kind,
        }
    }

    /// Channels `c` it gates.
    pub fn channels(&self) -> usize {
        self.fc2.weight.dims()[0]
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = avg_pool_map(x.clone());
        let s = crate::layers::dispatch::conv2d(
            &self.fc2,
            relu(crate::layers::dispatch::conv2d(&self.fc1, s)),
        );
        let gate = match self.kind {
            RepVitSeKind::Timm => sigmoid(s),
            RepVitSeKind::Cion => s.add_scalar(3.0).clamp(0.0, 6.0).div_scalar(6.0),
        };
        x * gate
    }
}

/// The 1×1 FFN: conv-BN `c → hidden`, GELU (erf), conv-BN `hidden → c`
/// (timm `conv1`/`conv2`, official `m.0`/`m.2`). `[b, c, h, w]` →
/// `[b, c, h, w]` (the residual is added by the caller).
#[derive(Module, Debug)]
pub struct RepVitMlp {
    /// `c → hidden`.
    pub conv1: ConvBn,
    /// `hidden → c`.
    pub conv2: ConvBn,
}

impl RepVitMlp {
    /// `c → hidden → c`.
    pub fn new(c: usize, hidden: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv1: ConvBn::new(c, hidden, 1, 1, 1, eps, device),
            conv2: ConvBn::new(hidden, c, 1, 1, 1, eps, device),
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv2.forward(self.conv1.forward_gelu(x))
    }

    /// Both BNs folded.
    pub fn reparameterize(self) -> Self {
        Self {
            conv1: self.conv1.fuse(),
            conv2: self.conv2.fuse(),
        }
    }
}

/// The stride-1 RepViT block: `y = se(token_mixer(x))`, then
/// `y + channel_mixer(y)`. `[b, c, h, w]` → `[b, c, h, w]`.
#[derive(Module, Debug)]
pub struct RepVitBlock {
    /// [`RepVggDw`].
    pub token_mixer: RepVggDw,
    /// SE on every other block of a stage (the first, third, …).
    pub se: Option<RepVitSe>,
    /// The FFN, residual.
    pub channel_mixer: RepVitMlp,
}

impl RepVitBlock {
    /// Over `c` channels, FFN hidden `hidden`, kernel `k`, with an SE of
    /// kind `se` or none.
    pub fn new(
        c: usize,
        hidden: usize,
        k: usize,
        se: Option<RepVitSeKind>,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            token_mixer: RepVggDw::new(c, k, eps, device),
            se: se.map(|kind| RepVitSe::new(c, kind, device)),
            channel_mixer: RepVitMlp::new(c, hidden, eps, device),
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.token_mixer.forward(x);
        if let Some(se) = &self.se {
            x = se.forward(x);
        }
        x.clone() + self.channel_mixer.forward(x)
    }

    /// Token mixer and FFN folded (SE stays).
    pub fn reparameterize(self) -> Self {
        Self {
            token_mixer: self.token_mixer.reparameterize(),
            se: self.se,
            channel_mixer: self.channel_mixer.reparameterize(),
        }
    }
}

/// The entry of stages 2–4: a stride-1 [`RepVitBlock`] without SE
/// (`pre_block`), a k×k stride-2 depth-wise conv-BN
/// (`spatial_downsample`), a 1×1 conv-BN `in → out`
/// (`channel_downsample`), then a residual FFN (`ffn`).
/// `[b, in, h, w]` → `[b, out, ⌈h/2⌉, ⌈w/2⌉]`.
#[derive(Module, Debug)]
pub struct RepVitDownsample {
    /// Stride-1 block on the input channels.
    pub pre_block: RepVitBlock,
    /// Depth-wise k×k, stride 2.
    pub spatial_downsample: ConvBn,
    /// 1×1 `in → out`.
    pub channel_downsample: ConvBn,
    /// Residual FFN on `out` channels.
    pub ffn: RepVitMlp,
}

impl RepVitDownsample {
    /// `c_in → c_out`, FFN ratio `mlp_ratio`, kernel `k`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        mlp_ratio: usize,
        k: usize,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            pre_block: RepVitBlock::new(c_in, c_in * mlp_ratio, k, None, eps, device),
            spatial_downsample: ConvBn::new(c_in, c_in, k, 2, c_in, eps, device),
            channel_downsample: ConvBn::new(c_in, c_out, 1, 1, 1, eps, device),
            ffn: RepVitMlp::new(c_out, c_out * mlp_ratio, eps, device),
        }
    }

    /// `[b, in, h, w]` → `[b, out, ⌈h/2⌉, ⌈w/2⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.pre_block.forward(x);
        let x = self
            .channel_downsample
            .forward(self.spatial_downsample.forward(x));
        x.clone() + self.ffn.forward(x)
    }

    /// Every conv-BN and the pre-block folded.
    pub fn reparameterize(self) -> Self {
        Self {
            pre_block: self.pre_block.reparameterize(),
            spatial_downsample: self.spatial_downsample.fuse(),
            channel_downsample: self.channel_downsample.fuse(),
            ffn: self.ffn.reparameterize(),
        }
    }
}
