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
//! for ConvNeXt ([`crate::import::unwrap_key`]: CION `teacher` with
//! `module.backbone.` — GhostNet has BN, so CION's teacher was DDP-wrapped —
//! or `backbone.`; a `model` dictionary), then a common `state_dict.`,
//! `module.` or `backbone.` prefix. Set aside with a reason:
//! `num_batches_tracked` and thop's `total_ops` / `total_params` profiling
//! buffers. The ImageNet `classifier.*` is unexpected unless allowed.

use std::path::Path;
use std::sync::LazyLock;

use crate::error::BackboneError;
use crate::ghostnet::GhostNet;
use crate::import::family::{FamilyImportReport, Unwrapped};
use crate::import::options::ImportOptions;
use crate::import::renames::Renames;

const THOP: &str = "thop profiling buffers (total_ops / total_params)";
/// The naming [`load_ghostnet`] recognises, for the error on a file without
/// it.
const EXPECTED: &str = "official / timm `conv_stem.*`";

/// What [`load_ghostnet`] did (GhostNet has one naming: the layout is
/// `"ghostnet"`).
pub type GhostNetImportReport = FamilyImportReport<&'static str>;

/// The PyTorch names of the Ghost modules, shortcuts and BatchNorms,
/// `[file → model, model → file]`; the final conv-BN-ReLU's index
/// (`blocks.<stages>.0` ↔ `final_conv`) depends on the model and is renamed
/// by hand.
static RENAMES: LazyLock<[Renames; 2]> = LazyLock::new(|| {
    const BN: &str = r"(^|\.)(bn1|bn_dw|primary_bn|cheap_bn|dw_bn|pw_bn)";
    let modules = [
        ("primary_conv.0", "primary_conv"),
        ("primary_conv.1", "primary_bn"),
        ("cheap_operation.0", "cheap_conv"),
        ("cheap_operation.1", "cheap_bn"),
        ("shortcut.0", "shortcut.dw_conv"),
        ("shortcut.1", "shortcut.dw_bn"),
        ("shortcut.2", "shortcut.pw_conv"),
        ("shortcut.3", "shortcut.pw_bn"),
    ];
    let pattern = |name: &str| format!(r"\.{}\.", name.replace('.', r"\."));
    let to_model = modules
        .iter()
        .map(|(torch, ours)| (pattern(torch), format!(".{ours}.")))
        .chain([
            (format!(r"{BN}\.weight$"), "${1}${2}.gamma".to_string()),
            (format!(r"{BN}\.bias$"), "${1}${2}.beta".to_string()),
        ]);
    let to_file = [
        (format!(r"{BN}\.gamma$"), "${1}${2}.weight".to_string()),
        (format!(r"{BN}\.beta$"), "${1}${2}.bias".to_string()),
    ]
    .into_iter()
    .chain(
        modules
            .iter()
            .map(|(torch, ours)| (pattern(ours), format!(".{torch}."))),
    );
    [Renames::new(to_model), Renames::new(to_file)]
});

/// Our module path of a PyTorch GhostNet key; `stages` is the number of
/// Ghost-bottleneck stages (9), whose index names the final conv-BN-ReLU.
/// `None` for keys no GhostNet parameter has (e.g. `classifier.*`).
pub fn ghostnet_model_path(key: &str, stages: usize) -> Option<String> {
    let final_conv = format!("blocks.{stages}.0.");
    let key = match key.strip_prefix(&final_conv) {
        Some(rest) => format!("final_conv.{rest}"),
        None => key.to_string(),
    };
    let root = key.split('.').next().unwrap_or("");
    matches!(
        root,
        "conv_stem" | "bn1" | "blocks" | "final_conv" | "conv_head"
    )
    .then(|| RENAMES[0].apply(&key))
}

/// The PyTorch key of one of our module paths (inverse of
/// [`ghostnet_model_path`]).
pub fn ghostnet_file_key(model_path: &str, stages: usize) -> String {
    let key = RENAMES[1].apply(model_path);
    match key.strip_prefix("final_conv.") {
        Some(rest) => format!("blocks.{stages}.0.{rest}"),
        None => key,
    }
}

/// Loads a GhostNet checkpoint (official / timm naming; bare, CION
/// `teacher` or `model` wrapper; `.pth` or safetensors) into `model`,
/// strictly (missing / unexpected / mis-shaped keys are a
/// [`BackboneError::KeyMismatch`] in PyTorch naming).
///
/// `options.format`: as for every family importer ([the family
/// formats](crate::import#the-reidzoo-families)).
pub fn load_ghostnet(
    model: &mut GhostNet,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<GhostNetImportReport, BackboneError> {
    let stages = model.blocks.len();
    let read = Unwrapped::read(path.as_ref(), options, "GhostNet")?;
    let has_stem = |keys: &[String]| keys.iter().any(|k| k.starts_with("conv_stem."));
    let layout = read.detect(|keys| has_stem(keys).then_some("ghostnet"), EXPECTED)?;
    let thop = |k: &str| k.ends_with("total_ops") || k.ends_with("total_params");
    read.setting_aside(THOP, thop).apply(
        model,
        options,
        layout,
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
