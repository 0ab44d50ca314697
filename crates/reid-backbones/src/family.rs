//! What the model families share below the zoo: [`ZooFamily`], the
//! families of ReIDZoo (on their own so that the zoo, models by name, and
//! the from-scratch initialisation rules, `init`, can both name them
//! without depending on each other), and [`trainable_parameters`], the one
//! parameter count every family's `num_parameters()` reports.

use std::fmt;

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use crate::visit::{PathVisitor, visit_with_paths};

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

/// Number of trainable scalars of `module`, as PyTorch's
/// `sum(p.numel() for p in m.parameters())` counts them: every float tensor
/// it visits except BatchNorm running statistics (`running_mean`,
/// `running_var`), which burn stores beside the parameters. Shapes are read
/// without initialising lazy parameters, so counting allocates nothing and
/// draws no random numbers.
pub fn trainable_parameters<M: Module>(module: &M) -> usize {
    visit_with_paths(module, TrainableCounter::default()).count
}

#[derive(Default)]
struct TrainableCounter {
    count: usize,
}

impl PathVisitor for TrainableCounter {
    fn visit_float_at<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
        let leaf = path.last().map(String::as_str).unwrap_or("");
        if !matches!(leaf, "running_mean" | "running_var") {
            self.count += param.lazy_shape().num_elements();
        }
    }
}
