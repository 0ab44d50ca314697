//! RepViT-M0.9 / M1.0 / M1.5 (Wang et al., "RepViT: Revisiting Mobile CNN
//! From ViT Perspective", CVPR 2024) as CION's ReIDZoo uses them: THU-MIG's
//! official architecture in its training form (`replace_batchnorm` removed,
//! every branch unfused), without the classifier and distillation heads;
//! the feature is the global average of the last stage (384 / 448 / 512
//! channels).
//!
//! - stem: conv-BN 3×3 s2 `3 → d0/2`, GELU, conv-BN 3×3 s2 `d0/2 → d0` —
//!   stride 4;
//! - stages 2–4 start with a [`RepVitDownsample`] (stride-1 block without
//!   SE, 3×3 s2 depth-wise conv-BN, 1×1 conv-BN, residual FFN) — strides 8,
//!   16, 32;
//! - each stage then has `depth` [`RepVitBlock`]s (RepVGG depth-wise token
//!   mixer, SE on the 1st, 3rd, … block, residual 1×1 FFN of ratio 2).
//!
//! The SE comes in two kinds ([`RepVitSeKind`], [`RepVitConfig::se`]):
//! timm's `SqueezeExcite` (the official code's and timm's; sigmoid gate,
//! width rounded to 8, keys `fc1`/`fc2`) and the one CION's own `RepViT.py`
//! defines (CION_ReIDZoo 7ac6fd7, `CION_Pretrain/models/RepViT.py`, the
//! same in `CION_Finetune/TransReID/model/backbones/RepViT.py`):
//! hard-sigmoid gate `relu6(x + 3)/6`, width rounded to 4, keys
//! `conv_reduce`/`conv_expand`. CION's released checkpoints need the
//! latter; [`crate::import::load_repvit`] switches a model to the kind
//! its checkpoint's keys show ([`RepVit::with_se_kind`]). Everything else
//! of the two definitions is the same network.
//!
//! BN eps 1e-5, GELU in erf form; no stochastic depth and no layer scale
//! (the official blocks have neither). The [`Backbone`](crate::Backbone) map is the last
//! stage `[batch, d3, ⌈H/32⌉, ⌈W/32⌉]`.
//!
//! [`RepVit::reparameterize`] returns the inference form: every conv-BN
//! pair is one convolution and every RepVGG token mixer (k×k conv-BN, 1×1
//! conv, identity, outer BN) one k×k depth-wise convolution; outputs agree
//! with the training form up to float rounding. Checkpoints (official /
//! CION / timm names, training form): [`crate::import::load_repvit`].

mod blocks;
mod import;

pub use blocks::{
    RepVggDw, RepVitBlock, RepVitDownsample, RepVitMlp, RepVitSe, RepVitSeKind, make_divisible,
    make_divisible_min90,
};
pub use import::{RepVitImportReport, RepVitKeys, RepVitLayout, load_repvit};

use crate::layers::gelu;
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backbone::trunk_backbone;
use crate::error::{BackboneError, check_positive};
use crate::family::trainable_parameters;
use crate::fastvit::ConvBn;
use crate::pool::GlobalPool;
use crate::registry::{preset_by_name, presets};

/// Configuration of a [`RepVit`]; [`RepVitConfig::m0_9`],
/// [`RepVitConfig::m1_0`] and [`RepVitConfig::m1_5`] are the ReIDZoo models.
#[derive(Config, Debug)]
pub struct RepVitConfig {
    /// Blocks per stage after its down-sampling (timm `depth`;
    /// `[2, 2, 14, 2]` for M0.9/M1.0, `[4, 4, 24, 4]` for M1.5).
    pub depths: [usize; 4],
    /// Channels per stage.
    pub embed_dims: [usize; 4],
    /// FFN expansion ratio (2).
    #[config(default = 2)]
    pub mlp_ratio: usize,
    /// Depth-wise kernel size (3).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Squeeze-and-excitation kind: [`RepVitSeKind::Timm`] (official /
    /// timm, the default) or [`RepVitSeKind::Cion`] (CION's `RepViT.py`).
    #[config(default = "RepVitSeKind::Timm")]
    pub se: RepVitSeKind,
}

presets! {
    RepVitConfig,
    custom preset {
        /// RepViT-M0.9: channels `[48, 96, 192, 384]`, depths `[2, 2, 14, 2]`.
        m0_9 "repvit_m0_9" => Self::new([2, 2, 14, 2], [48, 96, 192, 384]);
        /// RepViT-M1.0: channels `[56, 112, 224, 448]`, depths `[2, 2, 14, 2]`.
        m1_0 "repvit_m1_0" => Self::new([2, 2, 14, 2], [56, 112, 224, 448]);
        /// RepViT-M1.5: channels `[64, 128, 256, 512]`, depths `[4, 4, 24, 4]`.
        m1_5 "repvit_m1_5" => Self::new([4, 4, 24, 4], [64, 128, 256, 512]);
    }
}

