//! CION's ReIDZoo by name: every released structure behind one type.
//!
//! [`ZOO`] lists the models with the names CION's code uses (`resnet50_ibn`,
//! `ghostnet_1_0`, `convnext_tiny`, `vit_small`, …), their family, the
//! parameter count of the ReIDZoo table and the dimension of the feature
//! CION evaluates. [`ZooModel::build`] makes the model of a name at its
//! full size ([`ZooModel::from_scratch`]: with the seeded initialisation
//! of CION's model code, [`crate::init`]), [`ZooModel::load`] reads a
//! checkpoint into it with the family's strict importer,
//! [`ZooModel::embed`] computes the CION feature `[batch, embedding_dim]`,
//! and [`ZooModel::into_inference`] returns the
//! fastest equivalent form (BatchNorm folded, re-parameterised branches
//! fused). [`ZooModel`] also implements [`Backbone`] (the family's feature
//! map), so anything generic over a backbone takes any zoo model.
//!
//! Two declarations drive it: the registry table [`ZOO`] (one row per
//! model: name, family, the table's and the exact parameter count, the
//! embedding width; a unit test builds every row at full size and checks
//! them), and one `zoo_nets!` entry per network type, which generates
//! [`ZooNet`] and every per-family dispatch (build from the family's
//! `preset(name)`, strict `load`, from-scratch initialisation, inference
//! form, `num_parameters()`, CION's feature, the [`Backbone`]).
//!
//! Adding a family `foo` touches its folder (`FooConfig` with its presets
//! declared by `registry::presets!`, `Foo` with `num_parameters()` and a
//! [`Backbone`]) and its importer `foo/import.rs` in that folder (key
//! naming, detection and mapping on `import::family`'s skeleton), one
//! re-export line in `import/families.rs`, a
//! [`ZooFamily`] variant (with its rules in [`crate::init`] where its
//! upstream code does not initialise as PyTorch's defaults), the
//! `pub mod foo;` of the crate root, its rows in [`ZOO`] and its
//! `zoo_nets!` entry (and a [`ZooImportReport`] variant when its importer
//! has its own report type).

use std::fmt;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backbone::{Backbone, Embed};
use crate::convnext::{ConvNeXt, ConvNeXtConfig, ConvNeXtImportReport, load_convnext};
use crate::edgenext::{EdgeNeXt, EdgeNeXtConfig, EdgeNeXtImportReport, load_edgenext};
use crate::error::BackboneError;
pub use crate::family::{ZooFamily, trainable_parameters};
use crate::fastvit::{FastVit, FastVitConfig, FastVitImportReport, load_fastvit};
use crate::ghostnet::{GhostNet, GhostNetConfig, GhostNetImportReport, load_ghostnet};
use crate::import::{ImportOptions, ImportReport, load_backbone};
use crate::registry::Arch;
use crate::repvit::{RepVit, RepVitConfig, RepVitImportReport, load_repvit};
use crate::resnet::{FusedResNet, ResNet, ResNetConfig};
use crate::swin::{SwinConfig, SwinTransformer, load_swin};
use crate::vit::{ViT, ViTConfig, load_vit};
use crate::volo::{Volo, VoloConfig, VoloImportReport, load_volo};

/// One ReIDZoo model: a row of the registry table that drives
/// [`ZooModel`], the command line's `--arch` names and the model table of
/// `docs/backbones.md`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZooEntry {
    /// CION's architecture key (`"resnet50_ibn"`).
    pub name: &'static str,
    /// Its family.
    pub family: ZooFamily,
    /// Parameters in millions as the ReIDZoo table prints them (rounded to
    /// two decimals): [`ZooEntry::params`] rounded.
    pub table_params_m: f64,
    /// The exact parameter count [`ZooModel::num_parameters`] gives for the
    /// model built by [`ZooModel::build`] (that of the upstream module:
    /// timm's, torchvision's or CION's code, counted with PyTorch).
    pub params: usize,
    /// Channels of the feature CION evaluates ([`ZooModel::embed`]).
    pub embedding_dim: usize,
}

const fn entry(
    name: &'static str,
    family: ZooFamily,
    table_params_m: f64,
    params: usize,
    embedding_dim: usize,
) -> ZooEntry {
    ZooEntry {
        name,
        family,
        table_params_m,
        params,
        embedding_dim,
    }
}

