//! GhostNet's building blocks: the Ghost module, squeeze-and-excitation
//! with a hard-sigmoid gate, the Ghost bottleneck and the final 1×1
//! conv-BN-ReLU.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::fastvit::ConvBn;
use crate::layers::conv2d;
use crate::layers::dispatch;
use crate::norm::TorchBatchNorm;
use crate::norm::batch_norm;
use crate::pool::avg_pool_map;

/// `bn(x)`, or `x` once the BatchNorm is folded into the convolution before
/// it (`None`).
pub(crate) fn norm(bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match bn {
        Some(bn) => bn.forward_torch(x),
        None => x,
    }
}

/// `conv` followed by `bn` (running statistics) as one convolution with a
/// bias: the inference form (`None`: `conv` as it is).
pub(crate) fn fold(conv: Conv2d, bn: Option<BatchNorm>) -> Conv2d {
    ConvBn { conv, bn }.fuse().conv
}

/// `relu6(x + 3) / 6`.
fn hard_sigmoid(x: Tensor<4>) -> Tensor<4> {
    x.add_scalar(3.0).clamp(0.0, 6.0).div_scalar(6.0)
}

/// Ghost module (ratio 2, cheap 3×3 depth-wise operation): a 1×1 conv-BN
/// to `⌈out/2⌉` channels, a depth-wise 3×3 conv-BN of those, both
/// concatenated and cut to `out` channels; ReLU after each BN when `relu`.
/// PyTorch names: `primary_conv.{0,1}`, `cheap_operation.{0,1}`.
#[derive(Module, Debug)]
pub struct GhostModule {
    /// `in → ⌈out/2⌉`, 1×1.
    pub primary_conv: Conv2d,
    /// BN of the primary branch; `None` once folded
    /// ([`GhostModule::fold_batch_norm`]).
    pub primary_bn: Option<BatchNorm>,
    /// Depth-wise 3×3 on the primary output.
    pub cheap_conv: Conv2d,
    /// BN of the cheap branch; `None` once folded.
    pub cheap_bn: Option<BatchNorm>,
    /// Output channels.
    pub out_channels: usize,
    /// Whether ReLU follows the BNs.
    pub relu: bool,
}

impl GhostModule {
    /// A module `c_in → c_out`.
    pub fn new(c_in: usize, c_out: usize, relu: bool, eps: f64, device: &Device) -> Self {
        let init = c_out.div_ceil(2);
        Self {
            primary_conv: conv2d(c_in, init, 1, 1, 1, false, device),
            primary_bn: Some(batch_norm(init, eps, device)),
            cheap_conv: conv2d(init, init, 3, 1, init, false, device),
            cheap_bn: Some(batch_norm(init, eps, device)),
            out_channels: c_out,
            relu,
        }
    }

    /// `[b, in, h, w]` → `[b, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = |t: Tensor<4>| if self.relu { relu(t) } else { t };
        let x1 = act(norm(
            &self.primary_bn,
            dispatch::conv2d(&self.primary_conv, x),
        ));
        let x2 = act(norm(
            &self.cheap_bn,
            dispatch::conv2d(&self.cheap_conv, x1.clone()),
        ));
        let [b, _, h, w] = x1.dims();
        Tensor::cat(vec![x1, x2], 1).slice([0..b, 0..self.out_channels, 0..h, 0..w])
    }

    /// The inference form: each BatchNorm folded into its convolution (the
    /// same function with running statistics).
    pub fn fold_batch_norm(self) -> Self {
        Self {
            primary_conv: fold(self.primary_conv, self.primary_bn),
            primary_bn: None,
            cheap_conv: fold(self.cheap_conv, self.cheap_bn),
            cheap_bn: None,
            ..self
        }
    }
}

/// Squeeze-and-excitation: global average → 1×1 conv (bias) → ReLU → 1×1
/// conv (bias) → hard sigmoid → channel-wise scale. PyTorch names
/// `conv_reduce`, `conv_expand`.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// `c → reduced`.
    pub conv_reduce: Conv2d,
    /// `reduced → c`.
    pub conv_expand: Conv2d,
}

impl SqueezeExcite {
    /// SE over `c` channels with `reduced` hidden channels.
    pub fn new(c: usize, reduced: usize, device: &Device) -> Self {
        Self {
            conv_reduce: Conv2dConfig::new([c, reduced], [1, 1]).init(device),
            conv_expand: Conv2dConfig::new([reduced, c], [1, 1]).init(device),
        }
    }

    /// `[b, c, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = avg_pool_map(x.clone());
        let s = dispatch::conv2d(
            &self.conv_expand,
            relu(dispatch::conv2d(&self.conv_reduce, s)),
        );
        x * hard_sigmoid(s)
    }
}

