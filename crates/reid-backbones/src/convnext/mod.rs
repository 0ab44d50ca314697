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
mod import;
mod layer_norm;

pub use block::{ConvNeXtBlock, PointwiseLinear};
pub(crate) use block::{inverted_bottleneck, layer_scale, scaled};
pub use import::{ConvNeXtImportReport, ConvNeXtLayout, load_convnext};
pub use layer_norm::ChannelNorm;

use burn::config::Config;
use burn::module::{Module, ModuleDisplay};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use crate::backbone::Backbone;
use crate::error::{
    BackboneError, check_drop_path_rate, check_non_negative, check_positive, ensure,
};
use crate::family::trainable_parameters;
use crate::layers::drop_path_rates;
use crate::registry::presets;

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

presets! {
    ConvNeXtConfig {
        /// ConvNeXt-T: depths `[3, 3, 9, 3]`, dims `[96, 192, 384, 768]`.
        tiny "convnext_tiny" => Self::new([3, 3, 9, 3], [96, 192, 384, 768]);
        /// ConvNeXt-S: depths `[3, 3, 27, 3]`, dims `[96, 192, 384, 768]`.
        small "convnext_small" => Self::new([3, 3, 27, 3], [96, 192, 384, 768]);
        /// ConvNeXt-B: depths `[3, 3, 27, 3]`, dims `[128, 256, 512, 1024]`.
        base "convnext_base" => Self::new([3, 3, 27, 3], [128, 256, 512, 1024]);
    }
}

impl ConvNeXtConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        ensure(!self.depths.contains(&0) && !self.dims.contains(&0), || {
            format!(
                "ConvNeXt needs at least one block and one channel per stage, got depths {:?}, \
                 dims {:?}",
                self.depths, self.dims
            )
        })?;
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
    pub fn init(&self, device: &Device) -> Result<ConvNeXt, BackboneError> {
        self.validate()?;
        let (eps, scale) = (self.layer_norm_eps, self.layer_scale_init);
        let stage = |i: usize, downsample, rates: &mut dyn Iterator<Item = f64>| ConvNeXtStage {
            downsample,
            blocks: rates
                .take(self.depths[i])
                .map(|rate| ConvNeXtBlock::new(self.dims[i], scale, rate, eps, device))
                .collect(),
        };
        let rates = self.drop_path_rates();
        Ok(ConvNeXtTrunk::new(self.dims, eps, rates, stage, device))
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

impl Stem {
    /// `3 → dim` with LayerNorm epsilon `eps` (PyTorch's default
    /// initialisation).
    pub fn new(dim: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([3, dim], [4, 4])
                .with_stride([4, 4])
                .init(device),
            norm: ChannelNorm::new(dim, eps, device),
        }
    }

    /// `[batch, 3, H, W]` → `[batch, dim, ⌊H/4⌋, ⌊W/4⌋]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        self.norm
            .forward_channels_first(crate::layers::dispatch::conv2d(&self.conv, images))
    }
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

impl Downsample {
    /// `c_in → c_out` with LayerNorm epsilon `eps` (PyTorch's default
    /// initialisation).
    pub fn new(c_in: usize, c_out: usize, eps: f64, device: &Device) -> Self {
        Self {
            norm: ChannelNorm::new(c_in, eps, device),
            conv: Conv2dConfig::new([c_in, c_out], [2, 2])
                .with_stride([2, 2])
                .init(device),
        }
    }

    /// `[batch, c_in, h, w]` → `[batch, c_out, ⌊h/2⌋, ⌊w/2⌋]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::layers::dispatch::conv2d(&self.conv, self.norm.forward_channels_first(x))
    }
}

/// One stage: optional down-sampling, then its blocks.
#[derive(Module, Debug)]
pub struct ConvNeXtStage {
    /// Absent in stage 1 (the stem does it).
    pub downsample: Option<Downsample>,
    /// `depths[i]` blocks of width `dims[i]`.
    pub blocks: Vec<ConvNeXtBlock>,
}

impl ConvNeXtStage {
    /// `[batch, c_in, h, w]` → `[batch, dim, h', w']` (halved after stage 1).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }
}

/// A stage of a [`ConvNeXtTrunk`]: `[batch, c_in, h, w]` → `[batch, dim,
/// h', w']` (ConvNeXt's [`ConvNeXtStage`], EdgeNeXt's
/// [`crate::edgenext::EdgeNeXtStage`]).
pub trait TrunkStage: Module + ModuleDisplay {
    /// Runs the stage.
    fn forward_stage(&self, x: Tensor<4>) -> Tensor<4>;
}

