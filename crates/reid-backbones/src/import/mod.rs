//! Loading PyTorch checkpoints into our modules, loudly.
//!
//! [`load_backbone`] reads a checkpoint by path, recognises its container
//! ([`Container`]: `torch.save` zip / legacy pickle, or safetensors) and its
//! layout ([`Layout`]: torchvision, LUPerson MoCo / PNL snapshot, CION
//! ReIDZoo, fast-reid current and v0.1), picks out the model's keys, and
//! checks them one-to-one against the model before anything is written:
//!
//! - a model parameter with no tensor in the file is **missing**;
//! - a kept file tensor with no model parameter is **unexpected** (e.g.
//!   `fc.weight` of an ImageNet classifier when loading a trunk);
//! - a tensor whose shape differs from the parameter's is **mis-shaped**;
//!
//! and any of these is a [`BackboneError::KeyMismatch`] listing them all.
//! [`ImportOptions::allow_unexpected`] / [`ImportOptions::allow_missing`] are
//! the explicit allow-list (exact PyTorch keys, or prefixes ending in `*`,
//! e.g. `fc.*`). Keys a layout sets aside by rule (training state, heads of
//! the pre-training method, `num_batches_tracked`) are listed with their
//! reason in [`ImportReport::ignored`].
//!
//! **The `num_batches_tracked` rule.** PyTorch's BatchNorm counts batches
//! only to support `momentum=None` (cumulative averaging); burn's BatchNorm
//! has a fixed momentum and no counter, so these scalars are always set
//! aside (and reported).
//!
//! [`save_safetensors`] writes a model back with PyTorch names, for use from
//! Python (`model.load_state_dict(safetensors.torch.load_file(path))`).
//!
//! # The ReIDZoo families
//!
//! The ReIDZoo families import in their own folders
//! (`<family>/import.rs`: [`load_convnext`], [`load_vit`], …, re-exported
//! here) on the machinery this module shares with them: the options
//! (`options`), containers (`source`), checkpoint wrappers (`wrapper`),
//! layouts (`layout`), the strict check and write (`strict_apply`), the
//! family skeleton and its report (`family`, [`FamilyImportReport`]),
//! rename tables (`renames`) and parameter names (`keys`). A family
//! importer uses those modules only, never this one's root, and only
//! `families` (the re-exports) names a family here, so the modules form no
//! circle.
//!
//! Every family importer but ViT's and Swin's takes the same
//! [`ImportOptions::format`]s: [`WeightsFormat::Auto`] (recognise the
//! container, the wrapper and the naming), [`WeightsFormat::Safetensors`]
//! (the file must be safetensors), [`WeightsFormat::Cion`] (the file must
//! have a `teacher` dictionary) and [`WeightsFormat::TransReid`] (`base.*`
//! and `bottleneck.*` keys); the ResNet-only formats (`torchvision`, `lup`,
//! `fastreid`) are an error.

mod families;
pub(crate) mod family;
pub(crate) mod keys;
pub(crate) mod layout;
pub(crate) mod options;
pub(crate) mod renames;
pub(crate) mod report;
pub(crate) mod source;
pub(crate) mod strict_apply;
pub(crate) mod wrapper;

pub use families::*;
pub use family::FamilyImportReport;
pub use layout::{Ignored, Layout};
pub use options::{ImportOptions, WeightsFormat};
pub use report::ImportReport;
pub use source::Container;
pub use wrapper::{CheckpointWrapper, KeyFate, detect_wrapper, unwrap_key};

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, SafetensorsStore};

use crate::error::BackboneError;
use crate::mgn::Mgn;
use crate::model::ReidModel;
use crate::resnet::ResNet;
use layout::Target;
use strict_apply::{Entry, apply_strict};

