//! [`BackboneSource`]: where a recipe's backbone comes from — built from
//! the recipe's own configuration ([`FromConfig`]) or given by the caller
//! (any [`TrainBackbone`]: a zoo model, imported weights, a user's module).
//! Every recipe takes one, so each recipe has one entry function.

use burn::tensor::Device;
use reid_backbones::{ResNet, TrainBackbone};

use crate::error::TrainError;

/// The recipe builds its backbone from its own configuration: the ResNet
/// `arch` with `base_width` and `last_stride`, weights drawn from the
/// configuration's `seed` (see each recipe for the initialisation).
///
/// ```
/// use reid_train::{FromConfig, MocoConfig, RunOptions, pretrain_moco};
/// # fn run(records: &[reid_data::ImageRecord]) -> Result<(), reid_train::TrainError> {
/// let device = burn::tensor::Device::flex();
/// let out = pretrain_moco(&MocoConfig::default(), FromConfig, records, &device,
///                         &RunOptions::default(), |_| {})?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FromConfig;

/// A backbone as a recipe starts from it.
#[derive(Debug, Clone)]
pub struct StartingBackbone<M> {
    /// The backbone.
    pub model: M,
    /// Whether the recipe built it from its configuration ([`FromConfig`]);
    /// such a backbone's weights are the recipe's to draw (BoT draws them
    /// together with its head's, in one seeded stream).
    pub from_config: bool,
}

/// A recipe configuration that names its ResNet backbone and builds it.
pub trait BackboneConfig {
    /// The configuration's backbone on `device`.
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError>;
}

/// Where a recipe with configuration `C` gets its backbone: [`FromConfig`],
/// or any [`TrainBackbone`] value, taken as it is.
pub trait BackboneSource<C> {
    /// The backbone type the recipe trains.
    type Model: TrainBackbone;

    /// The backbone, built on `device` when it comes from `cfg`.
    fn into_backbone(
        self,
        cfg: &C,
        device: &Device,
    ) -> Result<StartingBackbone<Self::Model>, TrainError>;
}

impl<C: BackboneConfig> BackboneSource<C> for FromConfig {
    type Model = ResNet;

    fn into_backbone(
        self,
        cfg: &C,
        device: &Device,
    ) -> Result<StartingBackbone<ResNet>, TrainError> {
        Ok(StartingBackbone {
            model: cfg.build_backbone(device)?,
            from_config: true,
        })
    }
}

impl<C, M: TrainBackbone> BackboneSource<C> for M {
    type Model = M;

    fn into_backbone(self, _cfg: &C, _device: &Device) -> Result<StartingBackbone<M>, TrainError> {
        Ok(StartingBackbone {
            model: self,
            from_config: false,
        })
    }
}