/// The projection shortcut of a bottleneck whose shape changes: depth-wise
/// `k×k` conv (stride) → BN → 1×1 conv → BN. PyTorch `shortcut.{0,1,2,3}`.
#[derive(Module, Debug)]
pub struct Shortcut {
    /// Depth-wise `k×k`, stride `s`.
    pub dw_conv: Conv2d,
    /// Its BN; `None` once folded.
    pub dw_bn: Option<BatchNorm>,
    /// 1×1 `in → out`.
    pub pw_conv: Conv2d,
    /// Its BN; `None` once folded.
    pub pw_bn: Option<BatchNorm>,
}

/// Ghost bottleneck: Ghost module (ReLU) → depth-wise `k×k` conv-BN with
/// the stride (only when stride > 1) → SE (where configured) → Ghost module
/// (no ReLU) → + shortcut (identity when the shape is kept).
#[derive(Module, Debug)]
pub struct GhostBottleneck {
    /// Expansion `in → mid`.
    pub ghost1: GhostModule,
    /// Strided depth-wise conv (stride > 1 only).
    pub conv_dw: Option<Conv2d>,
    /// Its BN.
    pub bn_dw: Option<BatchNorm>,
    /// Squeeze-and-excitation (where the configuration asks for it).
    pub se: Option<SqueezeExcite>,
    /// Projection `mid → out`.
    pub ghost2: GhostModule,
    /// Projection shortcut (absent: identity).
    pub shortcut: Option<Shortcut>,
}

/// Shape of one bottleneck.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BottleneckSpec {
    pub c_in: usize,
    pub mid: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    /// SE hidden channels, `None` without SE.
    pub se_reduced: Option<usize>,
}

impl GhostBottleneck {
    pub(crate) fn new(s: BottleneckSpec, eps: f64, device: &Device) -> Self {
        let strided = s.stride > 1;
        let shortcut = (s.c_in != s.c_out || strided).then(|| Shortcut {
            dw_conv: conv2d(s.c_in, s.c_in, s.kernel, s.stride, s.c_in, false, device),
            dw_bn: Some(batch_norm(s.c_in, eps, device)),
            pw_conv: conv2d(s.c_in, s.c_out, 1, 1, 1, false, device),
            pw_bn: Some(batch_norm(s.c_out, eps, device)),
        });
        Self {
            ghost1: GhostModule::new(s.c_in, s.mid, true, eps, device),
            conv_dw: strided
                .then(|| conv2d(s.mid, s.mid, s.kernel, s.stride, s.mid, false, device)),
            bn_dw: strided.then(|| batch_norm(s.mid, eps, device)),
            se: s.se_reduced.map(|r| SqueezeExcite::new(s.mid, r, device)),
            ghost2: GhostModule::new(s.mid, s.c_out, false, eps, device),
            shortcut,
        }
    }

    /// `[b, in, h, w]` → `[b, out, h/stride, w/stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.ghost1.forward(x.clone());
        if let Some(conv) = &self.conv_dw {
            y = norm(&self.bn_dw, dispatch::conv2d(conv, y));
        }
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        let y = self.ghost2.forward(y);
        let short = match &self.shortcut {
            Some(s) => {
                let y = norm(&s.dw_bn, dispatch::conv2d(&s.dw_conv, x));
                norm(&s.pw_bn, dispatch::conv2d(&s.pw_conv, y))
            }
            None => x,
        };
        y + short
    }

    /// The inference form: every BatchNorm folded into its convolution.
    pub fn fold_batch_norm(self) -> Self {
        let conv_dw = self.conv_dw.map(|c| fold(c, self.bn_dw));
        Self {
            ghost1: self.ghost1.fold_batch_norm(),
            conv_dw,
            bn_dw: None,
            ghost2: self.ghost2.fold_batch_norm(),
            shortcut: self.shortcut.map(|s| Shortcut {
                dw_conv: fold(s.dw_conv, s.dw_bn),
                dw_bn: None,
                pw_conv: fold(s.pw_conv, s.pw_bn),
                pw_bn: None,
            }),
            ..self
        }
    }
}

/// 1×1 conv (no bias) → BN → ReLU: GhostNet's last feature layer
/// (PyTorch `blocks.9.0.{conv,bn1}`).
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// 1×1 convolution.
    pub conv: Conv2d,
    /// BN; `None` once folded ([`ConvBnAct::fold_batch_norm`]).
    pub bn1: Option<BatchNorm>,
}

impl ConvBnAct {
    /// `c_in → c_out`.
    pub fn new(c_in: usize, c_out: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: conv2d(c_in, c_out, 1, 1, 1, false, device),
            bn1: Some(batch_norm(c_out, eps, device)),
        }
    }

    /// `[b, in, h, w]` → `[b, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(norm(&self.bn1, dispatch::conv2d(&self.conv, x)))
    }

    /// The inference form: the BatchNorm folded into the convolution.
    pub fn fold_batch_norm(self) -> Self {
        Self {
            conv: fold(self.conv, self.bn1),
            bn1: None,
        }
    }
}
