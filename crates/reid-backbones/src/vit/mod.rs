//! ViT-T/S/B in the "ICS" variant of TransReID-SSL used by CION's ReIDZoo
//! (`vit_tiny`, `vit_small`, `vit_base`).
//!
//! - Patch embedding: the ICS convolution stem with IBN
//!   ([`IcsPatchEmbed`]): 256×128 → 16×8 = 128 patch tokens (stride 16).
//! - A learned `cls_token` `[1, 1, dim]` is prepended and `pos_embed`
//!   `[1, 1 + 128, dim]` added; for another token grid (e.g. 128×64 local
//!   crops of CION pre-training) the patch part of `pos_embed` is resized
//!   bicubically ([`PosEmbedInterpolation`]; the class position is kept).
//! - `depth` pre-norm blocks (timm's `Block`: qkv bias, MLP ratio 4, exact
//!   GELU, LayerNorm eps 1e-6, no layer scale), then the final `norm`.
//! - Output: the CLS token after the final norm, `[batch, dim]`
//!   ([`ViT::forward_embedding`], CION's pooled feature);
//!   [`Backbone::forward_features`] returns the normed **patch** tokens as a
//!   map `[batch, dim, h, w]` (stride 16), without the CLS token.
//!
//! Parameter names are those of the official code (and of timm's ViT blocks):
//! `cls_token`, `pos_embed`, `patch_embed.conv.{0,1,3,4,6,7}.*`,
//! `patch_embed.proj.*`, `blocks.i.{norm1, attn.qkv, attn.proj, norm2,
//! mlp.fc1, mlp.fc2}.*`, `norm.*` (see [`crate::import::load_vit`]).
//!
//! Inference vs training: BatchNorm in the stem uses running statistics on a
//! plain device and batch statistics on an autodiff device (CION's teacher
//! stays in train mode); stochastic depth runs only through
//! [`ViT::forward_tokens`] with a seed.

mod block;
mod import;
mod patch_embed;
mod pos_embed;

pub use block::{Attention, Block, BlockOptions, Mlp};
pub use import::load_vit;
pub use patch_embed::{IcsPatchEmbed, STEM_STRIDE, StemLayer};
pub use pos_embed::{
    BICUBIC_A, DINO_SCALE_OFFSET, PosEmbedInterpolation, bicubic_matrix, bilinear_matrix,
    resize_patch_pos_embed, resize_patch_pos_embed_bilinear, source_scales,
};

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm};
use burn::tensor::{Device, Tensor};

use crate::backbone::Backbone;
use crate::error::{BackboneError, check_drop_path_rate, check_positive};
use crate::norm::layer_norm;
use crate::registry::presets;

/// Classes of the ImageNet-style `fc` classifier that the upstream model
/// builds by default (`num_classes=1000`) and CION replaces by an identity
/// before training; the ReIDZoo table's parameter counts include it.
pub const REIDZOO_FC_CLASSES: usize = 1000;

/// Configuration of a [`ViT`]; defaults are ViT-S (ICS) for 256×128 input.
#[derive(Config, Debug)]
pub struct ViTConfig {
    /// Token dimension `D` (192 / 384 / 768 for T / S / B).
    #[config(default = 384)]
    pub embed_dim: usize,
    /// Transformer blocks (12).
    #[config(default = 12)]
    pub depth: usize,
    /// Attention heads (3 / 6 / 12).
    #[config(default = 6)]
    pub num_heads: usize,
    /// MLP hidden width as a multiple of `embed_dim` (4).
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Channels of the ICS stem (64).
    #[config(default = 64)]
    pub stem_hidden: usize,
    /// Total patch size in pixels (16): the stem's stride 2 times the
    /// projection's kernel and stride (8).
    #[config(default = 16)]
    pub patch_size: usize,
    /// Image size `[height, width]` the position embedding is laid out
    /// for (`[256, 128]` → 16×8 patches).
    #[config(default = "[256, 128]")]
    pub img_size: [usize; 2],
    /// Bias on the `qkv` projection (true).
    #[config(default = true)]
    pub qkv_bias: bool,
    /// LayerNorm epsilon (1e-6).
    #[config(default = 1e-6)]
    pub ln_eps: f64,
    /// BatchNorm / InstanceNorm epsilon of the stem (1e-5).
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Maximum stochastic-depth rate; block `i` uses
    /// `drop_path_rate · i / (depth − 1)` (0 in CION).
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// How `pos_embed` is resized for other token grids (default: the
    /// upstream DINO scale-factor rule).
    #[config(default = "PosEmbedInterpolation::DinoScaleFactor")]
    pub pos_interpolation: PosEmbedInterpolation,
}

