//! ConvNeXt T/S/B (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as used
//! by CION's ReIDZoo: the official facebookresearch architecture without the
//! classifier, returning the map after the last stage, with CION's feature
//! `LayerNorm(GAP(map))` as [`ConvNeXt::forward_embedding`].
//!
//! - stem: 4×4 convolution, stride 4 (with bias) → channels-first LayerNorm;
//! - stages 2–4 start with a channels-first LayerNorm → 2×2 convolution,
//!   stride 2;
//! - each stage has `depths[i]` [`ConvNeXtBlock`]s of width `dims[i]`;
//! - `norm`: the final LayerNorm, applied to the globally average-pooled map.
//!
//! Every LayerNorm uses eps 1e-6. Layer scale `gamma` starts at 1e-6;
//! stochastic depth rates grow linearly from 0 (first block) to
//! `drop_path_rate` (last block) and act only on an autodiff device.
//! Initialisation: PyTorch's defaults (CION never applies the official
//! `_init_weights`), i.e. uniform `±1/sqrt(fan_in)` weights and biases, LN
//! weight 1 and bias 0.
//!
//! Checkpoints: [`crate::import::load_convnext`] reads both the official
//! key layout (CION ReIDZoo files) and timm's.

mod block;
mod layer_norm;

pub use block::{ConvNeXtBlock, PointwiseLinear};
pub use layer_norm::ChannelNorm;

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use crate::backbone::Backbone;
use crate::error::BackboneError;
use crate::layers::drop_path_rate;
use crate::registry::preset_by_name;

/// Configuration of a [`ConvNeXt`]; [`ConvNeXtConfig::tiny`],
/// [`ConvNeXtConfig::small`] and [`ConvNeXtConfig::base`] are the ReIDZoo
/// models.
#[derive(Config, Debug)]
pub struct ConvNeXtConfig {
    /// Blocks per stage (`[3, 3, 9, 3]` for T, `[3, 3, 27, 3]` for S and B).
    pub depths: [usize; 4],
    /// Channels per stage (`[96, 192, 384, 768]` for T and S,
    /// `[128, 256, 512, 1024]` for B).
    pub dims: [usize; 4],
    /// Stochastic-depth rate of the last block (linear from 0); 0 disables
    /// it. The official default is 0.
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// Initial value of the layer-scale `gamma`; 0 builds blocks without it
    /// (official semantics).
    #[config(default = 1e-6)]
    pub layer_scale_init: f64,
    /// Epsilon of every LayerNorm.
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
}

impl ConvNeXtConfig {
    /// ConvNeXt-T: depths `[3, 3, 9, 3]`, dims `[96, 192, 384, 768]`.
    pub fn tiny() -> Self {
        Self::new([3, 3, 9, 3], [96, 192, 384, 768])
    }

    /// ConvNeXt-S: depths `[3, 3, 27, 3]`, dims `[96, 192, 384, 768]`.
    pub fn small() -> Self {
        Self::new([3, 3, 27, 3], [96, 192, 384, 768])
    }

    /// ConvNeXt-B: depths `[3, 3, 27, 3]`, dims `[128, 256, 512, 1024]`.
    pub fn base() -> Self {
        Self::new([3, 3, 27, 3], [128, 256, 512, 1024])
    }

