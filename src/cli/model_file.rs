//! Whole ReID models in safetensors files: what fine-tuning records about
//! the model in the file's metadata, and rebuilding the model (trunk +
//! BNNeck) from such a file, a fast-reid BoT checkpoint or a TransReID one
//! for evaluation.
//!
//! The metadata entries (`finetune --export-model`): `reid.model` (`bot`),
//! `reid.arch` (`resnet50`, `resnet50_ibn_a`, …), `reid.base_width`,
//! `reid.last_stride`, `reid.stem_pool` (`torchvision` or `fastreid`),
//! `reid.height` / `reid.width` (the training input size, pixels) and
//! `reid.feature` (`bnneck`: the head's output after the BNNeck, which
//! fine-tuning evaluates with). Command-line flags override each.

use std::collections::BTreeMap;
use std::path::Path;

use crate::backbones::import::{ImportOptions, Layout, WeightsFormat, inspect};
use crate::backbones::{
    Arch, EmbeddingHeadConfig, IbnMode, Mgn, MgnConfig, NeckFeat, ReidModel, ResNet, StemPool,
    load_mgn, load_reid_model, safetensors_metadata,
};
use crate::burn::tensor::Device;
use crate::train::finetune::FinetuneConfig;
use crate::train::finetune::mgn::MgnFinetuneConfig;

use super::exit::usage;
use super::weights::{check_finite_weights, to_f32};

/// The metadata entries that describe a BoT model fine-tuned with `cfg`
/// (a torchvision-pooled ResNet trunk, as `finetune` builds it).
pub fn describe_bot(cfg: &FinetuneConfig) -> Vec<(&'static str, String)> {
    vec![
        ("reid.model", "bot".into()),
        ("reid.arch", cfg.arch.clone()),
        ("reid.base_width", cfg.base_width.to_string()),
        ("reid.last_stride", cfg.last_stride.to_string()),
        ("reid.stem_pool", "torchvision".into()),
        ("reid.height", cfg.height.to_string()),
        ("reid.width", cfg.width.to_string()),
        ("reid.feature", "bnneck".into()),
    ]
}

/// The metadata entries that describe an MGN fine-tuned with `cfg`
/// (fast-reid's MGN names; `reid.embedding_dim`, `reid.extra_bn` besides
/// the trunk's entries).
pub fn describe_mgn(cfg: &MgnFinetuneConfig) -> Vec<(&'static str, String)> {
    vec![
        ("reid.model", "mgn".into()),
        ("reid.arch", cfg.arch.clone()),
        ("reid.base_width", cfg.base_width.to_string()),
        ("reid.last_stride", "1".into()),
        ("reid.stem_pool", "torchvision".into()),
        ("reid.height", cfg.height.to_string()),
        ("reid.width", cfg.width.to_string()),
        ("reid.embedding_dim", cfg.embedding_dim.to_string()),
        ("reid.extra_bn", cfg.extra_bn.to_string()),
        ("reid.feature", "mgn".into()),
    ]
}

/// An MGN rebuilt from a file, and the input size to feed it.
pub struct LoadedMgn {
    /// The network (trunk, three branches, eight heads), classifiers unused.
    pub model: Mgn,
    /// Input `[height, width]` in pixels.
    pub size: [u32; 2],
    /// Where each setting came from (`flag`, `file`, `default`).
    pub described: Vec<String>,
}

/// Whether `weights` holds an MGN: its `reid.model` metadata says `mgn`,
/// or (a fast-reid checkpoint without our metadata) it has MGN's head
/// keys (`b21_head.*`).
pub fn is_mgn(weights: &Path) -> anyhow::Result<bool> {
    let (meta, _) = file_metadata(weights)?;
    if let Some(kind) = meta.get("reid.model") {
        return Ok(kind == "mgn");
    }
    Ok(crate::backbones::import::checkpoint_keys(weights)
        .map_err(|e| usage(format!("loading weights: {e}")))?
        .iter()
        .any(|k| k.split('.').any(|part| part == "b21_head")))
}

