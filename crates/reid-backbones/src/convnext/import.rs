//! Loading ConvNeXt checkpoints: the official facebookresearch key layout
//! (what CION's ReIDZoo files hold) and timm's, both strictly.
//!
//! | our module path | official | timm |
//! |---|---|---|
//! | `stem.conv.*` / `stem.norm.*` | `downsample_layers.0.0.*` / `downsample_layers.0.1.*` | `stem.0.*` / `stem.1.*` |
//! | `stages.i.downsample.norm.*` / `.conv.*` (i ≥ 1) | `downsample_layers.i.0.*` / `.1.*` | `stages.i.downsample.0.*` / `.1.*` |
//! | `stages.i.blocks.j.dwconv.*` | `stages.i.j.dwconv.*` | `stages.i.blocks.j.conv_dw.*` |
//! | `stages.i.blocks.j.norm.*` | `stages.i.j.norm.*` | `stages.i.blocks.j.norm.*` |
//! | `stages.i.blocks.j.pwconv1.*` / `pwconv2.*` | `stages.i.j.pwconv1.*` / `pwconv2.*` | `stages.i.blocks.j.mlp.fc1.*` / `mlp.fc2.*` |
//! | `stages.i.blocks.j.gamma` | `stages.i.j.gamma` | `stages.i.blocks.j.gamma` |
//! | `norm.*` | `norm.*` | `head.norm.*` |
//!
//! Wrappers removed before the keys are matched (see [`crate::import::unwrap_key`]):
//! a CION checkpoint's `teacher` dictionary (its keys containing `backbone`,
//! without the `module.backbone.` or `backbone.` prefix; the DINO head and
//! everything outside the teacher are set aside and reported), the official
//! ImageNet release's `model` dictionary, and a `module.` / `backbone.`
//! prefix common to every key. A classifier (`head.weight`, `head.fc.*`) is
//! **unexpected** for a backbone unless allowed
//! ([`ImportOptions::allow_unexpected`], e.g. `"head.*"` / `"head.fc.*"`).

use std::path::Path;
use std::sync::LazyLock;

use crate::convnext::ConvNeXt;
use crate::error::BackboneError;
use crate::import::family::{FamilyImportReport, Unwrapped, layout_enum};
use crate::import::options::ImportOptions;
use crate::import::renames::{Renames, prefixes};

layout_enum! {
    /// Key naming of a ConvNeXt checkpoint (after the wrappers are removed).
    pub enum ConvNeXtLayout {
        /// facebookresearch/ConvNeXt (also CION's copy): `downsample_layers.*`,
        /// `stages.i.j.*`, `norm.*`.
        Official => "convnext-official",
        /// timm's `ConvNeXt`: `stem.*`, `stages.i.downsample.*`,
        /// `stages.i.blocks.j.*`, `head.norm.*`.
        Timm => "convnext-timm",
    }
}

/// What [`load_convnext`] did (the layout is a [`ConvNeXtLayout`]).
pub type ConvNeXtImportReport = FamilyImportReport<ConvNeXtLayout>;

impl ConvNeXtLayout {
    /// Recognises the naming from keys (wrappers already removed):
    /// `downsample_layers.*` → official; `stem.*` or `stages.i.blocks.*` →
    /// timm.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String>) -> Option<Self> {
        let mut timm = false;
        for k in keys {
            if k.starts_with("downsample_layers.") {
                return Some(Self::Official);
            }
            let parts: Vec<&str> = k.split('.').collect();
            timm |= parts[0] == "stem" || (parts[0] == "stages" && parts.get(2) == Some(&"blocks"));
        }
        timm.then_some(Self::Timm)
    }

    /// Our module path of a file key in this naming; `None` when no
    /// ConvNeXt parameter has that name (a classifier, for instance).
    pub fn to_model_path(self, key: &str) -> Option<String> {
        self.renames()[0].apply_matching(key)
    }

    /// The file key of one of our module paths in this naming (inverse of
    /// [`ConvNeXtLayout::to_model_path`]).
    pub fn to_file_key(self, model_path: &str) -> String {
        self.renames()[1].apply(model_path)
    }

    /// The naming's key renames: `[file → model, model → file]`.
    fn renames(self) -> &'static [Renames; 2] {
        match self {
            Self::Official => &RENAMES[0],
            Self::Timm => &RENAMES[1],
        }
    }
}

