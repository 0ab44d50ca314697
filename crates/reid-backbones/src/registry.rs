//! Architectures by name, so command lines and configs can pick a backbone.

use burn::tensor::Device;

use crate::error::BackboneError;
use crate::resnet::{ResNet, ResNetConfig, ResNetDepth};

/// Every architecture the registry can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// A torchvision-layout ResNet of the given depth.
    ResNet(ResNetDepth),
}

/// `(name, arch)` pairs known to [`Arch::from_name`].
pub const ARCH_NAMES: [(&str, Arch); 5] = [
    ("resnet18", Arch::ResNet(ResNetDepth::R18)),
    ("resnet34", Arch::ResNet(ResNetDepth::R34)),
    ("resnet50", Arch::ResNet(ResNetDepth::R50)),
    ("resnet101", Arch::ResNet(ResNetDepth::R101)),
    ("resnet152", Arch::ResNet(ResNetDepth::R152)),
];

impl Arch {
    /// Looks an architecture up by its fast-reid-style name (`"resnet50"`).
    pub fn from_name(name: &str) -> Result<Self, BackboneError> {
        ARCH_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, a)| a)
            .ok_or_else(|| BackboneError::UnknownArch {
                name: name.to_string(),
                known: ARCH_NAMES.map(|(n, _)| n).join(", "),
            })
    }
}

/// Builds the backbone `name` with the ReID defaults (last stride 1) and a
/// width multiplier `base_width` (64 for the published models).
pub fn build_backbone(
    name: &str,
    base_width: usize,
    last_stride: usize,
    device: &Device,
) -> Result<ResNet, BackboneError> {
    match Arch::from_name(name)? {
        Arch::ResNet(depth) => ResNetConfig::new()
            .with_depth(depth)
            .with_base_width(base_width)
            .with_last_stride(last_stride)
            .init(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_names_list_the_known_ones() {
        assert_eq!(
            Arch::from_name("ResNet50").unwrap(),
            Arch::ResNet(ResNetDepth::R50)
        );
        let err = Arch::from_name("resnet51").unwrap_err().to_string();
        assert!(
            err.contains("resnet51") && err.contains("resnet152"),
            "{err}"
        );
    }
}