impl TrunkStage for ConvNeXtStage {
    fn forward_stage(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// The ConvNeXt macro-architecture, whose stages differ by family
/// (ConvNeXt: [`ConvNeXtStage`], EdgeNeXt:
/// [`crate::edgenext::EdgeNeXtStage`]): images `[batch, 3, H, W]` → stem
/// (stride 4) → four stages → feature map `[batch, dims[3], H/32, W/32]`
/// (floor divisions: stem ⌊H/4⌋, then halvings), and CION's embedding
/// `LayerNorm(GAP(map))` `[batch, dims[3]]`.
#[derive(Module, Debug)]
pub struct ConvNeXtTrunk<S: TrunkStage> {
    /// Stem (official `downsample_layers.0`).
    pub stem: Stem,
    /// The four stages.
    pub stages: Vec<S>,
    /// Final LayerNorm over `dims[3]`, applied to the pooled feature.
    pub norm: ChannelNorm,
    /// Channels of the feature map and of the embedding (`dims[3]`).
    pub out_channels: usize,
}

/// ConvNeXt trunk: the [`ConvNeXtTrunk`] of [`ConvNeXtStage`]s.
pub type ConvNeXt = ConvNeXtTrunk<ConvNeXtStage>;

/// Checks the options ConvNeXt and EdgeNeXt share: the stochastic-depth
/// rate in `[0, 1)`, a finite non-negative layer-scale start and a finite
/// positive LayerNorm epsilon.
pub(crate) fn check_trunk_options(
    drop_path_rate: f64,
    layer_scale_init: f64,
    layer_norm_eps: f64,
) -> Result<(), BackboneError> {
    check_drop_path_rate(drop_path_rate)?;
    check_non_negative("layer_scale_init", layer_scale_init)?;
    check_positive("layer_norm_eps", layer_norm_eps)
}

impl<S: TrunkStage> ConvNeXtTrunk<S> {
    /// A trunk of `dims[i]` channels in stage `i` (LayerNorm epsilon `eps`,
    /// PyTorch's default initialisation): the stem, then stage `i` from
    /// `stage(i, downsample, rates)` with the down-sampling that starts it
    /// (`None` in stage 1) and the stochastic-depth rates of the blocks
    /// (`drop_path_rates`, all blocks in order: the stage takes its own),
    /// in order, then the final norm.
    pub fn new(
        dims: [usize; 4],
        eps: f64,
        drop_path_rates: Vec<f64>,
        mut stage: impl FnMut(usize, Option<Downsample>, &mut dyn Iterator<Item = f64>) -> S,
        device: &Device,
    ) -> Self {
        let stem = Stem::new(dims[0], eps, device);
        let mut rates = drop_path_rates.into_iter().chain(std::iter::repeat(0.0));
        let stages = (0..4)
            .map(|i| {
                let downsample =
                    (i > 0).then(|| Downsample::new(dims[i - 1], dims[i], eps, device));
                stage(i, downsample, &mut rates)
            })
            .collect();
        Self {
            stem,
            stages,
            norm: ChannelNorm::new(dims[3], eps, device),
            out_channels: dims[3],
        }
    }

    /// Stem and the four stages: `[batch, 3, H, W]` →
    /// `[batch, dims[3], H/32, W/32]` (e.g. 256×128 → 8×4).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.stem.forward(images);
        self.stages
            .iter()
            .fold(x, |x, stage| stage.forward_stage(x))
    }

    /// CION's feature: global average pooling of the map, then the final
    /// LayerNorm. `[batch, 3, H, W]` → `[batch, dims[3]]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// The final-norm part of [`ConvNeXtTrunk::forward_embedding`]:
    /// `[batch, C, h, w]` map → LayerNorm(mean over h, w) `[batch, C]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        self.norm.forward_pooled(features)
    }

    /// Number of trainable parameters (weights, biases, LayerNorm affine
    /// parameters, layer scales; EdgeNeXt's XCA temperatures and
    /// positional-encoding projection), the final `norm` included: the
    /// convention of the ReIDZoo table (ConvNeXt-T 27.82 M, S 49.45 M,
    /// B 87.57 M, which counts the final norm; EdgeNeXt XS 2.14 M, S 5.28 M,
    /// B 17.93 M, which round the same with or without it).
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }
}

/// The pooled feature is [`ConvNeXtTrunk::forward_embedding`]: `LayerNorm`
/// of the pooled map.
impl<S: TrunkStage> Backbone for ConvNeXtTrunk<S> {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.forward(images)
    }

    fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn output_stride(&self) -> usize {
        32
    }

    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_embedding(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_has_tensors, tensor_names};

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
        assert_has_tensors(
            &m,
            &[
                "stem.conv.weight",
                "stem.norm.bias",
                "stages.1.downsample.norm.weight",
                "stages.1.downsample.conv.bias",
                "stages.2.blocks.1.dwconv.weight",
                "stages.2.blocks.1.pwconv1.weight",
                "stages.2.blocks.1.gamma",
                "norm.weight",
            ],
        );
        let names = tensor_names(&m);
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
