//! Loading GhostNet checkpoints strictly. Huawei's official code and timm's
//! `ghostnet_*` share one naming, so there is one layout:
//!
//! | our module path | PyTorch |
//! |---|---|
//! | `conv_stem.*`, `bn1.*` | `conv_stem.*`, `bn1.*` |
//! | `blocks.i.j.ghostK.primary_conv.*` / `primary_bn.*` | `blocks.i.j.ghostK.primary_conv.0.*` / `.1.*` |
//! | `blocks.i.j.ghostK.cheap_conv.*` / `cheap_bn.*` | `blocks.i.j.ghostK.cheap_operation.0.*` / `.1.*` |
//! | `blocks.i.j.{conv_dw,bn_dw,se.conv_reduce,se.conv_expand}.*` | same |
//! | `blocks.i.j.shortcut.{dw_conv,dw_bn,pw_conv,pw_bn}.*` | `blocks.i.j.shortcut.{0,1,2,3}.*` |
//! | `final_conv.{conv,bn1}.*` | `blocks.9.0.{conv,bn1}.*` |
//! | `conv_head.*` | `conv_head.*` |
//!
//! BatchNorm `weight`/`bias` are our `gamma`/`beta`. Wrappers are removed as
//! for ConvNeXt ([`super::unwrap_key`]: CION `teacher` with
//! `module.backbone.` — GhostNet has BN, so CION's teacher was DDP-wrapped —
//! or `backbone.`; a `model` dictionary), then a common `state_dict.`,
//! `module.` or `backbone.` prefix. Set aside with a reason:
//! `num_batches_tracked` and thop's `total_ops` / `total_params` profiling
//! buffers. The ImageNet `classifier.*` is unexpected unless allowed.

use std::path::Path;

use super::ImportOptions;
use super::family::{FamilyImportReport, Unwrapped};
use crate::error::BackboneError;
use crate::ghostnet::GhostNet;

const BN_NAMES: [&str; 6] = ["bn1", "bn_dw", "primary_bn", "cheap_bn", "dw_bn", "pw_bn"];
const THOP: &str = "thop profiling buffers (total_ops / total_params)";

/// Our module path of a PyTorch GhostNet key; `stages` is the number of
/// Ghost-bottleneck stages (9), whose index names the final conv-BN-ReLU.
/// `None` for keys no GhostNet parameter has (e.g. `classifier.*`).
pub fn ghostnet_model_path(key: &str, stages: usize) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let last_stage = stages.to_string();
    let mut i = 0;
    while i < parts.len() {
        let next = parts.get(i + 1).copied();
        let pair = match (parts[i], next) {
            ("blocks", Some(n)) if n == last_stage && parts.get(i + 2) == Some(&"0") => {
                out.push("final_conv".into());
                i += 3;
                continue;
            }
            ("primary_conv", Some("0")) => Some("primary_conv"),
            ("primary_conv", Some("1")) => Some("primary_bn"),
            ("cheap_operation", Some("0")) => Some("cheap_conv"),
            ("cheap_operation", Some("1")) => Some("cheap_bn"),
            ("shortcut", Some("0")) => Some("shortcut.dw_conv"),
            ("shortcut", Some("1")) => Some("shortcut.dw_bn"),
            ("shortcut", Some("2")) => Some("shortcut.pw_conv"),
            ("shortcut", Some("3")) => Some("shortcut.pw_bn"),
            _ => None,
        };
        match pair {
            Some(name) => {
                out.extend(name.split('.').map(String::from));
                i += 2;
            }
            None => {
                out.push(parts[i].into());
                i += 1;
            }
        }
    }
    let n = out.len();
    if n >= 2 && BN_NAMES.contains(&out[n - 2].as_str()) {
        match out[n - 1].as_str() {
            "weight" => out[n - 1] = "gamma".into(),
            "bias" => out[n - 1] = "beta".into(),
            _ => {}
        }
    }
    let root = out.first().map(String::as_str);
    matches!(
        root,
        Some("conv_stem" | "bn1" | "blocks" | "final_conv" | "conv_head")
    )
    .then(|| out.join("."))
}

