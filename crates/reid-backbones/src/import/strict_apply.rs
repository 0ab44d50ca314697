//! The strict one-to-one check shared by the importers of the non-ResNet
//! families: every file tensor is renamed to a model path by the family's
//! own key mapping, then checked against the model's tensors before
//! anything is written (missing / unexpected / mis-shaped keys, with the
//! [`super::ImportOptions`] allow-lists), and finally applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleSnapshot};

use super::options::allowed;
use crate::error::{BackboneError, KeyMismatch};

/// One tensor of the file: its key (as the layout names it, after the
/// wrapper prefixes are removed), the model path it maps to (`None`: no
/// model parameter has that name), and the tensor.
pub(crate) struct Entry {
    pub file_key: String,
    pub model_path: Option<String>,
    pub tensor: PackTensor,
}

/// What [`apply_strict`] did.
pub(crate) struct Applied {
    /// Number of model tensors written.
    pub count: usize,
    /// Unused file keys accepted through the allow-list.
    pub allowed_unexpected: Vec<String>,
    /// Model parameters (file naming) left at their initialisation through
    /// the allow-list.
    pub allowed_missing: Vec<String>,
}

/// The model's own tensors: burn path → shape.
pub(crate) fn model_shapes<M: ModuleSnapshot>(model: &M) -> BTreeMap<String, Vec<usize>> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

/// Checks `entries` against `model` and writes them.
///
/// `file_key_of` names a model path the way the file's layout would (for
/// the list of missing keys). `layout` names the layout in errors.
pub(crate) fn apply_strict<M: ModuleSnapshot>(
    model: &mut M,
    path: &Path,
    layout: &str,
    entries: Vec<Entry>,
    options: &super::options::ImportOptions,
    file_key_of: &dyn Fn(&str) -> String,
) -> Result<Applied, BackboneError> {
    let expected = model_shapes(model);
    let mut to_apply = Vec::new();
    let mut seen = BTreeSet::new();
    let mut unexpected = Vec::new();
    let mut allowed_unexpected = Vec::new();
    let mut mis_shaped = Vec::new();
    for Entry {
        file_key,
        model_path,
        mut tensor,
    } in entries
    {
        let target = model_path
            .filter(|p| expected.contains_key(p))
            .filter(|p| !seen.contains(p));
        let Some(target) = target else {
            if allowed(&options.allow_unexpected, &file_key) {
                allowed_unexpected.push(file_key);
            } else {
                unexpected.push(file_key);
            }
            continue;
        };
        seen.insert(target.clone());
        let shape = &expected[&target];
        if shape.as_slice() != tensor.shape.as_slice() {
            mis_shaped.push((file_key, shape.clone(), tensor.shape.to_vec()));
            continue;
        }
        tensor.name = target;
        to_apply.push(tensor);
    }
    let mut missing = Vec::new();
    let mut allowed_missing = Vec::new();
    for model_path in expected.keys().filter(|p| !seen.contains(*p)) {
        let key = file_key_of(model_path);
        if allowed(&options.allow_missing, &key) {
            allowed_missing.push(key);
        } else {
            missing.push(key);
        }
    }
    let mismatch = KeyMismatch {
        path: path.to_path_buf(),
        layout: layout.to_string(),
        missing,
        unexpected,
        mis_shaped,
    };
    let count = write_checked(model, mismatch, to_apply, None)?;
    Ok(Applied {
        count,
        allowed_unexpected,
        allowed_missing,
    })
}

/// The end of every strict import: `mismatch` as the error when it lists
/// anything (missing, unexpected or mis-shaped keys), otherwise `tensors`
/// written into `model` through `adapter` (if any), every one of them or
/// an error. Returns how many were written.
pub(crate) fn write_checked<M: ModuleSnapshot>(
    model: &mut M,
    mismatch: KeyMismatch,
    tensors: Vec<PackTensor>,
    adapter: Option<Box<dyn ModuleAdapter>>,
) -> Result<usize, BackboneError> {
    let KeyMismatch {
        missing,
        unexpected,
        mis_shaped,
        ..
    } = &mismatch;
    if !(missing.is_empty() && unexpected.is_empty() && mis_shaped.is_empty()) {
        return Err(BackboneError::KeyMismatch(Box::new(mismatch)));
    }
    let count = tensors.len();
    let result = model.apply(tensors, None, adapter, true);
    if !result.errors.is_empty() || result.applied.len() != count || !result.unused.is_empty() {
        return Err(BackboneError::Layout {
            path: mismatch.path,
            message: format!("burn-store did not apply every checked tensor: {result}"),
        });
    }
    Ok(count)
}

/// Writes the lines every family's import report ends with: the keys set
/// aside (with the reason) and what the allow-lists let through.
pub(crate) fn write_report_tail(
    f: &mut std::fmt::Formatter<'_>,
    ignored: &[super::layout::Ignored],
    allowed_unexpected: &[String],
    allowed_missing: &[String],
) -> std::fmt::Result {
    for g in ignored {
        write!(f, "\n  ignored {} key(s): {}", g.keys.len(), g.reason)?;
    }
    if !allowed_unexpected.is_empty() {
        let keys = allowed_unexpected.join(", ");
        write!(f, "\n  allowed unused key(s): {keys}")?;
    }
    if !allowed_missing.is_empty() {
        let keys = allowed_missing.join(", ");
        write!(f, "\n  left at initialisation (allowed): {keys}")?;
    }
    Ok(())
}
