//! Loading EdgeNeXt checkpoints: the official mmaaz60 key layout (what
//! CION's ReIDZoo files hold) and timm's, both strictly.
//!
//! PyTorch numbers a stage's blocks in one sequence (conv encoders first,
//! then SDTA encoders); our stages keep them in two vectors, so block `j`
//! of stage `i` is `stages.i.blocks.j` when `j < n_i` (the stage's number of
//! conv encoders, [`crate::EdgeNeXt::conv_blocks_per_stage`]) and
//! `stages.i.sdta.{j − n_i}` otherwise.
//!
//! | our module path | official | timm |
//! |---|---|---|
//! | `stem.conv.*` / `stem.norm.*` | `downsample_layers.0.0.*` / `.0.1.*` | `stem.0.*` / `stem.1.*` |
//! | `stages.i.downsample.norm.*` / `.conv.*` (i ≥ 1) | `downsample_layers.i.0.*` / `.1.*` | `stages.i.downsample.0.*` / `.1.*` |
//! | `stages.i.{blocks,sdta}.k.dwconv.*` | `stages.i.j.dwconv.*` | `stages.i.blocks.j.conv_dw.*` |
//! | `….pwconv1.*` / `….pwconv2.*` | `stages.i.j.pwconv1.*` / `pwconv2.*` | `stages.i.blocks.j.mlp.fc1.*` / `mlp.fc2.*` |
//! | `….norm.*`, `gamma`, `convs.m.*`, `pos_embd.token_projection.*`, `norm_xca.*`, `gamma_xca`, `xca.{temperature,qkv.*,proj.*}` | same under `stages.i.j.` | same under `stages.i.blocks.j.` |
//! | `norm.*` | `norm.*` | `head.norm.*` |
//!
//! Wrappers are removed as for ConvNeXt ([`super::unwrap_key`]): CION's
//! `teacher` dictionary (keys containing `backbone`, without the
//! `module.backbone.` or `backbone.` prefix — EdgeNeXt is BN-free, so CION
//! writes `backbone.`), the official release's `model` dictionary, and a
//! `module.` / `backbone.` prefix common to every key. A classifier
//! (`head.weight`, `head.fc.*`) is **unexpected** unless allowed
//! ([`ImportOptions::allow_unexpected`]).

use std::fmt;
use std::path::Path;

use super::ImportOptions;
use super::family::{FamilyImportReport, Unwrapped};
use crate::edgenext::EdgeNeXt;
use crate::error::BackboneError;

/// Key naming of an EdgeNeXt checkpoint (after the wrappers are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeNeXtLayout {
    /// mmaaz60/EdgeNeXt (also CION's copy): `downsample_layers.*`,
    /// `stages.i.j.*`, `norm.*`.
    Official,
    /// timm's `EdgeNeXt`: `stem.*`, `stages.i.downsample.*`,
    /// `stages.i.blocks.j.*` (`conv_dw`, `mlp.fc1/2`), `head.norm.*`.
    Timm,
}

/// Block-level renaming between timm and official names.
const TIMM_RENAMES: [(&str, &str); 3] = [
    ("conv_dw.", "dwconv."),
    ("mlp.fc1.", "pwconv1."),
    ("mlp.fc2.", "pwconv2."),
];

impl EdgeNeXtLayout {
    /// Lower-case name, as used in errors (`"edgenext-official"`,
    /// `"edgenext-timm"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Official => "edgenext-official",
            Self::Timm => "edgenext-timm",
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