impl RepVitConfig {
    /// A ReIDZoo preset by CION's name (`"repvit_m0_9"`, `"repvit_m1_0"`,
    /// `"repvit_m1_5"`, case-insensitive) as CION's `RepViT.py` defines it
    /// ([`RepVitSeKind::Cion`]); a `_timm` suffix (`"repvit_m0_9_timm"`)
    /// gives the official / timm SE instead.
    pub fn preset(name: &str) -> Result<Self, BackboneError> {
        let lower = name.to_ascii_lowercase();
        let (base, se) = match lower.strip_suffix("_timm") {
            Some(b) => (b, RepVitSeKind::Timm),
            None => (lower.as_str(), RepVitSeKind::Cion),
        };
        match preset_by_name(base, Self::PRESETS) {
            Ok(cfg) => Ok(cfg.with_se(se)),
            Err(_) => Err(BackboneError::UnknownArch {
                name: name.to_string(),
                known: "repvit_m0_9, repvit_m1_0, repvit_m1_5 (each also with _timm)".into(),
            }),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let bad = |m: String| Err(BackboneError::InvalidConfig(m));
        if self
            .embed_dims
            .iter()
            .any(|&d| d < 2 || !d.is_multiple_of(2))
        {
            return bad(format!(
                "RepViT channels must be even and positive (the stem halves d0), got {:?}",
                self.embed_dims
            ));
        }
        if self.kernel_size.is_multiple_of(2) {
            return bad(format!("kernel_size must be odd, got {}", self.kernel_size));
        }
        if self.mlp_ratio == 0 {
            return bad("mlp_ratio must be positive".into());
        }
        check_positive("bn_eps", self.bn_eps)
    }

    /// Builds the network (training form) on `device`.
    pub fn init(&self, device: &Device) -> Result<RepVit, BackboneError> {
        self.validate()?;
        let (eps, k, r) = (self.bn_eps, self.kernel_size, self.mlp_ratio);
        let d0 = self.embed_dims[0];
        let stem = RepVitStem {
            conv1: ConvBn::new(3, d0 / 2, 3, 2, 1, eps, device),
            conv2: ConvBn::new(d0 / 2, d0, 3, 2, 1, eps, device),
        };
        let stages = (0..4)
            .map(|i| {
                let dim = self.embed_dims[i];
                RepVitStage {
                    downsample: (i > 0).then(|| {
                        RepVitDownsample::new(self.embed_dims[i - 1], dim, r, k, eps, device)
                    }),
                    blocks: (0..self.depths[i])
                        .map(|j| {
                            let se = (j % 2 == 0).then_some(self.se);
                            RepVitBlock::new(dim, dim * r, k, se, eps, device)
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(RepVit {
            stem,
            stages,
            out_channels: self.embed_dims[3],
        })
    }
}

/// The stem: two 3×3 stride-2 conv-BNs with GELU between (timm
/// `stem.conv{1,2}`, official `features.0.{0,2}`).
/// `[b, 3, H, W]` → `[b, d0, ⌈H/4⌉, ⌈W/4⌉]`.
#[derive(Module, Debug)]
pub struct RepVitStem {
    /// `3 → d0/2`, 3×3 s2.
    pub conv1: ConvBn,
    /// `d0/2 → d0`, 3×3 s2.
    pub conv2: ConvBn,
}

impl RepVitStem {
    /// `[b, 3, H, W]` → `[b, d0, ⌈H/4⌉, ⌈W/4⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv2.forward(gelu(self.conv1.forward(x)))
    }
}

/// One stage: optional down-sampling (stages 2–4), then its blocks.
#[derive(Module, Debug)]
pub struct RepVitStage {
    /// Absent in stage 1.
    pub downsample: Option<RepVitDownsample>,
    /// Stride-1 blocks, SE on even indices.
    pub blocks: Vec<RepVitBlock>,
}

impl RepVitStage {
    /// `[b, in, h, w]` → `[b, dim, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.downsample {
            Some(d) => d.forward(x),
            None => x,
        };
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }
}

/// RepViT trunk: images `[batch, 3, H, W]` → map
/// `[batch, d3, ⌈H/32⌉, ⌈W/32⌉]` (256×128 → 8×4) and embedding
/// `[batch, d3]` (384 / 448 / 512 for M0.9 / M1.0 / M1.5).
#[derive(Module, Debug)]
pub struct RepVit {
    /// The stem.
    pub stem: RepVitStem,
    /// The four stages.
    pub stages: Vec<RepVitStage>,
    /// Channels of the map and the embedding (`d3`).
    pub out_channels: usize,
}

impl RepVit {
    /// Stem and stages: `[batch, 3, H, W]` → `[batch, d3, ⌈H/32⌉, ⌈W/32⌉]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let x = self.stem.forward(images);
        self.stages.iter().fold(x, |x, stage| stage.forward(x))
    }

    /// CION's RepViT feature: `GAP(stages(x))`, `[batch, 3, H, W]` →
    /// `[batch, d3]`.
    pub fn forward_embedding(&self, images: Tensor<4>) -> Tensor<2> {
        self.embed_features(self.forward(images))
    }

    /// Global average pooling of a map `[batch, C, h, w]` → `[batch, C]`.
    pub fn embed_features(&self, features: Tensor<4>) -> Tensor<2> {
        GlobalPool::Avg.forward(features)
    }

    /// The SE kind of its blocks (`None` when no block has an SE, i.e.
    /// every depth is 0).
    pub fn se_kind(&self) -> Option<RepVitSeKind> {
        self.stages
            .iter()
            .flat_map(|s| &s.blocks)
            .find_map(|b| b.se.as_ref().map(|se| se.kind))
    }

    /// The same network with every SE rebuilt as `kind` (freshly
    /// initialised where the kind changes: the widths differ, so no weight
    /// carries over; load a checkpoint afterwards). Unchanged when its SEs
    /// already are of `kind`.
    pub fn with_se_kind(self, kind: RepVitSeKind) -> Self {
        let stages = self
            .stages
            .into_iter()
            .map(|stage| RepVitStage {
                downsample: stage.downsample,
                blocks: stage
                    .blocks
                    .into_iter()
                    .map(|block| RepVitBlock {
                        se: block.se.map(|se| {
                            if se.kind == kind {
                                se
                            } else {
                                RepVitSe::new(se.channels(), kind, &se.fc1.weight.device())
                            }
                        }),
                        ..block
                    })
                    .collect(),
            })
            .collect();
        Self { stages, ..self }
    }

    /// Number of parameters (conv weights and biases, BN affine; not BN
    /// running statistics), without the classifier and distillation heads:
    /// the ReIDZoo table's convention (M0.9 4.72 M, M1.0 6.40 M, M1.5
    /// 13.62 M). Exactly: timm's `num_classes=0` models 4,717,792 /
    /// 6,403,004 / 13,616,384; CION's `RepViT.py` (narrower SE at 48 and
    /// 112 channels) 4,717,404 / 6,402,104 / 13,616,384.
    pub fn num_parameters(&self) -> usize {
        trainable_parameters(self)
    }

    /// The inference form (structural re-parameterisation): every conv-BN
    /// pair and every RepVGG token mixer becomes one convolution with bias;
    /// SE stays. Same outputs in inference (up to rounding); not for
    /// training or checkpoint export in the training layout.
    pub fn reparameterize(self) -> Self {
        Self {
            stem: RepVitStem {
                conv1: self.stem.conv1.fuse(),
                conv2: self.stem.conv2.fuse(),
            },
            stages: self
                .stages
                .into_iter()
                .map(|s| RepVitStage {
                    downsample: s.downsample.map(RepVitDownsample::reparameterize),
                    blocks: s
                        .blocks
                        .into_iter()
                        .map(RepVitBlock::reparameterize)
                        .collect(),
                })
                .collect(),
            out_channels: self.out_channels,
        }
    }
}

trunk_backbone!(RepVit, stride: 32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use crate::testing::{assert_has_tensors, assert_same_outputs, tensor_names};
    use burn::tensor::Distribution;

    /// CION's presets build CION's SE (their exact counts, those of CION's
    /// `RepViT.py`, are the zoo table's); switching to timm's SE gives timm
    /// 1.0.31's exact counts (`num_classes=0`: no classifier or
    /// distillation heads), and back CION's.
    #[test]
    fn cion_presets_build_cions_se_and_switch_to_timms_counts() {
        let device = Device::flex();
        for (name, timm_count) in [
            ("repvit_m0_9", 4_717_792),
            ("REPVIT_M1_0", 6_403_004),
            ("repvit_m1_5", 13_616_384),
        ] {
            let cfg = RepVitConfig::preset(name).unwrap();
            assert_eq!(cfg.se, RepVitSeKind::Cion);
            let m = cfg.init(&device).unwrap();
            assert_eq!(m.se_kind(), Some(RepVitSeKind::Cion));
            let n = m.num_parameters();
            let timm = m.with_se_kind(RepVitSeKind::Timm);
            assert_eq!(timm.se_kind(), Some(RepVitSeKind::Timm));
            assert_eq!(timm.num_parameters(), timm_count, "{name}");
            let back = timm.with_se_kind(RepVitSeKind::Cion);
            assert_eq!(back.num_parameters(), n, "{name}");
        }
        let timm = RepVitConfig::preset("repvit_m1_0_timm").unwrap();
        assert_eq!(timm.se, RepVitSeKind::Timm);
        assert_eq!(timm.init(&device).unwrap().num_parameters(), 6_403_004);
        assert!(matches!(
            RepVitConfig::preset("repvit_m2_3"),
            Err(BackboneError::UnknownArch { .. })
        ));
    }

    #[test]
    fn se_widths_of_both_kinds() {
        // (c, timm rd, CION rd)
        for (c, timm, cion) in [
            (8, 8, 4),
            (16, 8, 4),
            (40, 8, 12),
            (48, 16, 12),
            (56, 16, 16),
            (96, 24, 24),
            (112, 32, 28),
            (448, 112, 112),
        ] {
            assert_eq!(RepVitSeKind::Timm.reduced_channels(c), timm, "{c}");
            assert_eq!(RepVitSeKind::Cion.reduced_channels(c), cion, "{c}");
        }
        // The 90 % rule: 10 → ⌊12/8⌋·8 = 8 < 9 → 16.
        assert_eq!(make_divisible(10.0, 8), 8);
        assert_eq!(make_divisible_min90(10.0, 8), 16);
        assert_eq!(make_divisible_min90(1.0, 4), 4);
    }

    /// The hard-sigmoid gate of CION's SE: with zero conv weights the gate
    /// is `relu6(b + 3)/6` of the expand bias `b`, saturating at 0 and 1.
    #[test]
    fn cion_se_gate_is_the_hard_sigmoid() {
        let device = Device::flex();
        let mut se = RepVitSe::new(4, RepVitSeKind::Cion, &device);
        se.fc2.weight = se.fc2.weight.map(|w| w.zeros_like());
        let bias = Tensor::<1>::from_floats([-4.0, -1.5, 0.0, 4.0], &device);
        se.fc2.bias = se.fc2.bias.map(|b| b.map(|_| bias.clone()));
        let x = Tensor::<4>::ones([1, 4, 2, 2], &device);
        let y: Vec<f32> = se.forward(x).into_data().try_to_vec().unwrap();
        let want = [0.0, 0.25, 0.5, 1.0];
        for (c, w) in want.iter().enumerate() {
            for v in &y[c * 4..c * 4 + 4] {
                assert!((v - w).abs() < 1e-6, "channel {c}: {v} vs {w}");
            }
        }
    }

    #[test]
    fn shapes_paths_and_reparameterisation() {
        let device = Device::flex();
        let m = RepVitConfig::new([2, 1, 2, 1], [8, 16, 16, 24])
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Default, &device);
        assert_eq!(m.forward_features(x.clone()).dims(), [2, 24, 2, 1]);
        assert_eq!(m.forward_embedding(x.clone()).dims(), [2, 24]);
        assert_has_tensors(
            &m,
            &[
                "stem.conv1.conv.weight",
                "stem.conv2.bn.gamma",
                "stages.0.blocks.0.token_mixer.conv.conv.weight",
                "stages.0.blocks.0.token_mixer.conv1.bias",
                "stages.0.blocks.0.token_mixer.bn.running_var",
                "stages.0.blocks.0.se.fc1.weight",
                "stages.0.blocks.1.channel_mixer.conv2.bn.beta",
                "stages.1.downsample.pre_block.token_mixer.conv.bn.gamma",
                "stages.1.downsample.spatial_downsample.conv.weight",
                "stages.1.downsample.channel_downsample.bn.running_mean",
                "stages.1.downsample.ffn.conv1.conv.weight",
            ],
        );
        let names = tensor_names(&m);
        assert!(!names.iter().any(|n| n.starts_with("stages.0.blocks.1.se")));
        assert!(!names.iter().any(|n| n.contains("pre_block.se")));
        let fused = m.clone().reparameterize();
        assert_same_outputs(&m, &fused, x, |n| {
            n.contains("bn") || n.contains("token_mixer.conv1")
        });
    }

    #[test]
    fn divisibility_and_bad_configs() {
        assert_eq!(make_divisible(12.0, 8), 16);
        assert_eq!(make_divisible(28.0, 8), 32);
        assert_eq!(make_divisible(2.0, 8), 8);
        assert_eq!(make_divisible(96.0, 8), 96);
        let device = Device::flex();
        assert!(
            RepVitConfig::new([1; 4], [8, 16, 16, 25])
                .init(&device)
                .is_err()
        );
        assert!(
            RepVitConfig::new([1; 4], [8; 4])
                .with_kernel_size(4)
                .init(&device)
                .is_err()
        );
        assert!(
            RepVitConfig::new([0, 1, 0, 1], [8; 4])
                .init(&device)
                .is_ok()
        );
    }
}
