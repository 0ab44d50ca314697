//! EdgeNeXt's two encoders: the convolutional [`ConvEncoder`] and the split
//! depth-wise transpose attention [`SdtaEncoder`] with its cross-covariance
//! attention [`Xca`] and Fourier positional encoding
//! [`PositionalEncodingFourier`].

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::convnext::{
    ChannelNorm, ConvNeXtBlock, PointwiseLinear, inverted_bottleneck, layer_scale, scaled,
};
use crate::layers::{conv2d, drop_path};

/// The convolutional encoder (official `ConvEncoder`, timm `ConvBlock`) on
/// `[batch, dim, h, w]` (shape preserved): ConvNeXt's block with a `k×k`
/// depth-wise kernel (padding `k/2`, bias) and hidden width `r·dim`, built
/// by [`ConvNeXtBlock::with_kernel`]: depth-wise convolution → channels-last
/// LayerNorm → linear `dim → r·dim` → GELU → linear `r·dim → dim` → layer
/// scale `gamma` → stochastic depth → add to the input. PyTorch names
/// (official): `dwconv`, `norm`, `pwconv1`, `pwconv2`, `gamma`.
pub type ConvEncoder = ConvNeXtBlock;

/// The Fourier positional encoding of XCiT / EdgeNeXt (official and timm
/// `PositionalEncodingFourier`, hidden width 32, temperature 10⁴): for a
/// `h × w` grid, 64 sine/cosine features of the normalised row and column
/// coordinates, projected by a 1×1 convolution `token_projection`
/// `64 → dim`. It depends only on `h` and `w` (any aspect ratio), not on
/// the input values.
#[derive(Module, Debug)]
pub struct PositionalEncodingFourier {
    /// 1×1 convolution `2·hidden → dim` with bias.
    pub token_projection: Conv2d,
    /// Features per coordinate (32).
    pub hidden_dim: usize,
    /// Frequency base (10000).
    pub temperature: f64,
}

impl PositionalEncodingFourier {
    /// An encoding projected to `dim` channels (hidden 32, temperature 1e4).
    pub fn new(dim: usize, device: &Device) -> Self {
        let hidden_dim = 32;
        Self {
            token_projection: Conv2dConfig::new([2 * hidden_dim, dim], [1, 1]).init(device),
            hidden_dim,
            temperature: 10000.0,
        }
    }

    /// The un-projected features `[1, 2·hidden, h, w]`: channels
    /// `0..hidden` encode the row, `hidden..2·hidden` the column; channel
    /// `c` of each half is `sin(t / T^(2⌊c/2⌋/hidden))` for even `c` and
    /// `cos(…)` for odd `c`, with `t = 2π · (index + 1) / (n + 1e-6)`
    /// (`n` = `h` or `w`). Computed in `f32` as PyTorch does.
    pub fn features(&self, h: usize, w: usize, device: &Device) -> Tensor<4> {
        let d = self.hidden_dim;
        let scale = 2.0 * std::f32::consts::PI;
        let dim_t: Vec<f32> = (0..d)
            .map(|c| {
                let e = (2 * (c / 2)) as f32 / d as f32;
                (self.temperature as f32).powf(e)
            })
            .collect();
        let coord = |i: usize, n: usize| (i + 1) as f32 / (n as f32 + 1e-6) * scale;
        let mut data = vec![0f32; 2 * d * h * w];
        for (c, &t) in dim_t.iter().enumerate() {
            let f = |v: f32| {
                if c % 2 == 0 {
                    (v / t).sin()
                } else {
                    (v / t).cos()
                }
            };
            for y in 0..h {
                for x in 0..w {
                    data[(c * h + y) * w + x] = f(coord(y, h));
                    data[((d + c) * h + y) * w + x] = f(coord(x, w));
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [1, 2 * d, h, w]), device)
    }

    /// The encoding of a `h × w` grid as tokens `[1, h·w, dim]` (row-major
    /// positions).
    pub fn forward(&self, h: usize, w: usize, device: &Device) -> Tensor<3> {
        let pos =
            crate::layers::dispatch::conv2d(&self.token_projection, self.features(h, w, device));
        let [_, dim, _, _] = pos.dims();
        pos.reshape([1, dim, h * w]).swap_dims(1, 2)
    }
}

/// Cross-covariance attention (official `XCA`, timm `CrossCovarianceAttn`)
/// on tokens `[batch, n, dim]`: `qkv` (bias) splits into `heads` heads of
/// `dim/heads` channels; per head, q and k `[head_dim, n]` are
/// L2-normalised along the tokens (`F.normalize`, eps 1e-12), the
/// `head_dim × head_dim` map `softmax(q̂·k̂ᵀ · temperature)` mixes the
/// channels of v; `proj` (bias).
#[derive(Module, Debug)]
pub struct Xca {
    /// Learned per-head temperature `[heads, 1, 1]` (initialised to 1).
    pub temperature: Param<Tensor<3>>,
    /// `dim → 3·dim`.
    pub qkv: PointwiseLinear,
    /// `dim → dim`.
    pub proj: PointwiseLinear,
    /// Number of heads.
    pub heads: usize,
}

impl Xca {
    /// An attention of width `dim` with `heads` heads.
    pub fn new(dim: usize, heads: usize, device: &Device) -> Self {
        Self {
            temperature: Param::from_tensor(Tensor::ones([heads, 1, 1], device)),
            qkv: PointwiseLinear::new(dim, 3 * dim, device),
            proj: PointwiseLinear::new(dim, dim, device),
            heads,
        }
    }

