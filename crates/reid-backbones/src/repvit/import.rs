//! Loading RepViT checkpoints (training form, unfused branches) strictly:
//! THU-MIG's official names, CION's (the official names with CION's own SE,
//! what CION's ReIDZoo files hold) and timm's.
//!
//! | our module path | official | timm |
//! |---|---|---|
//! | `stem.conv{1,2}.*` | `features.0.{0,2}.*` | `stem.conv{1,2}.*` |
//! | `stages.i.blocks.j.*` | `features.N.*` | same as ours |
//! | `stages.i.downsample.pre_block.*` | `features.N.*` (the stride-1 row before the stride-2 one) | same as ours |
//! | `….token_mixer.{conv,conv1,bn}.*` | `….token_mixer.0.{conv,conv1,bn}.*` | same as ours |
//! | `….se.{fc1,fc2}.*` | `….token_mixer.1.{fc1,fc2}.*` (CION: `….token_mixer.1.{conv_reduce,conv_expand}.*`) | same as ours |
//! | `….channel_mixer.conv{1,2}.*` | `….channel_mixer.m.{0,2}.*` | same as ours |
//! | `stages.i.downsample.{spatial,channel}_downsample.*` | `features.N.token_mixer.{0,2}.*` (stride-2 row) | same as ours |
//! | `stages.i.downsample.ffn.conv{1,2}.*` | `features.N.channel_mixer.m.{0,2}.*` (stride-2 row) | same as ours |
//! | conv-BN `….conv.weight` / `….bn.{gamma,beta}` | `….c.weight` / `….bn.{weight,bias}` | same as official |
//!
//! The official flat `features` list holds the stem, then per stage (from
//! the second) the stride-1 pre-block and the stride-2 block, then the
//! stage's blocks; `N` is counted from the model's depths. Both layouts
//! have the non-legacy RepVGG mixer (1×1 branch = conv with bias, no BN,
//! outer BN); a legacy-form file (`conv1.c.weight`, `conv1.bn.*`) is a key
//! mismatch. Wrappers are removed as for ConvNeXt ([`crate::import::unwrap_key`]:
//! CION `teacher` — RepViT has BN, so its keys carry `module.backbone.` —
//! or a `model` dictionary), then a common `state_dict.`, `module.` or
//! `backbone.` prefix; `num_batches_tracked` is set aside. The classifier
//! and distillation heads (official `classifier.*`, timm `head.*`) are
//! unexpected unless allowed.
//!
//! **The SE kind follows the file.** A file whose SE keys are
//! `conv_reduce`/`conv_expand` ([`RepVitLayout::Cion`]) needs CION's SE
//! ([`RepVitSeKind::Cion`]: hard-sigmoid gate, other widths); one with
//! `fc1`/`fc2` needs timm's. [`load_repvit`] rebuilds the model's SEs as
//! the file's kind when they differ ([`RepVit::with_se_kind`]) before the
//! strict load, so `ZooModel::build("repvit_m0_9")` loads CION's and the
//! official files alike; a file with no SE key leaves the model's kind.

use std::path::Path;
use std::sync::LazyLock;

use crate::error::BackboneError;
use crate::import::family::{FamilyImportReport, Unwrapped, layout_enum};
use crate::import::options::ImportOptions;
use crate::import::renames::{Place, Renames, segments};
use crate::repvit::{RepVit, RepVitSeKind};

layout_enum! {
    /// Key naming of a RepViT checkpoint (after the wrappers are removed).
    pub enum RepVitLayout {
        /// THU-MIG/RepViT: `features.N.*`, `c`/`bn`, `token_mixer.0.*`,
        /// `channel_mixer.m.*`, SE `token_mixer.1.{fc1,fc2}.*` (timm's SE).
        Official => "repvit-official",
        /// CION's `RepViT.py`: the official naming with CION's own SE,
        /// `token_mixer.1.{conv_reduce,conv_expand}.*`
        /// ([`RepVitSeKind::Cion`]).
        Cion => "repvit-cion",
        /// timm's `RepVit`: `stem.*`, `stages.i.*`.
        Timm => "repvit-timm",
    }
}

