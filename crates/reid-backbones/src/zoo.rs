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

use std::fmt;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use crate::backbone::{Backbone, Embed};
use crate::convnext::{ConvNeXt, ConvNeXtConfig};
use crate::edgenext::{EdgeNeXt, EdgeNeXtConfig};
use crate::error::BackboneError;
pub use crate::family::ZooFamily;
use crate::fastvit::{FastVit, FastVitConfig};
use crate::ghostnet::{GhostNet, GhostNetConfig};
use crate::import::{
    ConvNeXtImportReport, EdgeNeXtImportReport, FastVitImportReport, GhostNetImportReport,
    ImportOptions, ImportReport, RepVitImportReport, VoloImportReport, load_backbone,
    load_convnext, load_edgenext, load_fastvit, load_ghostnet, load_repvit, load_swin, load_vit,
    load_volo,
};
use crate::pool::GlobalPool;
use crate::registry::Arch;
use crate::repvit::{RepVit, RepVitConfig};
use crate::resnet::{FusedResNet, ResNet, ResNetConfig};
use crate::swin::{SwinConfig, SwinTransformer};
use crate::vit::{ViT, ViTConfig};
use crate::volo::{Volo, VoloConfig};

/// One ReIDZoo model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZooEntry {
    /// CION's architecture key (`"resnet50_ibn"`).
    pub name: &'static str,
    /// Its family.
    pub family: ZooFamily,
    /// Parameters in millions as the ReIDZoo table prints them (rounded to
    /// two decimals); [`ZooModel::num_parameters`] counts the same way.
    pub table_params_m: f64,
    /// Channels of the feature CION evaluates ([`ZooModel::embed`]).
    pub embedding_dim: usize,
}

const fn entry(
    name: &'static str,
    family: ZooFamily,
    table_params_m: f64,
    embedding_dim: usize,
) -> ZooEntry {
    ZooEntry {
        name,
        family,
        table_params_m,
        embedding_dim,
    }
}

