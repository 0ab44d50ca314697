//! FastViT-S12 / SA12 / SA24 (Vasu et al., "FastViT: A Fast Hybrid Vision
//! Transformer using Structural Reparameterization", ICCV 2023) as CION's
//! ReIDZoo uses them: Apple's ml-fastvit architecture in its training form
//! (`inference_mode=False`: every re-parameterisable branch unfused), without
//! the classifier; the feature is `GAP(conv_exp(map))`, 1024 channels.
//!
//! - stem: three [`MobileOneBlock`]s (3×3 s2 `3 → d0`; 3×3 s2 depth-wise;
//!   1×1), GELU after each — stride 4;
//! - stages 2–4 start with a [`PatchEmbed`] (7×7 s2 large-kernel conv +
//!   1×1 MobileOne) — strides 8, 16, 32;
//! - SA variants: a [`RepCpe`] 7×7 conditional positional encoding before
//!   stage 4, whose blocks are [`AttentionBlock`]s (head dim 32); every
//!   other block is a [`RepMixerBlock`];
//! - `final_conv` (official `conv_exp`): a 3×3 MobileOne block
//!   `d3 → 2·d3` with `groups = d3`, squeeze-and-excitation and GELU; the
//!   [`Backbone`](crate::Backbone) map is its output `[batch, 1024, H/32, W/32]`.
//!
//! BN eps 1e-5, GELU in erf form, layer scale initialised to 1e-5;
//! stochastic depth `rate·i/(n−1)` over all `n` blocks (official rule), only
//! on an autodiff device.
//!
//! [`FastVit::reparameterize`] returns the inference form: every MobileOne
//! block, large-kernel conv, RepMixer and RepCPE folded into one
//! convolution, and every FFN BN folded; outputs agree with the training
//! form up to float rounding. Checkpoints (either naming, training form):
//! [`crate::import::load_fastvit`].

mod blocks;
mod import;
pub(crate) mod mobileone;

pub use blocks::{
    Attention, AttentionBlock, ConvMlp, LayerScale, PatchEmbed, RepCpe, RepMixer, RepMixerBlock,
    TorchLinear,
};
pub use import::{FastVitImportReport, FastVitKeys, FastVitLayout, load_fastvit};
pub use mobileone::{
    ConvBn, MobileOneBlock, MobileOneOptions, ReparamLargeKernelConv, SqueezeExcite,
};

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backbone::trunk_backbone;
use crate::error::{BackboneError, check_drop_path_rate};
use crate::family::trainable_parameters;
use crate::layers::drop_path_rates;
use crate::pool::GlobalPool;
use crate::registry::presets;

/// Configuration of a [`FastVit`]; [`FastVitConfig::s12`],
/// [`FastVitConfig::sa12`] and [`FastVitConfig::sa24`] are the ReIDZoo
/// models.
#[derive(Config, Debug)]
pub struct FastVitConfig {
    /// Blocks per stage (`[2, 2, 6, 2]` for S12/SA12, `[4, 4, 12, 4]` for
    /// SA24).
    pub layers: [usize; 4],
    /// Channels per stage (`[64, 128, 256, 512]`).
    pub embed_dims: [usize; 4],
    /// Stages whose blocks are attention blocks (SA: the last one).
    pub attention: [bool; 4],
    /// Stages preceded by a RepCPE positional encoding (SA: the last one).
    pub pos_emb: [bool; 4],
    /// FFN expansion ratio per stage (4).
    #[config(default = "[4, 4, 4, 4]")]
    pub mlp_ratios: [usize; 4],
    /// RepMixer kernel size.
    #[config(default = 3)]
    pub repmixer_kernel_size: usize,
    /// Kernel of the down-sampling large-kernel convolution.
    #[config(default = 7)]
    pub down_patch_size: usize,
    /// Kernel of the RepCPE positional encoding.
    #[config(default = 7)]
    pub pos_emb_kernel: usize,
    /// Attention channels per head.
    #[config(default = 32)]
    pub head_dim: usize,
    /// `final_conv` output channels = `cls_ratio · embed_dims[3]` (2).
    #[config(default = 2)]
    pub cls_ratio: usize,
    /// Initial layer-scale value.
    #[config(default = 1e-5)]
    pub layer_scale_init: f64,
    /// Stochastic-depth rate of the last block (0 disables it).
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
}