/// Builds the MGN that `weights` holds (a `finetune --head mgn
/// --export-model` file or a fast-reid MGN checkpoint, LUPerson fork names)
/// and loads it key by key; the eight classifiers (`b*_head.weight`) are
/// not needed and stay unused. Bad flags, files or weights are usage
/// errors (exit code 2).
pub fn load_mgn_model(
    weights: &Path,
    spec: &ModelSpec,
    device: &Device,
) -> anyhow::Result<LoadedMgn> {
    let format: WeightsFormat = spec
        .format
        .parse()
        .map_err(|e: crate::backbones::BackboneError| usage(e.to_string()))?;
    let (meta, layout) = file_metadata(weights)?;
    let mut described = Vec::new();
    let t = TrunkSettings::resolve(spec, &meta, weights, [384, 128], &mut described)?;
    let mut from = Sources {
        meta: &meta,
        file: weights,
        described: &mut described,
    };
    let embedding_dim = from.pick_or(None, "reid.embedding_dim", 256)?;
    let extra_bn = from.pick_or(None, "reid.extra_bn", true)?;
    if spec.feature.is_some() {
        return Err(usage(
            "--feature applies to BoT models; MGN is evaluated with its eight heads' BNNeck features",
        ));
    }
    if embedding_dim == 0 {
        return Err(usage("reid.embedding_dim must be positive"));
    }
    let trunk = t.config(spec)?;
    let stem = stem_pool(&meta, format, layout, weights)?;
    described.push(format!("stem pool {stem:?}").to_lowercase());
    let config = MgnConfig::new(trunk.with_stem_pool(stem))
        .with_embedding_dim(embedding_dim)
        .with_extra_bn(extra_bn);
    let mut model = config.init(device).map_err(|e| usage(e.to_string()))?;
    let options = ImportOptions::default()
        .with_format(format)
        .with_allow_unexpected(
            ["b1", "b2", "b21", "b22", "b3", "b31", "b32", "b33"]
                .iter()
                .map(|b| format!("{b}_head.weight"))
                .collect(),
        );
    let report = load_mgn(&mut model, weights, &options)
        .map_err(|e| usage(format!("loading weights: {e}")))?;
    eprintln!("{report}");
    let model = to_f32(model);
    check_finite_weights(&model, weights)?;
    Ok(LoadedMgn {
        model,
        size: [t.height, t.width],
        described,
    })
}

/// Which feature of the model is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Feature {
    /// The head's output after the BNNeck (fast-reid's BoT test feature).
    Bnneck,
    /// The pooled trunk feature before the BNNeck (TransReID's test feature).
    Pool,
}

impl Feature {
    /// The feature's name in the `reid.feature` metadata entry.
    fn name(self) -> &'static str {
        match self {
            Feature::Bnneck => "bnneck",
            Feature::Pool => "pool",
        }
    }
}

/// How to build the model; each field `None` falls back to the file's
/// metadata, then to the default named in its flag's help.
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    /// `--arch`.
    pub arch: Option<String>,
    /// `--ibn` (a or b).
    pub ibn: Option<String>,
    /// `--last-stride`.
    pub last_stride: Option<usize>,
    /// `--base-width`.
    pub base_width: Option<usize>,
    /// `--feature`.
    pub feature: Option<Feature>,
    /// `--height`, `--width`.
    pub size: [Option<u32>; 2],
    /// `--weights-format`.
    pub format: String,
}

/// A model rebuilt from a file, and the input size to feed it.
pub struct LoadedModel {
    /// Trunk + BNNeck (no classifier), on the device it was built on.
    pub model: ReidModel<ResNet>,
    /// Input `[height, width]` in pixels.
    pub size: [u32; 2],
    /// The feature its head returns.
    pub feature: Feature,
    /// Where each setting came from, for the report (`flag`, `file`, `default`).
    pub described: Vec<String>,
    /// The resolved settings as `reid.*` metadata entries (what
    /// [`describe_bot`] writes), for files derived from this model.
    pub metadata: Vec<(&'static str, String)>,
}

/// Where a model file's settings come from besides the flags: the file's
/// metadata (`file` names it in errors); `described` records which source
/// gave each setting.
struct Sources<'a> {
    meta: &'a BTreeMap<String, String>,
    file: &'a Path,
    described: &'a mut Vec<String>,
}

