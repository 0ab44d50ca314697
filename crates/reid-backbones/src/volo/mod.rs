//! VOLO-D1 / D2 / D3 (Yuan et al., "VOLO: Vision Outlooker for Visual
//! Recognition") as CION's ReIDZoo uses them: sail-sg's architecture for
//! 256×128 inputs, without classifier or token-labelling (aux) head; the
//! feature is the class token after the final norm (384 / 512 / 512).
//!
//! - `patch_embed`: conv stem 7×7 s2 → BN → ReLU → (3×3 → BN → ReLU) ×2
//!   (64 channels, no conv bias), then a 4×4 s4 projection — stride 8;
//! - stage 1 (`network.0`): [`Outlooker`] blocks (outlook attention,
//!   window 3, padding 1, stride 2) on `[batch, H/8, W/8, d0]`;
//! - `network.1`: a 2×2 s2 convolution `d0 → d1` — stride 16; then
//!   `pos_embed` `[1, H₀/16, W₀/16, d1]` is added (bicubically resized the
//!   DINO way, see [`PosEmbedInterpolation::DinoScaleFactor`], when the
//!   token count differs from the configured image size's);
//! - stages 2–4 (`network.2–4`): [`TransformerBlock`]s;
//! - `post_network`: two [`ClassBlock`]s (CaiT class attention) on
//!   `[cls_token, tokens]`, then `norm`.
//!
//! LayerNorm eps 1e-5, BN eps 1e-5, exact GELU, no qkv bias, MLP ratio 3.
//! Stochastic depth (transformer blocks only, `rate·i/(n−1)` over all `n`
//! blocks as upstream) acts only on an autodiff device. Checkpoints:
//! [`crate::import::load_volo`] (sail-sg / CION / timm names).
//!
//! Parity (`tests/integration/parity_volo.rs`, fixtures of `tools/fixtures/gen_volo_fixtures.py`,
//! timm 1.0.31 at a reduced size): outlooker map 2.4e-7, tokens 3.9e-7,
//! class token 3.3e-7 relative error; resized `pos_embed` and an odd 7×5
//! outlooker grid 6.3e-7; [`unfold_nhwc`] / [`fold_nhwc`] equal `F.unfold` /
//! `F.fold`, [`avg_pool_ceil_nhwc`] `avg_pool2d(ceil_mode=True)` to 5e-8.

mod blocks;
mod import;
mod outlook;

pub use blocks::{Attention, ClassAttention, ClassBlock, Mlp, TransformerBlock};
pub use import::{VoloImportReport, load_volo, volo_file_key, volo_model_path};
pub use outlook::{
    OutlookAttention, Outlooker, OutlookerOptions, avg_pool_ceil_nhwc, fold_nhwc, unfold_grid,
    unfold_nhwc,
};

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, Relu};
use burn::tensor::{Device, Distribution, Tensor};

use crate::backbone::Backbone;
use crate::error::BackboneError;
use crate::family::trainable_parameters;
use crate::layers::{BlockOptions, conv2d};
use crate::norm::{batch_norm, layer_norm};
use crate::registry::{preset_by_name, presets};
use crate::vit::{PosEmbedInterpolation, StemLayer, resize_patch_pos_embed, source_scales};

