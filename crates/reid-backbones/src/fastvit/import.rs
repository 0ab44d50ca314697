//! Loading FastViT checkpoints (training form, unfused branches) strictly:
//! Apple's official ml-fastvit names (what CION's ReIDZoo files hold) and
//! timm's.
//!
//! | our module path | official | timm |
//! |---|---|---|
//! | `stem.k.*` | `patch_embed.k.*` | `stem.k.*` |
//! | `….conv_kxk.b.{conv,bn}.*` / `….conv_scale.*` / `….identity.*` | `….rbr_conv.b.*` / `….rbr_scale.*` / `….rbr_skip.*` | same as ours |
//! | `stages.i.downsample.large.{large_conv,small_conv}.*` | `network.N.proj.0.{lkb_origin,small_conv}.*` | `stages.i.downsample.proj.0.{large_conv,small_conv}.*` |
//! | `stages.i.downsample.pointwise.*` | `network.N.proj.1.*` | `stages.i.downsample.proj.1.*` |
//! | `stages.i.pos_emb.pos_enc.*` | `network.N.pe.*` | same as ours |
//! | `stages.i.blocks.j.*` (RepMixer) / `stages.i.attn_blocks.j.*` (attention) | `network.N.j.*` | `stages.i.blocks.j.*` |
//! | `….mlp.*` | `….convffn.*` | `….mlp.*` |
//! | `….layer_scale.gamma`, `….layer_scale_{1,2}.gamma` | `….layer_scale`, `….layer_scale_{1,2}` | same as ours |
//! | `final_conv.*`, `final_conv.se.{fc1,fc2}.*` | `conv_exp.*`, `conv_exp.se.{reduce,expand}.*` | same as ours |
//!
//! The official flat `network` list holds, stage by stage, the patch
//! embedding (stages 2–4), the RepCPE (where the model has one) and the
//! blocks; `N` is counted from the model's structure. BatchNorm
//! `weight`/`bias` are our `gamma`/`beta`. Wrappers are removed as for
//! ConvNeXt ([`crate::import::unwrap_key`]: CION `teacher` — FastViT has BN, so its
//! keys carry `module.backbone.` — or a `model` dictionary), then a common
//! `state_dict.`, `module.` or `backbone.` prefix; `num_batches_tracked` is
//! set aside. A classifier (official `head.*`, timm `head.fc.*`) is
//! unexpected unless allowed.

use std::path::Path;
use std::sync::LazyLock;

use crate::error::BackboneError;
use crate::fastvit::FastVit;
use crate::import::family::{FamilyImportReport, Unwrapped, layout_enum};
use crate::import::keys::{burn_norm_leaf, torch_norm_leaf};
use crate::import::options::ImportOptions;
use crate::import::renames::{Place, Renames, segments};

layout_enum! {
    /// Key naming of a FastViT checkpoint (after the wrappers are removed).
    pub enum FastVitLayout {
        /// apple/ml-fastvit (also CION's copy): `patch_embed.*`, `network.N.*`,
        /// `rbr_*`, `conv_exp.*`.
        Official => "fastvit-official",
        /// timm's `FastVit`: `stem.*`, `stages.i.*`, `conv_kxk`, `final_conv.*`.
        Timm => "fastvit-timm",
    }
}

/// What [`load_fastvit`] did (the layout is a [`FastVitLayout`]).
pub type FastVitImportReport = FamilyImportReport<FastVitLayout>;

/// The module names of the official naming and timm's (whole segments,
/// anywhere in a key; the official layer scales are bare parameters).
const SEGMENTS: [[&str; 2]; 7] = [
    ["rbr_conv", "conv_kxk"],
    ["rbr_scale", "conv_scale"],
    ["rbr_skip", "identity"],
    ["lkb_origin", "large_conv"],
    ["convffn", "mlp"],
    ["se.reduce", "se.fc1"],
    ["se.expand", "se.fc2"],
];

/// The layer scales: bare parameters in the official naming, modules with a
/// `gamma` in timm's (the last segments of a key).
const LAYER_SCALES: [[&str; 2]; 3] = [
    ["layer_scale", "layer_scale.gamma"],
    ["layer_scale_1", "layer_scale_1.gamma"],
    ["layer_scale_2", "layer_scale_2.gamma"],
];

