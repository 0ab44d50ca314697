//! Loading VOLO checkpoints strictly. sail-sg's official code, CION's copy
//! (`CION_Finetune/TransReID/model/backbones/VOLO.py`) and timm's `VOLO`
//! share one naming, so there is one layout:
//!
//! | our module path | PyTorch |
//! |---|---|
//! | `patch_embed.conv.{0,3,6}.weight` (convolutions) | same |
//! | `patch_embed.conv.{1,4,7}.{gamma,beta,running_mean,running_var}` (BN) | `patch_embed.conv.{1,4,7}.{weight,bias,running_mean,running_var}` |
//! | `patch_embed.proj.*`, `pos_embed`, `cls_token` | same |
//! | `outlookers.j.{norm1,attn.v,attn.attn,attn.proj,norm2,mlp.fc1,mlp.fc2}.*` | `network.0.j.*` |
//! | `downsample.proj.*` | `network.1.proj.*` |
//! | `stages.i.blocks.j.{norm1,attn.qkv,attn.proj,norm2,mlp.*}.*` | `network.{i+2}.j.*` |
//! | `post_network.j.{norm1,attn.q,attn.kv,attn.proj,norm2,mlp.*}.*` | same |
//! | `norm.{gamma,beta}` | `norm.{weight,bias}` |
//!
//! Norm `weight`/`bias` (LayerNorm and BatchNorm) are our `gamma`/`beta`;
//! linear weights stay `[out, in]` as in PyTorch. Wrappers are removed as
//! for ConvNeXt ([`crate::import::unwrap_key`]: CION `teacher` with
//! `module.backbone.` — VOLO has BN, so CION's teacher was DDP-wrapped — or
//! `backbone.`; a `model` dictionary), then a common `state_dict.`,
//! `module.` or `backbone.` prefix. `num_batches_tracked` is set aside (and
//! reported). The ImageNet classifier `head.*` and the token-labelling
//! `aux_head.*` of official / timm files are **unexpected** unless allowed
//! ([`ImportOptions::allow_unexpected`], e.g. `["head.*", "aux_head.*"]`).
//! `pos_embed` is checked against the configured grid (`[1, H₀/16, W₀/16,
//! C]`): an ImageNet file (14×14) is mis-shaped for a 256×128 model.

use std::path::Path;

use crate::error::BackboneError;
use crate::import::family::{FamilyImportReport, Unwrapped};
use crate::import::keys::{burn_norm_leaf, torch_norm_leaf};
use crate::import::options::ImportOptions;
use crate::volo::Volo;

/// Norm modules of the blocks (LayerNorm).
const NORM_NAMES: [&str; 3] = ["norm", "norm1", "norm2"];

/// Whether stem layer `index` (of `patch_embed.conv`) is a BatchNorm: the
/// stem is (conv, BN, ReLU) three times.
fn is_stem_batch_norm(index: &str) -> bool {
    index.parse::<usize>().is_ok_and(|i| i % 3 == 1)
}

/// `weight`/`bias` → `gamma`/`beta` when the module is a norm.
fn norm_leaf(is_norm: bool, leaf: &str) -> &str {
    if is_norm { burn_norm_leaf(leaf) } else { leaf }
}

/// `head` followed by `rest`, as owned segments.
fn segments(head: &[&str], rest: &[&str]) -> Vec<String> {
    head.iter().chain(rest).map(|s| s.to_string()).collect()
}

/// What [`load_volo`] did (VOLO has one naming, shared by sail-sg, CION
/// and timm: the layout is `"volo"`).
pub type VoloImportReport = FamilyImportReport<&'static str>;

/// Our module path of a PyTorch VOLO key (sail-sg / CION / timm naming).
/// `None` for keys no VOLO backbone parameter has (`head.*`, `aux_head.*`,
/// anything else outside the backbone's roots).
pub fn volo_model_path(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let (&leaf, body) = parts.split_last()?;
    let module = body.last().copied().unwrap_or("");
    let mut out = match body {
        [] if matches!(leaf, "pos_embed" | "cls_token") => Vec::new(),
        ["patch_embed", "conv", i] => {
            let leaf = norm_leaf(is_stem_batch_norm(i), leaf);
            return Some(format!("patch_embed.conv.{i}.{leaf}"));
        }
        ["patch_embed", "proj"] | ["post_network", _, ..] | ["norm"] => segments(body, &[]),
        ["network", "0", j, rest @ ..] => segments(&["outlookers", *j], rest),
        ["network", "1", rest @ ..] => segments(&["downsample"], rest),
        ["network", n, j, rest @ ..] => {
            let stage = n.parse::<usize>().ok()?.checked_sub(2)?.to_string();
            segments(&["stages", &stage, "blocks", *j], rest)
        }
        _ => return None,
    };
    out.push(norm_leaf(NORM_NAMES.contains(&module), leaf).to_string());
    Some(out.join("."))
}

/// The PyTorch key of one of our module paths (inverse of
/// [`volo_model_path`]).
pub fn volo_file_key(model_path: &str) -> String {
    let parts: Vec<&str> = model_path.split('.').collect();
    let Some((&leaf, body)) = parts.split_last() else {
        return model_path.to_string();
    };
    let leaf = torch_norm_leaf(leaf);
    let mut out = match body {
        ["outlookers", j, rest @ ..] => segments(&["network", "0", *j], rest),
        ["downsample", rest @ ..] => segments(&["network", "1"], rest),
        ["stages", i, "blocks", j, rest @ ..] => {
            let network = i
                .parse::<usize>()
                .map(|i| (i + 2).to_string())
                .unwrap_or_else(|_| i.to_string());
            segments(&["network", &network, *j], rest)
        }
        _ => segments(body, &[]),
    };
    out.push(leaf.to_string());
    out.join(".")
}