/// The ICS ViT: images `[batch, 3, H, W]` → tokens `[batch, 1 + h·w, dim]`.
#[derive(Module, Debug)]
pub struct ViT {
    /// ICS stem + patch projection.
    pub patch_embed: IcsPatchEmbed,
    /// Class token `[1, 1, dim]`.
    pub cls_token: Param<Tensor<3>>,
    /// Position embedding `[1, 1 + grid_h·grid_w, dim]` (class position first).
    pub pos_embed: Param<Tensor<3>>,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub norm: LayerNorm,
    /// Token dimension.
    pub embed_dim: usize,
    /// Patch grid `[h, w]` of `pos_embed`.
    pub grid: [usize; 2],
    /// Image size `[height, width]` of `pos_embed`.
    pub img_size: [usize; 2],
    /// Total patch size (16).
    pub patch_size: usize,
    /// `pos_embed` resize rule ([`ViT::pos_interpolation`]); not saved
    /// with the weights.
    #[module(skip)]
    pub pos_rule: PosEmbedInterpolation,
}

presets! {
    ViTConfig {
        /// ViT-T (ICS): dim 192, 3 heads, depth 12 (ReIDZoo `vit_tiny`).
        tiny "vit_tiny" => Self::new().with_embed_dim(192).with_num_heads(3);
        /// ViT-S (ICS): dim 384, 6 heads, depth 12 (ReIDZoo `vit_small`).
        small "vit_small" => Self::new();
        /// ViT-B (ICS): dim 768, 12 heads, depth 12 (ReIDZoo `vit_base`).
        base "vit_base" => Self::new().with_embed_dim(768).with_num_heads(12);
    }
}

impl ViTConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self.embed_dim == 0 || self.depth == 0 || self.stem_hidden < 2 {
            return bad(format!(
                "embed_dim and depth must be positive and stem_hidden at least 2, got {}, {}, {}",
                self.embed_dim, self.depth, self.stem_hidden
            ));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "num_heads ({}) must divide embed_dim ({})",
                self.num_heads, self.embed_dim
            ));
        }
        if self.patch_size < 2 || !self.patch_size.is_multiple_of(STEM_STRIDE) {
            return bad(format!(
                "patch_size must be an even number ≥ 2, got {}",
                self.patch_size
            ));
        }
        if self.img_size[0] < self.patch_size || self.img_size[1] < self.patch_size {
            return bad(format!(
                "img_size {:?} must be at least one patch ({}) in each direction",
                self.img_size, self.patch_size
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) {
            return bad(format!(
                "mlp_ratio must be positive, got {}",
                self.mlp_ratio
            ));
        }
        check_positive("ln_eps", self.ln_eps)?;
        check_positive("bn_eps", self.bn_eps)?;
        check_drop_path_rate(self.drop_path_rate)
    }

    /// MLP hidden width `⌊embed_dim · mlp_ratio⌋`.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }

    /// Builds the network with random weights on `device`: `cls_token` and
    /// `pos_embed` ~ N(0, 0.02²) (upstream: truncated normal, std 0.02),
    /// burn's default initialisation elsewhere.
    pub fn init(&self, device: &Device) -> Result<ViT, BackboneError> {
        self.validate()?;
        let d = self.embed_dim;
        let patch_embed =
            IcsPatchEmbed::new(self.stem_hidden, d, self.patch_size, self.bn_eps, device);
        let grid = patch_embed.grid(self.img_size[0], self.img_size[1]);
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let blocks = (0..self.depth)
            .map(|i| {
                let drop_path = crate::layers::drop_path_rate(self.drop_path_rate, i, self.depth);
                Block::new(
                    BlockOptions {
                        dim: d,
                        num_heads: self.num_heads,
                        mlp_hidden: self.mlp_hidden(),
                        qkv_bias: self.qkv_bias,
                        ln_eps: self.ln_eps,
                        drop_path,
                    },
                    device,
                )
            })
            .collect();
        Ok(ViT {
            patch_embed,
            cls_token: init.init([1, 1, d], device),
            pos_embed: init.init([1, 1 + grid[0] * grid[1], d], device),
            blocks,
            norm: layer_norm(d, self.ln_eps, device),
            embed_dim: d,
            grid,
            img_size: self.img_size,
            patch_size: self.patch_size,
            pos_rule: self.pos_interpolation,
        })
    }
}

