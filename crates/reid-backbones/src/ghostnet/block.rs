//! GhostNet's building blocks: the Ghost module, squeeze-and-excitation
//! with a hard-sigmoid gate, the Ghost bottleneck and the final 1×1
//! conv-BN-ReLU.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::layers::conv2d;
use crate::norm::TorchBatchNorm;
use crate::norm::batch_norm;
use crate::pool::avg_pool_map;

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
    /// BN of the primary branch.
    pub primary_bn: BatchNorm,
    /// Depth-wise 3×3 on the primary output.
    pub cheap_conv: Conv2d,
    /// BN of the cheap branch.
    pub cheap_bn: BatchNorm,
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
            primary_bn: batch_norm(init, eps, device),
            cheap_conv: conv2d(init, init, 3, 1, init, false, device),
            cheap_bn: batch_norm(init, eps, device),
            out_channels: c_out,
            relu,
        }
    }

    /// `[b, in, h, w]` → `[b, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = |t: Tensor<4>| if self.relu { relu(t) } else { t };
        let x1 = act(self
            .primary_bn
            .forward_torch(crate::layers::dispatch::conv2d(&self.primary_conv, x)));
        let x2 = act(self.cheap_bn.forward_torch(crate::layers::dispatch::conv2d(
            &self.cheap_conv,
            x1.clone(),
        )));
        let [b, _, h, w] = x1.dims();
        Tensor::cat(vec![x1, x2], 1).slice([0..b, 0..self.out_channels, 0..h, 0..w])
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
        let s = crate::layers::dispatch::conv2d(
            &self.conv_expand,
            relu(crate::layers::dispatch::conv2d(&self.conv_reduce, s)),
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
    /// Its BN.
    pub dw_bn: BatchNorm,
    /// 1×1 `in → out`.
    pub pw_conv: Conv2d,
    /// Its BN.
    pub pw_bn: BatchNorm,
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
            dw_bn: batch_norm(s.c_in, eps, device),
            pw_conv: conv2d(s.c_in, s.c_out, 1, 1, 1, false, device),
            pw_bn: batch_norm(s.c_out, eps, device),
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
        if let (Some(conv), Some(bn)) = (&self.conv_dw, &self.bn_dw) {
            y = bn.forward_torch(crate::layers::dispatch::conv2d(conv, y));
        }
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        let y = self.ghost2.forward(y);
        let short = match &self.shortcut {
            Some(s) => s.pw_bn.forward_torch(crate::layers::dispatch::conv2d(
                &s.pw_conv,
                s.dw_bn
                    .forward_torch(crate::layers::dispatch::conv2d(&s.dw_conv, x)),
            )),
            None => x,
        };
        y + short
    }
}

/// 1×1 conv (no bias) → BN → ReLU: GhostNet's last feature layer
/// (PyTorch `blocks.9.0.{conv,bn1}`).
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// 1×1 convolution.
    pub conv: Conv2d,
    /// BN.
    pub bn1: BatchNorm,
}

impl ConvBnAct {
    /// `c_in → c_out`.
    pub fn new(c_in: usize, c_out: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: conv2d(c_in, c_out, 1, 1, 1, false, device),
            bn1: batch_norm(c_out, eps, device),
        }
    }

    /// `[b, in, h, w]` → `[b, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(
            self.bn1
                .forward_torch(crate::layers::dispatch::conv2d(&self.conv, x)),
        )
    }
}