presets! {
    FastVitConfig {
        /// FastViT-S12: layers `[2, 2, 6, 2]`, RepMixer everywhere.
        s12 "fastvit_s12" => Self::new([2, 2, 6, 2], WIDTHS, [false; 4], [false; 4]);
        /// FastViT-SA12: layers `[2, 2, 6, 2]`, RepCPE + attention in stage 4.
        sa12 "fastvit_sa12" => Self::new([2, 2, 6, 2], WIDTHS, LAST_STAGE, LAST_STAGE);
        /// FastViT-SA24: layers `[4, 4, 12, 4]`, RepCPE + attention in stage 4.
        sa24 "fastvit_sa24" => Self::new([4, 4, 12, 4], WIDTHS, LAST_STAGE, LAST_STAGE);
    }
}

/// Channels per stage of every preset.
const WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// The stages of the SA variants' RepCPE and attention blocks: the last.
const LAST_STAGE: [bool; 4] = [false, false, false, true];

impl FastVitConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self.layers.contains(&0) || self.embed_dims.contains(&0) {
            return bad(format!(
                "FastViT needs at least one block and one channel per stage, got layers {:?}, \
                 embed_dims {:?}",
                self.layers, self.embed_dims
            ));
        }
        for i in 1..4 {
            if !self.embed_dims[i].is_multiple_of(self.embed_dims[i - 1]) {
                return bad(format!(
                    "embed_dims[{i}] = {} must be a multiple of embed_dims[{}] = {} (the \
                     down-sampling convolution has one group per input channel)",
                    self.embed_dims[i],
                    i - 1,
                    self.embed_dims[i - 1]
                ));
            }
        }
        for i in 0..4 {
            if self.attention[i]
                && (self.head_dim == 0 || !self.embed_dims[i].is_multiple_of(self.head_dim))
            {
                return bad(format!(
                    "attention stage {i}: embed_dims[{i}] = {} must be a multiple of head_dim {}",
                    self.embed_dims[i], self.head_dim
                ));
            }
        }
        for (name, k) in [
            ("repmixer_kernel_size", self.repmixer_kernel_size),
            ("down_patch_size", self.down_patch_size),
            ("pos_emb_kernel", self.pos_emb_kernel),
        ] {
            if k.is_multiple_of(2) || (name == "down_patch_size" && k < 3) {
                return bad(format!(
                    "{name} must be odd (and ≥ 3 for down_patch_size), got {k}"
                ));
            }
        }
        if self.mlp_ratios.contains(&0) || self.cls_ratio == 0 {
            return bad(format!(
                "mlp_ratios {:?} and cls_ratio {} must be positive",
                self.mlp_ratios, self.cls_ratio
            ));
        }
        check_drop_path_rate(self.drop_path_rate)?;
        if !(self.bn_eps.is_finite() && self.bn_eps > 0.0 && self.layer_scale_init.is_finite()) {
            return bad(format!(
                "bn_eps must be finite and positive and layer_scale_init finite, got {} and {}",
                self.bn_eps, self.layer_scale_init
            ));
        }
        Ok(())
    }

    /// Stochastic-depth rate of every block: `rate · i / (n − 1)` over all
    /// `n` blocks (the official rule).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        drop_path_rates(self.drop_path_rate, self.layers.iter().sum())
    }

    /// Channels of the map and the embedding: `cls_ratio · embed_dims[3]`.
    pub fn out_channels(&self) -> usize {
        self.cls_ratio * self.embed_dims[3]
    }

    /// Builds the network (training form) on `device`.
    pub fn init(&self, device: &Device) -> Result<FastVit, BackboneError> {
        self.validate()?;
        let eps = self.bn_eps;
        let d0 = self.embed_dims[0];
        let stem = vec![
            MobileOneBlock::new(3, d0, MobileOneOptions::new(3, 2, 1), eps, device),
            MobileOneBlock::new(d0, d0, MobileOneOptions::new(3, 2, d0), eps, device),
            MobileOneBlock::new(d0, d0, MobileOneOptions::new(1, 1, 1), eps, device),
        ];
        let mut rates = self.drop_path_rates().into_iter();
        let mut stages = Vec::with_capacity(4);
        for i in 0..4 {
            let dim = self.embed_dims[i];
            let downsample = (i > 0).then(|| {
                PatchEmbed::new(
                    self.embed_dims[i - 1],
                    dim,
                    self.down_patch_size,
                    eps,
                    device,
                )
            });
            let pos_emb = self.pos_emb[i].then(|| RepCpe::new(dim, self.pos_emb_kernel, device));
            let hidden = dim * self.mlp_ratios[i];
            let (mut blocks, mut attn_blocks) = (Vec::new(), Vec::new());
            for _ in 0..self.layers[i] {
                let rate = rates.next().unwrap_or(0.0);
                if self.attention[i] {
                    attn_blocks.push(AttentionBlock::new(
                        dim,
                        hidden,
                        self.head_dim,
                        self.layer_scale_init,
                        rate,
                        eps,
                        device,
                    ));
                } else {
                    blocks.push(RepMixerBlock {
                        token_mixer: RepMixer::new(
                            dim,
                            self.repmixer_kernel_size,
                            self.layer_scale_init,
                            eps,
                            device,
                        ),
                        mlp: ConvMlp::new(dim, hidden, eps, device),
                        layer_scale: LayerScale::new(dim, self.layer_scale_init, device),
                        drop_path: rate,
                    });
                }
            }
            stages.push(FastVitStage {
                downsample,
                pos_emb,
                blocks,
                attn_blocks,
            });
        }
        let d3 = self.embed_dims[3];
        let final_conv = MobileOneBlock::new(
            d3,
            self.out_channels(),
            MobileOneOptions {
                se: true,
                ..MobileOneOptions::new(3, 1, d3)
            },
            eps,
            device,
        );
        Ok(FastVit {
            stem,
            stages,
            final_conv,
            out_channels: self.out_channels(),
        })
    }
}