    /// Our module path of a file key in this naming; `conv_blocks[i]` is
    /// the number of conv encoders of stage `i`. `None` when no EdgeNeXt
    /// parameter has that name (a classifier, for instance).
    pub fn to_model_path(self, key: &str, conv_blocks: &[usize]) -> Option<String> {
        let p: Vec<&str> = key.split('.').collect();
        let rest = |n: usize| p[n..].join(".");
        let block = |i: &str, j: &str, tail: String| -> Option<String> {
            let si: usize = i.parse().ok()?;
            let j: usize = j.parse().ok()?;
            let n = *conv_blocks.get(si)?;
            Some(if j < n {
                format!("stages.{si}.blocks.{j}.{tail}")
            } else {
                format!("stages.{si}.sdta.{}.{tail}", j - n)
            })
        };
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
            (Self::Official, ["stages", i, j, _, ..]) => block(i, j, rest(3))?,
            (Self::Official, ["norm", _, ..]) => key.to_string(),
            (Self::Timm, ["stem", "0", _, ..]) => format!("stem.conv.{}", rest(2)),
            (Self::Timm, ["stem", "1", _, ..]) => format!("stem.norm.{}", rest(2)),
            (Self::Timm, ["stages", i, "downsample", "0", _, ..]) => {
                format!("stages.{i}.downsample.norm.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "downsample", "1", _, ..]) => {
                format!("stages.{i}.downsample.conv.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "blocks", j, _, ..]) => {
                let mut tail = rest(4);
                for (timm, official) in TIMM_RENAMES {
                    if let Some(t) = tail.strip_prefix(timm) {
                        tail = format!("{official}{t}");
                    }
                }
                block(i, j, tail)?
            }
            (Self::Timm, ["head", "norm", _, ..]) => format!("norm.{}", rest(2)),
            _ => return None,
        };
        Some(path)
    }

    /// The file key of one of our module paths in this naming (inverse of
    /// [`EdgeNeXtLayout::to_model_path`]).
    pub fn to_file_key(self, model_path: &str, conv_blocks: &[usize]) -> String {
        let p: Vec<&str> = model_path.split('.').collect();
        let rest = |n: usize| p[n..].join(".");
        // PyTorch's block index of `stages.i.{blocks,sdta}.k`.
        let index = |i: &str, kind: &str, k: &str| -> String {
            let (Ok(si), Ok(k)) = (i.parse::<usize>(), k.parse::<usize>()) else {
                return k.to_string();
            };
            let offset = if kind == "sdta" {
                conv_blocks.get(si).copied().unwrap_or(0)
            } else {
                0
            };
            (k + offset).to_string()
        };
        match (self, p.as_slice()) {
            (Self::Official, ["stem", "conv", ..]) => format!("downsample_layers.0.0.{}", rest(2)),
            (Self::Official, ["stem", "norm", ..]) => format!("downsample_layers.0.1.{}", rest(2)),
            (Self::Official, ["stages", i, "downsample", "norm", ..]) => {
                format!("downsample_layers.{i}.0.{}", rest(4))
            }
            (Self::Official, ["stages", i, "downsample", "conv", ..]) => {
                format!("downsample_layers.{i}.1.{}", rest(4))
            }
            (Self::Official, ["stages", i, kind @ ("blocks" | "sdta"), k, ..]) => {
                format!("stages.{i}.{}.{}", index(i, kind, k), rest(4))
            }
            (Self::Timm, ["stem", "conv", ..]) => format!("stem.0.{}", rest(2)),
            (Self::Timm, ["stem", "norm", ..]) => format!("stem.1.{}", rest(2)),
            (Self::Timm, ["stages", i, "downsample", "norm", ..]) => {
                format!("stages.{i}.downsample.0.{}", rest(4))
            }
            (Self::Timm, ["stages", i, "downsample", "conv", ..]) => {
                format!("stages.{i}.downsample.1.{}", rest(4))
            }
            (Self::Timm, ["stages", i, kind @ ("blocks" | "sdta"), k, ..]) => {
                let mut tail = rest(4);
                for (timm, official) in TIMM_RENAMES {
                    if let Some(t) = tail.strip_prefix(official) {
                        tail = format!("{timm}{t}");
                    }
                }
                format!("stages.{i}.blocks.{}.{tail}", index(i, kind, k))
            }
            (Self::Timm, ["norm", ..]) => format!("head.{model_path}"),
            _ => model_path.to_string(),
        }
    }
}

impl fmt::Display for EdgeNeXtLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`load_edgenext`] did (the layout is a [`EdgeNeXtLayout`]).
pub type EdgeNeXtImportReport = FamilyImportReport<EdgeNeXtLayout>;

