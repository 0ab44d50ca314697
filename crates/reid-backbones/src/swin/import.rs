//! Loading Swin checkpoints ([`crate::swin::SwinTransformer`]) with strict
//! key checking.
//!
//! Containers and wrappers (recognised from the keys):
//!
//! - [`Layout::Cion`]: a CION pre-training checkpoint; the `teacher`
//!   dictionary's keys containing `backbone`, with `backbone.` removed (Swin
//!   has no BatchNorm, so CION's teacher is not DDP-wrapped; a
//!   `module.backbone.` prefix is accepted too); the DINO head, the student,
//!   the optimizer and the loss center are set aside.
//! - [`Layout::Torchvision`] (for Swin: "a bare state dict"): the backbone's
//!   own keys, optionally nested under `model.` (official classification
//!   checkpoints) or `state_dict.` (mmdetection), with a DataParallel
//!   `module.` prefix, and/or a `backbone.` prefix (detector checkpoints:
//!   the non-backbone modules are then set aside).
//! - [`Layout::TransReid`]: a model fine-tuned by CION's TransReID code
//!   (`make_model.build_model` saved with `model.state_dict()`), read through
//!   the wrapper every family shares ([`CheckpointWrapper::TransReid`]):
//!   `base.` removed; the head (`bottleneck.*`, `classifier.*`, `fcneck.*`)
//!   set aside, since every CION config tests with `NECK_FEAT: 'before'`, the
//!   feature of `base(x)`. Recognised by `base.*` + `bottleneck.*` keys.
//!
//! Key naming, detected from where the patch-merging layers sit:
//!
//! - official (detection code, CION): `layers.i.downsample.*` at the **end**
//!   of stages 0–2, final norm `norm3.*` (classification code: `norm.*`);
//! - timm 1.0: `layers.i.downsample.*` at the **start** of stages 1–3
//!   (renamed to `layers.{i−1}.downsample.*`), final norm `norm.*`.
//!
//! Either way, `relative_position_index` buffers (official checkpoints) are
//! compared with the recomputed index, and a file whose index differs is
//! refused; they and any `attn_mask` buffers are then set aside (reported).
//! A classifier (`head.*`, `head.fc.*`) is an unexpected key unless allowed.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::{DType, Tensor as PackTensor};

use super::{SwinTransformer, relative_position_index};
use crate::error::BackboneError;
use crate::import::layout::{self, Extracted, Ignored, Layout, NUM_BATCHES_TRACKED, Target};
use crate::import::options::ImportOptions;
use crate::import::report::ImportReport;
use crate::import::strict_apply::{Entry, apply_strict, model_shapes};
use crate::import::wrapper::{CheckpointWrapper, KeyFate, detect_wrapper, unwrap_key};
use crate::import::{keys, source};

/// Why the `relative_position_index` buffers are not loaded.
const INDEX_REASON: &str = "Swin relative_position_index buffers (recomputed from the window \
     size; each was checked equal to the recomputed index)";
/// Why `attn_mask` buffers are not loaded.
const MASK_REASON: &str = "Swin attention-mask buffers (recomputed for each input size)";
/// Why non-backbone modules of a detector / wrapper are set aside.
const OUTSIDE_REASON: &str = "modules outside `backbone.` (detector necks / heads)";
/// Why keys outside the nested model dictionary are set aside.
const TRAINING_REASON: &str =
    "training state outside the model dictionary (optimizer, scheduler, meta)";

/// The key naming of a Swin state dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwinKeys {
    /// Official (detection / classification / CION): downsample at the end
    /// of stages 0–2.
    Official,
    /// timm: downsample at the start of stages 1–3, `norm.*`.
    Timm,
}

impl SwinKeys {
    /// Detects the naming: `layers.0.downsample.*` → official,
    /// `layers.3.downsample.*` → timm, neither → official.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String>) -> Self {
        let mut timm = false;
        for k in keys {
            if k.starts_with("layers.0.downsample.") {
                return Self::Official;
            }
            timm |= k.starts_with("layers.3.downsample.");
        }
        if timm { Self::Timm } else { Self::Official }
    }
}

/// The official name of a file key under `naming`.
fn official_key(key: &str, naming: SwinKeys) -> String {
    if let Some(rest) = key.strip_prefix("norm.") {
        return format!("norm3.{rest}");
    }
    if naming == SwinKeys::Timm {
        let parts: Vec<&str> = key.splitn(4, '.').collect();
        if parts.len() == 4
            && parts[0] == "layers"
            && parts[2] == "downsample"
            && let Ok(i) = parts[1].parse::<usize>()
            && i >= 1
        {
            return format!("layers.{}.downsample.{}", i - 1, parts[3]);
        }
    }
    key.to_string()
}

