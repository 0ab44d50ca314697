//! EdgeNeXt-XS / S / B (Maaz et al., "EdgeNeXt: Efficiently Amalgamated
//! CNN-Transformer Architecture for Mobile Vision Applications", ECCVW
//! 2022) as CION's ReIDZoo uses them: the official mmaaz60 architecture
//! (plain LayerNorm variant, not the `_bn_hs` ones) without the classifier,
//! returning the map after the last stage, with CION's feature
//! `LayerNorm(GAP(map))` as [`EdgeNeXt::forward_embedding`].
//!
//! - stem: 4×4 convolution, stride 4 (bias) → channels-first LayerNorm;
//! - stages 2–4 start with a channels-first LayerNorm → 2×2 convolution,
//!   stride 2;
//! - stage `i` has `depths[i] − global_blocks[i]` [`ConvEncoder`]s
//!   (depth-wise `kernel_sizes[i]` convolution) followed by
//!   `global_blocks[i]` [`SdtaEncoder`]s (`d2_scales[i]` split groups,
//!   `heads[i]` XCA heads; the Fourier positional encoding where
//!   `pos_embd[i]`, i.e. the first SDTA stage);
//! - `norm`: the final LayerNorm, applied to the globally average-pooled map.
//!
//! Every LayerNorm uses eps 1e-6; layer scales start at 1e-6, XCA
//! temperatures at 1; stochastic depth `rate·i/(n−1)` over all `n` blocks
//! (official rule), only on an autodiff device. Initialisation: PyTorch's
//! defaults (CION never applies the official `_init_weights`).
//!
//! Checkpoints: [`crate::import::load_edgenext`] reads the official key
//! layout (CION's ReIDZoo files) and timm's.

mod blocks;

pub use blocks::{ConvEncoder, PositionalEncodingFourier, SdtaEncoder, SdtaOptions, Xca};

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backbone::Backbone;
use crate::convnext::{ChannelNorm, Downsample, Stem};
use crate::error::BackboneError;
use crate::layers::drop_path_rate;
use crate::registry::preset_by_name;

/// Configuration of an [`EdgeNeXt`]; [`EdgeNeXtConfig::x_small`],
/// [`EdgeNeXtConfig::small`] and [`EdgeNeXtConfig::base`] are the ReIDZoo
/// models (official `edgenext_x_small`, `edgenext_small`, `edgenext_base`).
#[derive(Config, Debug)]
pub struct EdgeNeXtConfig {
    /// Blocks per stage, SDTA blocks included (`[3, 3, 9, 3]`).
    pub depths: [usize; 4],
    /// Channels per stage (XS `[32, 64, 100, 192]`, S `[48, 96, 160, 304]`,
    /// B `[80, 160, 288, 584]`).
    pub dims: [usize; 4],
    /// XCA heads per stage (XS 4, S and B 8).
    pub heads: [usize; 4],
    /// SDTA blocks at the end of each stage (official `global_block`).
    #[config(default = "[0, 1, 1, 1]")]
    pub global_blocks: [usize; 4],
    /// Depth-wise kernel of the conv encoders per stage.
    #[config(default = "[3, 5, 7, 9]")]
    pub kernel_sizes: [usize; 4],
    /// Split groups of the SDTA encoders per stage (official `d2_scales`).
    #[config(default = "[2, 2, 3, 4]")]
    pub d2_scales: [usize; 4],
    /// Stages whose SDTA encoders add the Fourier positional encoding
    /// (official `use_pos_embd_xca`).
    #[config(default = "[false, true, false, false]")]
    pub pos_embd: [bool; 4],
    /// Inverted-bottleneck expansion ratio (official `expan_ratio`).
    #[config(default = 4)]
    pub expan_ratio: usize,
    /// Stochastic-depth rate of the last block (linear from 0); 0 disables
    /// it (official default).
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// Initial value of every layer scale; 0 builds blocks without them.
    #[config(default = 1e-6)]
    pub layer_scale_init: f64,
    /// Epsilon of every LayerNorm.
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
}

impl EdgeNeXtConfig {
    /// EdgeNeXt-XS: dims `[32, 64, 100, 192]`, 4 heads.
    pub fn x_small() -> Self {
        Self::new([3, 3, 9, 3], [32, 64, 100, 192], [4; 4])
    }

    /// EdgeNeXt-S: dims `[48, 96, 160, 304]`, 8 heads.
    pub fn small() -> Self {
        Self::new([3, 3, 9, 3], [48, 96, 160, 304], [8; 4])
    }

    /// EdgeNeXt-B: dims `[80, 160, 288, 584]`, 8 heads.
    pub fn base() -> Self {
        Self::new([3, 3, 9, 3], [80, 160, 288, 584], [8; 4])
    }

