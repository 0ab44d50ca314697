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
//! Wrappers are removed as for ConvNeXt ([`crate::import::unwrap_key`]): CION's
//! `teacher` dictionary (keys containing `backbone`, without the
//! `module.backbone.` or `backbone.` prefix — EdgeNeXt is BN-free, so CION
//! writes `backbone.`), the official release's `model` dictionary, and a
//! `module.` / `backbone.` prefix common to every key. A classifier
//! (`head.weight`, `head.fc.*`) is **unexpected** unless allowed
//! ([`ImportOptions::allow_unexpected`]).

use std::path::Path;

use crate::convnext::ConvNeXtLayout;
use crate::edgenext::EdgeNeXt;
use crate::error::BackboneError;
use crate::import::family::{FamilyImportReport, Unwrapped, layout_enum};
use crate::import::options::ImportOptions;

layout_enum! {
    /// Key naming of an EdgeNeXt checkpoint (after the wrappers are removed).
    /// The stem, down-sampling and final-norm keys are ConvNeXt's
    /// ([`ConvNeXtLayout`]); only the blocks differ.
    pub enum EdgeNeXtLayout {
        /// mmaaz60/EdgeNeXt (also CION's copy): `downsample_layers.*`,
        /// `stages.i.j.*`, `norm.*`.
        Official => "edgenext-official",
        /// timm's `EdgeNeXt`: `stem.*`, `stages.i.downsample.*`,
        /// `stages.i.blocks.j.*` (`conv_dw`, `mlp.fc1/2`), `head.norm.*`.
        Timm => "edgenext-timm",
    }
}

/// What [`load_edgenext`] did (the layout is a [`EdgeNeXtLayout`]).
pub type EdgeNeXtImportReport = FamilyImportReport<EdgeNeXtLayout>;

/// Block-level renaming between timm and official names.
const TIMM_RENAMES: [(&str, &str); 3] = [
    ("conv_dw.", "dwconv."),
    ("mlp.fc1.", "pwconv1."),
    ("mlp.fc2.", "pwconv2."),
];

/// `tail` with its first segment(s) renamed by the first matching pair of
/// [`TIMM_RENAMES`]: timm → official when `to_official`, else back.
fn rename_block(tail: String, to_official: bool) -> String {
    for (timm, official) in TIMM_RENAMES {
        let (from, to) = if to_official {
            (timm, official)
        } else {
            (official, timm)
        };
        if let Some(t) = tail.strip_prefix(from) {
            return format!("{to}{t}");
        }
    }
    tail
}

impl EdgeNeXtLayout {
    /// The ConvNeXt naming of the same source, whose stem, down-sampling
    /// and final-norm keys EdgeNeXt shares.
    fn convnext(self) -> ConvNeXtLayout {
        match self {
            Self::Official => ConvNeXtLayout::Official,
            Self::Timm => ConvNeXtLayout::Timm,
        }
    }

    /// Recognises the naming from keys (wrappers already removed), as
    /// ConvNeXt's: `downsample_layers.*` → official; `stem.*` or
    /// `stages.i.blocks.*` → timm.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String>) -> Option<Self> {
        ConvNeXtLayout::detect(keys).map(|layout| match layout {
            ConvNeXtLayout::Official => Self::Official,
            ConvNeXtLayout::Timm => Self::Timm,
        })
    }

    /// Our module path of a file key in this naming; `conv_blocks[i]` is
    /// the number of conv encoders of stage `i`. `None` when no EdgeNeXt
    /// parameter has that name (a classifier, for instance).
    pub fn to_model_path(self, key: &str, conv_blocks: &[usize]) -> Option<String> {
        let p: Vec<&str> = key.split('.').collect();
        let (i, j, tail) = match (self, p.as_slice()) {
            (Self::Official, ["stages", i, j, _, ..]) => (i, j, p[3..].join(".")),
            (Self::Timm, ["stages", i, "blocks", j, _, ..]) => {
                (i, j, rename_block(p[4..].join("."), true))
            }
            _ => return self.convnext().to_model_path(key),
        };
        let si: usize = i.parse().ok()?;
        let j: usize = j.parse().ok()?;
        let n = *conv_blocks.get(si)?;
        Some(if j < n {
            format!("stages.{si}.blocks.{j}.{tail}")
        } else {
            format!("stages.{si}.sdta.{}.{tail}", j - n)
        })
    }

    /// The file key of one of our module paths in this naming (inverse of
    /// [`EdgeNeXtLayout::to_model_path`]).
    pub fn to_file_key(self, model_path: &str, conv_blocks: &[usize]) -> String {
        let p: Vec<&str> = model_path.split('.').collect();
        let ["stages", i, kind @ ("blocks" | "sdta"), k, ..] = p.as_slice() else {
            return self.convnext().to_file_key(model_path);
        };
        // PyTorch's block index of `stages.i.{blocks,sdta}.k`.
        let index = match (i.parse::<usize>(), k.parse::<usize>()) {
            (Ok(si), Ok(k)) if *kind == "sdta" => {
                (k + conv_blocks.get(si).copied().unwrap_or(0)).to_string()
            }
            _ => k.to_string(),
        };
        let tail = p[4..].join(".");
        match self {
            Self::Official => format!("stages.{i}.{index}.{tail}"),
            Self::Timm => format!("stages.{i}.blocks.{index}.{}", rename_block(tail, false)),
        }
    }
}

/// Loads an EdgeNeXt checkpoint (official or timm naming; bare, CION
/// `teacher` or official `model` wrapper; `.pth` or safetensors) into
/// `model`, strictly: any missing, unexpected or mis-shaped key is a
/// [`BackboneError::KeyMismatch`] naming them in the file's layout.
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)).
pub fn load_edgenext(
    model: &mut EdgeNeXt,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<EdgeNeXtImportReport, BackboneError> {
    let conv = model.conv_blocks_per_stage();
    let read = Unwrapped::read(path.as_ref(), options, "EdgeNeXt")?;
    let expected = "official `downsample_layers.*` or timm `stem.*`";
    let layout = read.detect(|keys| EdgeNeXtLayout::detect(keys), expected)?;
    let to_model_path = |k: &str| layout.to_model_path(k, &conv);
    read.apply(model, options, layout, to_model_path, |p| {
        layout.to_file_key(p, &conv)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_maps_both_ways, owned};

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
        for (layout, keys, head) in [
            (EdgeNeXtLayout::Official, official, "head.weight"),
            (EdgeNeXtLayout::Timm, timm, "head.fc.weight"),
        ] {
            let to_model = |k: &str| layout.to_model_path(k, &CONV);
            assert_maps_both_ways(&keys, &MODEL_PATHS, to_model, |p| {
                layout.to_file_key(p, &CONV)
            });
            assert_eq!(to_model(head), None);
            assert_eq!(EdgeNeXtLayout::detect(&owned(&keys)), Some(layout));
        }
        assert_eq!(EdgeNeXtLayout::detect(&owned(&["conv1.weight"])), None);
    }
}