/// What [`load_repvit`] did (the layout is a [`RepVitLayout`]).
pub type RepVitImportReport = FamilyImportReport<RepVitLayout>;

/// What one entry of the official `features` list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Stem,
    PreBlock(usize),
    Down(usize),
    Block(usize, usize),
}

/// The conv-BN leaves of timm's naming and ours (the conv is `c`, the BN
/// affine `weight`/`bias`), at the end of a key.
const LEAF_NAMES: [[&str; 2]; 4] = [
    ["c.weight", "conv.weight"],
    ["c.bias", "conv.bias"],
    ["bn.weight", "bn.gamma"],
    ["bn.bias", "bn.beta"],
];

/// [`LEAF_NAMES`] as renames: `[timm → model, model → timm]`.
static LEAVES: LazyLock<[Renames; 2]> = LazyLock::new(|| {
    let renames = |from, to| Renames::new(segments(&LEAF_NAMES, from, to, Place::End));
    [renames(0, 1), renames(1, 0)]
});

/// Official → timm renaming inside a stride-1 block.
const BLOCK: [(&str, &str); 6] = [
    ("token_mixer.0.conv.", "token_mixer.conv."),
    ("token_mixer.0.conv1.", "token_mixer.conv1."),
    ("token_mixer.0.bn.", "token_mixer.bn."),
    ("token_mixer.1.", "se."),
    ("channel_mixer.m.0.", "channel_mixer.conv1."),
    ("channel_mixer.m.2.", "channel_mixer.conv2."),
];

/// Official → timm renaming inside a stride-2 block (timm's
/// `downsample` without its `pre_block`).
const DOWN: [(&str, &str); 4] = [
    ("token_mixer.0.", "spatial_downsample."),
    ("token_mixer.2.", "channel_downsample."),
    ("channel_mixer.m.0.", "ffn.conv1."),
    ("channel_mixer.m.2.", "ffn.conv2."),
];

/// Official → timm renaming of the heads and the stem.
const TOP: [(&str, &str); 4] = [
    ("classifier.classifier.", "head.head."),
    ("classifier.classifier_dist.", "head.head_dist."),
    ("features.0.0.", "stem.conv1."),
    ("features.0.2.", "stem.conv2."),
];

/// CION → official renaming of the SE inside a `features.N.` entry.
const CION_SE: [(&str, &str); 2] = [
    (".token_mixer.1.conv_reduce.", ".token_mixer.1.fc1."),
    (".token_mixer.1.conv_expand.", ".token_mixer.1.fc2."),
];

/// Applies the first matching `(cion, official)` pair of `table` to a
/// `features.*` key (CION → official when `forward`).
fn rename_se(key: &str, table: &[(&str, &str)], forward: bool) -> String {
    if !key.starts_with("features.") {
        return key.to_string();
    }
    for &(cion, official) in table {
        let (from, to) = if forward {
            (cion, official)
        } else {
            (official, cion)
        };
        if key.contains(from) {
            return key.replacen(from, to, 1);
        }
    }
    key.to_string()
}

fn rename(rest: &str, table: &[(&str, &str)], forward: bool) -> Option<String> {
    table.iter().find_map(|&(official, timm)| {
        let (from, to) = if forward {
            (official, timm)
        } else {
            (timm, official)
        };
        rest.strip_prefix(from).map(|tail| format!("{to}{tail}"))
    })
}

/// The structure the key mapping needs: blocks per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepVitKeys {
    /// Blocks per stage after its down-sampling.
    pub depths: [usize; 4],
}

impl RepVitKeys {
    /// Read from a model.
    pub fn of(model: &RepVit) -> Self {
        let mut depths = [0; 4];
        for (i, s) in model.stages.iter().enumerate().take(4) {
            depths[i] = s.blocks.len();
        }
        Self { depths }
    }

    /// The official `features` list.
    fn features(&self) -> Vec<Role> {
        let mut out = vec![Role::Stem];
        for i in 0..4 {
            if i > 0 {
                out.push(Role::PreBlock(i));
                out.push(Role::Down(i));
            }
            out.extend((0..self.depths[i]).map(|j| Role::Block(i, j)));
        }
        out
    }

