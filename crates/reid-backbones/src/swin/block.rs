//! The Swin block (window attention + MLP, pre-norm residuals), patch
//! merging, window partitioning and stochastic depth.

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use super::attention::WindowAttention;
use super::linear::TorchLinear;
use crate::layers::{self, DropPathRng, drop_path_stream};
use crate::norm::layer_norm;

/// `[batch, Hp, Wp, C]` → `[batch·num_windows, window², C]`, windows
/// row-major within each image.
pub fn window_partition(x: Tensor<4>, window: usize) -> Tensor<3> {
    let [b, hp, wp, c] = x.dims();
    x.reshape([b, hp / window, window, wp / window, window, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * (hp / window) * (wp / window), window * window, c])
}

/// Inverse of [`window_partition`]: `[batch·num_windows, window², C]` →
/// `[batch, Hp, Wp, C]`.
pub fn window_reverse(
    windows: Tensor<3>,
    window: usize,
    b: usize,
    hp: usize,
    wp: usize,
) -> Tensor<4> {
    let [_, _, c] = windows.dims();
    windows
        .reshape([b, hp / window, wp / window, window, window, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, hp, wp, c])
}

/// The MLP of a block: `fc1` `[dim → hidden]`, exact GELU, `fc2`
/// `[hidden → dim]` ([`Mlp::new`] builds it).
pub type Mlp = layers::Mlp<TorchLinear>;

/// One Swin block (detection-style). PyTorch names: `norm1`, `attn.*`,
/// `norm2`, `mlp.fc1`, `mlp.fc2`.
#[derive(Module, Debug)]
pub struct SwinBlock {
    /// LayerNorm before attention.
    pub norm1: LayerNorm,
    /// Window attention.
    pub attn: WindowAttention,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// Cyclic shift in tokens (0, or `window / 2` for odd block indices).
    pub shift: usize,
    /// Stochastic depth rate of both residual branches.
    pub drop_path: f64,
}

/// Sizes of the token map a block works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapSize {
    pub h: usize,
    pub w: usize,
}

impl SwinBlock {
    /// Builds a block of `dim` channels.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dim: usize,
        heads: usize,
        window: usize,
        shift: usize,
        mlp_ratio: f64,
        qkv_bias: bool,
        drop_path: f64,
        eps: f64,
        device: &Device,
    ) -> Self {
        let hidden = (dim as f64 * mlp_ratio) as usize;
        Self {
            norm1: layer_norm(dim, eps, device),
            attn: WindowAttention::new(dim, heads, window, qkv_bias, device),
            norm2: layer_norm(dim, eps, device),
            mlp: Mlp::new(dim, hidden, device),
            shift,
            drop_path,
        }
    }

    /// Runs the block on tokens `x` `[batch, h·w, dim]` of an `h × w` map.
    ///
    /// The normalised map is zero-padded (right, bottom) to a multiple of the
    /// window, cyclically shifted by `−shift` when `shift > 0`, attended per
    /// window (with `mask` `[num_windows, N, N]` in shifted blocks), shifted
    /// back and cropped. Padded tokens are exactly zero, so their keys and
    /// values are the qkv biases; they are not masked (see the module docs).
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        size: MapSize,
        mask: Option<Tensor<3>>,
        mut rng: Option<&mut DropPathRng>,
    ) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let window = self.attn.window_size;
        let MapSize { h, w } = size;
        let hp = h.div_ceil(window) * window;
        let wp = w.div_ceil(window) * window;
        let shortcut = x.clone();
        let mut y = self.norm1.forward(x).reshape([b, h, w, c]);
        if hp > h || wp > w {
            y = y.pad([(0, hp - h), (0, wp - w), (0, 0)], PadMode::Constant(0.0));
        }
        let s = self.shift as i64;
        if s > 0 {
            y = y.roll(&[-s, -s], &[1, 2]);
        }
        let attn_mask = if s > 0 { mask } else { None };
        let windows = self.attn.forward(window_partition(y, window), attn_mask);
        let mut y = window_reverse(windows, window, b, hp, wp);
        if s > 0 {
            y = y.roll(&[s, s], &[1, 2]);
        }
        if hp > h || wp > w {
            y = y.slice([0..b, 0..h, 0..w, 0..c]);
        }
        let y = y.reshape([b, h * w, c]);
        let x = shortcut + drop_path_stream(y, self.drop_path, rng.as_deref_mut());
        let branch = self.mlp.forward(self.norm2.forward(x.clone()));
        x + drop_path_stream(branch, self.drop_path, rng)
    }
}

/// Patch merging (`downsample` of stages 0–2 in the official layout):
/// 2×2 neighbourhoods concatenated in the order (0,0), (1,0), (0,1), (1,1)
/// (row, column offsets), LayerNorm over `4·dim`, then `reduction`
/// `[2·dim, 4·dim]` without bias. Odd maps are zero-padded at the right /
/// bottom first. PyTorch names: `norm`, `reduction`.
#[derive(Module, Debug)]
pub struct PatchMerging {
    /// LayerNorm over the `4·dim` concatenation.
    pub norm: LayerNorm,
    /// Linear `4·dim → 2·dim`, no bias.
    pub reduction: TorchLinear,
}

impl PatchMerging {
    /// Builds the layer for `dim` input channels.
    pub(crate) fn new(dim: usize, eps: f64, device: &Device) -> Self {
        Self {
            norm: layer_norm(4 * dim, eps, device),
            reduction: TorchLinear::new(4 * dim, 2 * dim, false, device),
        }
    }

    /// `[batch, h·w, dim]` of an `h × w` map → `[batch, ⌈h/2⌉·⌈w/2⌉, 2·dim]`.
    pub(crate) fn forward(&self, x: Tensor<3>, size: MapSize) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let MapSize { h, w } = size;
        let mut y = x.reshape([b, h, w, c]);
        if h % 2 == 1 || w % 2 == 1 {
            y = y.pad([(0, h % 2), (0, w % 2), (0, 0)], PadMode::Constant(0.0));
        }
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let y = y
            .reshape([b, h2, 2, w2, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([b, h2 * w2, 4 * c]);
        self.reduction.forward(self.norm.forward(y))
    }
}