/// [`SEGMENTS`] and [`LAYER_SCALES`] as renames: `[official → timm, timm →
/// official]`.
static RENAMES: LazyLock<[Renames; 2]> = LazyLock::new(|| {
    let renames = |from, to| {
        let pairs = segments(&SEGMENTS, from, to, Place::Anywhere);
        Renames::new(
            pairs
                .into_iter()
                .chain(segments(&LAYER_SCALES, from, to, Place::End)),
        )
    };
    [renames(0, 1), renames(1, 0)]
});

/// What one entry of the official `network` list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Downsample,
    PosEmb,
    Blocks,
}

/// The structure the key mapping needs: per stage, whether it has a
/// RepCPE and whether its blocks are attention blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastVitKeys {
    /// Stages preceded by a RepCPE.
    pub pos_emb: [bool; 4],
    /// Stages of attention blocks.
    pub attention: [bool; 4],
}

impl FastVitKeys {
    /// Read from a model.
    pub fn of(model: &FastVit) -> Self {
        let mut keys = Self {
            pos_emb: [false; 4],
            attention: [false; 4],
        };
        for (i, s) in model.stages.iter().enumerate().take(4) {
            keys.pos_emb[i] = s.pos_emb.is_some();
            keys.attention[i] = !s.attn_blocks.is_empty();
        }
        keys
    }

    /// The official `network` list: `(stage, role)` per index.
    fn network(&self) -> Vec<(usize, Role)> {
        let mut out = Vec::new();
        for i in 0..4 {
            if i > 0 {
                out.push((i, Role::Downsample));
            }
            if self.pos_emb[i] {
                out.push((i, Role::PosEmb));
            }
            out.push((i, Role::Blocks));
        }
        out
    }

    /// Official key → timm key.
    pub fn official_to_timm(&self, key: &str) -> String {
        let mut p: Vec<String> = key.split('.').map(String::from).collect();
        match p.first().map(String::as_str) {
            Some("patch_embed") => p[0] = "stem".into(),
            Some("conv_exp") => p[0] = "final_conv".into(),
            Some("network") if p.len() > 2 => {
                let role = p[1]
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| self.network().get(n).copied());
                if let Some((i, role)) = role {
                    let head: Vec<String> = match role {
                        Role::Downsample => {
                            vec!["stages".into(), i.to_string(), "downsample".into()]
                        }
                        Role::Blocks => vec!["stages".into(), i.to_string(), "blocks".into()],
                        Role::PosEmb if p[2] == "pe" => {
                            p.remove(2);
                            vec![
                                "stages".into(),
                                i.to_string(),
                                "pos_emb".into(),
                                "pos_enc".into(),
                            ]
                        }
                        Role::PosEmb => vec!["stages".into(), i.to_string(), "pos_emb".into()],
                    };
                    p.splice(0..2, head);
                }
            }
            _ => {}
        }
        RENAMES[0].apply(&p.join("."))
    }

    /// Timm key → official key (inverse of [`FastVitKeys::official_to_timm`]).
    pub fn timm_to_official(&self, key: &str) -> String {
        let key = RENAMES[1].apply(key);
        let mut p: Vec<String> = key.split('.').map(String::from).collect();
        match p.first().map(String::as_str) {
            Some("stem") => p[0] = "patch_embed".into(),
            Some("final_conv") => p[0] = "conv_exp".into(),
            Some("stages") if p.len() > 3 => {
                let stage = p[1].parse::<usize>().ok();
                let (role, drop) = match p[2].as_str() {
                    "downsample" => (Role::Downsample, 3),
                    "blocks" => (Role::Blocks, 3),
                    "pos_emb" if p[3] == "pos_enc" => (Role::PosEmb, 4),
                    _ => return p.join("."),
                };
                let n = stage.and_then(|i| self.network().iter().position(|&e| e == (i, role)));
                if let Some(n) = n {
                    let mut head = vec!["network".to_string(), n.to_string()];
                    if role == Role::PosEmb {
                        head.push("pe".into());
                    }
                    p.splice(0..drop, head);
                }
            }
            _ => {}
        }
        p.join(".")
    }

    /// Timm key → our module path.
    pub fn timm_to_model(&self, key: &str) -> String {
        let mut p: Vec<String> = key.split('.').map(String::from).collect();
        if p.len() > 4 && p[0] == "stages" && p[2] == "downsample" && p[3] == "proj" {
            let part = if p[4] == "0" { "large" } else { "pointwise" };
            p.splice(3..5, [part.to_string()]);
        }
        let attention = |s: &str| {
            s.parse::<usize>()
                .ok()
                .and_then(|i| self.attention.get(i).copied())
        };
        if p.len() > 3 && p[0] == "stages" && p[2] == "blocks" && attention(&p[1]) == Some(true) {
            p[2] = "attn_blocks".into();
        }
        let n = p.len();
        if n >= 2 && is_bn(&p) {
            p[n - 1] = burn_norm_leaf(&p[n - 1]).to_string();
        }
        p.join(".")
    }

    /// Our module path → timm key.
    pub fn model_to_timm(&self, path: &str) -> String {
        let mut p: Vec<String> = path.split('.').map(String::from).collect();
        let n = p.len();
        if n >= 2 && is_bn(&p) {
            p[n - 1] = torch_norm_leaf(&p[n - 1]).to_string();
        }
        if p.len() > 3 && p[2] == "attn_blocks" {
            p[2] = "blocks".into();
        }
        if p.len() > 3 && p[0] == "stages" && p[2] == "downsample" {
            let idx = match p[3].as_str() {
                "large" => Some("0"),
                "pointwise" => Some("1"),
                _ => None,
            };
            if let Some(idx) = idx {
                p.splice(3..4, ["proj".to_string(), idx.to_string()]);
            }
        }
        p.join(".")
    }

    /// A file key in `layout` → our module path.
    pub fn to_model_path(&self, layout: FastVitLayout, key: &str) -> String {
        match layout {
            FastVitLayout::Official => self.timm_to_model(&self.official_to_timm(key)),
            FastVitLayout::Timm => self.timm_to_model(key),
        }
    }

    /// Our module path → the file key in `layout`.
    pub fn to_file_key(&self, layout: FastVitLayout, path: &str) -> String {
        let timm = self.model_to_timm(path);
        match layout {
            FastVitLayout::Official => self.timm_to_official(&timm),
            FastVitLayout::Timm => timm,
        }
    }
}