    /// `x` `[batch, n, dim]` → `[batch, n, dim]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let heads = self.heads;
        let hd = c / heads;
        let qkv = self
            .qkv
            .forward(x.reshape([b * n, c]))
            .reshape([b, n, 3, heads, hd])
            .permute([2, 0, 3, 4, 1]);
        let part = |i: usize| -> Tensor<4> {
            qkv.clone()
                .slice([i..i + 1, 0..b, 0..heads, 0..hd, 0..n])
                .reshape([b, heads, hd, n])
        };
        let l2 = |t: Tensor<4>| {
            let norm = t.clone().square().sum_dim(3).sqrt().clamp_min(1e-12);
            t / norm
        };
        let (q, k, v) = (l2(part(0)), l2(part(1)), part(2));
        let temperature = self.temperature.val().unsqueeze::<4>();
        let attn = softmax(q.matmul(k.swap_dims(2, 3)) * temperature, 3);
        let y = attn.matmul(v).permute([0, 3, 1, 2]).reshape([b * n, c]);
        self.proj.forward(y).reshape([b, n, c])
    }
}

/// The split depth-wise transpose attention encoder (official
/// `SDTAEncoder`, timm `SplitTransposeBlock`) on `[batch, dim, h, w]`
/// (shape preserved):
///
/// 1. the channels are split into `scales` groups of `width =
///    ⌈dim/scales⌉` (the last one smaller when `dim` is not a multiple);
///    group 1 goes through depth-wise 3×3 `convs.0`, group `i` (2 ≤ i <
///    scales) through `convs.{i−1}` after adding the previous group's
///    output; the last group passes unchanged; the groups are concatenated;
/// 2. as tokens `[batch, h·w, dim]`: plus the positional encoding (if
///    any), then `x + drop_path(gamma_xca · xca(norm_xca(x)))`;
/// 3. the inverted bottleneck as in [`ConvEncoder`], added to the block
///    input.
#[derive(Module, Debug)]
pub struct SdtaEncoder {
    /// `scales − 1` depth-wise 3×3 convolutions `width → width` (bias).
    pub convs: Vec<Conv2d>,
    /// Fourier positional encoding (official `pos_embd`), in the first
    /// SDTA stage only.
    pub pos_embd: Option<PositionalEncodingFourier>,
    /// LayerNorm before the attention.
    pub norm_xca: ChannelNorm,
    /// Layer scale of the attention branch `[dim]`.
    pub gamma_xca: Option<Param<Tensor<1>>>,
    /// The cross-covariance attention.
    pub xca: Xca,
    /// LayerNorm of the inverted bottleneck.
    pub norm: ChannelNorm,
    /// `dim → expan_ratio·dim`.
    pub pwconv1: PointwiseLinear,
    /// `expan_ratio·dim → dim`.
    pub pwconv2: PointwiseLinear,
    /// Layer scale of the bottleneck `[dim]`.
    pub gamma: Option<Param<Tensor<1>>>,
    /// Channels per split group (`⌈dim/scales⌉`).
    pub width: usize,
    /// Stochastic-depth rate (training only; both branches).
    pub drop_path: f64,
}