    /// Official key → timm key (unknown keys are returned unchanged).
    pub fn official_to_timm(&self, key: &str) -> String {
        if let Some(k) = rename(key, &TOP, true) {
            return k;
        }
        let mut p = key.splitn(3, '.');
        let (Some("features"), Some(n), Some(rest)) = (p.next(), p.next(), p.next()) else {
            return key.to_string();
        };
        let role = n
            .parse::<usize>()
            .ok()
            .and_then(|n| self.features().get(n).copied());
        let renamed = match role {
            Some(Role::Block(i, j)) => {
                rename(rest, &BLOCK, true).map(|r| format!("stages.{i}.blocks.{j}.{r}"))
            }
            Some(Role::PreBlock(i)) => {
                rename(rest, &BLOCK, true).map(|r| format!("stages.{i}.downsample.pre_block.{r}"))
            }
            Some(Role::Down(i)) => {
                rename(rest, &DOWN, true).map(|r| format!("stages.{i}.downsample.{r}"))
            }
            _ => None,
        };
        renamed.unwrap_or_else(|| key.to_string())
    }

    /// Timm key → official key (inverse of [`RepVitKeys::official_to_timm`]).
    pub fn timm_to_official(&self, key: &str) -> String {
        if let Some(k) = rename(key, &TOP, false) {
            return k;
        }
        let p: Vec<&str> = key.split('.').collect();
        if p.len() < 4 || p[0] != "stages" {
            return key.to_string();
        }
        let Ok(i) = p[1].parse::<usize>() else {
            return key.to_string();
        };
        let (role, rest, table): (Role, String, &[(&str, &str)]) = match (p[2], p[3]) {
            ("blocks", j) => match j.parse::<usize>() {
                Ok(j) => (Role::Block(i, j), p[4..].join("."), &BLOCK),
                Err(_) => return key.to_string(),
            },
            ("downsample", "pre_block") => (Role::PreBlock(i), p[4..].join("."), &BLOCK),
            ("downsample", _) => (Role::Down(i), p[3..].join("."), &DOWN),
            _ => return key.to_string(),
        };
        let n = self.features().iter().position(|&r| r == role);
        match (n, rename(&rest, table, false)) {
            (Some(n), Some(r)) => format!("features.{n}.{r}"),
            _ => key.to_string(),
        }
    }

    /// Timm key → our module path (`c` → `conv`, BN `weight`/`bias` →
    /// `gamma`/`beta`).
    pub fn timm_to_model(&self, key: &str) -> String {
        LEAVES[0].apply(key)
    }

    /// Our module path → timm key.
    pub fn model_to_timm(&self, path: &str) -> String {
        LEAVES[1].apply(path)
    }

    /// A file key in `layout` → our module path.
    pub fn to_model_path(&self, layout: RepVitLayout, key: &str) -> String {
        match layout {
            RepVitLayout::Official => self.timm_to_model(&self.official_to_timm(key)),
            RepVitLayout::Cion => {
                self.timm_to_model(&self.official_to_timm(&rename_se(key, &CION_SE, true)))
            }
            RepVitLayout::Timm => self.timm_to_model(key),
        }
    }

    /// Our module path → the file key in `layout`.
    pub fn to_file_key(&self, layout: RepVitLayout, path: &str) -> String {
        let timm = self.model_to_timm(path);
        match layout {
            RepVitLayout::Official => self.timm_to_official(&timm),
            RepVitLayout::Cion => rename_se(&self.timm_to_official(&timm), &CION_SE, false),
            RepVitLayout::Timm => timm,
        }
    }
}