/// Configuration of a [`Volo`]; [`VoloConfig::d1`], [`VoloConfig::d2`] and
/// [`VoloConfig::d3`] are the ReIDZoo models. The layout is VOLO's: stage 1
/// outlookers, one 2× down-sampling, stages 2–4 transformers (all of width
/// `embed_dims[1]`), two class-attention blocks.
#[derive(Config, Debug)]
pub struct VoloConfig {
    /// Blocks per stage (D1 `[4, 4, 8, 2]`, D2 `[6, 4, 10, 4]`, D3
    /// `[8, 8, 16, 4]`).
    pub layers: [usize; 4],
    /// Channels per stage (D1 `[192, 384, 384, 384]`, D2/D3
    /// `[256, 512, 512, 512]`); stages 2–4 must agree.
    pub embed_dims: [usize; 4],
    /// Heads per stage (D1 `[6, 12, 12, 12]`, D2/D3 `[8, 16, 16, 16]`); the
    /// class-attention blocks use the last.
    pub num_heads: [usize; 4],
    /// The image size `[height, width]` `pos_embed` is laid out for.
    #[config(default = "[256, 128]")]
    pub img_size: [usize; 2],
    /// Stem hidden channels.
    #[config(default = 64)]
    pub stem_hidden_dim: usize,
    /// MLP expansion ratio.
    #[config(default = 3.0)]
    pub mlp_ratio: f64,
    /// Outlook window size, padding and stride.
    #[config(default = "[3, 1, 2]")]
    pub outlook_kernel_padding_stride: [usize; 3],
    /// Number of class-attention blocks.
    #[config(default = 2)]
    pub post_layers: usize,
    /// Bias on `v`, `qkv`, `q`, `kv`.
    #[config(default = false)]
    pub qkv_bias: bool,
    /// Stochastic-depth rate of the last block (0 disables it; CION: 0).
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub ln_eps: f64,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
}

/// Patch size of the stem (stride 8).
pub const PATCH_SIZE: usize = 8;
/// Total stride of the token grid after the down-sampling (16).
pub const OUTPUT_STRIDE: usize = 16;

presets! {
    VoloConfig,
    custom preset {
        /// VOLO-D1 (384-d feature).
        d1 "volo_d1" => Self::new([4, 4, 8, 2], [192, 384, 384, 384], [6, 12, 12, 12]);
        /// VOLO-D2 (512-d feature).
        d2 "volo_d2" => Self::new([6, 4, 10, 4], [256, 512, 512, 512], [8, 16, 16, 16]);
        /// VOLO-D3 (512-d feature).
        d3 "volo_d3" => Self::new([8, 8, 16, 4], [256, 512, 512, 512], [8, 16, 16, 16]);
    }
}

impl VoloConfig {
    /// A preset by name: `volo_d1`, `volo_d2`, `volo_d3` (or `d1`…), ASCII
    /// case ignored; an unknown name is [`BackboneError::UnknownArch`]
    /// listing the known ones.
    pub fn preset(name: &str) -> Result<Self, BackboneError> {
        let prefixed = name.len() > 5 && name[..5].eq_ignore_ascii_case("volo_");
        let name = if prefixed {
            name.to_string()
        } else {
            format!("volo_{name}")
        };
        preset_by_name(&name, Self::PRESETS)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self.layers[0] == 0 || self.embed_dims.contains(&0) || self.num_heads.contains(&0) {
            return bad(format!(
                "VOLO needs outlookers, channels and heads, got layers {:?}, embed_dims {:?}, \
                 num_heads {:?}",
                self.layers, self.embed_dims, self.num_heads
            ));
        }
        if self.embed_dims[2] != self.embed_dims[1] || self.embed_dims[3] != self.embed_dims[1] {
            return bad(format!(
                "stages 2-4 have no down-sampling between them, so embed_dims[1..] must be \
                 equal, got {:?}",
                self.embed_dims
            ));
        }
        for i in 0..4 {
            if !self.embed_dims[i].is_multiple_of(self.num_heads[i]) {
                return bad(format!(
                    "embed_dims[{i}] = {} is not a multiple of num_heads[{i}] = {}",
                    self.embed_dims[i], self.num_heads[i]
                ));
            }
        }
        let [k, p, s] = self.outlook_kernel_padding_stride;
        if k == 0 || s == 0 || 2 * p + 1 != k {
            return bad(format!(
                "outlook window {k}, padding {p}, stride {s}: VOLO needs an odd window with \
                 padding (k-1)/2 (its fold assumes ceil(H/stride) windows)"
            ));
        }
        if self.img_size[0] < OUTPUT_STRIDE || self.img_size[1] < OUTPUT_STRIDE {
            return bad(format!(
                "img_size {:?} is smaller than one 16×16 token",
                self.img_size
            ));
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) || self.mlp_ratio <= 0.0 {
            return bad(format!(
                "drop_path_rate must be in [0, 1) and mlp_ratio positive, got {} and {}",
                self.drop_path_rate, self.mlp_ratio
            ));
        }
        Ok(())
    }