impl ViT {
    /// The `pos_embed` resize rule.
    pub fn pos_interpolation(&self) -> PosEmbedInterpolation {
        self.pos_rule
    }

    /// Sets the `pos_embed` resize rule (e.g.
    /// [`PosEmbedInterpolation::DinoScaleFactorAlways`] for a model
    /// fine-tuned by CION's TransReID code; [`crate::import::load_vit`] does
    /// that for TransReID files).
    pub fn set_pos_interpolation(&mut self, rule: PosEmbedInterpolation) {
        self.pos_rule = rule;
    }

    /// The position embedding `[1, 1 + h·w, dim]` for an input of
    /// `image_hw` pixels whose token grid is `grid`: `pos_embed` itself when
    /// no resize is needed (see [`PosEmbedInterpolation`]), otherwise its
    /// class position followed by the bicubically resized patch part.
    pub fn position_embedding(&self, image_hw: [usize; 2], grid: [usize; 2]) -> Tensor<3> {
        let pos = self.pos_embed.val();
        let same = match self.pos_interpolation() {
            PosEmbedInterpolation::DinoScaleFactor => {
                image_hw == self.img_size && grid == self.grid
            }
            PosEmbedInterpolation::DinoScaleFactorAlways => false,
            PosEmbedInterpolation::Size => grid == self.grid,
        };
        if same {
            return pos;
        }
        let d = self.embed_dim;
        let n = self.grid[0] * self.grid[1];
        let cls = pos.clone().narrow(1, 0, 1);
        let patch = pos.narrow(1, 1, n).reshape([n, d]);
        let scales = source_scales(self.grid, grid, self.pos_interpolation());
        let resized = resize_patch_pos_embed(patch, self.grid, grid, scales);
        Tensor::cat(vec![cls, resized.reshape([1, grid[0] * grid[1], d])], 1)
    }