impl RepVitLayout {
    /// Recognises the naming from keys (wrappers removed): `features.*`
    /// with a `….token_mixer.1.conv_reduce.*` key → CION; other
    /// `features.*` → official; `stem.*` / `stages.*` → timm.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String>) -> Option<Self> {
        let (mut official, mut cion, mut timm) = (false, false, false);
        for k in keys {
            if k.starts_with("features.") {
                official = true;
                cion |= k.contains(".token_mixer.1.conv_reduce.");
            }
            timm |= k.starts_with("stem.") || k.starts_with("stages.");
        }
        match (official, cion, timm) {
            (true, true, _) => Some(Self::Cion),
            (true, false, _) => Some(Self::Official),
            (false, _, true) => Some(Self::Timm),
            _ => None,
        }
    }

    /// The SE kind a file in this naming needs, if its keys show any SE
    /// (`keys`: the file's keys with the wrappers removed): CION's for
    /// [`RepVitLayout::Cion`], timm's when an `fc1` SE key is present, else
    /// `None` (no SE in the file: the model's kind stays).
    pub fn se_kind<'a>(self, keys: impl IntoIterator<Item = &'a String>) -> Option<RepVitSeKind> {
        match self {
            Self::Cion => Some(RepVitSeKind::Cion),
            Self::Official => keys
                .into_iter()
                .any(|k| k.starts_with("features.") && k.contains(".token_mixer.1.fc1."))
                .then_some(RepVitSeKind::Timm),
            Self::Timm => keys
                .into_iter()
                .any(|k| k.contains(".se.fc1."))
                .then_some(RepVitSeKind::Timm),
        }
    }
}

