//! Swin Transformer backbones (Liu et al., ICCV 2021) in the form CION's
//! ReIDZoo uses: Microsoft's *detection-style* backbone
//! (`Swin-Transformer-Object-Detection`), patch 4, window 8, no absolute
//! position embedding, LayerNorm after the patch embedding, output of the
//! last stage through `norm3`, and global average pooling for the embedding
//! (Swin-T/S: 768, Swin-B: 1024).
//!
//! # Detection-style windows (the default, and the only mode)
//!
//! At 256×128 the stage maps are 64×32, 32×16, 16×8 and 8×4 tokens. A map
//! that is not a multiple of the window is **zero-padded** (right, bottom)
//! after `norm1`, the window size stays 8 and shifted blocks still shift by
//! 4; the shifted-window mask is built on the padded grid. Padded tokens are
//! zeros, so their keys and values are the qkv biases, and they are **not
//! masked**: the non-shifted windows have no mask at all, and the shifted
//! ones only separate the three shift regions of each axis, so real tokens
//! attend to padded ones in both. Patch merging zero-pads odd maps, and the
//! patch embedding zero-pads images whose sides are not multiples of the
//! patch size. CION's checkpoints were trained with exactly this.
//!
//! timm's `SwinTransformer` differs where maps are small: when a stage's map
//! is not larger than the window it **clamps** the window to the map and
//! **disables the shift** (unless `always_partition`), and it pads after the
//! cyclic shift rather than before. With maps larger than and divisible by
//! the window the two compute the same function (checked in
//! `tools/fixtures/gen_swin_fixtures.py`), but at 256×128 with window 8 the last stage
//! (8×4) differs, so timm cannot reproduce CION's features.
//!
//! # Parameters
//!
//! [`SwinTransformer::num_params`] counts every parameter: patch embedding
//! (with its norm), blocks (including the relative position bias tables),
//! patch merging and `norm3`; not the `relative_position_index` buffers
//! (recomputed) and no classifier: Swin-T 27,527,082, Swin-S 48,853,050,
//! Swin-B 86,764,280 (27.53 / 48.85 / 86.76 M, the ReIDZoo table).
//!
//! # Training
//!
//! Stochastic depth (rate linearly increasing from 0 to `drop_path_rate`,
//! 0.1 in CION, over all blocks) runs only in
//! [`SwinTransformer::forward_features_train`] /
//! [`SwinTransformer::forward_embedding_train`], seeded; the inference paths
//! ([`Backbone::forward_features`], [`SwinTransformer::forward_embedding`])
//! never drop.

mod attention;
mod block;
mod import;
mod linear;

pub use crate::layers::DropPathRng;
pub use attention::{
    REGION_MASK_VALUE, WindowAttention, relative_position_index, shifted_window_mask,
};
pub use block::{Mlp, PatchMerging, SwinBlock, window_partition, window_reverse};
pub use import::{SwinKeys, load_swin};
pub use linear::TorchLinear;

use block::MapSize;

use burn::config::Config;
use burn::module::Module;
use burn::nn::LayerNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::error::{BackboneError, check_drop_path_rate, check_positive};
use crate::norm::layer_norm;
use crate::registry::presets;

/// The three ReIDZoo Swin variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwinVariant {
    /// Swin-T: embed dim 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24).
    Tiny,
    /// Swin-S: embed dim 96, depths (2, 2, 18, 2), heads (3, 6, 12, 24).
    Small,
    /// Swin-B: embed dim 128, depths (2, 2, 18, 2), heads (4, 8, 16, 32).
    Base,
}

impl SwinVariant {
    /// CION's architecture key (`swin_tiny`, `swin_small`, `swin_base`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "swin_tiny",
            Self::Small => "swin_small",
            Self::Base => "swin_base",
        }
    }

    /// Parameter count of the ReIDZoo table, in millions.
    pub fn table_params_millions(self) -> f64 {
        match self {
            Self::Tiny => 27.53,
            Self::Small => 48.85,
            Self::Base => 86.76,
        }
    }
}