/// Every ReIDZoo model this crate builds, in the order of the ReIDZoo
/// table: name, family, the table's parameter count (millions), the exact
/// count, the embedding width.
pub const ZOO: [ZooEntry; 32] = {
    use ZooFamily::*;
    [
        entry("ghostnet_0_5", GhostNet, 1.31, 1_306_292, 1280),
        entry("ghostnet_1_0", GhostNet, 3.90, 3_901_508, 1280),
        entry("ghostnet_1_3", GhostNet, 6.08, 6_077_820, 1280),
        entry("edgenext_x_small", EdgeNeXt, 2.14, 2_143_804, 192),
        entry("edgenext_small", EdgeNeXt, 5.28, 5_281_832, 304),
        entry("edgenext_base", EdgeNeXt, 17.93, 17_926_292, 584),
        entry("repvit_m0_9", RepViT, 4.72, 4_717_404, 384),
        entry("repvit_m1_0", RepViT, 6.40, 6_402_104, 448),
        entry("repvit_m1_5", RepViT, 13.62, 13_616_384, 512),
        entry("fastvit_s12", FastViT, 8.45, 8_448_576, 1024),
        entry("fastvit_sa12", FastViT, 10.56, 10_555_968, 1024),
        entry("fastvit_sa24", FastViT, 20.53, 20_529_216, 1024),
        entry("resnet18", ResNet, 11.18, 11_176_512, 512),
        entry("resnet50", ResNet, 23.51, 23_508_032, 2048),
        entry("resnet101", ResNet, 42.50, 42_500_160, 2048),
        entry("resnet152", ResNet, 58.14, 58_143_808, 2048),
        entry("resnet18_ibn", ResNetIbn, 11.18, 11_176_512, 512),
        entry("resnet50_ibn", ResNetIbn, 23.51, 23_508_032, 2048),
        entry("resnet101_ibn", ResNetIbn, 42.50, 42_500_160, 2048),
        entry("resnet152_ibn", ResNetIbn, 58.14, 58_143_808, 2048),
        entry("convnext_tiny", ConvNeXt, 27.82, 27_820_128, 768),
        entry("convnext_small", ConvNeXt, 49.45, 49_454_688, 768),
        entry("convnext_base", ConvNeXt, 87.57, 87_566_464, 1024),
        entry("volo_d1", Volo, 25.84, 25_835_928, 384),
        entry("volo_d2", Volo, 57.62, 57_617_520, 512),
        entry("volo_d3", Volo, 85.26, 85_264_256, 512),
        entry("vit_tiny", ViT, 6.43, 6_426_856, 192),
        entry("vit_small", ViT, 23.39, 23_386_024, 384),
        entry("vit_base", ViT, 89.15, 89_154_856, 768),
        entry("swin_tiny", Swin, 27.53, 27_527_082, 768),
        entry("swin_small", Swin, 48.85, 48_853_050, 768),
        entry("swin_base", Swin, 86.76, 86_764_280, 1024),
    ]
};

/// Looks a ReIDZoo model up by name (case-insensitive). Unknown names are
/// an error listing the known ones.
pub fn zoo_entry(name: &str) -> Result<ZooEntry, BackboneError> {
    ZOO.iter()
        .find(|e| e.name.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| BackboneError::UnknownArch {
            name: name.to_string(),
            known: ZOO.map(|e| e.name).join(", "),
        })
}

/// A ReIDZoo model: its [`ZooEntry`] and the network.
#[derive(Debug)]
pub struct ZooModel {
    /// Which model this is.
    pub entry: ZooEntry,
    /// The network.
    pub net: ZooNet,
}

/// What [`ZooModel::load`] did: the family importer's own report.
#[derive(Debug, Clone)]
pub enum ZooImportReport {
    /// ResNet, ViT and Swin importers.
    Generic(ImportReport),
    /// The ConvNeXt importer.
    ConvNeXt(ConvNeXtImportReport),
    /// The GhostNet importer.
    GhostNet(GhostNetImportReport),
    /// The EdgeNeXt importer.
    EdgeNeXt(EdgeNeXtImportReport),
    /// The RepViT importer.
    RepVit(RepVitImportReport),
    /// The FastViT importer.
    FastVit(FastVitImportReport),
    /// The VOLO importer.
    Volo(VoloImportReport),
}