/// One stage: optional down-sampling, optional positional encoding, then
/// its blocks (RepMixer blocks in `blocks` or attention blocks in
/// `attn_blocks`; PyTorch calls both `blocks`).
#[derive(Module, Debug)]
pub struct FastVitStage {
    /// Absent in stage 1 (the stem down-samples).
    pub downsample: Option<PatchEmbed>,
    /// RepCPE (SA variants, stage 4).
    pub pos_emb: Option<RepCpe>,
    /// RepMixer blocks.
    pub blocks: Vec<RepMixerBlock>,
    /// Attention blocks.
    pub attn_blocks: Vec<AttentionBlock>,
}

impl FastVitStage {
    /// `[b, in, h, w]` → `[b, dim, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = match &self.downsample {
            Some(d) => d.forward(x),
            None => x,
        };
        if let Some(pe) = &self.pos_emb {
            x = pe.forward(x);
        }
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        self.attn_blocks.iter().fold(x, |x, block| block.forward(x))
    }
}

/// FastViT trunk with CION's head: images `[batch, 3, H, W]` → map
/// `[batch, 2·d3, ⌈H/32⌉, ⌈W/32⌉]` (each stride-2 layer rounds up; 256×128
/// → 8×4) and embedding `[batch, 2·d3]` (1024 for the ReIDZoo models).
#[derive(Module, Debug)]
pub struct FastVit {
    /// The three stem blocks (`stem.{0,1,2}`, official `patch_embed.*`).
    pub stem: Vec<MobileOneBlock>,
    /// The four stages.
    pub stages: Vec<FastVitStage>,
    /// `conv_exp` (timm `final_conv`): 3×3 MobileOne + SE + GELU.
    pub final_conv: MobileOneBlock,
    /// Channels of the map and the embedding.
    pub out_channels: usize,
}