impl Sources<'_> {
    /// A value from the flag, else the metadata entry `key` parsed, else
    /// `default`; records which one in `described`.
    fn pick<T: std::str::FromStr + std::fmt::Display + Clone>(
        &mut self,
        flag: Option<T>,
        key: &str,
        default: Option<T>,
    ) -> anyhow::Result<Option<T>> {
        let name = key.trim_start_matches("reid.");
        if let Some(v) = flag {
            self.described.push(format!("{name} {v} (flag)"));
            return Ok(Some(v));
        }
        if let Some(text) = self.meta.get(key) {
            let v: T = text.parse().map_err(|_| {
                usage(format!(
                    "{}: metadata entry {key} = {text:?} is not a valid {name}",
                    self.file.display()
                ))
            })?;
            self.described.push(format!("{name} {v} (file)"));
            return Ok(Some(v));
        }
        if let Some(v) = &default {
            self.described.push(format!("{name} {v} (default)"));
        }
        Ok(default)
    }

    /// [`Sources::pick`] with a default.
    fn pick_or<T: std::str::FromStr + std::fmt::Display + Clone>(
        &mut self,
        flag: Option<T>,
        key: &str,
        default: T,
    ) -> anyhow::Result<T> {
        Ok(self
            .pick(flag, key, Some(default.clone()))?
            .unwrap_or(default))
    }
}

/// The ResNet settings every model file needs: flag, else metadata, else
/// the default (`[height, width]` default `size`); `described` records
/// which.
struct TrunkSettings {
    arch: String,
    base_width: usize,
    last_stride: usize,
    height: u32,
    width: u32,
}

impl TrunkSettings {
    fn resolve(
        spec: &ModelSpec,
        meta: &BTreeMap<String, String>,
        weights: &Path,
        size: [u32; 2],
        described: &mut Vec<String>,
    ) -> anyhow::Result<Self> {
        let mut from = Sources {
            meta,
            file: weights,
            described,
        };
        let arch: String = from.pick(spec.arch.clone(), "reid.arch", None)?.ok_or_else(|| {
            usage(format!(
                "{}: the file does not name its architecture; pass --arch (e.g. resnet50_ibn_a)",
                weights.display()
            ))
        })?;
        let base_width = from.pick_or(spec.base_width, "reid.base_width", 64)?;
        let last_stride = from.pick_or(spec.last_stride, "reid.last_stride", 1)?;
        let height = from.pick_or(spec.size[0], "reid.height", size[0])?;
        let width = from.pick_or(spec.size[1], "reid.width", size[1])?;
        if base_width == 0 || height == 0 || width == 0 {
            return Err(usage("--base-width, --height and --width must be positive"));
        }
        Ok(Self {
            arch,
            base_width,
            last_stride,
            height,
            width,
        })
    }

    /// The trunk's configuration, `--ibn` applied.
    fn config(&self, spec: &ModelSpec) -> anyhow::Result<crate::backbones::ResNetConfig> {
        let config = Arch::from_name(&self.arch)
            .map_err(|e| usage(e.to_string()))?
            .config()
            .with_last_stride(self.last_stride)
            .with_base_width(self.base_width);
        Ok(
            match spec.ibn.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => config,
                Some("a") => config.with_ibn(Some(IbnMode::A)),
                Some("b") => config.with_ibn(Some(IbnMode::B)),
                Some(other) => return Err(usage(format!("--ibn must be a or b, got {other:?}"))),
            },
        )
    }
}