impl fmt::Display for ZooImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generic(r) => r.fmt(f),
            Self::ConvNeXt(r) => r.fmt(f),
            Self::GhostNet(r) => r.fmt(f),
            Self::EdgeNeXt(r) => r.fmt(f),
            Self::RepVit(r) => r.fmt(f),
            Self::FastVit(r) => r.fmt(f),
            Self::Volo(r) => r.fmt(f),
        }
    }
}

/// The ResNet preset of a ReIDZoo name: the one ResNet name parser
/// ([`Arch::from_name`]: `_ibn`, `_ibn_a`, `_ibn_b`), at CION's last
/// stride 1.
fn resnet_config(name: &str) -> Result<ResNetConfig, BackboneError> {
    Ok(Arch::from_name(name)?.config().with_last_stride(1))
}

/// What a family's embedding method returns: the embedding, or a result
/// for the families that refuse some inputs (ViT, VOLO).
trait IntoEmbedding {
    fn into_embedding(self) -> Result<Tensor<2>, BackboneError>;
}

impl IntoEmbedding for Tensor<2> {
    fn into_embedding(self) -> Result<Tensor<2>, BackboneError> {
        Ok(self)
    }
}

impl IntoEmbedding for Result<Tensor<2>, BackboneError> {
    fn into_embedding(self) -> Result<Tensor<2>, BackboneError> {
        self
    }
}

/// Declares [`ZooNet`], one variant per network type, and every
/// per-family dispatch of the zoo from one entry per type:
///
/// - `families`: the [`ZooFamily`]s built as this type (the first one's
///   from-scratch rules apply), `preset`: the configuration of a ReIDZoo
///   name, `load`: the family's strict importer and the
///   [`ZooImportReport`] variant of its report (types without them, the
///   inference forms, are never built and refuse checkpoints);
/// - `embed`: the method computing CION's feature (a tensor, or a result);
/// - `inference`: the method giving the inference form and the variant it
///   is (default: the network itself).
///
/// Every type has an inherent `num_parameters()` (the ReIDZoo count).
macro_rules! zoo_nets {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident($ty:ty) {
            $(
                families: $first:ident $(| $alias:ident)*,
                preset: $preset:path,
                load: $load:path => $report:ident,
            )?
            embed: $embed:ident
            $(, inference: $inference:ident -> $into:ident)?
            $(,)?
        }
    )*) => {
        /// The network of a [`ZooModel`], one variant per family (and
        /// inference form).
        // A model is built once and lives long: the size of the enum is
        // irrelevant next to its weights, and boxing would only add
        // indirection to every match.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum ZooNet {
            $(
                $(#[doc = $doc])*
                $variant($ty),
            )*
        }

        impl ZooNet {
            /// The network of `entry` at full size with random weights.
            fn build(entry: &ZooEntry, device: &Device) -> Result<Self, BackboneError> {
                let n = entry.name;
                Ok(match entry.family {
                    $($(
                        ZooFamily::$first $(| ZooFamily::$alias)* => {
                            Self::$variant($preset(n)?.init(device)?)
                        }
                    )?)*
                })
            }

            /// [`ZooModel::load`] of the network.
            fn load(
                &mut self,
                path: &Path,
                options: &ImportOptions,
            ) -> Result<ZooImportReport, BackboneError> {
                Ok(match self {
                    $(
                        Self::$variant(_m) => zoo_nets!(
                            @load _m, path, options $(, $load => $report)?
                        ),
                    )*
                })
            }

            /// The network with every weight redrawn from `seed` as CION's
            /// model code initialises its family (rules: [`crate::init`];
            /// ResNet and ResNet-IBN as torchvision, bit-identical to
            /// `reid_train`'s `reinit_weights`). Errors on the
            /// BatchNorm-folded ResNet (initialise the trainable form, then
            /// fold).
            pub fn init_from_scratch(self, seed: u64) -> Result<Self, BackboneError> {
                Ok(match self {
                    $(
                        Self::$variant(_m) => zoo_nets!(
                            @init _m, seed, $variant $(, $first)?
                        ),
                    )*
                })
            }

            /// The inference form (see [`ZooModel::into_inference`]).
            fn into_inference(self) -> Self {
                match self {
                    $(
                        Self::$variant(m) => zoo_nets!(
                            @inference m, $variant $(, $inference -> $into)?
                        ),
                    )*
                }
            }

            /// The ReIDZoo parameter count (see [`ZooModel::num_parameters`]).
            fn num_parameters(&self) -> usize {
                match self {
                    $(Self::$variant(m) => m.num_parameters(),)*
                }
            }

            /// CION's feature (see [`ZooModel::embed`]).
            fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
                match self {
                    $(Self::$variant(m) => m.$embed(images).into_embedding(),)*
                }
            }

            /// The network as a [`Backbone`] trait object.
            pub fn as_backbone(&self) -> &dyn Backbone {
                match self {
                    $(Self::$variant(m) => m,)*
                }
            }
        }
    };
    (@load $m:ident, $path:ident, $options:ident, $load:path => $report:ident) => {
        ZooImportReport::$report($load($m, $path, $options)?)
    };
    (@load $m:ident, $path:ident, $options:ident) => {
        return Err(BackboneError::InvalidConfig(format!(
            "{}: checkpoints load into the trainable ResNet, not its BatchNorm-folded \
             inference form; call load before into_inference",
            $path.display()
        )))
    };
    (@init $m:ident, $seed:ident, $variant:ident, $family:ident) => {
        Self::$variant(crate::init::init_from_scratch($m, ZooFamily::$family, $seed)?)
    };
    (@init $m:ident, $seed:ident, $variant:ident) => {
        return Err(BackboneError::InvalidConfig(
            "the BatchNorm-folded ResNet has no from-scratch initialisation; \
             initialise the trainable form, then call into_inference"
                .into(),
        ))
    };
    (@inference $m:ident, $variant:ident, $inference:ident -> $into:ident) => {
        Self::$into($m.$inference())
    };
    (@inference $m:ident, $variant:ident) => {
        Self::$variant($m)
    };
}

