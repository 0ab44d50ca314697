//! Building a ResNet trunk from command-line options and a PyTorch (or
//! safetensors) checkpoint, shared by the examples that load weights.

use std::path::PathBuf;

use clap::Args;
use reid::backbones::import::{ImportOptions, Layout, WeightsFormat, inspect, load_backbone};
use reid::backbones::{Arch, IbnMode, ResNet, StemPool};
use reid::burn::tensor::Device;

use crate::cli::usage;

/// Which trunk to build and which checkpoint to load into it.
#[derive(Args, Debug, Clone)]
pub struct WeightsArgs {
    /// Architecture: resnet18, resnet34, resnet50, resnet101, resnet152
    /// (optionally suffixed _ibn_a / _ibn_b).
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
            .map_err(|e: reid::backbones::BackboneError| usage(e.to_string()))?;
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
        let options = ImportOptions {
            format,
            allow_unexpected: self.allow_unexpected.clone(),
            ..ImportOptions::default()
        };
        let report = load_backbone(&mut model, weights, &options)
            .map_err(|e| usage(format!("loading weights: {e}")))?;
        eprintln!("{report}");
        Ok(model)
    }
}