/// Every ReIDZoo model this crate builds, in the order of the ReIDZoo
/// table.
pub const ZOO: [ZooEntry; 32] = {
    use ZooFamily::*;
    [
        entry("ghostnet_0_5", GhostNet, 1.31, 1280),
        entry("ghostnet_1_0", GhostNet, 3.90, 1280),
        entry("ghostnet_1_3", GhostNet, 6.08, 1280),
        entry("edgenext_x_small", EdgeNeXt, 2.14, 192),
        entry("edgenext_small", EdgeNeXt, 5.28, 304),
        entry("edgenext_base", EdgeNeXt, 17.93, 584),
        entry("repvit_m0_9", RepViT, 4.72, 384),
        entry("repvit_m1_0", RepViT, 6.40, 448),
        entry("repvit_m1_5", RepViT, 13.62, 512),
        entry("fastvit_s12", FastViT, 8.45, 1024),
        entry("fastvit_sa12", FastViT, 10.56, 1024),
        entry("fastvit_sa24", FastViT, 20.53, 1024),
        entry("resnet18", ResNet, 11.18, 512),
        entry("resnet50", ResNet, 23.51, 2048),
        entry("resnet101", ResNet, 42.50, 2048),
        entry("resnet152", ResNet, 58.14, 2048),
        entry("resnet18_ibn", ResNetIbn, 11.18, 512),
        entry("resnet50_ibn", ResNetIbn, 23.51, 2048),
        entry("resnet101_ibn", ResNetIbn, 42.50, 2048),
        entry("resnet152_ibn", ResNetIbn, 58.14, 2048),
        entry("convnext_tiny", ConvNeXt, 27.82, 768),
        entry("convnext_small", ConvNeXt, 49.45, 768),
        entry("convnext_base", ConvNeXt, 87.57, 1024),
        entry("volo_d1", Volo, 25.84, 384),
        entry("volo_d2", Volo, 57.62, 512),
        entry("volo_d3", Volo, 85.26, 512),
        entry("vit_tiny", ViT, 6.43, 192),
        entry("vit_small", ViT, 23.39, 384),
        entry("vit_base", ViT, 89.15, 768),
        entry("swin_tiny", Swin, 27.53, 768),
        entry("swin_small", Swin, 48.85, 768),
        entry("swin_base", Swin, 86.76, 1024),
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

/// The network of a [`ZooModel`], one variant per family.
// A model is built once and lives long: the size of the enum is irrelevant
// next to its weights, and boxing would only add indirection to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ZooNet {
    /// ResNet / ResNet-IBN (trainable form).
    ResNet(ResNet),
    /// ResNet / ResNet-IBN with BatchNorm folded (inference form).
    FusedResNet(FusedResNet),
    /// GhostNet.
    GhostNet(GhostNet),
    /// EdgeNeXt.
    EdgeNeXt(EdgeNeXt),
    /// RepViT (training or re-parameterised form).
    RepVit(RepVit),
    /// ConvNeXt.
    ConvNeXt(ConvNeXt),
    /// ViT (ICS stem).
    ViT(ViT),
    /// Swin Transformer.
    Swin(SwinTransformer),
    /// FastViT (training or re-parameterised form).
    FastVit(FastVit),
    /// VOLO.
    Volo(Volo),
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

fn resnet_config(name: &str) -> Result<ResNetConfig, BackboneError> {
    // The one ResNet name parser (`Arch::from_name`: `_ibn`, `_ibn_a`,
    // `_ibn_b`), at CION's last stride 1.
    Ok(Arch::from_name(name)?.config().with_last_stride(1))
}

impl ZooModel {
    /// Builds the model `name` (see [`ZOO`]) at full size with random
    /// weights on `device`: CION's configuration (ResNet last stride 1,
    /// ViT/Swin/VOLO laid out for 256×128 inputs).
    pub fn build(name: &str, device: &Device) -> Result<Self, BackboneError> {
        let entry = zoo_entry(name)?;
        let n = entry.name;
        let net = match entry.family {
            ZooFamily::ResNet | ZooFamily::ResNetIbn => {
                ZooNet::ResNet(resnet_config(n)?.init(device)?)
            }
            ZooFamily::GhostNet => ZooNet::GhostNet(GhostNetConfig::preset(n)?.init(device)?),
            ZooFamily::EdgeNeXt => ZooNet::EdgeNeXt(EdgeNeXtConfig::preset(n)?.init(device)?),
            // CION's RepViT.py (its own SE); a checkpoint with timm's SE
            // switches the model when loaded (`load_repvit`).
            ZooFamily::RepViT => ZooNet::RepVit(RepVitConfig::preset(n)?.init(device)?),
            ZooFamily::ConvNeXt => ZooNet::ConvNeXt(ConvNeXtConfig::preset(n)?.init(device)?),
            ZooFamily::ViT => ZooNet::ViT(ViTConfig::preset(n)?.init(device)?),
            ZooFamily::Swin => ZooNet::Swin(SwinConfig::preset(n)?.init(device)?),
            ZooFamily::FastViT => ZooNet::FastVit(FastVitConfig::preset(n)?.init(device)?),
            ZooFamily::Volo => ZooNet::Volo(VoloConfig::preset(n)?.init(device)?),
        };
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
        let path = path.as_ref();
        Ok(match &mut self.net {
            ZooNet::ResNet(m) => ZooImportReport::Generic(load_backbone(m, path, options)?),
            ZooNet::GhostNet(m) => ZooImportReport::GhostNet(load_ghostnet(m, path, options)?),
            ZooNet::ConvNeXt(m) => ZooImportReport::ConvNeXt(load_convnext(m, path, options)?),
            ZooNet::EdgeNeXt(m) => ZooImportReport::EdgeNeXt(load_edgenext(m, path, options)?),
            ZooNet::RepVit(m) => ZooImportReport::RepVit(load_repvit(m, path, options)?),
            ZooNet::ViT(m) => ZooImportReport::Generic(load_vit(m, path, options)?),
            ZooNet::Swin(m) => ZooImportReport::Generic(load_swin(m, path, options)?),
            ZooNet::FastVit(m) => ZooImportReport::FastVit(load_fastvit(m, path, options)?),
            ZooNet::Volo(m) => ZooImportReport::Volo(load_volo(m, path, options)?),
            ZooNet::FusedResNet(_) => {
                return Err(BackboneError::InvalidConfig(format!(
                    "{}: checkpoints load into the trainable ResNet, not its BatchNorm-folded \
                     inference form; call load before into_inference",
                    path.display()
                )));
            }
        })
    }

    /// The inference form with the same outputs: ResNet with BatchNorm
    /// folded into the convolutions, FastViT and RepViT re-parameterised; the other
    /// families unchanged.
    pub fn into_inference(self) -> Self {
        let net = match self.net {
            ZooNet::ResNet(m) => ZooNet::FusedResNet(m.fold_batch_norm()),
            ZooNet::FastVit(m) => ZooNet::FastVit(m.reparameterize()),
            ZooNet::RepVit(m) => ZooNet::RepVit(m.reparameterize()),
            other => other,
        };
        Self { net, ..self }
    }

    /// Parameters counted as the ReIDZoo table counts them (trainable
    /// weights, no BatchNorm running statistics; per family see each
    /// model's own count): compare with [`ZooEntry::table_params_m`].
    pub fn num_parameters(&self) -> usize {
        match &self.net {
            ZooNet::ResNet(m) => trainable_parameters(m),
            ZooNet::FusedResNet(m) => trainable_parameters(m),
            ZooNet::GhostNet(m) => m.num_parameters(),
            ZooNet::EdgeNeXt(m) => m.num_parameters(),
            ZooNet::RepVit(m) => m.num_parameters(),
            ZooNet::ConvNeXt(m) => m.num_parameters(),
            ZooNet::ViT(m) => m.num_parameters(),
            ZooNet::Swin(m) => m.num_parameters(),
            ZooNet::FastVit(m) => m.num_parameters(),
            ZooNet::Volo(m) => m.num_parameters(),
        }
    }
}

impl ZooNet {
    /// The network with every weight redrawn from `seed` as CION's model
    /// code initialises its family (rules: [`crate::init`]; ResNet and
    /// ResNet-IBN as torchvision, bit-identical to `reid_train`'s
    /// `reinit_weights`). Errors on the BatchNorm-folded ResNet (initialise
    /// the trainable form, then fold).
    pub fn init_from_scratch(self, seed: u64) -> Result<Self, BackboneError> {
        use crate::init::init_from_scratch as init;
        Ok(match self {
            ZooNet::ResNet(m) => ZooNet::ResNet(init(m, ZooFamily::ResNet, seed)?),
            ZooNet::GhostNet(m) => ZooNet::GhostNet(init(m, ZooFamily::GhostNet, seed)?),
            ZooNet::EdgeNeXt(m) => ZooNet::EdgeNeXt(init(m, ZooFamily::EdgeNeXt, seed)?),
            ZooNet::RepVit(m) => ZooNet::RepVit(init(m, ZooFamily::RepViT, seed)?),
            ZooNet::ConvNeXt(m) => ZooNet::ConvNeXt(init(m, ZooFamily::ConvNeXt, seed)?),
            ZooNet::ViT(m) => ZooNet::ViT(init(m, ZooFamily::ViT, seed)?),
            ZooNet::Swin(m) => ZooNet::Swin(init(m, ZooFamily::Swin, seed)?),
            ZooNet::FastVit(m) => ZooNet::FastVit(init(m, ZooFamily::FastViT, seed)?),
            ZooNet::Volo(m) => ZooNet::Volo(init(m, ZooFamily::Volo, seed)?),
            ZooNet::FusedResNet(_) => {
                return Err(BackboneError::InvalidConfig(
                    "the BatchNorm-folded ResNet has no from-scratch initialisation; \
                     initialise the trainable form, then call into_inference"
                        .into(),
                ));
            }
        })
    }

    /// The network as a [`Backbone`] trait object.
    pub fn as_backbone(&self) -> &dyn Backbone {
        match self {
            ZooNet::ResNet(m) => m,
            ZooNet::FusedResNet(m) => m,
            ZooNet::GhostNet(m) => m,
            ZooNet::EdgeNeXt(m) => m,
            ZooNet::RepVit(m) => m,
            ZooNet::ConvNeXt(m) => m,
            ZooNet::ViT(m) => m,
            ZooNet::Swin(m) => m,
            ZooNet::FastVit(m) => m,
            ZooNet::Volo(m) => m,
        }
    }
}

/// The family's own [`Backbone`]: any zoo network is a
/// [`crate::TrainBackbone`] and trains in every recipe of `reid-train`.
impl Backbone for ZooNet {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.as_backbone().forward_features(images)
    }

    fn out_channels(&self) -> usize {
        self.as_backbone().out_channels()
    }

    fn output_stride(&self) -> usize {
        self.as_backbone().output_stride()
    }

    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.as_backbone().forward_pooled(images)
    }

    fn pooled_dim(&self) -> usize {
        self.as_backbone().pooled_dim()
    }

    fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        self.as_backbone().forward_features_seeded(images, seed)
    }

    fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        self.as_backbone().forward_pooled_seeded(images, seed)
    }
}