/// The key prefix of every parameter in the official naming, ours and
/// timm's (`{i}`: stage, `{j}`: block; the table of the module
/// documentation). Rows apply in order; a file key that no row matches is no
/// ConvNeXt parameter.
const PREFIXES: [[&str; 3]; 10] = [
    ["downsample_layers.0.0.", "stem.conv.", "stem.0."],
    ["downsample_layers.0.1.", "stem.norm.", "stem.1."],
    [
        "stages.{i}.{j}.dwconv.",
        "stages.{i}.blocks.{j}.dwconv.",
        "stages.{i}.blocks.{j}.conv_dw.",
    ],
    [
        "stages.{i}.{j}.norm.",
        "stages.{i}.blocks.{j}.norm.",
        "stages.{i}.blocks.{j}.norm.",
    ],
    [
        "stages.{i}.{j}.pwconv1.",
        "stages.{i}.blocks.{j}.pwconv1.",
        "stages.{i}.blocks.{j}.mlp.fc1.",
    ],
    [
        "stages.{i}.{j}.pwconv2.",
        "stages.{i}.blocks.{j}.pwconv2.",
        "stages.{i}.blocks.{j}.mlp.fc2.",
    ],
    [
        "stages.{i}.{j}.gamma",
        "stages.{i}.blocks.{j}.gamma",
        "stages.{i}.blocks.{j}.gamma",
    ],
    [
        "downsample_layers.{i}.0.",
        "stages.{i}.downsample.norm.",
        "stages.{i}.downsample.0.",
    ],
    [
        "downsample_layers.{i}.1.",
        "stages.{i}.downsample.conv.",
        "stages.{i}.downsample.1.",
    ],
    ["norm.", "norm.", "head.norm."],
];

/// [`PREFIXES`] as renames, by layout: `[file → model, model → file]`.
static RENAMES: LazyLock<[[Renames; 2]; 2]> = LazyLock::new(|| {
    let (official, ours, timm) = (0, 1, 2);
    [official, timm].map(|file| {
        [
            Renames::new(prefixes(&PREFIXES, file, ours)),
            Renames::new(prefixes(&PREFIXES, ours, file)),
        ]
    })
});

/// The namings [`load_convnext`] recognises, for the error on a file of
/// none.
const EXPECTED: &str = "official `downsample_layers.*` or timm `stem.*`";

/// Loads a ConvNeXt checkpoint (official or timm naming; bare, CION
/// `teacher` or official `model` wrapper; `.pth` or safetensors) into
/// `model`, strictly: any missing, unexpected or mis-shaped key is a
/// [`BackboneError::KeyMismatch`] naming them in the file's layout.
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)).
pub fn load_convnext(
    model: &mut ConvNeXt,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ConvNeXtImportReport, BackboneError> {
    let read = Unwrapped::read(path.as_ref(), options, "ConvNeXt")?;
    let layout = read.detect(|keys| ConvNeXtLayout::detect(keys), EXPECTED)?;
    read.apply(
        model,
        options,
        layout,
        |k| layout.to_model_path(k),
        |p| layout.to_file_key(p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_maps_both_ways, owned};

    const MODEL_PATHS: [&str; 10] = [
        "stem.conv.weight",
        "stem.norm.bias",
        "stages.1.downsample.norm.weight",
        "stages.3.downsample.conv.bias",
        "stages.0.blocks.0.dwconv.weight",
        "stages.2.blocks.26.norm.weight",
        "stages.2.blocks.3.pwconv1.weight",
        "stages.1.blocks.2.pwconv2.bias",
        "stages.3.blocks.2.gamma",
        "norm.weight",
    ];

    #[test]
    fn both_namings_map_to_module_paths_and_back() {
        let official = [
            "downsample_layers.0.0.weight",
            "downsample_layers.0.1.bias",
            "downsample_layers.1.0.weight",
            "downsample_layers.3.1.bias",
            "stages.0.0.dwconv.weight",
            "stages.2.26.norm.weight",
            "stages.2.3.pwconv1.weight",
            "stages.1.2.pwconv2.bias",
            "stages.3.2.gamma",
            "norm.weight",
        ];
        let timm = [
            "stem.0.weight",
            "stem.1.bias",
            "stages.1.downsample.0.weight",
            "stages.3.downsample.1.bias",
            "stages.0.blocks.0.conv_dw.weight",
            "stages.2.blocks.26.norm.weight",
            "stages.2.blocks.3.mlp.fc1.weight",
            "stages.1.blocks.2.mlp.fc2.bias",
            "stages.3.blocks.2.gamma",
            "head.norm.weight",
        ];
        for (layout, keys) in [
            (ConvNeXtLayout::Official, official),
            (ConvNeXtLayout::Timm, timm),
        ] {
            let (to_model, to_file) = (
                |k: &str| layout.to_model_path(k),
                |p: &str| layout.to_file_key(p),
            );
            assert_maps_both_ways(&keys, &MODEL_PATHS, to_model, to_file);
            assert_eq!(ConvNeXtLayout::detect(&owned(&keys)), Some(layout));
        }
        assert_eq!(ConvNeXtLayout::Official.to_model_path("head.weight"), None);
        assert_eq!(ConvNeXtLayout::Timm.to_model_path("head.fc.weight"), None);
        assert_eq!(ConvNeXtLayout::detect(&owned(&["conv1.weight"])), None);
    }
}