/// Options of an [`SdtaEncoder`] beyond its width.
#[derive(Debug, Clone, Copy)]
pub struct SdtaOptions {
    /// Number of split groups (official `scales`, ≥ 2).
    pub scales: usize,
    /// Attention heads (divides `dim`).
    pub heads: usize,
    /// Bottleneck expansion ratio.
    pub expan_ratio: usize,
    /// Whether the block adds the Fourier positional encoding.
    pub pos_embd: bool,
    /// Initial layer-scale value (0: none).
    pub layer_scale_init: f64,
    /// Stochastic-depth rate.
    pub drop_path: f64,
    /// LayerNorm epsilon.
    pub eps: f64,
}

impl SdtaEncoder {
    /// An encoder of width `dim`.
    pub fn new(dim: usize, o: SdtaOptions, device: &Device) -> Self {
        let width = dim.div_ceil(o.scales);
        let convs = (0..o.scales.saturating_sub(1).max(1))
            .map(|_| conv2d(width, width, 3, 1, width, true, device))
            .collect();
        Self {
            convs,
            pos_embd: o
                .pos_embd
                .then(|| PositionalEncodingFourier::new(dim, device)),
            norm_xca: ChannelNorm::new(dim, o.eps, device),
            gamma_xca: layer_scale(dim, o.layer_scale_init, device),
            xca: Xca::new(dim, o.heads, device),
            norm: ChannelNorm::new(dim, o.eps, device),
            pwconv1: PointwiseLinear::new(dim, o.expan_ratio * dim, device),
            pwconv2: PointwiseLinear::new(o.expan_ratio * dim, dim, device),
            gamma: layer_scale(dim, o.layer_scale_init, device),
            width,
            drop_path: o.drop_path,
        }
    }

    /// `x` `[batch, dim, h, w]` → `[batch, dim, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        // 1. Split depth-wise convolutions.
        let group = |i: usize| {
            let lo = (i * self.width).min(c);
            let hi = ((i + 1) * self.width).min(c);
            x.clone().slice([0..b, lo..hi, 0..h, 0..w])
        };
        let mut outs = Vec::with_capacity(self.convs.len() + 1);
        let mut sp = group(0);
        for (i, conv) in self.convs.iter().enumerate() {
            if i > 0 {
                sp = sp + group(i);
            }
            sp = crate::layers::dispatch::conv2d(conv, sp);
            outs.push(sp.clone());
        }
        outs.push(group(self.convs.len()));
        let y = Tensor::cat(outs, 1);
        // 2. XCA on tokens.
        let mut t = y.permute([0, 2, 3, 1]).reshape([b, n, c]);
        if let Some(pos) = &self.pos_embd {
            t = t + pos.forward(h, w, &x.device());
        }
        let a = self.xca.forward(self.norm_xca.forward_last(t.clone()));
        let a = scaled(a.reshape([b * n, c]), &self.gamma_xca);
        let a = drop_path(a.reshape([b, n, c, 1]), self.drop_path).reshape([b * n, c]);
        let t = t.reshape([b * n, c]) + a;
        // 3. Inverted bottleneck.
        let y = inverted_bottleneck(t, &self.norm, &self.pwconv1, &self.pwconv2, &self.gamma);
        let y = y.reshape([b, h, w, c]).permute([0, 3, 1, 2]);
        x + drop_path(y, self.drop_path)
    }
}