impl FastVit {
    /// Stem, stages and `final_conv`: `[batch, 3, H, W]` →
    /// `[batch, out_channels, ⌈H/32⌉, ⌈W/32⌉]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        self.final_conv.forward(self.forward_stages(images))
    }

    /// Stem and stages only (before `final_conv`): `[batch, d3, h, w]`.
    pub fn forward_stages(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.stem.iter().fold(images, |x, block| block.forward(x));
        self.stages.iter().fold(x, |x, stage| stage.forward(x))
    }

    /// CION's FastViT feature: `GAP(conv_exp(stages(x)))`,
    /// `[batch, 3, H, W]` → `[batch, out_channels]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// Global average pooling of a map `[batch, C, h, w]` → `[batch, C]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        GlobalPool::Avg.forward(features)
    }

    /// Number of parameters (weights, biases, BN affine, layer scales; not
    /// BN running statistics), `final_conv` (`conv_exp`, with SE)
    /// included and no classifier: the ReIDZoo convention (S12 8.45 M,
    /// SA12 10.56 M, SA24 20.53 M; timm's `num_classes=0` models).
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }

    /// The inference form (structural re-parameterisation): MobileOne
    /// blocks, large-kernel convolutions, RepMixers and RepCPE become
    /// single convolutions; the FFN BatchNorms are folded. Same outputs in
    /// inference (up to rounding); not for training or checkpoint export in
    /// the training layout.
    pub fn reparameterize(self) -> Self {
        Self {
            stem: self
                .stem
                .into_iter()
                .map(MobileOneBlock::reparameterize)
                .collect(),
            stages: self
                .stages
                .into_iter()
                .map(|s| FastVitStage {
                    downsample: s.downsample.map(PatchEmbed::reparameterize),
                    pos_emb: s.pos_emb.map(RepCpe::reparameterize),
                    blocks: s
                        .blocks
                        .into_iter()
                        .map(RepMixerBlock::reparameterize)
                        .collect(),
                    attn_blocks: s
                        .attn_blocks
                        .into_iter()
                        .map(AttentionBlock::reparameterize)
                        .collect(),
                })
                .collect(),
            final_conv: self.final_conv.reparameterize(),
            out_channels: self.out_channels,
        }
    }
}

trunk_backbone!(FastVit, stride: 32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use crate::testing::{assert_has_tensors, assert_same_outputs};
    use burn::tensor::Distribution;

    fn small(attention: bool) -> FastVitConfig {
        let last = [false, false, false, attention];
        FastVitConfig::new([1, 1, 1, 2], [8, 16, 32, 32], last, last).with_head_dim(16)
    }

    #[test]
    fn shapes_paths_and_reparameterisation() {
        let device = Device::flex();
        for attention in [false, true] {
            let m = small(attention).init(&device).unwrap();
            let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Default, &device);
            assert_eq!(m.forward_features(x.clone()).dims(), [2, 64, 2, 1]);
            assert_eq!(m.forward_embedding(x.clone()).dims(), [2, 64]);
            assert_has_tensors(
                &m,
                &[
                    "stem.0.conv_kxk.0.conv.weight",
                    "stem.1.conv_scale.bn.gamma",
                    "stem.2.identity.running_var",
                    "stages.1.downsample.large.large_conv.conv.weight",
                    "stages.1.downsample.large.small_conv.bn.beta",
                    "stages.1.downsample.pointwise.conv_kxk.0.conv.weight",
                    "stages.0.blocks.0.token_mixer.norm.identity.gamma",
                    "stages.0.blocks.0.token_mixer.mixer.conv_scale.conv.weight",
                    "stages.0.blocks.0.token_mixer.layer_scale.gamma",
                    "stages.0.blocks.0.mlp.conv.bn.running_mean",
                    "stages.0.blocks.0.layer_scale.gamma",
                    "final_conv.se.fc1.weight",
                ],
            );
            if attention {
                assert_has_tensors(
                    &m,
                    &[
                        "stages.3.pos_emb.pos_enc.weight",
                        "stages.3.attn_blocks.1.token_mixer.qkv.weight",
                        "stages.3.attn_blocks.0.norm.gamma",
                        "stages.3.attn_blocks.0.layer_scale_2.gamma",
                    ],
                );
            }
            let fused = m.clone().reparameterize();
            assert_same_outputs(&m, &fused, x, |n| {
                n.contains("conv_kxk") || n.contains("identity")
            });
        }
    }

    #[test]
    fn drop_path_rates_and_bad_configs() {
        let cfg = small(true).with_drop_path_rate(0.2);
        let r = cfg.drop_path_rates();
        assert_eq!(r.len(), 5);
        assert!((r[4] - 0.2).abs() < 1e-12 && r[0] == 0.0);
        let device = Device::flex();
        assert!(cfg.clone().with_drop_path_rate(1.0).init(&device).is_err());
        assert!(cfg.clone().with_head_dim(7).init(&device).is_err());
        assert!(
            cfg.clone()
                .with_repmixer_kernel_size(4)
                .init(&device)
                .is_err()
        );
        assert!(
            FastVitConfig::new([1, 0, 1, 1], [8, 16, 32, 32], [false; 4], [false; 4])
                .init(&device)
                .is_err()
        );
    }
}
