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
mod import;

pub use blocks::{ConvEncoder, PositionalEncodingFourier, SdtaEncoder, SdtaOptions, Xca};
pub use import::{EdgeNeXtImportReport, EdgeNeXtLayout, load_edgenext};

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::convnext::{ConvNeXtTrunk, Downsample, TrunkStage, check_trunk_options};
use crate::error::BackboneError;
use crate::layers::drop_path_rates;
use crate::registry::presets;

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

presets! {
    EdgeNeXtConfig {
        /// EdgeNeXt-XS: dims `[32, 64, 100, 192]`, 4 heads.
        x_small "edgenext_x_small" => Self::new([3, 3, 9, 3], [32, 64, 100, 192], [4; 4]);
        /// EdgeNeXt-S: dims `[48, 96, 160, 304]`, 8 heads.
        small "edgenext_small" => Self::new([3, 3, 9, 3], [48, 96, 160, 304], [8; 4]);
        /// EdgeNeXt-B: dims `[80, 160, 288, 584]`, 8 heads.
        base "edgenext_base" => Self::new([3, 3, 9, 3], [80, 160, 288, 584], [8; 4]);
    }
}

impl EdgeNeXtConfig {
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
        check_trunk_options(
            self.drop_path_rate,
            self.layer_scale_init,
            self.layer_norm_eps,
        )
    }

    /// Stochastic-depth rate of every block, stage by stage: `linspace(0,
    /// drop_path_rate, total blocks)` as the official code computes it.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        drop_path_rates(self.drop_path_rate, self.depths.iter().sum())
    }

    /// Builds the network with PyTorch's default initialisation on `device`.
    pub fn init(&self, device: &Device) -> Result<EdgeNeXt, BackboneError> {
        self.validate()?;
        let eps = self.layer_norm_eps;
        let stage = |i: usize, downsample, rates: &mut dyn Iterator<Item = f64>| {
            let (dim, n_sdta) = (self.dims[i], self.global_blocks[i]);
            let conv = |rate| {
                let (k, r) = (self.kernel_sizes[i], self.expan_ratio);
                ConvEncoder::with_kernel(dim, k, r, self.layer_scale_init, rate, eps, device)
            };
            let sdta = |drop_path| {
                let o = SdtaOptions {
                    scales: self.d2_scales[i],
                    heads: self.heads[i],
                    expan_ratio: self.expan_ratio,
                    pos_embd: self.pos_embd[i],
                    layer_scale_init: self.layer_scale_init,
                    drop_path,
                    eps,
                };
                SdtaEncoder::new(dim, o, device)
            };
            EdgeNeXtStage {
                downsample,
                blocks: rates.take(self.depths[i] - n_sdta).map(conv).collect(),
                sdta: rates.take(n_sdta).map(sdta).collect(),
            }
        };
        let rates = self.drop_path_rates();
        Ok(ConvNeXtTrunk::new(self.dims, eps, rates, stage, device))
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
        let x = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        self.sdta.iter().fold(x, |x, block| block.forward(x))
    }
}

impl TrunkStage for EdgeNeXtStage {
    fn forward_stage(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// EdgeNeXt trunk: the [`ConvNeXtTrunk`] of [`EdgeNeXtStage`]s (the stem is
/// official `downsample_layers.0`).
pub type EdgeNeXt = ConvNeXtTrunk<EdgeNeXtStage>;

impl EdgeNeXt {
    /// Number of SDTA-free conv encoders of each stage (where the SDTA
    /// encoders start in PyTorch's block numbering).
    pub fn conv_blocks_per_stage(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.blocks.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use crate::testing::{assert_has_tensors, tensor_names};

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
        assert_has_tensors(
            &m,
            &[
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
            ],
        );
        let names = tensor_names(&m);
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