    /// The preset of a ReIDZoo name: `edgenext_x_small`, `edgenext_small`, `edgenext_base`.
    pub fn preset(name: &str) -> Result<Self, BackboneError> {
        preset_by_name(
            name,
            &[
                ("edgenext_x_small", Self::x_small),
                ("edgenext_small", Self::small),
                ("edgenext_base", Self::base),
            ],
        )
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self.depths.contains(&0) || self.dims.contains(&0) || self.expan_ratio == 0 {
            return bad(format!(
                "EdgeNeXt needs at least one block and one channel per stage, got depths {:?}, \
                 dims {:?}, expan_ratio {}",
                self.depths, self.dims, self.expan_ratio
            ));
        }
        for i in 0..4 {
            if self.global_blocks[i] > self.depths[i] {
                return bad(format!(
                    "stage {i}: {} SDTA blocks in a stage of {} blocks",
                    self.global_blocks[i], self.depths[i]
                ));
            }
            if self.kernel_sizes[i].is_multiple_of(2) {
                return bad(format!(
                    "stage {i}: kernel size {} must be odd",
                    self.kernel_sizes[i]
                ));
            }
            if self.global_blocks[i] == 0 {
                continue;
            }
            let (dim, heads, scales) = (self.dims[i], self.heads[i], self.d2_scales[i]);
            if heads == 0 || !dim.is_multiple_of(heads) {
                return bad(format!(
                    "stage {i}: {heads} heads do not divide {dim} channels"
                ));
            }
            // The official split needs exactly `scales` groups of ⌈dim/scales⌉.
            if scales < 2 || (scales - 1) * dim.div_ceil(scales) >= dim {
                return bad(format!(
                    "stage {i}: {dim} channels cannot be split into {scales} groups of \
                     ⌈dim/scales⌉ (scales must be ≥ 2)"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) {
            return bad(format!(
                "drop_path_rate must be in [0, 1), got {}",
                self.drop_path_rate
            ));
        }
        if !(self.layer_scale_init.is_finite() && self.layer_scale_init >= 0.0) {
            return bad(format!(
                "layer_scale_init must be finite and ≥ 0, got {}",
                self.layer_scale_init
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!(
                "layer_norm_eps must be finite and positive, got {}",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Stochastic-depth rate of every block, stage by stage: `linspace(0,
    /// drop_path_rate, total blocks)` as the official code computes it.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let total: usize = self.depths.iter().sum();
        (0..total)
            .map(|i| drop_path_rate(self.drop_path_rate, i, total))
            .collect()
    }

    /// Builds the network with PyTorch's default initialisation on `device`.
    pub fn init(&self, device: &Device) -> Result<EdgeNeXt, BackboneError> {
        use burn::nn::conv::Conv2dConfig;
        self.validate()?;
        let eps = self.layer_norm_eps;
        let stem = Stem {
            conv: Conv2dConfig::new([3, self.dims[0]], [4, 4])
                .with_stride([4, 4])
                .init(device),
            norm: ChannelNorm::new(self.dims[0], eps, device),
        };
        let mut rates = self.drop_path_rates().into_iter();
        let mut stages = Vec::with_capacity(4);
        for i in 0..4 {
            let dim = self.dims[i];
            let downsample = (i > 0).then(|| Downsample {
                norm: ChannelNorm::new(self.dims[i - 1], eps, device),
                conv: Conv2dConfig::new([self.dims[i - 1], dim], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            });
            let n_conv = self.depths[i] - self.global_blocks[i];
            let blocks = (0..n_conv)
                .map(|_| {
                    ConvEncoder::new(
                        dim,
                        self.kernel_sizes[i],
                        self.expan_ratio,
                        self.layer_scale_init,
                        rates.next().unwrap_or(0.0),
                        eps,
                        device,
                    )
                })
                .collect();
            let sdta = (0..self.global_blocks[i])
                .map(|_| {
                    let o = SdtaOptions {
                        scales: self.d2_scales[i],
                        heads: self.heads[i],
                        expan_ratio: self.expan_ratio,
                        pos_embd: self.pos_embd[i],
                        layer_scale_init: self.layer_scale_init,
                        drop_path: rates.next().unwrap_or(0.0),
                        eps,
                    };
                    SdtaEncoder::new(dim, o, device)
                })
                .collect();
            stages.push(EdgeNeXtStage {
                downsample,
                blocks,
                sdta,
            });
        }
        Ok(EdgeNeXt {
            stem,
            stages,
            norm: ChannelNorm::new(self.dims[3], eps, device),
            out_channels: self.dims[3],
        })
    }
}

/// One stage: optional down-sampling, its conv encoders, then its SDTA
/// encoders. In PyTorch both kinds share one sequence (official
/// `stages.i.j`, timm `stages.i.blocks.j`): conv encoder `j` is block `j`,
/// SDTA encoder `k` is block `blocks.len() + k`.
#[derive(Module, Debug)]
pub struct EdgeNeXtStage {
    /// Absent in stage 1 (the stem does it).
    pub downsample: Option<Downsample>,
    /// The conv encoders, first in the stage.
    pub blocks: Vec<ConvEncoder>,
    /// The SDTA encoders, last in the stage.
    pub sdta: Vec<SdtaEncoder>,
}

impl EdgeNeXtStage {
    /// `[batch, c_in, h, w]` → `[batch, dim, h', w']` (halved after stage 1).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = match &self.downsample {
            Some(down) => down.conv.forward(down.norm.forward_channels_first(x)),
            None => x,
        };
        for block in &self.blocks {
            x = block.forward(x);
        }
        for block in &self.sdta {
            x = block.forward(x);
        }
        x
    }
}

/// EdgeNeXt trunk: images `[batch, 3, H, W]` → feature map
/// `[batch, dims[3], H/32, W/32]` (floor divisions: stem ⌊H/4⌋, then
/// halvings), and the CION embedding `[batch, dims[3]]`.
#[derive(Module, Debug)]
pub struct EdgeNeXt {
    /// Stem (official `downsample_layers.0`).
    pub stem: Stem,
    /// The four stages.
    pub stages: Vec<EdgeNeXtStage>,
    /// Final LayerNorm over `dims[3]`, applied to the pooled feature.
    pub norm: ChannelNorm,
    /// Channels of the feature map and of the embedding (`dims[3]`).
    pub out_channels: usize,
}

impl EdgeNeXt {
    /// Stem and the four stages: `[batch, 3, H, W]` →
    /// `[batch, dims[3], H/32, W/32]` (e.g. 256×128 → 8×4).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.stem.conv.forward(images);
        let mut x = self.stem.norm.forward_channels_first(x);
        for stage in &self.stages {
            x = stage.forward(x);
        }
        x
    }

    /// CION's EdgeNeXt feature: global average pooling of the map, then the
    /// final LayerNorm. `[batch, 3, H, W]` → `[batch, dims[3]]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// The final-norm part of [`EdgeNeXt::forward_embedding`]:
    /// `[batch, C, h, w]` map → LayerNorm(mean over h, w) `[batch, C]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = features.dims();
        let pooled = features.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.norm.forward_last(pooled)
    }

    /// Number of SDTA-free conv encoders of each stage (where the SDTA
    /// encoders start in PyTorch's block numbering).
    pub fn conv_blocks_per_stage(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.blocks.len()).collect()
    }

    /// Number of trainable parameters (weights, biases, LayerNorm affine
    /// parameters, layer scales, XCA temperatures, the positional
    /// encoding's projection), the final `norm` included — the CION
    /// backbone as fine-tuned, without a classifier. The ReIDZoo table
    /// (XS 2.14 M, S 5.28 M, B 17.93 M) rounds to the same two decimals
    /// with or without the final norm.
    pub fn num_parameters(&self) -> usize {
        self.num_params()
    }
}

impl Backbone for EdgeNeXt {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.forward(images)
    }

    fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn output_stride(&self) -> usize {
        32
    }

    /// [`EdgeNeXt::forward_embedding`]: `LayerNorm` of the pooled map.
    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_embedding(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::ModuleSnapshot;

    #[test]
    fn shapes_and_module_paths() {
        let device = Device::flex();
        let m = EdgeNeXtConfig::new([1, 2, 1, 2], [8, 12, 20, 24], [2, 2, 4, 4])
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 32], &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 24, 2, 1]);
        assert_eq!(m.forward_embedding(x).dims(), [2, 24]);
        assert_eq!((m.out_channels(), m.output_stride()), (24, 32));
        assert_eq!(m.conv_blocks_per_stage(), vec![1, 1, 0, 1]);
        let names: Vec<String> = m
            .collect(None, None, true)
            .into_iter()
            .map(|t| t.name.clone())
            .collect();
        for want in [
            "stem.conv.weight",
            "stages.1.downsample.norm.weight",
            "stages.1.blocks.0.dwconv.weight",
            "stages.1.sdta.0.convs.0.weight",
            "stages.1.sdta.0.pos_embd.token_projection.weight",
            "stages.2.sdta.0.convs.1.bias",
            "stages.3.sdta.0.xca.temperature",
            "stages.3.sdta.0.xca.qkv.weight",
            "stages.3.sdta.0.gamma_xca",
            "norm.weight",
        ] {
            assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("stages.2.sdta.0.pos_embd")));
    }

    #[test]
    fn bad_configs_are_errors() {
        let device = Device::flex();
        let ok = EdgeNeXtConfig::new([1, 2, 1, 2], [8, 12, 20, 24], [2, 2, 4, 4]);
        assert!(ok.validate().is_ok());
        let mut bad_heads = ok.clone();
        bad_heads.heads = [2, 5, 4, 4];
        assert!(bad_heads.init(&device).is_err());
        assert!(
            ok.clone()
                .with_d2_scales([2, 1, 3, 4])
                .init(&device)
                .is_err()
        );
        assert!(
            ok.clone()
                .with_global_blocks([0, 3, 1, 1])
                .init(&device)
                .is_err()
        );
        assert!(ok.clone().with_drop_path_rate(1.0).init(&device).is_err());
        assert!(ok.with_kernel_sizes([3, 4, 7, 9]).init(&device).is_err());
    }
}