/// Reads an integer tensor's values.
fn int_values(t: &PackTensor) -> Result<Vec<i64>, String> {
    let bytes = t.to_bytes().map_err(|e| format!("{}: {e:?}", t.name))?;
    let bytes: &[u8] = &bytes;
    Ok(match t.dtype {
        DType::I64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        other => {
            return Err(format!(
                "{}: relative_position_index must be an integer tensor, found {other:?}",
                t.name
            ));
        }
    })
}

/// Records `key` as set aside for `reason`, grouped with the keys set aside
/// for the same reason.
fn note_ignored(ignored: &mut Vec<Ignored>, reason: &str, key: String) {
    match ignored.iter_mut().find(|g| g.reason == reason) {
        Some(g) => g.keys.push(key),
        None => ignored.push(Ignored {
            reason: reason.to_string(),
            keys: vec![key],
        }),
    }
}

/// A bare state dict: pick the nested model dictionary, strip `module.`
/// and `backbone.`.
fn extract_bare(raw: BTreeMap<String, PackTensor>) -> Result<Extracted, String> {
    let mut ignored: Vec<Ignored> = Vec::new();
    let mut note = |reason: &str, key: String| note_ignored(&mut ignored, reason, key);
    let nest = ["state_dict.", "model."].into_iter().find(|p| {
        raw.keys()
            .any(|k| k.starts_with(p) && k.contains("patch_embed."))
    });
    let mut tensors = BTreeMap::new();
    for (k, mut t) in raw {
        let k = match nest {
            Some(p) => match k.strip_prefix(p) {
                Some(rest) => rest.to_string(),
                None => {
                    note(TRAINING_REASON, k);
                    continue;
                }
            },
            None => k,
        };
        t.name = k.clone();
        tensors.insert(k, t);
    }
    let mut extracted = layout::extract(tensors, Layout::Torchvision, Target::Trunk)?;
    let has_backbone = extracted.tensors.keys().any(|k| k.starts_with("backbone."));
    let mut kept = BTreeMap::new();
    for (k, mut t) in std::mem::take(&mut extracted.tensors) {
        if !has_backbone {
            kept.insert(k, t);
            continue;
        }
        match k.strip_prefix("backbone.") {
            Some(rest) => {
                t.name = rest.to_string();
                kept.insert(rest.to_string(), t);
            }
            None => note(OUTSIDE_REASON, k),
        }
    }
    extracted.tensors = kept;
    extracted.ignored.extend(ignored);
    Ok(extracted)
}

/// A TransReID fine-tuned model: the shared wrapper rule
/// ([`unwrap_key`] under [`CheckpointWrapper::TransReid`]) after a
/// DataParallel `module.` prefix common to every key is removed.
fn extract_transreid(raw: BTreeMap<String, PackTensor>) -> Extracted {
    let all_module = !raw.is_empty() && raw.keys().all(|k| k.starts_with("module."));
    let mut ignored: Vec<Ignored> = Vec::new();
    let mut note = |reason: &str, key: String| note_ignored(&mut ignored, reason, key);
    let mut tensors = BTreeMap::new();
    for (file_key, mut t) in raw {
        let key = if all_module {
            file_key["module.".len()..].to_string()
        } else {
            file_key.clone()
        };
        match unwrap_key(&key, CheckpointWrapper::TransReid) {
            KeyFate::Ignore(reason) => note(reason, file_key),
            KeyFate::Keep(k) if k.ends_with("num_batches_tracked") => {
                note(NUM_BATCHES_TRACKED, file_key)
            }
            KeyFate::Keep(k) => {
                t.name = k.clone();
                tensors.insert(k, t);
            }
        }
    }
    Extracted { tensors, ignored }
}

/// Whether `raw` is a TransReID fine-tuned model ([`CheckpointWrapper::TransReid`];
/// a DataParallel `module.` around it is allowed).
fn is_transreid(raw: &BTreeMap<String, PackTensor>) -> bool {
    let unprefixed: Vec<String> = raw
        .keys()
        .map(|k| k.strip_prefix("module.").unwrap_or(k).to_string())
        .collect();
    detect_wrapper(&unprefixed) == CheckpointWrapper::TransReid
}

