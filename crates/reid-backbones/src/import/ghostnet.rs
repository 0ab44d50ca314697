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

use std::fmt;
use std::path::{Path, PathBuf};

use super::convnext::{CheckpointWrapper, KeyFate, detect_wrapper, unwrap_key};
use super::layout::{Ignored, NUM_BATCHES_TRACKED};
use super::source::{self, Container};
use super::strict_apply::{Entry, apply_strict};
use super::{ImportOptions, WeightsFormat};
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

/// What [`load_ghostnet`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhostNetImportReport {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Its container.
    pub container: Container,
    /// Where the backbone keys were found.
    pub wrapper: CheckpointWrapper,
    /// Prefixes removed from every kept key after unwrapping, in order.
    pub stripped_prefixes: Vec<String>,
    /// Number of model tensors written from the file.
    pub applied: usize,
    /// Keys set aside, with the reason.
    pub ignored: Vec<Ignored>,
    /// Unused file keys accepted through the allow-list.
    pub allowed_unexpected: Vec<String>,
    /// Model parameters left at their initialisation through the allow-list.
    pub allowed_missing: Vec<String>,
}

impl fmt::Display for GhostNetImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} container, {:?} wrapper, ghostnet layout, {} tensors loaded",
            self.path.display(),
            self.container,
            self.wrapper,
            self.applied
        )?;
        super::strict_apply::write_report_tail(
            f,
            &self.ignored,
            &self.allowed_unexpected,
            &self.allowed_missing,
        )
    }
}

fn add_ignored(ignored: &mut Vec<Ignored>, reason: &str, key: String) {
    match ignored.iter_mut().find(|g| g.reason == reason) {
        Some(g) => g.keys.push(key),
        None => ignored.push(Ignored {
            reason: reason.to_string(),
            keys: vec![key],
        }),
    }
}

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
    let path = path.as_ref();
    let layout_err = |message: String| BackboneError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let container = Container::sniff(path)?;
    match options.format {
        WeightsFormat::Auto | WeightsFormat::Cion => {}
        WeightsFormat::Safetensors if container == Container::Safetensors => {}
        WeightsFormat::Safetensors => {
            return Err(layout_err(format!(
                "--weights-format safetensors, but the file is a {container:?} file"
            )));
        }
        other => {
            return Err(layout_err(format!(
                "weights format {other:?} is a ResNet checkpoint layout; a GhostNet checkpoint \
                 is read with auto, cion or safetensors"
            )));
        }
    }
    let raw = source::read_tensors(path, container)?;
    let wrapper = detect_wrapper(raw.keys());
    if options.format == WeightsFormat::Cion && wrapper != CheckpointWrapper::CionTeacher {
        return Err(layout_err(
            "a CION checkpoint needs a `teacher` dictionary; none found".into(),
        ));
    }
    let mut ignored = Vec::new();
    let mut kept = Vec::new();
    for (key, tensor) in raw {
        match unwrap_key(&key, wrapper) {
            KeyFate::Keep(k) => kept.push((k, tensor)),
            KeyFate::Ignore(reason) => add_ignored(&mut ignored, reason, key),
        }
    }
    let mut stripped_prefixes = Vec::new();
    for prefix in ["state_dict.", "module.", "backbone."] {
        if !kept.is_empty() && kept.iter().all(|(k, _)| k.starts_with(prefix)) {
            for (k, _) in &mut kept {
                *k = k[prefix.len()..].to_string();
            }
            stripped_prefixes.push(prefix.to_string());
        }
    }
    if !kept.iter().any(|(k, _)| k.starts_with("conv_stem.")) {
        let first: Vec<&String> = kept.iter().map(|(k, _)| k).take(8).collect();
        return Err(layout_err(format!(
            "not a GhostNet checkpoint: no `conv_stem.*` among its {} backbone keys; first \
             keys: {first:?}",
            kept.len()
        )));
    }
    let stages = model.blocks.len();
    let mut entries = Vec::new();
    for (file_key, tensor) in kept {
        if file_key.ends_with("num_batches_tracked") {
            add_ignored(&mut ignored, NUM_BATCHES_TRACKED, file_key);
        } else if file_key.ends_with("total_ops") || file_key.ends_with("total_params") {
            add_ignored(&mut ignored, THOP, file_key);
        } else {
            entries.push(Entry {
                model_path: ghostnet_model_path(&file_key, stages),
                file_key,
                tensor,
            });
        }
    }
    let applied = apply_strict(model, path, "ghostnet", entries, options, &|p| {
        ghostnet_file_key(p, stages)
    })?;
    Ok(GhostNetImportReport {
        path: path.to_path_buf(),
        container,
        wrapper,
        stripped_prefixes,
        applied: applied.count,
        ignored,
        allowed_unexpected: applied.allowed_unexpected,
        allowed_missing: applied.allowed_missing,
    })
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