    /// Runs the network: images `[batch, 3, H, W]` → tokens after the final
    /// norm `[batch, 1 + h·w, dim]` (CLS first, then the patches row by row)
    /// and the grid `[h, w]`.
    ///
    /// `drop_path_seed`: `None` for inference; `Some(seed)` applies
    /// stochastic depth (block `i`, branch `j` and sample `k` draw from
    /// independent streams of `seed`). Errors if the input has not 3
    /// channels or is smaller than one patch.
    pub fn forward_tokens(
        &self,
        images: Tensor<4>,
        drop_path_seed: Option<u64>,
    ) -> Result<(Tensor<3>, [usize; 2]), BackboneError> {
        let [b, c, h, w] = images.dims();
        let grid = self.patch_embed.grid(h, w);
        if c != 3 || grid[0] == 0 || grid[1] == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "ViT input must be [batch, 3, H, W] with H, W ≥ {} (one patch), got [{b}, {c}, {h}, {w}]",
                self.patch_size
            )));
        }
        let d = self.embed_dim;
        let patches = self.patch_embed.forward(images); // [b, d, gh, gw]
        let tokens = patches.reshape([b, d, grid[0] * grid[1]]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, tokens], 1) + self.position_embedding([h, w], grid);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, drop_path_seed.map(|s| crate::layers::mix(s, i as u64)));
        }
        Ok((self.norm.forward(x), grid))
    }

    /// CION's pooled feature: the CLS token after the final norm,
    /// `[batch, 3, H, W]` → `[batch, dim]` (inference).
    pub fn forward_embedding(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        let (tokens, _) = self.forward_tokens(images, None)?;
        let [b, _, d] = tokens.dims();
        Ok(tokens.narrow(1, 0, 1).reshape([b, d]))
    }

    /// The normed patch tokens as a map `[batch, dim, h, w]` (inference;
    /// the fallible form of [`Backbone::forward_features`]).
    pub fn try_forward_features(&self, images: Tensor<4>) -> Result<Tensor<4>, BackboneError> {
        let (tokens, [gh, gw]) = self.forward_tokens(images, None)?;
        let [b, _, d] = tokens.dims();
        Ok(tokens
            .narrow(1, 1, gh * gw)
            .swap_dims(1, 2)
            .reshape([b, d, gh, gw]))
    }

    /// Re-lays the model out for another image size `img_size`
    /// `[height, width]` (e.g. a 256×128 checkpoint fine-tuned at 384×128):
    /// the patch part of `pos_embed` is resized **bilinearly**
    /// (`align_corners=False`) to the new grid, as the fine-tuning code of
    /// CION / TransReID does when loading (`resize_pos_embed`); the class
    /// position is kept. Call it after loading the checkpoint into a model
    /// built for the checkpoint's size. Errors if `img_size` is smaller than
    /// one patch.
    pub fn resize_pos_embed(&mut self, img_size: [usize; 2]) -> Result<(), BackboneError> {
        let grid = self.patch_embed.grid(img_size[0], img_size[1]);
        if grid[0] == 0 || grid[1] == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "img_size {img_size:?} is smaller than one patch ({})",
                self.patch_size
            )));
        }
        if grid != self.grid {
            let d = self.embed_dim;
            let n = self.grid[0] * self.grid[1];
            let pos = self.pos_embed.val();
            let cls = pos.clone().narrow(1, 0, 1);
            let patch = pos.narrow(1, 1, n).reshape([n, d]);
            let resized = resize_patch_pos_embed_bilinear(patch, self.grid, grid);
            let pos = Tensor::cat(vec![cls, resized.reshape([1, grid[0] * grid[1], d])], 1);
            self.pos_embed = Param::from_tensor(pos);
            self.grid = grid;
        }
        self.img_size = img_size;
        Ok(())
    }

    /// Trainable parameters, i.e. [`Module::num_params`] without the stem's
    /// BatchNorm running means and variances (which burn counts).
    pub fn num_weights(&self) -> usize {
        self.num_params() - 2 * self.patch_embed.batch_norm_channels()
    }

    /// The parameter count the ReIDZoo table reports (every family's
    /// `num_parameters`): [`ViT::num_weights`]
    /// plus the unused upstream `fc` classifier `Linear(dim,
    /// REIDZOO_FC_CLASSES)` (6.43 M / 23.39 M / 89.15 M for T / S / B).
    pub fn num_parameters(&self) -> usize {
        self.num_weights() + (self.embed_dim + 1) * REIDZOO_FC_CLASSES
    }
}

