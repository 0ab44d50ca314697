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
//! Wrappers removed before the keys are matched (see [`unwrap_key`]):
//! a CION checkpoint's `teacher` dictionary (its keys containing `backbone`,
//! without the `module.backbone.` or `backbone.` prefix; the DINO head and
//! everything outside the teacher are set aside and reported), the official
//! ImageNet release's `model` dictionary, and a `module.` / `backbone.`
//! prefix common to every key. A classifier (`head.weight`, `head.fc.*`) is
//! **unexpected** for a backbone unless allowed
//! ([`ImportOptions::allow_unexpected`], e.g. `"head.*"` / `"head.fc.*"`).

use std::fmt;
use std::path::Path;

use super::ImportOptions;
use super::family::{FamilyImportReport, Unwrapped};
pub use super::wrapper::{CheckpointWrapper, KeyFate, detect_wrapper, unwrap_key};
use crate::convnext::ConvNeXt;
use crate::error::BackboneError;

/// Key naming of a ConvNeXt checkpoint (after the wrappers are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvNeXtLayout {
    /// facebookresearch/ConvNeXt (also CION's copy): `downsample_layers.*`,
    /// `stages.i.j.*`, `norm.*`.
    Official,
    /// timm's `ConvNeXt`: `stem.*`, `stages.i.downsample.*`,
    /// `stages.i.blocks.j.*`, `head.norm.*`.
    Timm,
}