/// Recognises a Swin checkpoint layout: `teacher.` → CION, a TransReID
/// model → TransReID, anything else → a bare state dict.
fn detect(raw: &BTreeMap<String, PackTensor>) -> Layout {
    if raw.keys().any(|k| k.starts_with("teacher.")) {
        Layout::Cion
    } else if is_transreid(raw) {
        Layout::TransReid
    } else {
        Layout::Torchvision
    }
}

/// Loads a checkpoint into a Swin backbone; see the module documentation.
/// `options.format`: `Auto` / `Safetensors` recognise the wrapper,
/// `Torchvision` means a bare state dict, `Cion` forces the CION layout,
/// `TransReid` a CION TransReID fine-tuned model (the file must have
/// `base.*` and `bottleneck.*` keys); `Lup` and `FastReid` are errors.
pub fn load_swin(
    model: &mut SwinTransformer,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport, BackboneError> {
    let path = path.as_ref();
    let layout_err = |message: String| source::layout_error(path, message);
    let (container, raw, layout) = layout::read_trunk(path, options, "Swin", detect)?;
    if layout == Layout::TransReid && !is_transreid(&raw) {
        return Err(layout_err(
            "--weights-format transreid: a TransReID checkpoint needs `base.*` and \
             `bottleneck.*` keys; none found"
                .into(),
        ));
    }
    let mut extracted = match layout {
        Layout::Cion => layout::extract(raw, Layout::Cion, Target::Trunk),
        Layout::TransReid => Ok(extract_transreid(raw)),
        _ => extract_bare(raw),
    }
    .map_err(layout_err)?;

    let naming = SwinKeys::detect(extracted.tensors.keys());
    let expected = model_shapes(model);
    let want_index = relative_position_index(model.window_size);
    let mut entries = Vec::new();
    let (mut index_keys, mut mask_keys) = (Vec::new(), Vec::new());
    for (file_key, tensor) in std::mem::take(&mut extracted.tensors) {
        if file_key.ends_with("relative_position_index") {
            let values = int_values(&tensor).map_err(&layout_err)?;
            if values != want_index {
                return Err(layout_err(format!(
                    "{file_key}: the relative position index differs from the one of a {w}×{w} \
                     window (shape {:?} in the file; is the window size right?)",
                    tensor.shape.to_vec(),
                    w = model.window_size
                )));
            }
            index_keys.push(file_key);
            continue;
        }
        if file_key.ends_with("attn_mask") {
            mask_keys.push(file_key);
            continue;
        }
        let official = official_key(&file_key, naming);
        let model_path = keys::burn_param_name(&official, tensor.shape.num_dims(), &expected);
        entries.push(Entry {
            file_key,
            model_path: Some(model_path),
            tensor,
        });
    }
    for (reason, keys) in [(INDEX_REASON, index_keys), (MASK_REASON, mask_keys)] {
        if !keys.is_empty() {
            extracted.ignored.push(Ignored {
                reason: reason.to_string(),
                keys,
            });
        }
    }
    let to_file = |burn: &str| {
        let official = keys::burn_to_torch(burn, false);
        match naming {
            SwinKeys::Official => official,
            SwinKeys::Timm => {
                if let Some(rest) = official.strip_prefix("norm3.") {
                    return format!("norm.{rest}");
                }
                let parts: Vec<&str> = official.splitn(4, '.').collect();
                match (
                    parts.as_slice(),
                    parts.get(1).and_then(|i| i.parse::<usize>().ok()),
                ) {
                    (["layers", _, "downsample", rest], Some(i)) => {
                        format!("layers.{}.downsample.{rest}", i + 1)
                    }
                    _ => official,
                }
            }
        }
    };
    let applied = apply_strict(model, path, layout.name(), entries, options, &to_file)?;
    Ok(applied.into_report(path, container, layout, extracted.ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timm_names_map_to_official_ones() {
        let keys: Vec<String> = [
            "layers.1.downsample.norm.weight",
            "layers.3.downsample.reduction.weight",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(SwinKeys::detect(&keys), SwinKeys::Timm);
        assert_eq!(
            official_key("layers.3.downsample.reduction.weight", SwinKeys::Timm),
            "layers.2.downsample.reduction.weight"
        );
        assert_eq!(official_key("norm.bias", SwinKeys::Timm), "norm3.bias");
        assert_eq!(
            official_key("layers.0.downsample.norm.weight", SwinKeys::Official),
            "layers.0.downsample.norm.weight"
        );
        let official: Vec<String> = vec!["layers.0.downsample.norm.weight".into()];
        assert_eq!(SwinKeys::detect(&official), SwinKeys::Official);
    }
}