impl Embed for ZooModel {
    /// CION's feature in inference mode: images `[batch, 3, H, W]`
    /// (normalised) → `[batch, embedding_dim]`. ResNet: global average of
    /// the map; GhostNet: GAP → `conv_head` → ReLU; ConvNeXt:
    /// `LayerNorm(GAP)`; EdgeNeXt: `LayerNorm(GAP)`; RepViT: GAP; ViT: the class token after the final norm; Swin:
    /// GAP of `norm3`; FastViT: GAP of `conv_exp`; VOLO: the class token
    /// after the final norm. Errors on inputs the model cannot take (ViT:
    /// smaller than one patch; VOLO: smaller than 16×16).
    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        Ok(match &self.net {
            ZooNet::ResNet(m) => GlobalPool::Avg.forward(m.forward_features(images)),
            ZooNet::FusedResNet(m) => GlobalPool::Avg.forward(m.forward_features(images)),
            ZooNet::GhostNet(m) => m.forward_embedding(images),
            ZooNet::EdgeNeXt(m) => m.forward_embedding(images),
            ZooNet::RepVit(m) => m.forward_embedding(images),
            ZooNet::ConvNeXt(m) => m.forward_embedding(images),
            ZooNet::ViT(m) => m.forward_embedding(images)?,
            ZooNet::Swin(m) => m.forward_embedding(images),
            ZooNet::FastVit(m) => m.forward_embedding(images),
            ZooNet::Volo(m) => m.forward_embedding(images)?,
        })
    }

    /// Channels of [`ZooModel::embed`]'s output.
    fn embedding_dim(&self) -> usize {
        self.entry.embedding_dim
    }
}