impl ConvNeXtLayout {
    /// Lower-case name, as used in errors (`"convnext-official"`,
    /// `"convnext-timm"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Official => "convnext-official",
            Self::Timm => "convnext-timm",
        }
    }

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
        let p: Vec<&str> = key.split('.').collect();
        let rest = |n: usize| p[n..].join(".");
        let path = match (self, p.as_slice()) {
            (Self::Official, ["downsample_layers", "0", "0", _, ..]) => {
                format!("stem.conv.{}", rest(3))
            }
            (Self::Official, ["downsample_layers", "0", "1", _, ..]) => {
                format!("stem.norm.{}", rest(3))
            }
            (Self::Official, ["downsample_layers", i, "0", _, ..]) => {
                format!("stages.{i}.downsample.norm.{}", rest(3))
            }
            (Self::Official, ["downsample_layers", i, "1", _, ..]) => {
                format!("stages.{i}.downsample.conv.{}", rest(3))
            }
            (Self::Official, ["stages", i, j, _, ..]) => {
                format!("stages.{i}.blocks.{j}.{}", rest(3))
            }
            (Self::Official, ["norm", _, ..]) => key.to_string(),
            (Self::Timm, ["stem", "0", _, ..]) => format!("stem.conv.{}", rest(2)),
            (Self::Timm, ["stem", "1", _, ..]) => format!("stem.norm.{}", rest(2)),
            (Self::Timm, ["stages", i, "downsample", "0", _, ..]) => {
                format!("stages.{i}.downsample.norm.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "downsample", "1", _, ..]) => {
                format!("stages.{i}.downsample.conv.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "blocks", j, "conv_dw", _, ..]) => {
                format!("stages.{i}.blocks.{j}.dwconv.{}", rest(5))
            }
            (Self::Timm, ["stages", i, "blocks", j, "mlp", "fc1", _, ..]) => {
                format!("stages.{i}.blocks.{j}.pwconv1.{}", rest(6))
            }
            (Self::Timm, ["stages", i, "blocks", j, "mlp", "fc2", _, ..]) => {
                format!("stages.{i}.blocks.{j}.pwconv2.{}", rest(6))
            }
            (Self::Timm, ["stages", i, "blocks", j, "norm" | "gamma", ..]) => {
                format!("stages.{i}.blocks.{j}.{}", rest(4))
            }
            (Self::Timm, ["head", "norm", _, ..]) => format!("norm.{}", rest(2)),
            _ => return None,
        };
        Some(path)
    }

    /// The file key of one of our module paths in this naming (inverse of
    /// [`ConvNeXtLayout::to_model_path`]).
    pub fn to_file_key(self, model_path: &str) -> String {
        let p: Vec<&str> = model_path.split('.').collect();
        let rest = |n: usize| p[n..].join(".");
        match (self, p.as_slice()) {
            (Self::Official, ["stem", "conv", ..]) => format!("downsample_layers.0.0.{}", rest(2)),
            (Self::Official, ["stem", "norm", ..]) => format!("downsample_layers.0.1.{}", rest(2)),
            (Self::Official, ["stages", i, "downsample", "norm", ..]) => {
                format!("downsample_layers.{i}.0.{}", rest(4))
            }
            (Self::Official, ["stages", i, "downsample", "conv", ..]) => {
                format!("downsample_layers.{i}.1.{}", rest(4))
            }
            (Self::Official, ["stages", i, "blocks", j, ..]) => {
                format!("stages.{i}.{j}.{}", rest(4))
            }
            (Self::Timm, ["stem", "conv", ..]) => format!("stem.0.{}", rest(2)),
            (Self::Timm, ["stem", "norm", ..]) => format!("stem.1.{}", rest(2)),
            (Self::Timm, ["stages", i, "downsample", "norm", ..]) => {
                format!("stages.{i}.downsample.0.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "downsample", "conv", ..]) => {
                format!("stages.{i}.downsample.1.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "blocks", j, "dwconv", ..]) => {
                format!("stages.{i}.blocks.{j}.conv_dw.{}", rest(5))
            }
            (Self::Timm, ["stages", i, "blocks", j, "pwconv1", ..]) => {
                format!("stages.{i}.blocks.{j}.mlp.fc1.{}", rest(5))
            }
            (Self::Timm, ["stages", i, "blocks", j, "pwconv2", ..]) => {
                format!("stages.{i}.blocks.{j}.mlp.fc2.{}", rest(5))
            }
            (Self::Timm, ["norm", ..]) => format!("head.{model_path}"),
            _ => model_path.to_string(),
        }
    }
}

impl fmt::Display for ConvNeXtLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`load_convnext`] did (the layout is a [`ConvNeXtLayout`]).
pub type ConvNeXtImportReport = FamilyImportReport<ConvNeXtLayout>;

/// Loads a ConvNeXt checkpoint (official or timm naming; bare, CION
/// `teacher` or official `model` wrapper; `.pth` or safetensors) into
/// `model`, strictly: any missing, unexpected or mis-shaped key is a
/// [`BackboneError::KeyMismatch`] naming them in the file's layout.
///
/// `options.format`: [`WeightsFormat::Auto`](super::WeightsFormat::Auto) (recognise everything),
/// [`WeightsFormat::Safetensors`](super::WeightsFormat::Safetensors) (the file must be safetensors) or
/// [`WeightsFormat::Cion`](super::WeightsFormat::Cion) (the file must have a `teacher` dictionary);
/// the ResNet-only formats are an error.
pub fn load_convnext(
    model: &mut ConvNeXt,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ConvNeXtImportReport, BackboneError> {
    let read = Unwrapped::read(path.as_ref(), options, "ConvNeXt")?;
    let layout = ConvNeXtLayout::detect(&read.keys()).ok_or_else(|| {
        read.unrecognised(
            "ConvNeXt",
            "official `downsample_layers.*` or timm `stem.*`",
        )
    })?;
    read.apply(
        model,
        options,
        layout,
        |_| None,
        |k| layout.to_model_path(k),
        |p| layout.to_file_key(p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            for (key, path) in keys.iter().zip(MODEL_PATHS) {
                assert_eq!(layout.to_model_path(key).as_deref(), Some(path), "{key}");
                assert_eq!(layout.to_file_key(path), *key, "{path}");
            }
        }
        assert_eq!(ConvNeXtLayout::Official.to_model_path("head.weight"), None);
        assert_eq!(ConvNeXtLayout::Timm.to_model_path("head.fc.weight"), None);
        let keys = |ks: &[&str]| ks.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ConvNeXtLayout::detect(&keys(&official)),
            Some(ConvNeXtLayout::Official)
        );
        assert_eq!(
            ConvNeXtLayout::detect(&keys(&timm)),
            Some(ConvNeXtLayout::Timm)
        );
        assert_eq!(ConvNeXtLayout::detect(&keys(&["conv1.weight"])), None);
    }
}