zoo_nets! {
    /// ResNet / ResNet-IBN (trainable form).
    ResNet(ResNet) {
        families: ResNet | ResNetIbn,
        preset: resnet_config,
        load: load_backbone => Generic,
        embed: forward_pooled,
        inference: fold_batch_norm -> FusedResNet,
    }
    /// ResNet / ResNet-IBN with BatchNorm folded (inference form).
    FusedResNet(FusedResNet) { embed: forward_pooled }
    /// GhostNet.
    GhostNet(GhostNet) {
        families: GhostNet,
        preset: GhostNetConfig::preset,
        load: load_ghostnet => GhostNet,
        embed: forward_embedding,
        inference: fold_batch_norm -> GhostNet,
    }
    /// EdgeNeXt.
    EdgeNeXt(EdgeNeXt) {
        families: EdgeNeXt,
        preset: EdgeNeXtConfig::preset,
        load: load_edgenext => EdgeNeXt,
        embed: forward_embedding,
    }
    /// RepViT (training or re-parameterised form). Built as CION's
    /// `RepViT.py` (its own SE); a checkpoint with timm's SE switches the
    /// model when loaded (`load_repvit`).
    RepVit(RepVit) {
        families: RepViT,
        preset: RepVitConfig::preset,
        load: load_repvit => RepVit,
        embed: forward_embedding,
        inference: reparameterize -> RepVit,
    }
    /// ConvNeXt.
    ConvNeXt(ConvNeXt) {
        families: ConvNeXt,
        preset: ConvNeXtConfig::preset,
        load: load_convnext => ConvNeXt,
        embed: forward_embedding,
    }
    /// ViT (ICS stem).
    ViT(ViT) {
        families: ViT,
        preset: ViTConfig::preset,
        load: load_vit => Generic,
        embed: forward_embedding,
    }
    /// Swin Transformer.
    Swin(SwinTransformer) {
        families: Swin,
        preset: SwinConfig::preset,
        load: load_swin => Generic,
        embed: forward_embedding,
    }
    /// FastViT (training or re-parameterised form).
    FastVit(FastVit) {
        families: FastViT,
        preset: FastVitConfig::preset,
        load: load_fastvit => FastVit,
        embed: forward_embedding,
        inference: reparameterize -> FastVit,
    }
    /// VOLO.
    Volo(Volo) {
        families: Volo,
        preset: VoloConfig::preset,
        load: load_volo => Volo,
        embed: forward_embedding,
    }
}