/// Loads a checkpoint into a backbone; see the module documentation.
pub fn load_backbone(
    model: &mut ResNet,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport, BackboneError> {
    load_into(model, path.as_ref(), options, Target::Trunk)
}

/// Loads a fast-reid checkpoint (`backbone.*` + `heads.*`, either naming)
/// or a TransReID one (`base.*`, `bottleneck.*`, `classifier.weight`) into a
/// backbone + BNNeck model.
pub fn load_reid_model(
    model: &mut ReidModel,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport, BackboneError> {
    load_into(model, path.as_ref(), options, Target::FastReidModel)
}

/// Loads a fast-reid MGN checkpoint (current or v1.0 head naming, with or
/// without the LUPerson fork's `heads_extra_bn_b*`, matching the model).
pub fn load_mgn(
    model: &mut Mgn,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport, BackboneError> {
    load_into(model, path.as_ref(), options, Target::Mgn)
}

fn load_into<M: ModuleSnapshot>(
    model: &mut M,
    path: &Path,
    options: &ImportOptions,
    target: Target,
) -> Result<ImportReport, BackboneError> {
    let layout_err = |message: String| source::layout_error(path, message);
    let (container, raw) = source::read_file(path, options)?;
    let detected = Layout::detect(raw.keys());
    let layout = match options.format {
        WeightsFormat::Auto | WeightsFormat::Safetensors => detected.ok_or_else(|| {
            let first: Vec<&String> = raw.keys().take(8).collect();
            layout_err(format!(
                "cannot recognise the layout (torchvision, lup, cion or fastreid) from its \
                 {} keys; first keys: {first:?}",
                raw.len()
            ))
        })?,
        WeightsFormat::Torchvision => Layout::Torchvision,
        WeightsFormat::Lup => Layout::Lup,
        WeightsFormat::Cion => Layout::Cion,
        WeightsFormat::FastReid => Layout::FastReid,
        WeightsFormat::TransReid => Layout::TransReid,
    };
    let extracted = layout::extract(raw, layout, target).map_err(layout_err)?;

    let expected = strict_apply::model_shapes(model);
    let head_embedding = expected.keys().any(|k| k.ends_with("embedding.weight"));
    let entries = extracted
        .tensors
        .into_iter()
        .map(|(file_key, tensor)| Entry {
            model_path: Some(keys::burn_param_name(
                &file_key,
                tensor.shape.num_dims(),
                &expected,
            )),
            file_key,
            tensor,
        })
        .collect();
    let torch_name = |burn: &str| keys::burn_to_torch(burn, head_embedding);
    let applied = apply_strict(model, path, layout.name(), entries, options, &torch_name)?;
    Ok(applied.into_report(path, container, layout, extracted.ignored))
}

/// Writes `model`'s tensors to a safetensors file under their PyTorch names
/// (torchvision / IBN-Net / fast-reid), loadable in Python with
/// `model.load_state_dict(safetensors.torch.load_file(path), strict=False)`
/// (strict loading also works except for the `num_batches_tracked`
/// counters, which burn does not keep). The file is byte-reproducible: the
/// same weights give the same bytes (tensors sorted by name, one metadata
/// entry `format: pt`).
pub fn save_safetensors<M: ModuleSnapshot>(
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), BackboneError> {
    save_remapped(model, path.as_ref(), &[], &[])
}

/// [`save_safetensors`] with `metadata` (key, value) entries added to the
/// file's header next to `format: pt` (in the order given; written sorted
/// by the safetensors writer). The whole-model export of fine-tuning
/// records how to rebuild the model there (`reid.arch`, `reid.base_width`,
/// `reid.stem_pool`, …), which [`safetensors_metadata`] reads back.
pub fn save_safetensors_with_metadata<M: ModuleSnapshot>(
    model: &M,
    path: impl AsRef<Path>,
    metadata: &[(&str, String)],
) -> Result<(), BackboneError> {
    save_remapped(model, path.as_ref(), &[], metadata)
}

/// Writes a BoT model in inference form ([`crate::ReidModel::fold_batch_norm`])
/// to a safetensors file under fast-reid's names, with `metadata` entries
/// as in [`save_safetensors_with_metadata`].
///
/// Every convolution whose BatchNorm was folded gets a `bias` and loses its
/// norm: `backbone.conv1.{weight,bias}`,
/// `backbone.layer{1-4}.{i}.conv{1,2,3}.{weight,bias}`,
/// `backbone.layer{1-4}.{i}.downsample.0.{weight,bias}`. What cannot be
/// folded keeps its fast-reid name: IBN-a's `bn1.IN.*` / `bn1.BN.*` (the
/// convolution before it keeps no bias), IBN-b's stem `bn1.*` and
/// post-add `IN.*`, and the head (`heads.bottleneck.0.*`, the BNNeck, whose
/// running statistics stay). `tools/onnx_export_check.py` loads the file
/// strictly into the matching PyTorch module and checks its ONNX export.
pub fn save_folded_safetensors(
    model: &crate::ReidModel<crate::ResNet>,
    path: impl AsRef<Path>,
    metadata: &[(&str, String)],
) -> Result<(), BackboneError> {
    let trunk = &model.backbone;
    let stages = [
        trunk.layer1.len(),
        trunk.layer2.len(),
        trunk.layer3.len(),
        trunk.layer4.len(),
    ];
    let mut extra = vec![
        (
            r"^backbone\.stem\.conv\.".to_string(),
            "backbone.conv1.".to_string(),
        ),
        (
            r"^backbone\.stem\.norm\.".to_string(),
            "backbone.bn1.".to_string(),
        ),
    ];
    let mut global = 0;
    for (stage, &n) in stages.iter().enumerate() {
        for i in 0..n {
            extra.push((
                format!(r"^backbone\.blocks\.{global}\."),
                format!("backbone.layer{}.{i}.", stage + 1),
            ));
            global += 1;
        }
    }
    for j in 0..3 {
        extra.push((format!(r"\.convs\.{j}\.conv\."), format!(".conv{}.", j + 1)));
        extra.push((format!(r"\.convs\.{j}\.norm\."), format!(".bn{}.", j + 1)));
    }
    extra.push((
        r"\.downsample\.(weight|bias)$".into(),
        ".downsample.0.$1".into(),
    ));
    let extra: Vec<(&str, String)> = extra.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    save_remapped(&model.fold_batch_norm(), path.as_ref(), &extra, metadata)
}

/// The `__metadata__` entries of a safetensors file's header (empty when it
/// has none). Only the header is read; it must be valid JSON of at most
/// 100 MB, as the safetensors format requires.
pub fn safetensors_metadata(
    path: impl AsRef<Path>,
) -> Result<BTreeMap<String, String>, BackboneError> {
    use std::io::Read;
    let path = path.as_ref();
    let err = |message: String| BackboneError::Read {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| err(format!("reading the safetensors header length: {e}")))?;
    let len = u64::from_le_bytes(len);
    let file_len = file.metadata().map_err(|e| err(e.to_string()))?.len();
    if len > 100_000_000 || len > file_len.saturating_sub(8) {
        return Err(err(format!(
            "not a safetensors file: header length {len} bytes (file {file_len} bytes)"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| err(format!("reading the safetensors header: {e}")))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| err(format!("the safetensors header is not JSON: {e}")))?;
    let mut out = BTreeMap::new();
    if let Some(meta) = header.get("__metadata__").and_then(|m| m.as_object()) {
        for (k, v) in meta {
            let Some(v) = v.as_str() else {
                return Err(err(format!(
                    "safetensors metadata entry {k:?} is not a string"
                )));
            };
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(out)
}

/// Writes an [`Mgn`] to a safetensors file under fast-reid's MGN names:
/// `backbone.{0,1,4,5,6}.*` (the `nn.Sequential` indices of conv1, bn1,
/// layer1, layer2 and `layer3[0]`), `b{1,2,3}.0.*` (`res_conv4`) and
/// `b{1,2,3}.1.*` (`res_conv5`), `b*_head.{pool_layer.p, bottleneck.*,
/// weight}` and, with the LUPerson fork's extra BatchNorms,
/// `heads_extra_bn_b{1,2,3}.*`. [`load_mgn`] reads it back; in Python,
/// fast-reid's `MGN.load_state_dict(safetensors.torch.load_file(path),
/// strict=False)` (only the `num_batches_tracked` counters are absent).
pub fn save_mgn_safetensors(model: &Mgn, path: impl AsRef<Path>) -> Result<(), BackboneError> {
    save_mgn_safetensors_with_metadata(model, path, &[])
}

/// [`save_mgn_safetensors`] with `metadata` (key, value) entries in the
/// file's header, as [`save_safetensors_with_metadata`] writes them
/// (`finetune --head mgn --export-model` records how to rebuild the model).
pub fn save_mgn_safetensors_with_metadata(
    model: &Mgn,
    path: impl AsRef<Path>,
    metadata: &[(&str, String)],
) -> Result<(), BackboneError> {
    let sequential = [
        (r"^backbone\.conv1\.", "backbone.0."),
        (r"^backbone\.bn1\.", "backbone.1."),
        (r"^backbone\.layer1\.", "backbone.4."),
        (r"^backbone\.layer2\.", "backbone.5."),
        (r"^backbone\.layer3_0\.", "backbone.6."),
        (r"^(b[123])\.res_conv4\.", "$1.0."),
        (r"^(b[123])\.res_conv5\.", "$1.1."),
    ];
    let extra: Vec<(&str, String)> = sequential
        .iter()
        .map(|(from, to)| (*from, (*to).to_string()))
        .collect();
    save_remapped(model, path.as_ref(), &extra, metadata)
}

/// [`save_safetensors`]'s PyTorch naming, then `extra` (regex, replacement)
/// pairs, all applied in order.
fn save_remapped<M: ModuleSnapshot>(
    model: &M,
    path: &Path,
    extra: &[(&str, String)],
    metadata: &[(&str, String)],
) -> Result<(), BackboneError> {
    let write_err = |message: String| BackboneError::Write {
        path: path.to_path_buf(),
        message,
    };
    let head_embedding = model
        .collect(None, None, true)
        .iter()
        .any(|t| t.name.ends_with("embedding.weight"));
    let neck = if head_embedding { "1" } else { "0" };
    // The inverse of `keys::burn_param_name`, as regexes applied in order.
    let patterns = [
        (r"\.gamma$", ".weight".to_string()),
        (r"\.beta$", ".bias".to_string()),
        (r"\.downsample\.conv\.", ".downsample.0.".to_string()),
        (r"\.downsample\.bn\.", ".downsample.1.".to_string()),
        (r"\.instance_norm\.", ".IN.".to_string()),
        (r"\.batch_norm\.", ".BN.".to_string()),
        (r"\.post_norm\.", ".IN.".to_string()),
        (
            r"^(heads|\w+_head)\.neck\.",
            format!("$1.bottleneck.{neck}."),
        ),
        (
            r"^(heads|\w+_head)\.embedding\.",
            "$1.bottleneck.0.".to_string(),
        ),
    ];
    let mut remapper = KeyRemapper::new();
    for (from, to) in patterns.into_iter().chain(extra.iter().cloned()) {
        remapper = remapper
            .add_pattern(from, to)
            .map_err(|e| write_err(format!("{e:?}")))?;
    }
    // One metadata entry: burn's default three live in a hash map, whose
    // order (and so the file's bytes) would change from run to run. The
    // tensors are written sorted by name.
    let mut store = SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .overwrite(true)
        .clear_metadata()
        .metadata("format", "pt")
        .remap(remapper)
        // PyTorch's orientation (`Linear` weights `[out, in]`), as every
        // loader reads it back through `PyTorchToBurnAdapter`.
        .with_to_adapter(BurnToPyTorchAdapter);
    model
        .save_into(&mut store)
        .map_err(|e| write_err(e.to_string()))?;
    if metadata.is_empty() {
        return Ok(());
    }
    add_header_metadata(path, metadata).map_err(write_err)
}

/// Adds `entries` to the `__metadata__` of the safetensors file at `path`,
/// rewriting its header with sorted keys (burn keeps metadata in a hash
/// map, whose order would make the bytes differ from run to run), padded
/// with spaces to a multiple of 8 bytes as the format recommends; the file
/// is replaced through a temporary file in the same folder.
fn add_header_metadata(path: &Path, entries: &[(&str, String)]) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .filter(|&n| n <= bytes.len() - 8)
        .ok_or("the written file has no safetensors header")?;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).map_err(|e| e.to_string())?;
    let obj = header
        .as_object_mut()
        .ok_or("the written safetensors header is not an object")?;
    let meta = obj
        .entry("__metadata__")
        .or_insert_with(|| serde_json::Value::Object(Default::default()))
        .as_object_mut()
        .ok_or("the written safetensors metadata is not an object")?;
    for (k, v) in entries {
        meta.insert((*k).to_string(), serde_json::Value::String(v.clone()));
    }
    let mut text = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - len);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + len..]);
    let tmp = path.with_extension(format!(
        "safetensors.{}.{}.tmp",
        std::process::id(),
        NEXT_TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&tmp, &out).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// The tensor names of a checkpoint (PyTorch `.pth` / `.pt`, safetensors),
/// sorted, as the file spells them (nested dictionaries such as fast-reid's
/// `model` flattened with dots).
pub fn checkpoint_keys(path: impl AsRef<Path>) -> Result<Vec<String>, BackboneError> {
    let path = path.as_ref();
    let container = Container::sniff(path)?;
    let raw = source::read_tensors(path, container)?;
    let mut keys: Vec<String> = raw.keys().cloned().collect();
    keys.sort();
    Ok(keys)
}

/// The layout a file would be read as under [`WeightsFormat::Auto`], and
/// its container; for diagnostics.
pub fn inspect(path: impl AsRef<Path>) -> Result<(Container, Option<Layout>), BackboneError> {
    let path = path.as_ref();
    let container = Container::sniff(path)?;
    let raw = source::read_tensors(path, container)?;
    Ok((container, Layout::detect(raw.keys())))
}

/// Numbers the temporary files of concurrent exports within one process.
static NEXT_TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
