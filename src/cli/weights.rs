//! Building a backbone from command-line options and a PyTorch (or
//! safetensors) checkpoint, shared by the examples that load weights: a
//! ResNet trunk with every ResNet option, or any other ReIDZoo model by
//! name.

use std::path::{Path, PathBuf};

use crate::backbones::import::{ImportOptions, Layout, WeightsFormat, inspect, load_backbone};
use crate::backbones::{Arch, IbnMode, ResNet, StemPool, ZOO, ZooModel};
use crate::burn::module::{Module, ModuleMapper, Param};
use crate::burn::store::ModuleSnapshot;
use crate::burn::tensor::{DType, Device, FloatDType, Tensor};
use clap::Args;

use super::exit::usage;

/// A parameter name as PyTorch writes it (burn calls BatchNorm's affine
/// parameters `gamma`/`beta` and the downsample pair `conv`/`bn`).
fn torch_name(burn: &str) -> String {
    let mut name = burn
        .replace(".downsample.conv.", ".downsample.0.")
        .replace(".downsample.bn.", ".downsample.1.");
    for (from, to) in [(".gamma", ".weight"), (".beta", ".bias")] {
        if let Some(stem) = name.strip_suffix(from) {
            name = format!("{stem}{to}");
        }
    }
    name
}

/// Casts every float parameter that a checkpoint stored in another float
/// type (float16, bfloat16, float64) to float32, as PyTorch's
/// `load_state_dict` copies such a tensor into a float32 parameter: the
/// engines and [`check_finite_weights`] then see float32 only.
struct ToF32;

impl ModuleMapper for ToF32 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            if t.dtype() == DType::F32 {
                t
            } else {
                t.cast(FloatDType::F32)
            }
        })
    }
}

/// `model` with every float parameter in float32 (`ToF32`).
pub fn to_f32<M: Module>(model: M) -> M {
    model.map(&mut ToF32)
}

/// Fails on the first NaN or infinite value among `model`'s float32
/// tensors, naming the tensor as the checkpoint names it: a network with
/// such a weight computes features that are NaN (or, through a ReLU or a
/// max-pool, normal-looking numbers), never valid ones.
pub fn check_finite_weights<M: ModuleSnapshot>(model: &M, weights: &Path) -> anyhow::Result<()> {
    for t in model.collect(None, None, true) {
        if t.dtype != DType::F32 {
            continue;
        }
        let Ok(bytes) = t.to_bytes() else { continue };
        let bad = bytes.chunks_exact(4).enumerate().find_map(|(i, c)| {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            (!v.is_finite()).then_some((i, v))
        });
        if let Some((i, v)) = bad {
            return Err(usage(format!(
                "{}: tensor {} holds {v} (element {i}); the weights must be finite",
                weights.display(),
                torch_name(&t.name)
            )));
        }
    }
    Ok(())
}

/// Which trunk to build and which checkpoint to load into it.
#[derive(Args, Debug, Clone)]
pub struct WeightsArgs {
    /// Architecture: resnet18, resnet34, resnet50, resnet101, resnet152
    /// (optionally suffixed _ibn_a / _ibn_b), or a ReIDZoo name
    /// (ghostnet_1_0, convnext_tiny, vit_small, swin_tiny, fastvit_s12, …).
    #[arg(long)]
    pub arch: Option<String>,
    /// IBN variant: a or b.
    #[arg(long)]
    pub ibn: Option<String>,
    /// Stride of the last stage: 1 (ReID) or 2 (ImageNet).
    #[arg(long, default_value_t = 1)]
    pub last_stride: usize,
    /// Channels of the stem (64 in the published models; smaller for the
    /// small models trained on the synthetic world).
    #[arg(long, default_value_t = 64)]
    pub base_width: usize,
    /// Checkpoint (.pth / .pt / .safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Checkpoint format: auto, torchvision, lup, cion, fastreid, safetensors
    /// (also transreid).
    #[arg(long, default_value = "auto")]
    pub weights_format: String,
    /// Checkpoint keys that may stay unused (exact, or prefix ending in `*`),
    /// e.g. `fc.*`; repeatable.
    #[arg(long)]
    pub allow_unexpected: Vec<String>,
}

