//! Outlook attention (VOLO's first stage) on channels-last maps
//! `[batch, height, width, channels]`, with PyTorch's `nn.Unfold` /
//! `F.fold` and `AvgPool2d(ceil_mode=True)` written as reshapes and shifted
//! slices (differentiable, no gather).

use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::blocks::Mlp;
use crate::layers::drop_path;
use crate::norm::layer_norm;
use crate::swin::TorchLinear;

/// `x` along `dim`: `before` zeros prepended, then zero-padded or cut at
/// the end to length `total`.
fn fit<const D: usize>(x: Tensor<D>, dim: usize, before: usize, total: usize) -> Tensor<D> {
    let zeros = |x: &Tensor<D>, n: usize| {
        let mut shape = x.dims();
        shape[dim] = n;
        Tensor::<D>::zeros(shape, &x.device())
    };
    let x = if before > 0 {
        Tensor::cat(vec![zeros(&x, before), x], dim)
    } else {
        x
    };
    let len = x.dims()[dim];
    if len < total {
        let pad = zeros(&x, total - len);
        Tensor::cat(vec![x, pad], dim)
    } else if len > total {
        x.narrow(dim, 0, total)
    } else {
        x
    }
}

/// The output grid of a `kernel`/`padding`/`stride` sliding window over
/// `size` samples (PyTorch's `nn.Unfold`).
pub fn unfold_grid(size: usize, kernel: usize, padding: usize, stride: usize) -> usize {
    (size + 2 * padding).saturating_sub(kernel) / stride + 1
}

/// PyTorch's `nn.Unfold(kernel, padding, stride)` on a channels-last map:
/// `x` `[b, H, W, C]` → `[b, h, w, kernel², C]`, where `[h, w]` is
/// [`unfold_grid`] and tap `ki·kernel + kj` of window `(i, j)` is
/// `x[stride·i + ki − padding, stride·j + kj − padding]` (zero outside).
/// PyTorch's `[b, C·kernel², h·w]` result is this tensor permuted
/// (channel-major, tap-minor).
pub fn unfold_nhwc(x: Tensor<4>, kernel: usize, padding: usize, stride: usize) -> Tensor<5> {
    let [b, hh, ww, c] = x.dims();
    let h = unfold_grid(hh, kernel, padding, stride);
    let w = unfold_grid(ww, kernel, padding, stride);
    let nbh = h - 1 + kernel.div_ceil(stride);
    let nbw = w - 1 + kernel.div_ceil(stride);
    let x = fit(x, 1, padding, nbh * stride);
    let x = fit(x, 2, padding, nbw * stride);
    let x: Tensor<6> = x.reshape([b, nbh, stride, nbw, stride, c]);
    let mut taps = Vec::with_capacity(kernel * kernel);
    for ki in 0..kernel {
        for kj in 0..kernel {
            let tap = x
                .clone()
                .narrow(1, ki / stride, h)
                .narrow(2, ki % stride, 1)
                .narrow(3, kj / stride, w)
                .narrow(4, kj % stride, 1)
                .reshape([b, h, w, 1, c]);
            taps.push(tap);
        }
    }
    Tensor::cat(taps, 3)
}

/// PyTorch's `F.fold(output_size = out_hw, kernel, padding, stride)`, the
/// adjoint of [`unfold_nhwc`]: `cols` `[b, h, w, kernel², C]` →
/// `[b, out_hw[0], out_hw[1], C]`, every tap added back at the position it
/// was taken from (overlaps summed, taps in the padding dropped).
pub fn fold_nhwc(
    cols: Tensor<5>,
    out_hw: [usize; 2],
    kernel: usize,
    padding: usize,
    stride: usize,
) -> Tensor<4> {
    let [b, h, w, kk, c] = cols.dims();
    debug_assert_eq!(kk, kernel * kernel);
    let device = cols.device();
    let nbh = h - 1 + kernel.div_ceil(stride);
    let nbw = w - 1 + kernel.div_ceil(stride);
    // One canvas of blocks per phase (row phase, column phase).
    let mut phases: Vec<Option<Tensor<4>>> = (0..stride * stride).map(|_| None).collect();
    for ki in 0..kernel {
        for kj in 0..kernel {
            let tap: Tensor<4> = cols
                .clone()
                .narrow(3, ki * kernel + kj, 1)
                .reshape([b, h, w, c]);
            let placed = fit(fit(tap, 1, ki / stride, nbh), 2, kj / stride, nbw);
            let slot = &mut phases[(ki % stride) * stride + kj % stride];
            *slot = Some(match slot.take() {
                Some(acc) => acc + placed,
                None => placed,
            });
        }
    }
    let mut rows = Vec::with_capacity(stride);
    for ri in 0..stride {
        let cols_of_row: Vec<Tensor<4>> = (0..stride)
            .map(|rj| {
                phases[ri * stride + rj]
                    .take()
                    .unwrap_or_else(|| Tensor::zeros([b, nbh, nbw, c], &device))
            })
            .collect();
        rows.push(Tensor::<4>::stack::<5>(cols_of_row, 3)); // [b, nbh, nbw, s, c]
    }
    let canvas: Tensor<6> = Tensor::stack(rows, 2); // [b, nbh, s, nbw, s, c]
    let canvas: Tensor<4> = canvas.reshape([b, nbh * stride, nbw * stride, c]);
    let canvas = fit(canvas, 1, 0, padding + out_hw[0]).narrow(1, padding, out_hw[0]);
    fit(canvas, 2, 0, padding + out_hw[1]).narrow(2, padding, out_hw[1])
}