/// The PyTorch key of one of our module paths (inverse of
/// [`ghostnet_model_path`]).
pub fn ghostnet_file_key(model_path: &str, stages: usize) -> String {
    let parts: Vec<&str> = model_path.split('.').collect();
    let n = parts.len();
    let mut out: Vec<String> = Vec::with_capacity(n + 2);
    for (i, seg) in parts.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| parts[j]);
        let s: String = match (prev, *seg) {
            (None, "final_conv") => format!("blocks.{stages}.0"),
            (_, "primary_conv") => "primary_conv.0".into(),
            (_, "primary_bn") => "primary_conv.1".into(),
            (_, "cheap_conv") => "cheap_operation.0".into(),
            (_, "cheap_bn") => "cheap_operation.1".into(),
            (Some("shortcut"), "dw_conv") => "0".into(),
            (Some("shortcut"), "dw_bn") => "1".into(),
            (Some("shortcut"), "pw_conv") => "2".into(),
            (Some("shortcut"), "pw_bn") => "3".into(),
            (Some(p), "gamma") if i + 1 == n && BN_NAMES.contains(&p) => "weight".into(),
            (Some(p), "beta") if i + 1 == n && BN_NAMES.contains(&p) => "bias".into(),
            (_, s) => s.into(),
        };
        out.push(s);
    }
    out.join(".")
}

/// What [`load_ghostnet`] did (GhostNet has one naming: the layout is
/// `"ghostnet"`).
pub type GhostNetImportReport = FamilyImportReport<&'static str>;

/// Loads a GhostNet checkpoint (official / timm naming; bare, CION
/// `teacher` or `model` wrapper; `.pth` or safetensors) into `model`,
/// strictly (missing / unexpected / mis-shaped keys are a
/// [`BackboneError::KeyMismatch`] in PyTorch naming).
///
/// `options.format`: `Auto`, `Cion` (the file must have a `teacher`
/// dictionary) or `Safetensors` (the file must be safetensors).
pub fn load_ghostnet(
    model: &mut GhostNet,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<GhostNetImportReport, BackboneError> {
    let read = Unwrapped::read(path.as_ref(), options, "GhostNet")?;
    if !read.kept.iter().any(|(k, _)| k.starts_with("conv_stem.")) {
        return Err(read.unrecognised("GhostNet", "official / timm `conv_stem.*`"));
    }
    let stages = model.blocks.len();
    read.apply(
        model,
        options,
        "ghostnet",
        |k| (k.ends_with("total_ops") || k.ends_with("total_params")).then_some(THOP),
        |k| ghostnet_model_path(k, stages),
        |p| ghostnet_file_key(p, stages),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_names_map_to_module_paths_and_back() {
        let cases = [
            ("conv_stem.weight", "conv_stem.weight"),
            ("bn1.weight", "bn1.gamma"),
            ("bn1.running_var", "bn1.running_var"),
            (
                "blocks.3.0.ghost1.primary_conv.0.weight",
                "blocks.3.0.ghost1.primary_conv.weight",
            ),
            (
                "blocks.3.0.ghost1.primary_conv.1.bias",
                "blocks.3.0.ghost1.primary_bn.beta",
            ),
            (
                "blocks.6.4.ghost2.cheap_operation.0.weight",
                "blocks.6.4.ghost2.cheap_conv.weight",
            ),
            (
                "blocks.6.4.ghost2.cheap_operation.1.running_mean",
                "blocks.6.4.ghost2.cheap_bn.running_mean",
            ),
            ("blocks.3.0.bn_dw.weight", "blocks.3.0.bn_dw.gamma"),
            (
                "blocks.3.0.se.conv_reduce.bias",
                "blocks.3.0.se.conv_reduce.bias",
            ),
            (
                "blocks.1.0.shortcut.0.weight",
                "blocks.1.0.shortcut.dw_conv.weight",
            ),
            (
                "blocks.1.0.shortcut.3.weight",
                "blocks.1.0.shortcut.pw_bn.gamma",
            ),
            ("blocks.9.0.conv.weight", "final_conv.conv.weight"),
            ("blocks.9.0.bn1.bias", "final_conv.bn1.beta"),
            ("conv_head.bias", "conv_head.bias"),
        ];
        for (torch, ours) in cases {
            assert_eq!(
                ghostnet_model_path(torch, 9).as_deref(),
                Some(ours),
                "{torch}"
            );
            assert_eq!(ghostnet_file_key(ours, 9), torch, "{ours}");
        }
        assert_eq!(ghostnet_model_path("classifier.weight", 9), None);
    }
}