/// Loads a RepViT checkpoint in the training form (official, CION or timm
/// naming; bare, CION `teacher` or `model` wrapper; `.pth` or safetensors)
/// into `model` (not yet re-parameterised), strictly: any missing,
/// unexpected or mis-shaped key is a [`BackboneError::KeyMismatch`] naming
/// them in the file's layout. The model's SEs become the kind the file's
/// keys show ([`RepVitLayout::se_kind`]; see the module documentation);
/// on an error `model` is left as it was.
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)).
pub fn load_repvit(
    model: &mut RepVit,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<RepVitImportReport, BackboneError> {
    let map = RepVitKeys::of(model);
    let read = Unwrapped::read(path.as_ref(), options, "RepViT")?;
    let expected = "official / CION `features.*` or timm `stem.*` / `stages.*`";
    let layout = read.detect(|keys| RepVitLayout::detect(keys), expected)?;
    let mut target = match layout.se_kind(&read.keys()) {
        Some(kind) if model.se_kind().is_some_and(|k| k != kind) => {
            model.clone().with_se_kind(kind)
        }
        _ => model.clone(),
    };
    let to_model_path = |k: &str| Some(map.to_model_path(layout, k));
    let report = read.apply(&mut target, options, layout, to_model_path, |p| {
        map.to_file_key(layout, p)
    })?;
    *model = target;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_detects, owned};

    #[test]
    fn official_timm_and_model_names_round_trip() {
        // M0.9-like depths: features = stem, 2 blocks, pre, down, 2 blocks,
        // pre (7), down (8), 14 blocks (9–22), pre (23), down (24), 2 blocks.
        let keys = RepVitKeys {
            depths: [2, 2, 14, 2],
        };
        let cases = [
            (
                "features.0.0.c.weight",
                "stem.conv1.c.weight",
                "stem.conv1.conv.weight",
            ),
            (
                "features.0.2.bn.weight",
                "stem.conv2.bn.weight",
                "stem.conv2.bn.gamma",
            ),
            (
                "features.1.token_mixer.0.conv.c.weight",
                "stages.0.blocks.0.token_mixer.conv.c.weight",
                "stages.0.blocks.0.token_mixer.conv.conv.weight",
            ),
            (
                "features.2.token_mixer.0.conv1.bias",
                "stages.0.blocks.1.token_mixer.conv1.bias",
                "stages.0.blocks.1.token_mixer.conv1.bias",
            ),
            (
                "features.1.token_mixer.0.bn.running_var",
                "stages.0.blocks.0.token_mixer.bn.running_var",
                "stages.0.blocks.0.token_mixer.bn.running_var",
            ),
            (
                "features.1.token_mixer.1.fc1.weight",
                "stages.0.blocks.0.se.fc1.weight",
                "stages.0.blocks.0.se.fc1.weight",
            ),
            (
                "features.3.channel_mixer.m.2.bn.bias",
                "stages.1.downsample.pre_block.channel_mixer.conv2.bn.bias",
                "stages.1.downsample.pre_block.channel_mixer.conv2.bn.beta",
            ),
            (
                "features.4.token_mixer.0.c.weight",
                "stages.1.downsample.spatial_downsample.c.weight",
                "stages.1.downsample.spatial_downsample.conv.weight",
            ),
            (
                "features.8.token_mixer.2.bn.running_mean",
                "stages.2.downsample.channel_downsample.bn.running_mean",
                "stages.2.downsample.channel_downsample.bn.running_mean",
            ),
            (
                "features.24.channel_mixer.m.0.c.weight",
                "stages.3.downsample.ffn.conv1.c.weight",
                "stages.3.downsample.ffn.conv1.conv.weight",
            ),
            (
                "features.22.channel_mixer.m.0.bn.weight",
                "stages.2.blocks.13.channel_mixer.conv1.bn.weight",
                "stages.2.blocks.13.channel_mixer.conv1.bn.gamma",
            ),
            (
                "features.26.token_mixer.1.fc2.bias",
                "stages.3.blocks.1.se.fc2.bias",
                "stages.3.blocks.1.se.fc2.bias",
            ),
        ];
        for (official, timm, ours) in cases {
            assert_eq!(keys.official_to_timm(official), timm, "{official}");
            assert_eq!(keys.timm_to_official(timm), official, "{timm}");
            assert_eq!(keys.to_model_path(RepVitLayout::Official, official), ours);
            assert_eq!(keys.to_model_path(RepVitLayout::Timm, timm), ours);
            assert_eq!(keys.to_file_key(RepVitLayout::Official, ours), official);
            assert_eq!(keys.to_file_key(RepVitLayout::Timm, ours), timm);
        }
        assert_eq!(
            keys.official_to_timm("classifier.classifier_dist.l.weight"),
            "head.head_dist.l.weight"
        );
        // Beyond the list: unchanged (reported as unexpected).
        assert_eq!(
            keys.official_to_timm("features.27.x.weight"),
            "features.27.x.weight"
        );
        assert_detects(
            |k| RepVitLayout::detect(k),
            &[
                (&["features.0.0.c.weight"], Some(RepVitLayout::Official)),
                (&["stem.conv1.c.weight"], Some(RepVitLayout::Timm)),
                (&["conv1.weight"], None),
            ],
        );
    }

    #[test]
    fn cion_se_names_detection_and_kind() {
        let keys = RepVitKeys {
            depths: [2, 2, 14, 2],
        };
        for (cion, ours) in [
            (
                "features.1.token_mixer.1.conv_reduce.weight",
                "stages.0.blocks.0.se.fc1.weight",
            ),
            (
                "features.26.token_mixer.1.conv_expand.bias",
                "stages.3.blocks.1.se.fc2.bias",
            ),
            (
                "features.1.token_mixer.0.conv.c.weight",
                "stages.0.blocks.0.token_mixer.conv.conv.weight",
            ),
        ] {
            assert_eq!(keys.to_model_path(RepVitLayout::Cion, cion), ours);
            assert_eq!(keys.to_file_key(RepVitLayout::Cion, ours), cion);
        }
        // A timm SE name in a CION file stays unexpected.
        assert_eq!(
            keys.to_model_path(RepVitLayout::Cion, "features.1.token_mixer.1.fc1.weight"),
            "stages.0.blocks.0.se.fc1.weight"
        );
        let cion = owned(&[
            "features.0.0.c.weight",
            "features.1.token_mixer.1.conv_reduce.weight",
        ]);
        assert_eq!(RepVitLayout::detect(&cion), Some(RepVitLayout::Cion));
        assert_eq!(RepVitLayout::Cion.se_kind(&cion), Some(RepVitSeKind::Cion));
        let official = owned(&[
            "features.0.0.c.weight",
            "features.1.token_mixer.1.fc1.weight",
        ]);
        assert_eq!(
            RepVitLayout::Official.se_kind(&official),
            Some(RepVitSeKind::Timm)
        );
        let no_se = owned(&["features.0.0.c.weight"]);
        assert_eq!(RepVitLayout::Official.se_kind(&no_se), None);
        let timm = owned(&["stages.0.blocks.0.se.fc1.weight"]);
        assert_eq!(RepVitLayout::Timm.se_kind(&timm), Some(RepVitSeKind::Timm));
        assert_eq!(RepVitLayout::Cion.to_string(), "repvit-cion");
    }
}