    /// MLP hidden width of stage `i` (`⌊dim · mlp_ratio⌋`).
    pub fn mlp_hidden(&self, i: usize) -> usize {
        (self.embed_dims[i] as f64 * self.mlp_ratio) as usize
    }

    /// The options of a `dim`-wide block of stage `i` (heads, MLP width,
    /// `qkv` bias, LayerNorm epsilon; no stochastic depth).
    fn block_options(&self, i: usize, dim: usize) -> BlockOptions {
        BlockOptions {
            dim,
            num_heads: self.num_heads[i],
            mlp_hidden: self.mlp_hidden(i),
            qkv_bias: self.qkv_bias,
            ln_eps: self.ln_eps,
            drop_path: 0.0,
        }
    }

    /// The `pos_embed` grid `[H₀/16, W₀/16]`.
    pub fn pos_grid(&self) -> [usize; 2] {
        [
            self.img_size[0] / OUTPUT_STRIDE,
            self.img_size[1] / OUTPUT_STRIDE,
        ]
    }

    /// Builds the network on `device` (PyTorch-like random initialisation;
    /// load a checkpoint with [`crate::import::load_volo`]).
    pub fn init(&self, device: &Device) -> Result<Volo, BackboneError> {
        self.validate()?;
        let hidden = self.stem_hidden_dim;
        let conv =
            |cin, k, stride| StemLayer::Conv(conv2d(cin, hidden, k, stride, 1, false, device));
        let bn = || StemLayer::Batch(batch_norm(hidden, self.bn_eps, device));
        let stem = vec![
            conv(3, 7, 2),
            bn(),
            StemLayer::Relu(Relu),
            conv(hidden, 3, 1),
            bn(),
            StemLayer::Relu(Relu),
            conv(hidden, 3, 1),
            bn(),
            StemLayer::Relu(Relu),
        ];
        let k = PATCH_SIZE / 2;
        let [d0, d1] = [self.embed_dims[0], self.embed_dims[1]];
        let patch_embed = VoloPatchEmbed {
            conv: stem,
            proj: Conv2dConfig::new([hidden, d0], [k, k])
                .with_stride([k, k])
                .init(device),
        };
        let outlookers = (0..self.layers[0])
            .map(|_| {
                Outlooker::new(
                    OutlookerOptions {
                        dim: d0,
                        num_heads: self.num_heads[0],
                        mlp_hidden: self.mlp_hidden(0),
                        kernel_padding_stride: self.outlook_kernel_padding_stride,
                        qkv_bias: self.qkv_bias,
                        ln_eps: self.ln_eps,
                        drop_path: 0.0,
                    },
                    device,
                )
            })
            .collect();
        let downsample = VoloDownsample {
            proj: Conv2dConfig::new([d0, d1], [2, 2])
                .with_stride([2, 2])
                .init(device),
        };
        let total: usize = self.layers.iter().sum();
        let mut index = self.layers[0];
        let mut stages = Vec::with_capacity(3);
        for i in 1..4 {
            let mut blocks = Vec::with_capacity(self.layers[i]);
            for _ in 0..self.layers[i] {
                let rate = crate::layers::drop_path_rate(self.drop_path_rate, index, total);
                let options = BlockOptions {
                    drop_path: rate,
                    ..self.block_options(i, d1)
                };
                blocks.push(TransformerBlock::new(options, device));
                index += 1;
            }
            stages.push(TransformerStage { blocks });
        }
        let post_network = (0..self.post_layers)
            .map(|_| ClassBlock::new(self.block_options(3, d1), device))
            .collect();
        let [gh, gw] = self.pos_grid();
        let normal =
            |shape: [usize; 3]| Tensor::random(shape, Distribution::Normal(0.0, 0.02), device);
        Ok(Volo {
            patch_embed,
            outlookers,
            downsample,
            pos_embed: Param::from_tensor(Tensor::random(
                [1, gh, gw, d1],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            stages,
            cls_token: Param::from_tensor(normal([1, 1, d1])),
            post_network,
            norm: layer_norm(d1, self.ln_eps, device),
            img_size: self.img_size,
            embed_dim: d1,
        })
    }
}

/// VOLO's patch embedding (PyTorch `patch_embed.conv.{0,1,3,4,6,7}`,
/// `patch_embed.proj`): `[batch, 3, H, W]` → `[batch, d0, H/8, W/8]`.
#[derive(Module, Debug)]
pub struct VoloPatchEmbed {
    /// The nine stem layers (conv, BN, ReLU ×3), PyTorch indices 0–8.
    pub conv: Vec<StemLayer>,
    /// The 4×4 stride-4 projection (with bias).
    pub proj: Conv2d,
}

impl VoloPatchEmbed {
    /// `[batch, 3, H, W]` → `[batch, d0, h, w]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.conv.iter().fold(images, |x, layer| layer.forward(x));
        crate::layers::dispatch::conv2d(&self.proj, x)
    }
}

/// The 2×2 stride-2 convolution between stage 1 and 2 (PyTorch
/// `network.1.proj`), on channels-last maps.
#[derive(Module, Debug)]
pub struct VoloDownsample {
    /// `d0 → d1`, kernel = stride = 2, with bias.
    pub proj: Conv2d,
}

impl VoloDownsample {
    /// `[b, h, w, d0]` → `[b, h/2, w/2, d1]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.proj
            .forward(x.permute([0, 3, 1, 2]))
            .permute([0, 2, 3, 1])
    }
}

