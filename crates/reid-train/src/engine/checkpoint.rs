//! Training checkpoints written atomically, and read back for an exact
//! resume.
//!
//! A checkpoint is a folder `step-{step:09}` under the run's checkpoint
//! directory holding named parts (`model.bpk`, `optim.bpk`, `state.json`, …).
//! [`CheckpointDir::save`] writes the parts into a temporary folder, flushes
//! every file to disk, renames the folder into place (atomic on one file
//! system) and only then points the `latest` file at it (itself replaced
//! atomically) and prunes older checkpoints. A process killed at any moment
//! (`kill -9` included) leaves either the previous or the new checkpoint as
//! `latest`, never a torn one; stale temporary folders are removed by the
//! next save.
//!
//! Modules go through burn's burnpack format ([`module_to_bytes`],
//! [`module_from_bytes`]), which keeps each parameter's id, so an optimiser
//! record saved with [`optim_to_bytes`] finds its parameters again after a
//! restart. Loading is strict: a missing, unexpected or mis-shaped tensor is
//! an error that lists them.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device, Tensor, TensorData};

use crate::error::TrainError;

/// Name of the file that names the newest complete checkpoint folder.
pub const LATEST: &str = "latest";

/// Prefix of a checkpoint folder's name; the step follows, zero-padded.
const PREFIX: &str = "step-";
/// Suffix of a folder being written.
const TMP_SUFFIX: &str = ".tmp";

/// A run's checkpoint directory: where [`save`](Self::save) writes and
/// [`latest`](Self::latest) reads.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
    keep: usize,
}

/// A complete checkpoint on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of optimiser steps completed when it was written.
    pub step: usize,
    /// Its folder.
    pub path: PathBuf,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint(format!("{what} {}: {e}", path.display()))
}

impl CheckpointDir {
    /// A checkpoint directory at `root` (created on the first save) that
    /// keeps the newest `keep` checkpoints (at least 1).
    pub fn new(root: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            root: root.into(),
            keep: keep.max(1),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes a checkpoint of `step` completed steps made of `parts`
    /// (`(file name, bytes)`; plain names, no separators) and makes it the
    /// latest. Returns its folder.
    pub fn save(&self, step: usize, parts: &[(&str, &[u8])]) -> Result<Checkpoint, TrainError> {
        for (name, _) in parts {
            if name.is_empty() || name.contains(['/', '\\']) || *name == "." || *name == ".." {
                return Err(TrainError::Checkpoint(format!(
                    "invalid checkpoint part name {name:?}: expected a plain file name"
                )));
            }
        }
        fs::create_dir_all(&self.root).map_err(|e| io_err(&self.root, "creating", e))?;
        self.remove_stale_tmp()?;
        let name = format!("{PREFIX}{step:09}");
        let final_dir = self.root.join(&name);
        let tmp_dir = self.root.join(format!("{name}{TMP_SUFFIX}"));
        fs::create_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, "creating", e))?;
        for (part, bytes) in parts {
            let path = tmp_dir.join(part);
            let mut f = File::create(&path).map_err(|e| io_err(&path, "creating", e))?;
            f.write_all(bytes)
                .map_err(|e| io_err(&path, "writing", e))?;
            f.sync_all().map_err(|e| io_err(&path, "flushing", e))?;
        }
        sync_dir(&tmp_dir)?;
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(|e| io_err(&final_dir, "replacing", e))?;
        }
        fs::rename(&tmp_dir, &final_dir).map_err(|e| io_err(&final_dir, "renaming into", e))?;
        sync_dir(&self.root)?;
        write_atomic(&self.root.join(LATEST), name.as_bytes())?;
        self.prune()?;
        Ok(Checkpoint {
            step,
            path: final_dir,
        })
    }

    /// The newest complete checkpoint, or `None` when the directory holds
    /// none (or does not exist). Follows the `latest` file; when that is
    /// missing or names a folder that is gone, falls back to the highest
    /// complete `step-*` folder.
    pub fn latest(&self) -> Result<Option<Checkpoint>, TrainError> {
        if !self.root.exists() {
            return Ok(None);
        }
        let latest = self.root.join(LATEST);
        if let Ok(name) = fs::read_to_string(&latest) {
            let name = name.trim();
            if let Some(step) = parse_step(name) {
                let path = self.root.join(name);
                if path.is_dir() {
                    return Ok(Some(Checkpoint { step, path }));
                }
            }
        }
        Ok(self.complete()?.into_iter().last())
    }

    /// All complete checkpoints, oldest first.
    pub fn complete(&self) -> Result<Vec<Checkpoint>, TrainError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&self.root, "listing", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.root, "listing", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(step) = parse_step(&name)
                && entry.path().is_dir()
            {
                out.push(Checkpoint {
                    step,
                    path: entry.path(),
                });
            }
        }
        out.sort_by_key(|c| c.step);
        Ok(out)
    }

    fn remove_stale_tmp(&self) -> Result<(), TrainError> {
        let entries = fs::read_dir(&self.root).map_err(|e| io_err(&self.root, "listing", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && name.ends_with(TMP_SUFFIX) {
                let p = entry.path();
                fs::remove_dir_all(&p).map_err(|e| io_err(&p, "removing stale", e))?;
            }
        }
        Ok(())
    }

    fn prune(&self) -> Result<(), TrainError> {
        let all = self.complete()?;
        if all.len() > self.keep {
            for c in &all[..all.len() - self.keep] {
                fs::remove_dir_all(&c.path).map_err(|e| io_err(&c.path, "pruning", e))?;
            }
        }
        Ok(())
    }
}