impl ZooModel {
    /// Builds the model `name` (see [`ZOO`]) at full size with random
    /// weights on `device`: CION's configuration (ResNet last stride 1,
    /// ViT/Swin/VOLO laid out for 256×128 inputs).
    pub fn build(name: &str, device: &Device) -> Result<Self, BackboneError> {
        let entry = zoo_entry(name)?;
        let net = ZooNet::build(&entry, device)?;
        Ok(Self { entry, net })
    }

    /// [`ZooModel::build`] with every weight drawn as CION's model code
    /// draws it when training from scratch, from streams seeded by `seed`
    /// (see [`crate::init`]; bit-identical for the same `seed`, on any
    /// thread).
    pub fn from_scratch(name: &str, seed: u64, device: &Device) -> Result<Self, BackboneError> {
        Self::build(name, device)?.init_from_scratch(seed)
    }

    /// The model with every weight redrawn from `seed` by its family's
    /// from-scratch rules ([`ZooNet::init_from_scratch`]).
    pub fn init_from_scratch(self, seed: u64) -> Result<Self, BackboneError> {
        Ok(Self {
            net: self.net.init_from_scratch(seed)?,
            ..self
        })
    }

    /// Reads the checkpoint at `path` into the model with its family's
    /// strict importer (CION teacher checkpoints, official / timm /
    /// torchvision state dicts, safetensors; see [`crate::import`]).
    /// Missing, unexpected or mis-shaped keys are an error listing them.
    /// Errors on the inference forms (load before
    /// [`ZooModel::into_inference`]).
    pub fn load(
        &mut self,
        path: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<ZooImportReport, BackboneError> {
        self.net.load(path.as_ref(), options)
    }

    /// The inference form with the same outputs: ResNet with BatchNorm
    /// folded into the convolutions, FastViT and RepViT re-parameterised;
    /// the other families unchanged.
    pub fn into_inference(self) -> Self {
        Self {
            net: self.net.into_inference(),
            ..self
        }
    }

    /// Parameters counted as the ReIDZoo table counts them (trainable
    /// weights, no BatchNorm running statistics; per family see each
    /// model's own `num_parameters`): [`ZooEntry::params`], which rounds to
    /// [`ZooEntry::table_params_m`].
    pub fn num_parameters(&self) -> usize {
        self.net.num_parameters()
    }
}

/// Implements [`Backbone`] for `$ty` by handing every call to the
/// [`Backbone`] that `$inner` (an expression of `$s`, the value) returns.
macro_rules! delegate_backbone {
    ($ty:ty, |$s:ident| $inner:expr) => {
        impl Backbone for $ty {
            fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
                let $s = self;
                $inner.forward_features(images)
            }

            fn out_channels(&self) -> usize {
                let $s = self;
                $inner.out_channels()
            }

            fn output_stride(&self) -> usize {
                let $s = self;
                $inner.output_stride()
            }

            fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
                let $s = self;
                $inner.forward_pooled(images)
            }

            fn pooled_dim(&self) -> usize {
                let $s = self;
                $inner.pooled_dim()
            }

            fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
                let $s = self;
                $inner.forward_features_seeded(images, seed)
            }

            fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
                let $s = self;
                $inner.forward_pooled_seeded(images, seed)
            }
        }
    };
}

// The family's own [`Backbone`]: any zoo network is a
// [`crate::TrainBackbone`] and trains in every recipe of `reid-train`.
delegate_backbone!(ZooNet, |net| net.as_backbone());

// A zoo model is its network's [`Backbone`] (the family's feature map).
delegate_backbone!(ZooModel, |model| model.net);

