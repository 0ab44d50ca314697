//! Loading ICS ViT checkpoints ([`crate::vit::ViT`]) with the same strict
//! key checking as the ResNet loader.
//!
//! Layouts (recognised from the keys under
//! [`WeightsFormat::Auto`](crate::import::WeightsFormat::Auto)):
//!
//! - [`Layout::Cion`]: a CION pre-training checkpoint; the `teacher`
//!   dictionary's backbone keys with `module.backbone.` (the ViT has
//!   BatchNorm in its stem, so CION's teacher is DDP-wrapped) or
//!   `backbone.` removed; DINO head, student, optimizer set aside.
//! - [`Layout::TransReid`]: a model fine-tuned by CION's TransReID code
//!   (`base.<key>`; `bottleneck.*`, `classifier.weight` set aside). Such a
//!   model resized its position embedding at every input size (see
//!   [`PosEmbedInterpolation::DinoScaleFactorAlways`]); a model with the
//!   default DINO rule is switched to that rule when such a file loads, so
//!   its feature is the one CION's test code evaluated (`NECK_FEAT:
//!   'before'`: the backbone's CLS token).
//! - [`Layout::Torchvision`] (for the ViT: "a bare state dict"): the official
//!   TransReID-SSL / CION names, which coincide with timm's for the blocks,
//!   `cls_token`, `pos_embed` and `norm`; an optional DataParallel `module.`
//!   or a `backbone.` prefix common to all keys is removed. As for the other
//!   families, an ImageNet classifier (the upstream module's `fc.*`, timm's
//!   `head.*`) is **unexpected** unless allowed
//!   (`allow_unexpected: ["head.*"]`).
//!
//! Name mapping (PyTorch → burn): `patch_embed.conv.{1,4}.IN.*` /
//! `.BN.*` → `…instance_norm.*` / `…batch_norm.*`; norm `weight`/`bias` →
//! `gamma`/`beta`; `nn.Linear` weights are transposed (`[out, in]` in the
//! file, `[in, out]` in burn) and their shapes checked in PyTorch's
//! orientation.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter};

use super::{PosEmbedInterpolation, ViT};
use crate::error::{BackboneError, KeyMismatch};
use crate::import::layout::{self, Extracted, Layout, Target};
use crate::import::options::{ImportOptions, allowed};
use crate::import::report::ImportReport;
use crate::import::strict_apply::{Applied, write_checked};
use crate::import::{keys, source};

/// Recognises a ViT checkpoint layout: `teacher.` → CION, `base.` →
/// TransReID, anything else → a bare state dict.
fn detect(keys: &BTreeMap<String, PackTensor>) -> Layout {
    if keys.keys().any(|k| k.starts_with("teacher.")) {
        Layout::Cion
    } else if keys
        .keys()
        .any(|k| k.starts_with("base.") || k.starts_with("module.base."))
    {
        Layout::TransReid
    } else {
        Layout::Torchvision
    }
}

/// The bare layout: strip `module.`, then `backbone.` if every key has it.
fn extract_bare(raw: BTreeMap<String, PackTensor>) -> Result<Extracted, String> {
    let mut extracted = layout::extract(raw, Layout::Torchvision, Target::Trunk)?;
    let all_backbone = !extracted.tensors.is_empty()
        && extracted.tensors.keys().all(|k| k.starts_with("backbone."));
    if all_backbone {
        extracted.tensors = std::mem::take(&mut extracted.tensors)
            .into_iter()
            .map(|(k, mut t)| {
                let k = k["backbone.".len()..].to_string();
                t.name = k.clone();
                (k, t)
            })
            .collect();
    }
    Ok(extracted)
}

/// Loads a checkpoint into an ICS ViT; see the module documentation.
/// `options.format`: `Auto` / `Safetensors` recognise the layout,
/// `Torchvision` means a bare state dict, `Cion` and `TransReid` force those
/// layouts; `Lup` and `FastReid` are errors (no such ViT checkpoints).
pub fn load_vit(
    model: &mut ViT,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport, BackboneError> {
    let path = path.as_ref();
    let layout_err = |message: String| source::layout_error(path, message);
    let (container, raw, layout) = layout::read_trunk(path, options, "ViT", detect)?;
    let extracted = match layout {
        Layout::Torchvision => extract_bare(raw),
        other => layout::extract(raw, other, Target::Trunk),
    }
    .map_err(layout_err)?;

    // PyTorch key → (burn path, shape in PyTorch's orientation).
    let burn_side = model.collect(None, None, true);
    let torch_side = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
    if burn_side.len() != torch_side.len() {
        return Err(layout_err(
            "internal: model tensor listings disagree".into(),
        ));
    }
    let expected: BTreeMap<String, (String, Vec<usize>)> = burn_side
        .iter()
        .zip(&torch_side)
        .map(|(b, t)| {
            (
                keys::burn_to_torch(&b.name, false),
                (b.name.clone(), t.shape.to_vec()),
            )
        })
        .collect();

    let mut to_apply = Vec::new();
    let mut provided = BTreeMap::new();
    let (mut unexpected, mut allowed_unexpected, mut mis_shaped) =
        (Vec::new(), Vec::new(), Vec::new());
    for (key, mut tensor) in extracted.tensors {
        match expected.get(&key) {
            None if allowed(&options.allow_unexpected, &key) => allowed_unexpected.push(key),
            None => unexpected.push(key),
            Some((_, shape)) if shape.as_slice() != tensor.shape.as_slice() => {
                mis_shaped.push((key, shape.clone(), tensor.shape.to_vec()));
            }
            Some((burn, _)) => {
                tensor.name = burn.clone();
                provided.insert(key, ());
                to_apply.push(tensor);
            }
        }
    }
    let (mut missing, mut allowed_missing) = (Vec::new(), Vec::new());
    for torch in expected.keys() {
        if provided.contains_key(torch) || mis_shaped.iter().any(|(k, _, _)| k == torch) {
            continue;
        }
        if allowed(&options.allow_missing, torch) {
            allowed_missing.push(torch.clone());
        } else {
            missing.push(torch.clone());
        }
    }
    let mismatch = KeyMismatch {
        path: path.to_path_buf(),
        layout: format!("{} (ViT)", layout.name()),
        missing,
        unexpected,
        mis_shaped,
    };
    let adapter = Some(Box::new(PyTorchToBurnAdapter) as _);
    let count = write_checked(model, mismatch, to_apply, adapter)?;
    if layout == Layout::TransReid
        && model.pos_interpolation() == PosEmbedInterpolation::DinoScaleFactor
    {
        model.set_pos_interpolation(PosEmbedInterpolation::DinoScaleFactorAlways);
    }
    let applied = Applied {
        count,
        allowed_unexpected,
        allowed_missing,
    };
    Ok(applied.into_report(path, container, layout, extracted.ignored))
}
