//! Architectures by name, so command lines and configs can pick a backbone.

use burn::tensor::Device;

use crate::error::BackboneError;
use crate::resnet::{IbnMode, ResNet, ResNetConfig, ResNetDepth};

/// Every architecture the registry can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// A torchvision-layout ResNet of the given depth.
    ResNet(ResNetDepth),
    /// A ResNet with IBN-a or IBN-b (`resnet50_ibn_a`, `resnet50_ibn_b`;
    /// `resnet50_ibn` is IBN-a, CION's naming).
    ResNetIbn(ResNetDepth, IbnMode),
}

/// `(name, arch)` pairs known to [`Arch::from_name`].
pub const ARCH_NAMES: [(&str, Arch); 5] = [
    ("resnet18", Arch::ResNet(ResNetDepth::R18)),
    ("resnet34", Arch::ResNet(ResNetDepth::R34)),
    ("resnet50", Arch::ResNet(ResNetDepth::R50)),
    ("resnet101", Arch::ResNet(ResNetDepth::R101)),
    ("resnet152", Arch::ResNet(ResNetDepth::R152)),
];

/// A family preset: its ReIDZoo name and the configuration's constructor.
pub type Preset<T> = (&'static str, fn() -> T);

/// The preset of a family named `name` (ASCII case ignored) among
/// `presets` (`(ReIDZoo name, constructor)`): every family's
/// `XConfig::preset(name)`. An unknown name is
/// [`BackboneError::UnknownArch`] listing the known ones.
pub fn preset_by_name<T>(name: &str, presets: &[Preset<T>]) -> Result<T, BackboneError> {
    presets
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, make)| make())
        .ok_or_else(|| BackboneError::UnknownArch {
            name: name.to_string(),
            known: presets
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Declares a family configuration's named presets from
/// `constructor "reidzoo_name" => expression;` lines (each with its doc
/// comment): a public constructor per preset, the table
/// `PRESETS: &[Preset<Self>]` in that order, and `preset(name)`, which
/// looks a name up with [`preset_by_name`]. With `custom preset` the
/// family writes its own `preset` (over the same table).
macro_rules! presets {
    ($config:ident { $($lines:tt)+ }) => {
        $crate::registry::presets!($config, custom preset { $($lines)+ });

        impl $config {
            /// The preset of a ReIDZoo name among [`Self::PRESETS`]
            /// (ASCII case ignored); an unknown name is
            /// [`BackboneError::UnknownArch`](crate::BackboneError::UnknownArch)
            /// listing the known ones.
            pub fn preset(name: &str) -> Result<Self, $crate::error::BackboneError> {
                $crate::registry::preset_by_name(name, Self::PRESETS)
            }
        }
    };
    (
        $config:ident,
        custom preset {
            $(
                $(#[doc = $doc:literal])*
                $constructor:ident $name:literal => $make:expr;
            )+
        }
    ) => {
        impl $config {
            $(
                $(#[doc = $doc])*
                pub fn $constructor() -> Self {
                    $make
                }
            )+

            /// The ReIDZoo presets: `(name, constructor)`, in table order.
            pub const PRESETS: &'static [$crate::registry::Preset<Self>] =
                &[$(($name, Self::$constructor)),+];
        }
    };
}

pub(crate) use presets;

impl Arch {
    /// Looks an architecture up by its fast-reid-style name (`"resnet50"`,
    /// `"resnet50_ibn_a"`, `"resnet50_ibn"` = IBN-a, `"resnet50_ibn_b"`).
    pub fn from_name(name: &str) -> Result<Self, BackboneError> {
        let lower = name.to_ascii_lowercase();
        for (suffix, mode) in [
            ("_ibn_a", IbnMode::A),
            ("_ibn_b", IbnMode::B),
            ("_ibn", IbnMode::A),
        ] {
            if let Some(base) = lower.strip_suffix(suffix) {
                return match Self::from_name(base)? {
                    Self::ResNet(depth) => Ok(Self::ResNetIbn(depth, mode)),
                    Self::ResNetIbn(..) => Err(BackboneError::UnknownArch {
                        name: name.to_string(),
                        known: ARCH_NAMES.map(|(n, _)| n).join(", "),
                    }),
                };
            }
        }
        ARCH_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, a)| a)
            .ok_or_else(|| BackboneError::UnknownArch {
                name: name.to_string(),
                known: format!(
                    "{} (each also with _ibn_a / _ibn_b)",
                    ARCH_NAMES.map(|(n, _)| n).join(", ")
                ),
            })
    }

    /// The configuration of this architecture with the ReID defaults of
    /// [`ResNetConfig`] (base width 64, last stride 1, torchvision stem).
    pub fn config(self) -> ResNetConfig {
        match self {
            Self::ResNet(depth) => ResNetConfig::new().with_depth(depth),
            Self::ResNetIbn(depth, mode) => {
                ResNetConfig::new().with_depth(depth).with_ibn(Some(mode))
            }
        }
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
    Arch::from_name(name)?
        .config()
        .with_base_width(base_width)
        .with_last_stride(last_stride)
        .init(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Family presets resolve by ReIDZoo name (every [`crate::ZOO`] name
    /// builds: the zoo's table test), ASCII case ignored; an unknown name
    /// lists the family's names.
    #[test]
    fn family_presets_resolve_by_name_and_unknown_names_list_the_known_ones() {
        let g = crate::ghostnet::GhostNetConfig::preset("GhostNet_1_3").unwrap();
        assert_eq!(g.width, 1.3);
        match crate::convnext::ConvNeXtConfig::preset("convnext_huge") {
            Err(BackboneError::UnknownArch { known, .. }) => {
                assert_eq!(known, "convnext_tiny, convnext_small, convnext_base")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_resolve_and_unknown_names_list_the_known_ones() {
        assert_eq!(
            Arch::from_name("ResNet50").unwrap(),
            Arch::ResNet(ResNetDepth::R50)
        );
        assert_eq!(
            Arch::from_name("resnet50_ibn").unwrap(),
            Arch::ResNetIbn(ResNetDepth::R50, IbnMode::A)
        );
        assert_eq!(
            Arch::from_name("resnet18_ibn_b").unwrap(),
            Arch::ResNetIbn(ResNetDepth::R18, IbnMode::B)
        );
        assert!(Arch::from_name("resnet50_ibn_a_ibn_b").is_err());
        let err = Arch::from_name("resnet51").unwrap_err().to_string();
        assert!(
            err.contains("resnet51") && err.contains("resnet152"),
            "{err}"
        );
    }
}