impl WeightsArgs {
    /// Whether `--arch` or `--weights` was given.
    #[allow(dead_code)]
    pub fn given(&self) -> bool {
        self.arch.is_some() || self.weights.is_some()
    }

    /// Builds the trunk and loads the checkpoint key by key (the import report
    /// goes to stderr). Bad options or weights are usage errors (exit code 2).
    pub fn load_resnet(&self, device: &Device) -> anyhow::Result<ResNet> {
        let (Some(arch), Some(weights)) = (&self.arch, &self.weights) else {
            return Err(usage("--arch and --weights are both required"));
        };
        let arch = Arch::from_name(arch).map_err(|e| usage(e.to_string()))?;
        if self.base_width == 0 {
            return Err(usage("--base-width must be positive"));
        }
        let mut config = arch
            .config()
            .with_last_stride(self.last_stride)
            .with_base_width(self.base_width);
        match self.ibn.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => {}
            Some("a") => config = config.with_ibn(Some(IbnMode::A)),
            Some("b") => config = config.with_ibn(Some(IbnMode::B)),
            Some(other) => return Err(usage(format!("--ibn must be a or b, got {other:?}"))),
        }
        let format: WeightsFormat = self
            .weights_format
            .parse()
            .map_err(|e: crate::backbones::BackboneError| usage(e.to_string()))?;
        // fast-reid trunks pool their stem without padding, in ceil mode.
        let fastreid = format == WeightsFormat::FastReid
            || (format == WeightsFormat::Auto
                && inspect(weights)
                    .map_err(|e| usage(format!("loading weights: {e}")))?
                    .1
                    == Some(Layout::FastReid));
        if fastreid {
            config = config.with_stem_pool(StemPool::FastReid);
        }
        let mut model = config.init(device).map_err(|e| usage(e.to_string()))?;
        let options = ImportOptions::default()
            .with_format(format)
            .with_allow_unexpected(self.allow_unexpected.clone());
        let report = load_backbone(&mut model, weights, &options)
            .map_err(|e| usage(format!("loading weights: {e}")))?;
        eprintln!("{report}");
        let model = to_f32(model);
        check_finite_weights(&model, weights)?;
        Ok(model)
    }

    /// The ReIDZoo model named by `--arch` (any family but ResNet) with the
    /// checkpoint loaded key by key (the report goes to stderr), in its
    /// inference form. The ResNet-only options are usage errors here.
    #[allow(dead_code)]
    pub fn load_zoo(&self, device: &Device) -> anyhow::Result<ZooModel> {
        let (Some(arch), Some(weights)) = (&self.arch, &self.weights) else {
            return Err(usage("--arch and --weights are both required"));
        };
        let mut model = ZooModel::build(arch, device).map_err(|e| usage(e.to_string()))?;
        if self.ibn.is_some() || self.last_stride != 1 || self.base_width != 64 {
            return Err(usage(format!(
                "--ibn, --last-stride and --base-width apply to ResNet trunks only, not {arch}"
            )));
        }
        let format: WeightsFormat = self
            .weights_format
            .parse()
            .map_err(|e: crate::backbones::BackboneError| usage(e.to_string()))?;
        let options = ImportOptions::default()
            .with_format(format)
            .with_allow_unexpected(self.allow_unexpected.clone());
        let report = model
            .load(weights, &options)
            .map_err(|e| usage(format!("loading weights: {e}")))?;
        eprintln!("{report}");
        model.net = to_f32(model.net);
        check_finite_weights(&model.net, weights)?;
        Ok(model.into_inference())
    }

    /// Whether `--arch` names a ResNet trunk (the rest of the zoo goes
    /// through [`WeightsArgs::load_zoo`]).
    #[allow(dead_code)]
    pub fn is_resnet(&self) -> anyhow::Result<bool> {
        let Some(arch) = &self.arch else {
            return Err(usage("--arch and --weights are both required"));
        };
        if Arch::from_name(arch).is_ok() {
            return Ok(true);
        }
        if ZOO.iter().any(|e| e.name.eq_ignore_ascii_case(arch)) {
            return Ok(false);
        }
        Err(usage(format!(
            "unknown architecture {arch:?}; known: resnet18/34/50/101/152 (with _ibn_a / _ibn_b), {}",
            ZOO.map(|e| e.name).join(", ")
        )))
    }
}