    /// The preset of a ReIDZoo name: `convnext_tiny`, `convnext_small`, `convnext_base`.
    pub fn preset(name: &str) -> Result<Self, BackboneError> {
        preset_by_name(
            name,
            &[
                ("convnext_tiny", Self::tiny),
                ("convnext_small", Self::small),
                ("convnext_base", Self::base),
            ],
        )
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        if self.depths.contains(&0) || self.dims.contains(&0) {
            return Err(BackboneError::InvalidConfig(format!(
                "ConvNeXt needs at least one block and one channel per stage, got depths {:?}, \
                 dims {:?}",
                self.depths, self.dims
            )));
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) {
            return Err(BackboneError::InvalidConfig(format!(
                "drop_path_rate must be in [0, 1), got {}",
                self.drop_path_rate
            )));
        }
        if !(self.layer_scale_init.is_finite() && self.layer_scale_init >= 0.0) {
            return Err(BackboneError::InvalidConfig(format!(
                "layer_scale_init must be finite and ≥ 0, got {}",
                self.layer_scale_init
            )));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(BackboneError::InvalidConfig(format!(
                "layer_norm_eps must be finite and positive, got {}",
                self.layer_norm_eps
            )));
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
    pub fn init(&self, device: &Device) -> Result<ConvNeXt, BackboneError> {
        self.validate()?;
        let eps = self.layer_norm_eps;
        let stem = Stem {
            conv: Conv2dConfig::new([3, self.dims[0]], [4, 4])
                .with_stride([4, 4])
                .init(device),
            norm: ChannelNorm::new(self.dims[0], eps, device),
        };
        let rates = self.drop_path_rates();
        let mut next_rate = rates.into_iter();
        let mut stages = Vec::with_capacity(4);
        for (i, (&depth, &dim)) in self.depths.iter().zip(&self.dims).enumerate() {
            let downsample = (i > 0).then(|| Downsample {
                norm: ChannelNorm::new(self.dims[i - 1], eps, device),
                conv: Conv2dConfig::new([self.dims[i - 1], dim], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            });
            let blocks = (0..depth)
                .map(|_| {
                    let rate = next_rate.next().unwrap_or(0.0);
                    ConvNeXtBlock::new(dim, self.layer_scale_init, rate, eps, device)
                })
                .collect();
            stages.push(ConvNeXtStage { downsample, blocks });
        }
        Ok(ConvNeXt {
            stem,
            stages,
            norm: ChannelNorm::new(self.dims[3], eps, device),
            out_channels: self.dims[3],
        })
    }
}

/// The stem: 4×4 convolution, stride 4 → channels-first LayerNorm
/// (official `downsample_layers.0.{0,1}`, timm `stem.{0,1}`).
#[derive(Module, Debug)]
pub struct Stem {
    /// `3 → dims[0]`, 4×4, stride 4, with bias.
    pub conv: Conv2d,
    /// Channels-first LayerNorm over `dims[0]`.
    pub norm: ChannelNorm,
}

/// Down-sampling at the start of stages 2–4: channels-first LayerNorm →
/// 2×2 convolution, stride 2 (official `downsample_layers.i.{0,1}`, timm
/// `stages.i.downsample.{0,1}`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// Channels-first LayerNorm over `dims[i-1]`.
    pub norm: ChannelNorm,
    /// `dims[i-1] → dims[i]`, 2×2, stride 2, with bias.
    pub conv: Conv2d,
}

/// One stage: optional down-sampling, then its blocks.
#[derive(Module, Debug)]
pub struct ConvNeXtStage {
    /// Absent in stage 1 (the stem does it).
    pub downsample: Option<Downsample>,
    /// `depths[i]` blocks of width `dims[i]`.
    pub blocks: Vec<ConvNeXtBlock>,
}

/// ConvNeXt trunk: images `[batch, 3, H, W]` → feature map
/// `[batch, dims[3], H/32, W/32]` (floor divisions: stem ⌊H/4⌋, then
/// halvings), and the CION embedding `[batch, dims[3]]`.
#[derive(Module, Debug)]
pub struct ConvNeXt {
    /// Stem.
    pub stem: Stem,
    /// The four stages.
    pub stages: Vec<ConvNeXtStage>,
    /// Final LayerNorm over `dims[3]`, applied to the pooled feature.
    pub norm: ChannelNorm,
    /// Channels of the feature map and of the embedding (`dims[3]`).
    pub out_channels: usize,
}

impl ConvNeXt {
    /// Stem and the four stages: `[batch, 3, H, W]` →
    /// `[batch, dims[3], H/32, W/32]` (e.g. 256×128 → 8×4).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.stem.conv.forward(images);
        let mut x = self.stem.norm.forward_channels_first(x);
        for stage in &self.stages {
            if let Some(down) = &stage.downsample {
                x = down.conv.forward(down.norm.forward_channels_first(x));
            }
            for block in &stage.blocks {
                x = block.forward(x);
            }
        }
        x
    }

    /// CION's ConvNeXt feature: global average pooling of the map, then the
    /// final LayerNorm. `[batch, 3, H, W]` → `[batch, dims[3]]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// The final-norm part of [`ConvNeXt::forward_embedding`]:
    /// `[batch, C, h, w]` map → LayerNorm(mean over h, w) `[batch, C]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = features.dims();
        let pooled = features.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.norm.forward_last(pooled)
    }