impl Checkpoint {
    /// Reads one part of the checkpoint.
    pub fn read(&self, part: &str) -> Result<Vec<u8>, TrainError> {
        let path = self.path.join(part);
        fs::read(&path).map_err(|e| io_err(&path, "reading checkpoint part", e))
    }

    /// Reads one part that was written as JSON and decodes it.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, part: &str) -> Result<T, TrainError> {
        let bytes = self.read(part)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            TrainError::Checkpoint(format!("decoding {}: {e}", self.path.join(part).display()))
        })
    }
}

fn parse_step(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    // Directory fsync makes the rename durable; not every platform allows
    // opening a directory, so failing to open is not an error.
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a sibling `*.tmp` file is written,
/// flushed and renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, "creating", e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, "writing", e))?;
        f.sync_all().map_err(|e| io_err(&tmp, "flushing", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io_err(path, "renaming into", e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Serialises every tensor of `module` (parameters with their ids, and
/// buffers such as BatchNorm running statistics, pending updates included)
/// in burn's burnpack format.
pub fn module_to_bytes<M: Module>(module: &M) -> Result<Vec<u8>, TrainError> {
    // burn applies a BatchNorm running-statistics update lazily (at the next
    // use); `valid()` folds pending updates in (the state is shared with
    // `module`), so the file holds what the next step would use and a
    // resumed run stays bit-identical.
    let _ = module.valid();
    let mut store = BurnpackStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| TrainError::Checkpoint(format!("serialising a module: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| TrainError::Checkpoint(format!("serialising a module: {e}")))?;
    Ok(bytes.to_vec())
}

/// Loads tensors written by [`module_to_bytes`] into `module` (same
/// architecture), restoring parameter ids. Strict: `what` names the source
/// in the error, which lists missing, unexpected and mis-shaped tensors.
pub fn module_from_bytes<M: Module>(
    mut module: M,
    bytes: Vec<u8>,
    what: &str,
) -> Result<M, TrainError> {
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)))
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| TrainError::Checkpoint(format!("{what}: {e}")))?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        let missing: Vec<&str> = result.missing.iter().map(|(k, _)| k.as_str()).collect();
        return Err(TrainError::Checkpoint(format!(
            "{what} does not match the model: missing {missing:?}, unexpected {:?}, errors {:?}",
            result.unused, result.errors
        )));
    }
    Ok(module)
}

/// Serialises an optimiser's state (moments, step counts), keyed by
/// parameter id.
pub fn optim_to_bytes(optim: &ModuleOptimizer) -> Result<Vec<u8>, TrainError> {
    optim
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| TrainError::Checkpoint(format!("serialising the optimiser: {e}")))
}

/// Restores an optimiser's state written by [`optim_to_bytes`] into a fresh
/// optimiser of the same kind.
pub fn optim_from_bytes(
    optim: ModuleOptimizer,
    bytes: Vec<u8>,
    what: &str,
) -> Result<ModuleOptimizer, TrainError> {
    optim
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::Checkpoint(format!("{what}: {e}")))
}

/// A host copy of a float tensor: shape and row-major values, for JSON
/// state files (centers, small buffers). Bit-exact round trip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// Reads `t` back to the host.
    pub fn from_tensor<const D: usize>(t: &Tensor<D>) -> Result<Self, TrainError> {
        let data = t.clone().into_data();
        let shape = data.shape().to_vec();
        let values = data
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
        Ok(Self { shape, values })
    }

    /// Uploads to `device`; the rank must be `D`.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Result<Tensor<D>, TrainError> {
        if self.shape.len() != D || self.shape.iter().product::<usize>() != self.values.len() {
            return Err(TrainError::Checkpoint(format!(
                "stored tensor of shape {:?} with {} values cannot be a rank-{D} tensor",
                self.shape,
                self.values.len()
            )));
        }
        Ok(Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            device,
        ))
    }
}

/// `values` as little-endian bytes (for large buffers such as MoCo's
/// queue, stored beside `state.json`).
pub fn f32s_to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The inverse of [`f32s_to_bytes`]; `what` names the part in the error.
pub fn bytes_to_f32s(bytes: &[u8], what: &str) -> Result<Vec<f32>, TrainError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(TrainError::Checkpoint(format!(
            "{what}: {} bytes is not a whole number of float32 values",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