/// Loads a VOLO checkpoint (sail-sg / CION / timm naming; bare, CION
/// `teacher` or `model` wrapper; `.pth` or safetensors) into `model`,
/// strictly: any missing, unexpected or mis-shaped key is a
/// [`BackboneError::KeyMismatch`] naming them in PyTorch's naming (layout
/// `"volo"`).
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)); a file without
/// `patch_embed.*` / `network.*` keys is an error.
pub fn load_volo(
    model: &mut Volo,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<VoloImportReport, BackboneError> {
    let looks_like_volo = |k: &String| k.starts_with("patch_embed.") || k.starts_with("network.");
    let read = Unwrapped::read(path.as_ref(), options, "VOLO")?;
    let expected = "`patch_embed.*` / `network.*`";
    let layout = read.detect(
        |keys| keys.iter().any(looks_like_volo).then_some("volo"),
        expected,
    )?;
    read.apply(model, options, layout, volo_model_path, volo_file_key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use burn::store::ModuleSnapshot;
    use burn::tensor::Device;

    use super::*;
    use crate::volo::VoloConfig;

    #[test]
    fn pytorch_names_map_to_module_paths_and_back() {
        let cases = [
            ("patch_embed.conv.0.weight", "patch_embed.conv.0.weight"),
            ("patch_embed.conv.1.weight", "patch_embed.conv.1.gamma"),
            ("patch_embed.conv.4.bias", "patch_embed.conv.4.beta"),
            (
                "patch_embed.conv.7.running_var",
                "patch_embed.conv.7.running_var",
            ),
            ("patch_embed.conv.6.weight", "patch_embed.conv.6.weight"),
            ("patch_embed.proj.bias", "patch_embed.proj.bias"),
            ("pos_embed", "pos_embed"),
            ("cls_token", "cls_token"),
            ("network.0.3.norm1.weight", "outlookers.3.norm1.gamma"),
            ("network.0.0.attn.attn.bias", "outlookers.0.attn.attn.bias"),
            ("network.0.1.attn.v.weight", "outlookers.1.attn.v.weight"),
            ("network.0.2.mlp.fc2.weight", "outlookers.2.mlp.fc2.weight"),
            ("network.1.proj.weight", "downsample.proj.weight"),
            (
                "network.2.0.attn.qkv.weight",
                "stages.0.blocks.0.attn.qkv.weight",
            ),
            ("network.3.5.norm2.bias", "stages.1.blocks.5.norm2.beta"),
            ("network.4.1.mlp.fc1.bias", "stages.2.blocks.1.mlp.fc1.bias"),
            (
                "post_network.1.attn.kv.weight",
                "post_network.1.attn.kv.weight",
            ),
            ("post_network.0.norm1.weight", "post_network.0.norm1.gamma"),
            (
                "post_network.0.attn.q.weight",
                "post_network.0.attn.q.weight",
            ),
            ("norm.weight", "norm.gamma"),
            ("norm.bias", "norm.beta"),
        ];
        for (torch, ours) in cases {
            assert_eq!(volo_model_path(torch).as_deref(), Some(ours), "{torch}");
            assert_eq!(volo_file_key(ours), torch, "{ours}");
        }
        for key in [
            "head.weight",
            "aux_head.bias",
            "network.x.0.norm1.weight",
            "network.2",
            "blocks.0.norm1.weight",
            "weight",
        ] {
            assert_eq!(volo_model_path(key), None, "{key}");
        }
    }

    /// Every tensor of a model maps to a PyTorch key and back to itself, and
    /// the keys are the upstream ones (sail-sg / timm `state_dict()` names).
    #[test]
    fn every_model_tensor_round_trips() {
        let device = Device::flex();
        let model = VoloConfig::new([2, 1, 2, 1], [8, 16, 16, 16], [2, 4, 4, 4])
            .with_img_size([64, 32])
            .with_stem_hidden_dim(8)
            .init(&device)
            .unwrap();
        let mut keys = BTreeSet::new();
        for t in model.collect(None, None, true) {
            let key = volo_file_key(&t.name);
            assert_eq!(volo_model_path(&key).as_deref(), Some(t.name.as_str()));
            keys.insert(key);
        }
        for key in [
            "patch_embed.conv.7.running_mean",
            "network.0.1.attn.attn.weight",
            "network.1.proj.bias",
            "network.3.0.attn.qkv.weight",
            "network.4.0.norm2.weight",
            "post_network.1.mlp.fc2.bias",
            "cls_token",
            "pos_embed",
            "norm.bias",
        ] {
            assert!(keys.contains(key), "{key} not among {keys:?}");
        }
        // 3 BNs × 4, 3 convs, proj ×2, 2 outlookers × 13 (no bias on `v`),
        // downsample ×2, pos/cls, 4 transformer blocks × 11 (no bias on
        // `qkv`), 2 class blocks × 12 (none on `q`, `kv`), norm ×2.
        assert_eq!(keys.len(), 12 + 3 + 2 + 26 + 2 + 2 + 44 + 24 + 2);
    }
}
