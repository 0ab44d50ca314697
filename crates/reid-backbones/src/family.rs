//! [`ZooFamily`]: the model families of ReIDZoo, on their own so that the
//! zoo (models by name) and the from-scratch initialisation rules
//! (`init`) can both name them without depending on each other.

use std::fmt;

/// The model families of ReIDZoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZooFamily {
    /// torchvision ResNet, last stride 1.
    ResNet,
    /// ResNet with IBN-a (CION's `_ibn` models), last stride 1.
    ResNetIbn,
    /// Huawei GhostNet.
    GhostNet,
    /// mmaaz60 EdgeNeXt.
    EdgeNeXt,
    /// THU-MIG RepViT (training form) with CION's squeeze-and-excitation.
    RepViT,
    /// Facebook ConvNeXt.
    ConvNeXt,
    /// TransReID-SSL's ViT with the IBN convolutional stem.
    ViT,
    /// Microsoft Swin Transformer (detection-style, window 8).
    Swin,
    /// Apple FastViT (training form).
    FastViT,
    /// sail-sg VOLO (outlookers, transformers, class attention).
    Volo,
}

impl fmt::Display for ZooFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ResNet => "ResNet",
            Self::ResNetIbn => "ResNet-IBN",
            Self::GhostNet => "GhostNet",
            Self::EdgeNeXt => "EdgeNeXt",
            Self::RepViT => "RepViT",
            Self::ConvNeXt => "ConvNeXt",
            Self::ViT => "ViT",
            Self::Swin => "Swin",
            Self::FastViT => "FastViT",
            Self::Volo => "VOLO",
        })
    }
}