/// Configuration of a [`SwinTransformer`]; defaults are CION's Swin-T.
#[derive(Config, Debug)]
pub struct SwinConfig {
    /// Channels of stage 0 (`C`); stage `i` has `C·2^i`.
    #[config(default = 96)]
    pub embed_dim: usize,
    /// Blocks per stage.
    #[config(default = "[2, 2, 6, 2]")]
    pub depths: [usize; 4],
    /// Attention heads per stage (each must divide the stage's channels).
    #[config(default = "[3, 6, 12, 24]")]
    pub num_heads: [usize; 4],
    /// Window side in tokens (8 in CION; 7 in the ImageNet-224 models).
    #[config(default = 8)]
    pub window_size: usize,
    /// Patch side in pixels (stride of the patch embedding).
    #[config(default = 4)]
    pub patch_size: usize,
    /// MLP hidden width as a multiple of the channels.
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Bias in the qkv projection.
    #[config(default = true)]
    pub qkv_bias: bool,
    /// LayerNorm after the patch embedding (`patch_norm`).
    #[config(default = true)]
    pub patch_norm: bool,
    /// Stochastic depth rate of the last block (0.1 in CION); used only by
    /// the `*_train` forwards.
    #[config(default = 0.1)]
    pub drop_path_rate: f64,
    /// LayerNorm epsilon (PyTorch's 1e-5).
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

presets! {
    SwinConfig {
        /// Swin-T (`swin_tiny`).
        tiny "swin_tiny" => Self::of_variant(SwinVariant::Tiny);
        /// Swin-S (`swin_small`).
        small "swin_small" => Self::of_variant(SwinVariant::Small);
        /// Swin-B (`swin_base`).
        base "swin_base" => Self::of_variant(SwinVariant::Base);
    }
}

impl SwinConfig {
    /// The ReIDZoo preset of `variant` (window 8, patch 4, drop path 0.1).
    pub fn of_variant(variant: SwinVariant) -> Self {
        match variant {
            SwinVariant::Tiny => Self::new(),
            SwinVariant::Small => Self::new().with_depths([2, 2, 18, 2]),
            SwinVariant::Base => Self::new()
                .with_embed_dim(128)
                .with_depths([2, 2, 18, 2])
                .with_num_heads([4, 8, 16, 32]),
        }
    }

    /// Channels of the output (`embed_dim · 8`).
    pub fn num_features(&self) -> usize {
        self.embed_dim * 8
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self.embed_dim == 0 || self.patch_size == 0 || self.window_size == 0 {
            return bad(format!(
                "embed_dim, patch_size and window_size must be positive, got {}, {}, {}",
                self.embed_dim, self.patch_size, self.window_size
            ));
        }
        if self.depths.contains(&0) {
            return bad(format!(
                "every stage needs at least one block, got depths {:?}",
                self.depths
            ));
        }
        for (i, &h) in self.num_heads.iter().enumerate() {
            let dim = self.embed_dim << i;
            if h == 0 || !dim.is_multiple_of(h) {
                return bad(format!(
                    "stage {i}: {h} heads must divide its {dim} channels (embed_dim · 2^{i})"
                ));
            }
        }
        check_positive("mlp_ratio", self.mlp_ratio)?;
        check_drop_path_rate(self.drop_path_rate)?;
        check_positive("norm_eps", self.norm_eps)
    }