impl Embed for ZooModel {
    /// CION's feature in inference mode: images `[batch, 3, H, W]`
    /// (normalised) → `[batch, embedding_dim]`. ResNet: global average of
    /// the map; GhostNet: GAP → `conv_head` → ReLU; ConvNeXt and EdgeNeXt:
    /// `LayerNorm(GAP)`; RepViT: GAP; ViT: the class token after the final
    /// norm; Swin: GAP of `norm3`; FastViT: GAP of `conv_exp`; VOLO: the
    /// class token after the final norm. Errors on inputs the model cannot
    /// take (ViT: smaller than one patch; VOLO: smaller than 16×16).
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        self.net.embed(images)
    }

    /// Channels of [`ZooModel::embed`]'s output.
    fn embedding_dim(&self) -> usize {
        self.entry.embedding_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_case_insensitively_and_unknown_names_list_the_known_ones() {
        assert_eq!(
            zoo_entry("ConvNeXt_Tiny").unwrap().family,
            ZooFamily::ConvNeXt
        );
        assert_eq!(
            zoo_entry("resnet50_ibn").unwrap().family,
            ZooFamily::ResNetIbn
        );
        let err = zoo_entry("resnet51").unwrap_err().to_string();
        assert!(
            err.contains("resnet51") && err.contains("swin_base"),
            "{err}"
        );
        let mut names: Vec<_> = ZOO.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ZOO.len(), "duplicate names");
        // The ReIDZoo table's 32 models.
        assert_eq!(ZOO.len(), 32);
        assert_eq!(ZooFamily::Volo.to_string(), "VOLO");
    }

    /// The registry table against the models: every name builds at full
    /// size (counting reads shapes only, nothing is drawn), has exactly
    /// the table's parameter count, which rounds to the millions the
    /// ReIDZoo table prints, and pools to the listed width.
    #[test]
    fn every_model_builds_with_the_tables_exact_count_and_width() {
        let device = Device::flex();
        for e in ZOO {
            let model = ZooModel::build(e.name, &device).unwrap();
            assert_eq!(model.num_parameters(), e.params, "{}", e.name);
            let millions = (e.params as f64 / 1e4).round() / 100.0;
            assert_eq!(millions, e.table_params_m, "{}", e.name);
            assert_eq!(model.pooled_dim(), e.embedding_dim, "{}", e.name);
        }
    }

    /// VOLO-D1 through the zoo: the table's count, the 384-d class token,
    /// the 1/16 feature map, and an error (not a panic) on a too-small
    /// input.
    #[test]
    fn volo_d1_builds_embeds_and_rejects_tiny_inputs() {
        let device = Device::flex();
        device.seed(5);
        let model = ZooModel::build("VOLO_D1", &device).unwrap();
        assert_eq!(model.num_parameters(), model.entry.params);
        assert_eq!((model.out_channels(), model.output_stride()), (384, 16));
        let images = Tensor::<4>::random(
            [1, 3, 64, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let a = model.embed(images.clone()).unwrap();
        assert_eq!(a.dims(), [1, 384]);
        assert_eq!(model.forward_features(images).dims(), [1, 384, 4, 2]);
        let tiny = Tensor::<4>::zeros([1, 3, 8, 8], &device);
        assert!(model.embed(tiny).is_err());
    }

    /// Small members of three families: the count equals the table's figure
    /// (rounded to 0.01 M), the embedding has the listed width, and the
    /// inference form gives the same embedding.
    #[test]
    fn small_models_match_the_table_and_their_inference_forms() {
        let device = Device::flex();
        device.seed(3);
        let images = Tensor::<4>::random(
            [1, 3, 64, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        for name in [
            "ghostnet_0_5",
            "resnet18_ibn",
            "fastvit_s12",
            "edgenext_x_small",
            "repvit_m0_9",
        ] {
            let model = ZooModel::build(name, &device).unwrap();
            let m = model.num_parameters() as f64 / 1e6;
            assert!(
                (m - model.entry.table_params_m).abs() < 0.005 + 1e-9,
                "{name}: {m} M vs table {}",
                model.entry.table_params_m
            );
            let a = model.embed(images.clone()).unwrap();
            assert_eq!(a.dims(), [1, model.embedding_dim()], "{name}");
            let b = model.into_inference().embed(images.clone()).unwrap();
            let diff: f32 = (a.clone() - b).abs().max().into_scalar();
            let scale: f32 = a.abs().max().into_scalar();
            assert!(diff <= 1e-4 * scale + 1e-6, "{name}: {diff} vs {scale}");
        }
    }

    #[test]
    fn inference_forms_refuse_checkpoints() {
        let device = Device::flex();
        let mut model = ZooModel::build("resnet18", &device)
            .unwrap()
            .into_inference();
        let err = model
            .load("missing.pth", &ImportOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("into_inference"), "{err}");
    }
}