/// Whether the path's last-but-one segment names a BatchNorm: `identity`
/// / `rbr_skip` / `bn`, or an attention block's `norm`
/// (`…attn_blocks.j.norm`).
fn is_bn(p: &[String]) -> bool {
    let n = p.len();
    let parent = p[n - 2].as_str();
    matches!(parent, "identity" | "bn") || (parent == "norm" && n >= 4 && p[n - 4] == "attn_blocks")
}

impl FastVitLayout {
    /// Recognises the naming from keys (wrappers removed): `patch_embed.*`
    /// / `network.*` → official; `stem.*` / `stages.*` → timm.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String>) -> Option<Self> {
        let mut timm = false;
        for k in keys {
            if k.starts_with("patch_embed.") || k.starts_with("network.") {
                return Some(Self::Official);
            }
            timm |= k.starts_with("stem.") || k.starts_with("stages.");
        }
        timm.then_some(Self::Timm)
    }
}

/// Loads a FastViT checkpoint in the training form (official or timm
/// naming; bare, CION `teacher` or `model` wrapper; `.pth` or safetensors)
/// into `model` (not yet re-parameterised), strictly: any missing,
/// unexpected or mis-shaped key is a [`BackboneError::KeyMismatch`] naming
/// them in the file's layout.
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)).
pub fn load_fastvit(
    model: &mut FastVit,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<FastVitImportReport, BackboneError> {
    let map = FastVitKeys::of(model);
    let read = Unwrapped::read(path.as_ref(), options, "FastViT")?;
    let expected = "official `patch_embed.*` / `network.*` or timm `stem.*` / `stages.*`";
    let layout = read.detect(|keys| FastVitLayout::detect(keys), expected)?;
    let to_model_path = |k: &str| Some(map.to_model_path(layout, k));
    read.apply(model, options, layout, to_model_path, |p| {
        map.to_file_key(layout, p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_detects;

    const SA: FastVitKeys = FastVitKeys {
        pos_emb: [false, false, false, true],
        attention: [false, false, false, true],
    };
    const S: FastVitKeys = FastVitKeys {
        pos_emb: [false; 4],
        attention: [false; 4],
    };

    #[test]
    fn official_timm_and_model_names_round_trip() {
        // (keys, official, timm, ours)
        let cases = [
            (
                SA,
                "patch_embed.0.rbr_conv.0.bn.weight",
                "stem.0.conv_kxk.0.bn.weight",
                "stem.0.conv_kxk.0.bn.gamma",
            ),
            (
                SA,
                "patch_embed.2.rbr_skip.running_var",
                "stem.2.identity.running_var",
                "stem.2.identity.running_var",
            ),
            (
                SA,
                "network.0.1.token_mixer.mixer.rbr_scale.conv.weight",
                "stages.0.blocks.1.token_mixer.mixer.conv_scale.conv.weight",
                "stages.0.blocks.1.token_mixer.mixer.conv_scale.conv.weight",
            ),
            (
                SA,
                "network.0.0.token_mixer.layer_scale",
                "stages.0.blocks.0.token_mixer.layer_scale.gamma",
                "stages.0.blocks.0.token_mixer.layer_scale.gamma",
            ),
            (
                SA,
                "network.1.proj.0.lkb_origin.bn.bias",
                "stages.1.downsample.proj.0.large_conv.bn.bias",
                "stages.1.downsample.large.large_conv.bn.beta",
            ),
            (
                SA,
                "network.5.proj.1.rbr_conv.0.conv.weight",
                "stages.3.downsample.proj.1.conv_kxk.0.conv.weight",
                "stages.3.downsample.pointwise.conv_kxk.0.conv.weight",
            ),
            (
                SA,
                "network.6.pe.weight",
                "stages.3.pos_emb.pos_enc.weight",
                "stages.3.pos_emb.pos_enc.weight",
            ),
            (
                SA,
                "network.7.1.norm.weight",
                "stages.3.blocks.1.norm.weight",
                "stages.3.attn_blocks.1.norm.gamma",
            ),
            (
                SA,
                "network.7.0.token_mixer.qkv.weight",
                "stages.3.blocks.0.token_mixer.qkv.weight",
                "stages.3.attn_blocks.0.token_mixer.qkv.weight",
            ),
            (
                SA,
                "network.7.0.layer_scale_2",
                "stages.3.blocks.0.layer_scale_2.gamma",
                "stages.3.attn_blocks.0.layer_scale_2.gamma",
            ),
            (
                SA,
                "network.4.3.convffn.conv.bn.running_mean",
                "stages.2.blocks.3.mlp.conv.bn.running_mean",
                "stages.2.blocks.3.mlp.conv.bn.running_mean",
            ),
            (
                S,
                "network.6.1.token_mixer.norm.rbr_skip.weight",
                "stages.3.blocks.1.token_mixer.norm.identity.weight",
                "stages.3.blocks.1.token_mixer.norm.identity.gamma",
            ),
            (
                S,
                "conv_exp.se.reduce.weight",
                "final_conv.se.fc1.weight",
                "final_conv.se.fc1.weight",
            ),
            (
                S,
                "conv_exp.rbr_scale.bn.weight",
                "final_conv.conv_scale.bn.weight",
                "final_conv.conv_scale.bn.gamma",
            ),
        ];
        for (keys, official, timm, ours) in cases {
            assert_eq!(keys.official_to_timm(official), timm, "{official}");
            assert_eq!(keys.timm_to_official(timm), official, "{timm}");
            assert_eq!(keys.to_model_path(FastVitLayout::Official, official), ours);
            assert_eq!(keys.to_model_path(FastVitLayout::Timm, timm), ours);
            assert_eq!(keys.to_file_key(FastVitLayout::Official, ours), official);
            assert_eq!(keys.to_file_key(FastVitLayout::Timm, ours), timm);
        }
        assert_detects(
            |k| FastVitLayout::detect(k),
            &[
                (&["network.0.0.layer_scale"], Some(FastVitLayout::Official)),
                (&["stem.0.identity.weight"], Some(FastVitLayout::Timm)),
                (&["conv1.weight"], None),
            ],
        );
    }
}