impl Backbone for ViT {
    /// The normed patch tokens as a map `[batch, dim, H/16, W/16]` (the CLS
    /// token is in [`ViT::forward_embedding`]). Panics where
    /// [`ViT::try_forward_features`] errors (input smaller than one patch,
    /// or not 3 channels).
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        match self.try_forward_features(images) {
            Ok(map) => map,
            Err(e) => panic!("{e}"),
        }
    }

    fn out_channels(&self) -> usize {
        self.embed_dim
    }

    fn output_stride(&self) -> usize {
        self.patch_size
    }

    /// The class token after the final norm ([`ViT::forward_embedding`]);
    /// panics where that errors, like [`Backbone::forward_features`].
    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_embedding(images)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The patch-token map with stochastic depth from `seed`.
    fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        let (tokens, [gh, gw]) = self
            .forward_tokens(images, Some(seed))
            .unwrap_or_else(|e| panic!("{e}"));
        let [b, _, d] = tokens.dims();
        tokens
            .narrow(1, 1, gh * gw)
            .swap_dims(1, 2)
            .reshape([b, d, gh, gw])
    }

    /// The class token with stochastic depth from `seed`.
    fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        let (tokens, _) = self
            .forward_tokens(images, Some(seed))
            .unwrap_or_else(|e| panic!("{e}"));
        let [b, _, d] = tokens.dims();
        tokens.narrow(1, 0, 1).reshape([b, d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small ViT config: `embed_dim` wide, `depth` blocks, 2 heads, a
    /// 4-channel stem, laid out for `img_size` images.
    fn small(embed_dim: usize, depth: usize, img_size: [usize; 2]) -> ViTConfig {
        ViTConfig::new()
            .with_embed_dim(embed_dim)
            .with_depth(depth)
            .with_num_heads(2)
            .with_stem_hidden(4)
            .with_img_size(img_size)
    }

    /// The presets lay `pos_embed` out for 256×128 (16×8 patches and the
    /// class token); their exact counts are the zoo table's.
    #[test]
    fn presets_are_laid_out_for_256_by_128() {
        let device = Device::flex();
        let m = ViTConfig::tiny().init(&device).unwrap();
        assert_eq!(m.grid, [16, 8]);
        assert_eq!(m.pos_embed.dims(), [1, 129, 192]);
    }

    #[test]
    fn shapes_presets_and_invalid_configs() {
        let device = Device::flex();
        let m = small(16, 1, [64, 32]).init(&device).unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 32], &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 16, 4, 2]);
        assert_eq!(m.forward_embedding(x).unwrap().dims(), [2, 16]);
        let small = Tensor::<4>::zeros([1, 3, 32, 16], &device);
        assert_eq!(m.forward_features(small).dims(), [1, 16, 2, 1]);
        assert!(
            m.forward_embedding(Tensor::zeros([1, 3, 8, 8], &device))
                .is_err()
        );
        assert!(
            m.forward_embedding(Tensor::zeros([1, 1, 64, 32], &device))
                .is_err()
        );
        assert_eq!(ViTConfig::preset("vit_base").unwrap().embed_dim, 768);
        assert!(ViTConfig::preset("vit_huge").is_err());
        assert!(ViTConfig::new().with_num_heads(5).init(&device).is_err());
        assert!(
            ViTConfig::new()
                .with_drop_path_rate(1.0)
                .init(&device)
                .is_err()
        );
    }

    #[test]
    fn drop_path_is_seeded_and_identity_without_seed() {
        let device = Device::flex();
        let m = small(8, 3, [32, 16])
            .with_drop_path_rate(0.5)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::random([8, 3, 32, 16], burn::tensor::Distribution::Default, &device);
        let run = |seed| {
            let (t, _) = m.forward_tokens(x.clone(), seed).unwrap();
            t.into_data().try_to_vec::<f32>().unwrap()
        };
        assert_eq!(run(None), run(None));
        assert_eq!(run(Some(7)), run(Some(7)));
        assert_ne!(run(Some(7)), run(Some(8)));
        assert_ne!(run(Some(7)), run(None));
        assert_eq!(m.blocks[0].drop_path, 0.0);
        assert_eq!(m.blocks[2].drop_path, 0.5);
    }
}