/// Loads an EdgeNeXt checkpoint (official or timm naming; bare, CION
/// `teacher` or official `model` wrapper; `.pth` or safetensors) into
/// `model`, strictly: any missing, unexpected or mis-shaped key is a
/// [`BackboneError::KeyMismatch`] naming them in the file's layout.
///
/// `options.format`: [`WeightsFormat::Auto`](super::WeightsFormat::Auto), [`WeightsFormat::Safetensors`](super::WeightsFormat::Safetensors)
/// (the file must be safetensors) or [`WeightsFormat::Cion`](super::WeightsFormat::Cion) (the file must
/// have a `teacher` dictionary); the ResNet-only formats are an error.
pub fn load_edgenext(
    model: &mut EdgeNeXt,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<EdgeNeXtImportReport, BackboneError> {
    let read = Unwrapped::read(path.as_ref(), options, "EdgeNeXt")?;
    let layout = EdgeNeXtLayout::detect(&read.keys()).ok_or_else(|| {
        read.unrecognised(
            "EdgeNeXt",
            "official `downsample_layers.*` or timm `stem.*`",
        )
    })?;
    let conv_blocks = model.conv_blocks_per_stage();
    read.apply(
        model,
        options,
        layout,
        |_| None,
        |k| layout.to_model_path(k, &conv_blocks),
        |p| layout.to_file_key(p, &conv_blocks),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conv encoders per stage of the full-size presets.
    const CONV: [usize; 4] = [3, 2, 8, 2];

    const MODEL_PATHS: [&str; 12] = [
        "stem.conv.weight",
        "stem.norm.bias",
        "stages.1.downsample.norm.weight",
        "stages.3.downsample.conv.bias",
        "stages.0.blocks.2.dwconv.weight",
        "stages.2.blocks.7.pwconv1.weight",
        "stages.1.sdta.0.pos_embd.token_projection.weight",
        "stages.2.sdta.0.convs.1.bias",
        "stages.3.sdta.0.xca.temperature",
        "stages.3.sdta.0.pwconv2.bias",
        "stages.3.sdta.0.gamma_xca",
        "norm.weight",
    ];

    #[test]
    fn official_and_timm_names_map_to_module_paths_and_back() {
        let official = [
            "downsample_layers.0.0.weight",
            "downsample_layers.0.1.bias",
            "downsample_layers.1.0.weight",
            "downsample_layers.3.1.bias",
            "stages.0.2.dwconv.weight",
            "stages.2.7.pwconv1.weight",
            "stages.1.2.pos_embd.token_projection.weight",
            "stages.2.8.convs.1.bias",
            "stages.3.2.xca.temperature",
            "stages.3.2.pwconv2.bias",
            "stages.3.2.gamma_xca",
            "norm.weight",
        ];
        let timm = [
            "stem.0.weight",
            "stem.1.bias",
            "stages.1.downsample.0.weight",
            "stages.3.downsample.1.bias",
            "stages.0.blocks.2.conv_dw.weight",
            "stages.2.blocks.7.mlp.fc1.weight",
            "stages.1.blocks.2.pos_embd.token_projection.weight",
            "stages.2.blocks.8.convs.1.bias",
            "stages.3.blocks.2.xca.temperature",
            "stages.3.blocks.2.mlp.fc2.bias",
            "stages.3.blocks.2.gamma_xca",
            "head.norm.weight",
        ];
        for (layout, keys) in [
            (EdgeNeXtLayout::Official, official),
            (EdgeNeXtLayout::Timm, timm),
        ] {
            for (key, path) in keys.iter().zip(MODEL_PATHS) {
                assert_eq!(
                    layout.to_model_path(key, &CONV).as_deref(),
                    Some(path),
                    "{key}"
                );
                assert_eq!(layout.to_file_key(path, &CONV), *key, "{path}");
            }
        }
        assert_eq!(
            EdgeNeXtLayout::Official.to_model_path("head.weight", &CONV),
            None
        );
        assert_eq!(
            EdgeNeXtLayout::Timm.to_model_path("head.fc.weight", &CONV),
            None
        );
        let keys = |ks: &[&str]| ks.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            EdgeNeXtLayout::detect(&keys(&official)),
            Some(EdgeNeXtLayout::Official)
        );
        assert_eq!(
            EdgeNeXtLayout::detect(&keys(&timm)),
            Some(EdgeNeXtLayout::Timm)
        );
        assert_eq!(EdgeNeXtLayout::detect(&keys(&["conv1.weight"])), None);
    }
}
