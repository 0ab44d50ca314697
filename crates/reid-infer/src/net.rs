//! The ResNet graph on host kernels: stem, max-pool and residual blocks,
//! each convolution carrying its folded BatchNorm as a bias.

use crate::kernels::{Act, Conv, InstanceNorm, MaxPool, Workspace};

/// A convolution, the InstanceNorm that could not be folded into it
/// (IBN-a's `IN` half, IBN-b's stem), and whether ReLU follows.
#[derive(Debug, Clone)]
pub struct ConvUnit {
    /// Convolution with BatchNorm folded in.
    pub conv: Conv,
    /// Applied after the bias, before the ReLU.
    pub instance_norm: Option<InstanceNorm>,
}

impl ConvUnit {
    /// `conv(x)` (+ `residual`), the InstanceNorm if any, then ReLU when
    /// `relu`.
    fn forward(&self, x: &Act, residual: Option<&Act>, relu: bool, ws: &mut Workspace) -> Act {
        match &self.instance_norm {
            None => self.conv.forward(x, residual, relu, ws),
            Some(norm) => {
                let mut y = self.conv.forward(x, residual, false, ws);
                norm.apply(&mut y, relu);
                y
            }
        }
    }
}

/// A residual block: 2 or 3 convolutions (ReLU after all), the projection
/// shortcut, and IBN-b's InstanceNorm after the residual add.
#[derive(Debug, Clone)]
pub struct Block {
    /// In order; the last one receives the shortcut and never carries an
    /// InstanceNorm (IBN-a normalises `bn1` only).
    pub convs: Vec<ConvUnit>,
    /// 1×1 projection shortcut with its BatchNorm folded.
    pub downsample: Option<Conv>,
    /// IBN-b's post-add InstanceNorm (before the final ReLU).
    pub post_norm: Option<InstanceNorm>,
}

impl Block {
    /// `[batch, h, w, in]` → `[batch, h/stride, w/stride, out]`; the
    /// intermediates go back to `ws`.
    pub fn forward(&self, x: &Act, ws: &mut Workspace) -> Act {
        let projected = self
            .downsample
            .as_ref()
            .map(|d| d.forward(x, None, false, ws));
        let identity = projected.as_ref().unwrap_or(x);
        let mut y: Option<Act> = None;
        for (i, unit) in self.convs.iter().enumerate() {
            let input = y.as_ref().unwrap_or(x);
            let out = if i + 1 < self.convs.len() {
                unit.forward(input, None, true, ws)
            } else {
                match &self.post_norm {
                    None => unit.forward(input, Some(identity), true, ws),
                    Some(norm) => {
                        let mut out = unit.forward(input, Some(identity), false, ws);
                        norm.apply(&mut out, true);
                        out
                    }
                }
            };
            if let Some(prev) = y.replace(out) {
                ws.give(prev.data);
            }
        }
        if let Some(p) = projected {
            ws.give(p.data);
        }
        // A block without convolutions is the identity (never built).
        y.unwrap_or_else(|| x.clone())
    }
}

/// Stem, max-pool and blocks of a ResNet trunk.
#[derive(Debug, Clone)]
pub struct Net {
    /// 7×7 stride-2 stem convolution (+ IBN-b InstanceNorm), then ReLU.
    pub stem: ConvUnit,
    /// Stem max-pool.
    pub pool: MaxPool,
    /// All blocks of the four stages, in order.
    pub blocks: Vec<Block>,
}

impl Net {
    /// `[batch, H, W, 3]` → the final feature map, NHWC; intermediates go
    /// back to `ws`.
    pub fn forward(&self, images: &Act, ws: &mut Workspace) -> Act {
        let stem = self.stem.forward(images, None, true, ws);
        let mut x = self.pool.forward(&stem, ws);
        ws.give(stem.data);
        for block in &self.blocks {
            let y = block.forward(&x, ws);
            ws.give(std::mem::replace(&mut x, y).data);
        }
        x
    }
}