    /// Number of trainable parameters (weights, biases, LayerNorm affine
    /// parameters, layer scales), the final `norm` included: the convention
    /// of the ReIDZoo table (ConvNeXt-T 27.82 M, S 49.45 M, B 87.57 M).
    pub fn num_parameters(&self) -> usize {
        self.num_params()
    }
}

impl Backbone for ConvNeXt {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.forward(images)
    }

    fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn output_stride(&self) -> usize {
        32
    }

    /// [`ConvNeXt::forward_embedding`]: `LayerNorm` of the pooled map.
    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_embedding(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::ModuleSnapshot;

    /// The ReIDZoo table's counts in millions (two decimals) and the exact
    /// counts of timm's models with `num_classes=0` (backbone + `head.norm`).
    const COUNTS: [(&str, f64, usize); 3] = [
        ("tiny", 27.82, 27_820_128),
        ("small", 49.45, 49_454_688),
        ("base", 87.57, 87_566_464),
    ];

    #[test]
    fn parameter_counts_match_the_reidzoo_table_with_the_final_norm() {
        let device = Device::flex();
        for (name, table, exact) in COUNTS {
            let cfg = match name {
                "tiny" => ConvNeXtConfig::tiny(),
                "small" => ConvNeXtConfig::small(),
                _ => ConvNeXtConfig::base(),
            };
            let m = cfg.init(&device).unwrap();
            let n = m.num_parameters();
            assert_eq!(n, exact, "{name}");
            let millions = (n as f64 / 1e4).round() / 100.0;
            assert_eq!(millions, table, "{name}");
            // Without the final norm, B would read 87.56: the table counts it.
            let without = n - 2 * m.out_channels;
            if name == "base" {
                assert_ne!((without as f64 / 1e4).round() / 100.0, table);
            }
        }
    }

    #[test]
    fn shapes_and_module_paths() {
        let device = Device::flex();
        let m = ConvNeXtConfig::new([1, 1, 2, 1], [4, 6, 8, 10])
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 32], &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 10, 2, 1]);
        assert_eq!(m.forward_embedding(x).dims(), [2, 10]);
        assert_eq!((m.out_channels(), m.output_stride()), (10, 32));
        let names: Vec<String> = m
            .collect(None, None, true)
            .into_iter()
            .map(|t| t.name.clone())
            .collect();
        for want in [
            "stem.conv.weight",
            "stem.norm.bias",
            "stages.1.downsample.norm.weight",
            "stages.1.downsample.conv.bias",
            "stages.2.blocks.1.dwconv.weight",
            "stages.2.blocks.1.pwconv1.weight",
            "stages.2.blocks.1.gamma",
            "norm.weight",
        ] {
            assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("stages.0.downsample")));
    }

    #[test]
    fn drop_path_rates_grow_linearly_and_bad_configs_are_errors() {
        let cfg = ConvNeXtConfig::new([1, 1, 2, 1], [4, 6, 8, 10]).with_drop_path_rate(0.2);
        let rates = cfg.drop_path_rates();
        let want = [0.0, 0.05, 0.1, 0.15, 0.2];
        assert!(rates.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12));
        let device = Device::flex();
        assert!(cfg.clone().with_drop_path_rate(1.0).init(&device).is_err());
        assert!(
            ConvNeXtConfig::new([1, 0, 1, 1], [4, 6, 8, 10])
                .init(&device)
                .is_err()
        );
        assert!(cfg.with_layer_norm_eps(0.0).init(&device).is_err());
        let m = ConvNeXtConfig::new([1, 1, 1, 1], [4, 6, 8, 10])
            .with_layer_scale_init(0.0)
            .init(&device)
            .unwrap();
        assert!(m.stages[0].blocks[0].gamma.is_none());
    }
}