/// One transformer stage (PyTorch `network.{2,3,4}`).
#[derive(Module, Debug)]
pub struct TransformerStage {
    /// The blocks (PyTorch `network.N.j`).
    pub blocks: Vec<TransformerBlock>,
}

/// A VOLO network; see the module documentation. Module paths: `patch_embed`,
/// `outlookers.j` (PyTorch `network.0.j`), `downsample` (`network.1`),
/// `pos_embed`, `stages.i.blocks.j` (`network.{i+2}.j`), `cls_token`,
/// `post_network.j`, `norm`.
#[derive(Module, Debug)]
pub struct Volo {
    /// Conv stem + projection.
    pub patch_embed: VoloPatchEmbed,
    /// Stage 1.
    pub outlookers: Vec<Outlooker>,
    /// Down-sampling to stride 16.
    pub downsample: VoloDownsample,
    /// Position embedding `[1, H₀/16, W₀/16, d1]` (channels last).
    pub pos_embed: Param<Tensor<4>>,
    /// Stages 2–4.
    pub stages: Vec<TransformerStage>,
    /// Class token `[1, 1, d1]`.
    pub cls_token: Param<Tensor<3>>,
    /// Class-attention blocks.
    pub post_network: Vec<ClassBlock>,
    /// Final LayerNorm.
    pub norm: LayerNorm,
    /// The image size `pos_embed` is laid out for.
    pub img_size: [usize; 2],
    /// Width of the tokens and the embedding.
    pub embed_dim: usize,
}

impl Volo {
    /// `pos_embed` for a token grid `grid`: as stored when the token count
    /// equals the stored grid's (CION's test), otherwise resized bicubically
    /// with DINO's scale factor (`(g + 0.1) / g₀`), as CION's
    /// `interpolate_pos_encoding` does. `[1, gh, gw, dim]`.
    pub fn position_embedding(&self, grid: [usize; 2]) -> Tensor<4> {
        let pos = self.pos_embed.val();
        let [_, h0, w0, d] = pos.dims();
        if grid[0] * grid[1] == h0 * w0 {
            return pos.reshape([1, grid[0], grid[1], d]);
        }
        let scales = source_scales([h0, w0], grid, PosEmbedInterpolation::DinoScaleFactor);
        resize_patch_pos_embed(pos.reshape([h0 * w0, d]), [h0, w0], grid, scales)
            .reshape([1, grid[0], grid[1], d])
    }