    /// Builds the network with random weights on `device` (normal std 0.02
    /// linear weights and bias tables, zero biases, LayerNorm γ=1 β=0, burn's
    /// default convolution init).
    pub fn init(&self, device: &Device) -> Result<SwinTransformer, BackboneError> {
        self.validate()?;
        let p = self.patch_size;
        let eps = self.norm_eps;
        let patch_embed = PatchEmbed {
            proj: Conv2dConfig::new([3, self.embed_dim], [p, p])
                .with_stride([p, p])
                .init(device),
            norm: self
                .patch_norm
                .then(|| layer_norm(self.embed_dim, eps, device)),
            patch_size: p,
        };
        let total: usize = self.depths.iter().sum();
        let rate = |k: usize| crate::layers::drop_path_rate(self.drop_path_rate, k, total);
        let mut layers = Vec::with_capacity(4);
        let mut k = 0;
        for i in 0..4 {
            let dim = self.embed_dim << i;
            let blocks = (0..self.depths[i])
                .map(|j| {
                    let shift = if j % 2 == 0 { 0 } else { self.window_size / 2 };
                    SwinBlock::new(
                        dim,
                        self.num_heads[i],
                        self.window_size,
                        shift,
                        self.mlp_ratio,
                        self.qkv_bias,
                        rate(k + j),
                        eps,
                        device,
                    )
                })
                .collect();
            k += self.depths[i];
            layers.push(SwinStage {
                blocks,
                downsample: (i < 3).then(|| PatchMerging::new(dim, eps, device)),
                window_size: self.window_size,
            });
        }
        Ok(SwinTransformer {
            patch_embed,
            layers,
            norm3: layer_norm(self.num_features(), eps, device),
            embed_dim: self.embed_dim,
            num_features: self.num_features(),
            window_size: self.window_size,
        })
    }
}

/// Patch embedding: zero-pad the image to multiples of the patch size,
/// `proj` convolution (kernel = stride = patch), optional LayerNorm.
/// PyTorch names: `patch_embed.proj`, `patch_embed.norm`.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// Convolution `[embed_dim, 3, patch, patch]` with bias.
    pub proj: Conv2d,
    /// LayerNorm over the channels (`patch_norm`).
    pub norm: Option<LayerNorm>,
    /// Patch side in pixels.
    pub patch_size: usize,
}

impl PatchEmbed {
    /// `[batch, 3, H, W]` → tokens `[batch, h·w, embed_dim]` and the map
    /// size `h = ⌈H/patch⌉`, `w = ⌈W/patch⌉`.
    fn forward(&self, images: Tensor<4>) -> (Tensor<3>, MapSize) {
        let [_, _, hh, ww] = images.dims();
        let p = self.patch_size;
        let (ph, pw) = (hh.next_multiple_of(p) - hh, ww.next_multiple_of(p) - ww);
        let images = if ph > 0 || pw > 0 {
            images.pad((0, pw, 0, ph), PadMode::Constant(0.0))
        } else {
            images
        };
        let x = crate::layers::dispatch::conv2d(&self.proj, images);
        let [b, c, h, w] = x.dims();
        let tokens = x.reshape([b, c, h * w]).swap_dims(1, 2);
        let tokens = match &self.norm {
            Some(norm) => norm.forward(tokens),
            None => tokens,
        };
        (tokens, MapSize { h, w })
    }
}

/// One stage (`layers.i`): blocks, then (stages 0–2) patch merging.
#[derive(Module, Debug)]
pub struct SwinStage {
    /// The blocks (`layers.i.blocks.j`); odd ones are shifted.
    pub blocks: Vec<SwinBlock>,
    /// Patch merging at the end of the stage (`layers.i.downsample`; none in
    /// the last stage).
    pub downsample: Option<PatchMerging>,
    /// Window side in tokens.
    pub window_size: usize,
}

impl SwinStage {
    /// Runs the blocks on `[batch, h·w, dim]`; returns the stage output
    /// (before merging) and, when the stage merges, the merged tokens and
    /// their map size.
    fn forward(
        &self,
        x: Tensor<3>,
        size: MapSize,
        mut rng: Option<&mut DropPathRng>,
    ) -> (Tensor<3>, Option<(Tensor<3>, MapSize)>) {
        let window = self.window_size;
        let shift = window / 2;
        let mask = (shift > 0 && self.blocks.len() > 1).then(|| {
            let hp = size.h.div_ceil(window) * window;
            let wp = size.w.div_ceil(window) * window;
            let n = window * window;
            let values = shifted_window_mask(hp, wp, window, shift);
            let nw = values.len() / (n * n);
            Tensor::<3>::from_data(TensorData::new(values, [nw, n, n]), &x.device())
        });
        let mut x = x;
        for block in &self.blocks {
            let m = if block.shift > 0 { mask.clone() } else { None };
            x = block.forward(x, size, m, rng.as_deref_mut());
        }
        let merged = self.downsample.as_ref().map(|d| {
            let next = MapSize {
                h: size.h.div_ceil(2),
                w: size.w.div_ceil(2),
            };
            (d.forward(x.clone(), size), next)
        });
        (x, merged)
    }
}