/// Builds the ResNet BoT model that `weights` holds and loads it key by key:
/// a file written by `finetune --export-model`, a fast-reid BoT checkpoint
/// (`backbone.*` + `heads.*`) or a TransReID one (`base.*` +
/// `bottleneck.*`). The classifier (`heads.weight`) is not needed and is
/// left unused. Bad flags, files or weights are usage errors (exit code 2).
pub fn load_bot(weights: &Path, spec: &ModelSpec, device: &Device) -> anyhow::Result<LoadedModel> {
    let format: WeightsFormat = spec
        .format
        .parse()
        .map_err(|e: crate::backbones::BackboneError| usage(e.to_string()))?;
    let (meta, layout) = file_metadata(weights)?;
    if let Some(kind) = meta.get("reid.model")
        && kind != "bot"
    {
        return Err(usage(format!(
            "{}: metadata says reid.model = {kind:?}; this reads BoT models (`bot`)",
            weights.display()
        )));
    }
    if meta.get("reid.form").map(String::as_str) == Some("folded") {
        return Err(usage(format!(
            "{}: an inference-form export (reid.form = folded, BatchNorms folded away); \
             evaluation and `reid export` read the training form (`finetune --export-model`)",
            weights.display()
        )));
    }
    let mut described = Vec::new();
    let t = TrunkSettings::resolve(spec, &meta, weights, [256, 128], &mut described)?;
    let feature = match (spec.feature, meta.get("reid.feature").map(String::as_str)) {
        (Some(f), _) => f,
        (None, Some("pool")) => Feature::Pool,
        (None, Some("bnneck") | None) => Feature::Bnneck,
        (None, Some(other)) => {
            return Err(usage(format!(
                "{}: metadata entry reid.feature = {other:?} is not bnneck or pool",
                weights.display()
            )));
        }
    };
    described.push(format!("feature {feature:?}").to_lowercase());
    let arch_name = match spec.ibn.as_deref().map(str::to_ascii_lowercase) {
        Some(mode) if !t.arch.contains("_ibn") => format!("{}_ibn_{mode}", t.arch),
        _ => t.arch.clone(),
    };
    let mut config = t.config(spec)?;
    let stem = stem_pool(&meta, format, layout, weights)?;
    described.push(format!("stem pool {stem:?}").to_lowercase());
    config = config.with_stem_pool(stem);
    let trunk = config.init(device).map_err(|e| usage(e.to_string()))?;
    let head =
        EmbeddingHeadConfig::fastreid(trunk.out_channels, 0).with_test_feature(match feature {
            Feature::Bnneck => NeckFeat::After,
            Feature::Pool => NeckFeat::Before,
        });
    let head = head.init(device).map_err(|e| usage(e.to_string()))?;
    let mut model = ReidModel::new(trunk, head);
    let options = ImportOptions::default()
        .with_format(format)
        .with_allow_unexpected(vec!["heads.weight".into()]);
    let report = load_reid_model(&mut model, weights, &options)
        .map_err(|e| usage(format!("loading weights: {e}")))?;
    eprintln!("{report}");
    let model = to_f32(model);
    check_finite_weights(&model, weights)?;
    let metadata = vec![
        ("reid.model", "bot".to_string()),
        ("reid.arch", arch_name),
        ("reid.base_width", t.base_width.to_string()),
        ("reid.last_stride", t.last_stride.to_string()),
        ("reid.stem_pool", stem_pool_name(stem).to_string()),
        ("reid.height", t.height.to_string()),
        ("reid.width", t.width.to_string()),
        ("reid.feature", feature.name().to_string()),
    ];
    Ok(LoadedModel {
        model,
        size: [t.height, t.width],
        feature,
        described,
        metadata,
    })
}

/// A checkpoint's `reid.*` metadata (empty unless it is a safetensors file
/// that has some) and the layout it would be read as.
pub fn file_metadata(path: &Path) -> anyhow::Result<(BTreeMap<String, String>, Option<Layout>)> {
    let (container, layout) = inspect(path).map_err(|e| usage(format!("loading weights: {e}")))?;
    let meta = match container {
        crate::backbones::import::Container::Safetensors => {
            safetensors_metadata(path).map_err(|e| usage(format!("loading weights: {e}")))?
        }
        _ => BTreeMap::new(),
    };
    Ok((meta, layout))
}

/// The `reid.stem_pool` metadata value of `stem` (what [`stem_pool`] reads).
fn stem_pool_name(stem: StemPool) -> &'static str {
    match stem {
        StemPool::FastReid => "fastreid",
        StemPool::Torchvision => "torchvision",
    }
}

/// How the stem of the trunk in `path` pools: as its `reid.stem_pool`
/// metadata says (our exports), else fast-reid's way (no padding, ceil
/// mode) for a fast-reid checkpoint, else torchvision's.
pub fn stem_pool(
    meta: &BTreeMap<String, String>,
    format: WeightsFormat,
    layout: Option<Layout>,
    path: &Path,
) -> anyhow::Result<StemPool> {
    Ok(match meta.get("reid.stem_pool").map(String::as_str) {
        Some("torchvision") => StemPool::Torchvision,
        Some("fastreid") => StemPool::FastReid,
        Some(other) => {
            return Err(usage(format!(
                "{}: metadata entry reid.stem_pool = {other:?} is not torchvision or fastreid",
                path.display()
            )));
        }
        None if format == WeightsFormat::FastReid
            || (format == WeightsFormat::Auto && layout == Some(Layout::FastReid)) =>
        {
            StemPool::FastReid
        }
        None => StemPool::Torchvision,
    })
}