    /// Runs the network: `[batch, 3, H, W]` → all tokens after the final
    /// norm `[batch, 1 + h·w, dim]` (class token first, then the patches row
    /// by row) and the grid `[h, w]` (`h = H/16`). Errors if the input has
    /// not 3 channels or is smaller than 16×16.
    pub fn forward_tokens(
        &self,
        images: Tensor<4>,
    ) -> Result<(Tensor<3>, [usize; 2]), BackboneError> {
        let [b, c, h, w] = images.dims();
        if c != 3 || h < OUTPUT_STRIDE || w < OUTPUT_STRIDE {
            return Err(BackboneError::InvalidConfig(format!(
                "VOLO input must be [batch, 3, H, W] with H, W ≥ 16, got [{b}, {c}, {h}, {w}]"
            )));
        }
        let x = self.patch_embed.forward(images).permute([0, 2, 3, 1]);
        let x = self.outlookers.iter().fold(x, |x, blk| blk.forward(x));
        let x = self.downsample.forward(x);
        let [_, gh, gw, d] = x.dims();
        let x = x + self.position_embedding([gh, gw]);
        let mut tokens = x.reshape([b, gh * gw, d]);
        for stage in &self.stages {
            for blk in &stage.blocks {
                tokens = blk.forward(tokens);
            }
        }
        let cls = self.cls_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, tokens], 1);
        for blk in &self.post_network {
            x = blk.forward(x);
        }
        Ok((self.norm.forward(x), [gh, gw]))
    }

    /// CION's feature: the class token after the final norm, `[batch, 3,
    /// H, W]` → `[batch, dim]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        let (tokens, _) = self.forward_tokens(images)?;
        let [b, _, d] = tokens.dims();
        Ok(tokens.narrow(1, 0, 1).reshape([b, d]))
    }

    /// The normed patch tokens as a map `[batch, dim, H/16, W/16]` (the
    /// fallible form of [`Backbone::forward_features`]).
    pub fn try_forward_features(&self, images: Tensor<4>) -> Result<Tensor<4>, BackboneError> {
        let (tokens, [gh, gw]) = self.forward_tokens(images)?;
        let [b, _, d] = tokens.dims();
        Ok(tokens
            .narrow(1, 1, gh * gw)
            .swap_dims(1, 2)
            .reshape([b, d, gh, gw]))
    }

    /// Number of parameters (weights, biases, norm affines, `pos_embed`,
    /// `cls_token`; not BN running statistics), with no classifier and no
    /// token-labelling head: the ReIDZoo convention (D1 25.84 M, D2
    /// 57.62 M, D3 85.26 M at 256×128; timm's `num_classes=0` models).
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }
}

impl Backbone for Volo {
    /// The normed patch tokens `[batch, dim, H/16, W/16]`; panics on an
    /// invalid input (see [`Volo::try_forward_features`]).
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.try_forward_features(images)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn out_channels(&self) -> usize {
        self.embed_dim
    }

    fn output_stride(&self) -> usize {
        OUTPUT_STRIDE
    }

    /// The class token after the final norm ([`Volo::forward_embedding`]);
    /// panics where that errors, like [`Backbone::forward_features`].
    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_embedding(images)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> VoloConfig {
        VoloConfig::new([1, 1, 1, 1], [8, 16, 16, 16], [2, 4, 4, 4])
            .with_img_size([64, 32])
            .with_stem_hidden_dim(8)
    }

    #[test]
    fn shapes_and_bad_configs() {
        let device = Device::flex();
        let m = tiny().init(&device).unwrap();
        let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 16, 4, 2]);
        assert_eq!(m.forward_embedding(x).unwrap().dims(), [2, 16]);
        let odd = Tensor::<4>::random([1, 3, 48, 40], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(m.forward_features(odd).dims(), [1, 16, 3, 2]);
        assert!(
            VoloConfig::new([1, 1, 1, 1], [8, 16, 8, 16], [2, 4, 4, 4])
                .init(&device)
                .is_err()
        );
        assert!(
            VoloConfig::new([1, 1, 1, 1], [8, 16, 16, 16], [3, 4, 4, 4])
                .init(&device)
                .is_err()
        );
        assert!(VoloConfig::preset("volo_d4").is_err());
        assert_eq!(VoloConfig::preset("VOLO_D2").unwrap().layers, [6, 4, 10, 4]);
    }
}