impl Backbone for ZooModel {
    /// The family's feature map `[batch, out_channels, h, w]`.
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.net.forward_features(images)
    }

    fn out_channels(&self) -> usize {
        self.net.out_channels()
    }

    fn output_stride(&self) -> usize {
        self.net.output_stride()
    }

    fn forward_pooled(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.forward_pooled(images)
    }

    fn pooled_dim(&self) -> usize {
        self.net.pooled_dim()
    }

    fn forward_features_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<4> {
        self.net.forward_features_seeded(images, seed)
    }

    fn forward_pooled_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        self.net.forward_pooled_seeded(images, seed)
    }
}

/// Number of trainable scalars of `module`: every float tensor it visits
/// except BatchNorm running statistics (`running_mean`, `running_var`),
/// which burn stores beside the parameters.
pub fn trainable_parameters<M: Module>(module: &M) -> usize {
    let mut counter = TrainableCounter::default();
    module.visit(&mut counter);
    counter.count
}

#[derive(Default)]
struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let leaf = self.path.last().map(String::as_str).unwrap_or("");
        if !matches!(leaf, "running_mean" | "running_var") {
            self.count += param.val().shape().num_elements();
        }
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
        let volo: Vec<_> = ZOO
            .iter()
            .filter(|e| e.family == ZooFamily::Volo)
            .map(|e| (e.name, e.table_params_m, e.embedding_dim))
            .collect();
        assert_eq!(
            volo,
            [
                ("volo_d1", 25.84, 384),
                ("volo_d2", 57.62, 512),
                ("volo_d3", 85.26, 512)
            ]
        );
        assert_eq!(ZooFamily::Volo.to_string(), "VOLO");
    }

    /// VOLO-D1 through the zoo: the table's count, the 384-d class token,
    /// the 1/16 feature map, and an error (not a panic) on a too-small
    /// input.
    #[test]
    fn volo_d1_builds_embeds_and_rejects_tiny_inputs() {
        let device = Device::flex();
        device.seed(5);
        let model = ZooModel::build("VOLO_D1", &device).unwrap();
        assert_eq!(model.num_parameters(), 25_835_928);
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