/// `AvgPool2d(kernel = stride = s, ceil_mode=True)` on a channels-last map
/// `[b, H, W, C]` → `[b, ⌈H/s⌉, ⌈W/s⌉, C]`; a window cut by the border is
/// the mean of its samples inside the map (PyTorch's divisor).
pub fn avg_pool_ceil_nhwc(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [b, hh, ww, c] = x.dims();
    let (h, w) = (hh.div_ceil(s), ww.div_ceil(s));
    let device = x.device();
    let x = fit(fit(x, 1, 0, h * s), 2, 0, w * s);
    let x: Tensor<6> = x.reshape([b, h, s, w, s, c]);
    let sums: Tensor<4> = x.sum_dim(4).sum_dim(2).reshape([b, h, w, c]);
    let mut counts = Vec::with_capacity(h * w);
    for i in 0..h {
        for j in 0..w {
            let rows = hh.min((i + 1) * s) - i * s;
            let cols = ww.min((j + 1) * s) - j * s;
            counts.push(1.0 / (rows * cols) as f32);
        }
    }
    let inv = Tensor::<4>::from_data(TensorData::new(counts, [1, h, w, 1]), &device);
    sums * inv
}

/// Outlook attention (PyTorch names `v`, `attn`, `proj`): values of each
/// `kernel × kernel` window are mixed by weights predicted from the
/// (average-pooled) centre token, then folded back.
#[derive(Module, Debug)]
pub struct OutlookAttention {
    /// Value projection `dim → dim` (no bias in VOLO).
    pub v: TorchLinear,
    /// Window weights `dim → heads · kernel⁴`.
    pub attn: TorchLinear,
    /// Output projection `dim → dim`.
    pub proj: TorchLinear,
    /// Number of heads.
    pub num_heads: usize,
    /// Window size (3).
    pub kernel_size: usize,
    /// Window padding (1).
    pub padding: usize,
    /// Window stride and pooling size (2).
    pub stride: usize,
}

impl OutlookAttention {
    /// `[b, H, W, dim]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, hh, ww, c] = x.dims();
        let (k, p, s) = (self.kernel_size, self.padding, self.stride);
        let nh = self.num_heads;
        let hd = c / nh;
        let kk = k * k;
        let v = unfold_nhwc(self.v.forward(x.clone()), k, p, s);
        let [_, h, w, _, _] = v.dims();
        let v = v.reshape([b, h * w, kk, nh, hd]).permute([0, 3, 1, 2, 4]);
        let pooled = avg_pool_ceil_nhwc(x, s);
        let [_, ph, pw, _] = pooled.dims();
        debug_assert_eq!([ph, pw], [h, w]);
        let attn: Tensor<5> = self
            .attn
            .forward(pooled)
            .reshape([b, h * w, nh, kk, kk])
            .permute([0, 2, 1, 3, 4]);
        let scale = (hd as f64).powf(-0.5);
        let attn = softmax(attn * scale, 4);
        let out = attn.matmul(v); // [b, nh, hw, kk, hd]
        let cols = out.permute([0, 2, 3, 1, 4]).reshape([b, h, w, kk, c]);
        self.proj.forward(fold_nhwc(cols, [hh, ww], k, p, s))
    }
}

/// One outlooker block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))` on
/// `[b, H, W, dim]` (PyTorch names `norm1`, `attn.*`, `norm2`, `mlp.*`).
#[derive(Module, Debug)]
pub struct Outlooker {
    /// LayerNorm before the outlook attention.
    pub norm1: LayerNorm,
    /// Outlook attention.
    pub attn: OutlookAttention,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm,
    /// MLP.
    pub mlp: Mlp,
    /// Stochastic-depth rate (training only; 0 in VOLO / CION).
    pub drop_path: f64,
}

/// Options of an [`Outlooker`].
#[derive(Debug, Clone, Copy)]
pub struct OutlookerOptions {
    /// Channels.
    pub dim: usize,
    /// Heads (divide `dim`).
    pub num_heads: usize,
    /// MLP hidden width.
    pub mlp_hidden: usize,
    /// Window size, padding and stride.
    pub kernel_padding_stride: [usize; 3],
    /// Bias on `v`.
    pub qkv_bias: bool,
    /// LayerNorm epsilon.
    pub ln_eps: f64,
    /// Stochastic-depth rate.
    pub drop_path: f64,
}

impl Outlooker {
    /// A block with PyTorch-like initialisation (normal(0.02) weights, zero
    /// biases, LayerNorm γ = 1, β = 0).
    pub fn new(o: OutlookerOptions, device: &Device) -> Self {
        let [k, p, s] = o.kernel_padding_stride;
        let ln = || layer_norm(o.dim, o.ln_eps, device);
        Self {
            norm1: ln(),
            attn: OutlookAttention {
                v: TorchLinear::new(o.dim, o.dim, o.qkv_bias, device),
                attn: TorchLinear::new(o.dim, k * k * k * k * o.num_heads, true, device),
                proj: TorchLinear::new(o.dim, o.dim, true, device),
                num_heads: o.num_heads,
                kernel_size: k,
                padding: p,
                stride: s,
            },
            norm2: ln(),
            mlp: Mlp::new(o.dim, o.mlp_hidden, device),
            drop_path: o.drop_path,
        }
    }

    /// `[b, H, W, dim]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let y = self.attn.forward(self.norm1.forward(x.clone()));
        let x = x + drop_path(y.reshape([b, h * w, c]), self.drop_path).reshape([b, h, w, c]);
        let y = self.mlp.forward(self.norm2.forward(x.clone()));
        x + drop_path(y.reshape([b, h * w, c]), self.drop_path).reshape([b, h, w, c])
    }
}