/// The Swin backbone: images `[batch, 3, H, W]` → feature map
/// `[batch, 8·embed_dim, h, w]` (after `norm3`) with `h = ⌈H/32⌉`,
/// `w = ⌈W/32⌉` for patch 4 (8×4 at 256×128).
#[derive(Module, Debug)]
pub struct SwinTransformer {
    /// Patch embedding (`patch_embed.*`).
    pub patch_embed: PatchEmbed,
    /// The four stages (`layers.{0..3}.*`).
    pub layers: Vec<SwinStage>,
    /// LayerNorm of the last stage's output (`norm3.*`; timm's `norm.*`).
    pub norm3: LayerNorm,
    /// Channels of stage 0.
    pub embed_dim: usize,
    /// Channels of the output (`8·embed_dim`).
    pub num_features: usize,
    /// Window side in tokens.
    pub window_size: usize,
}

impl SwinTransformer {
    /// Tokens of the last stage after `norm3`, `[batch, h·w, C]`, and the
    /// map size.
    fn forward_tokens(
        &self,
        images: Tensor<4>,
        mut rng: Option<DropPathRng>,
    ) -> (Tensor<3>, usize, usize) {
        let (mut x, mut size) = self.patch_embed.forward(images);
        for stage in &self.layers {
            let (out, merged) = stage.forward(x, size, rng.as_mut());
            match merged {
                Some((down, next)) => {
                    x = down;
                    size = next;
                }
                None => x = out,
            }
        }
        (self.norm3.forward(x), size.h, size.w)
    }

    fn to_map(&self, tokens: Tensor<3>, h: usize, w: usize) -> Tensor<4> {
        let [b, _, c] = tokens.dims();
        tokens.reshape([b, h, w, c]).permute([0, 3, 1, 2])
    }

    /// CION's pooled feature: the global average of the `norm3` output,
    /// `[batch, 8·embed_dim]` (768 for Swin-T/S, 1024 for Swin-B), in
    /// inference mode (no stochastic depth).
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        let (tokens, _, _) = self.forward_tokens(images, None);
        tokens.mean_dim(1).squeeze_dim(1)
    }

    /// The feature map `[batch, C, h, w]` with stochastic depth: each block's
    /// residual branches are dropped per sample with the block's rate, drawn
    /// from a stream seeded by `seed` (same seed, same drops).
    pub fn forward_features_train(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        let (tokens, h, w) = self.forward_tokens(images, Some(DropPathRng::new(seed)));
        self.to_map(tokens, h, w)
    }

    /// The pooled feature `[batch, C]` with stochastic depth (see
    /// [`SwinTransformer::forward_features_train`]).
    pub fn forward_embedding_train(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        let (tokens, _, _) = self.forward_tokens(images, Some(DropPathRng::new(seed)));
        tokens.mean_dim(1).squeeze_dim(1)
    }

    /// Number of parameters (see the module documentation for what is
    /// counted).
    pub fn num_parameters(&self) -> usize {
        Module::num_params(self)
    }

    /// Checks the official `relative_position_index` of block `(stage,
    /// block)` against the recomputed one; `values` row-major
    /// `[window², window²]`.
    pub fn check_relative_position_index(
        &self,
        key: &str,
        values: &[i64],
    ) -> Result<(), BackboneError> {
        let expected = relative_position_index(self.window_size);
        if values == expected.as_slice() {
            Ok(())
        } else {
            Err(BackboneError::InvalidConfig(format!(
                "{key}: the checkpoint's relative position index differs from the one of a \
                 {w}×{w} window ({n} entries expected, {m} in the file)",
                w = self.window_size,
                n = expected.len(),
                m = values.len()
            )))
        }
    }
}

impl Backbone for SwinTransformer {
    /// Inference forward: `[batch, 3, H, W]` → `[batch, 8·embed_dim,
    /// ⌈H/(4·8)⌉, ⌈W/(4·8)⌉]` for patch 4 (after `norm3`).
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let (tokens, h, w) = self.forward_tokens(images, None);
        self.to_map(tokens, h, w)
    }

    fn out_channels(&self) -> usize {
        self.num_features
    }

    fn output_stride(&self) -> usize {
        self.patch_embed.patch_size * 8
    }

    /// [`SwinTransformer::forward_features_train`].
    fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        self.forward_features_train(images, seed)
    }

    /// [`SwinTransformer::forward_embedding_train`].
    fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        self.forward_embedding_train(images, seed)
    }
}
