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
//! Every save also writes [`CHECKSUMS`], the size and a 64-bit checksum of
//! each part; [`Checkpoint::read`] verifies a part against it, so a file
//! changed on disk after the save (a flipped bit, a truncation) is an error
//! naming the file instead of a silent load. A save that fails (a full disk)
//! removes its temporary folder, so the next save or resume on that disk
//! is not blocked by it.
//!
//! Modules go through burn's burnpack format ([`module_to_bytes`],
//! [`module_from_bytes`]), which keeps each parameter's id, so an optimiser
//! record saved with [`optim_to_bytes`] finds its parameters again after a
//! restart. Loading is strict: a missing, unexpected or mis-shaped tensor is
//! an error that lists them.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device, Tensor, TensorData};

use crate::error::TrainError;

/// Name of the file that names the newest complete checkpoint folder.
pub const LATEST: &str = "latest";

/// Name of the part listing every other part's size and checksum.
pub const CHECKSUMS: &str = "checksums.json";

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

/// A failure to write a checkpoint (the environment's: a full disk, an
/// unwritable folder); keeps the system's error for the exit-code rule.
fn write_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// The size and checksum of one checkpoint part, as [`CHECKSUMS`] stores
/// them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartChecksum {
    /// Length in bytes.
    pub bytes: u64,
    /// [`checksum`] of the content, 16 lower-case hex digits.
    pub fnv1a64: String,
}

impl PartChecksum {
    /// The entry for `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.len() as u64,
            fnv1a64: format!("{:016x}", checksum(bytes)),
        }
    }
}

/// A 64-bit FNV-1a checksum over little-endian 8-byte words (the last,
/// partial word zero-padded), seeded with the length. Every step is a
/// bijection of the running state, so any change confined to one word (a
/// flipped bit, a changed byte) always changes the result; a truncation
/// changes the length.
pub fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = (OFFSET ^ bytes.len() as u64).wrapping_mul(PRIME);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
    }
    h
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
        if parts.iter().any(|(name, _)| *name == CHECKSUMS) {
            return Err(TrainError::Checkpoint(format!(
                "the checkpoint part name {CHECKSUMS:?} is reserved for the checksums"
            )));
        }
        fs::create_dir_all(&self.root).map_err(|e| write_err(&self.root, e))?;
        self.remove_stale_tmp()?;
        let name = format!("{PREFIX}{step:09}");
        let final_dir = self.root.join(&name);
        let tmp_dir = self.root.join(format!("{name}{TMP_SUFFIX}"));
        if let Err(e) = write_parts(&tmp_dir, parts) {
            // A failed save (a full disk) leaves nothing behind.
            let _ = fs::remove_dir_all(&tmp_dir);
            return Err(e);
        }
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(|e| write_err(&final_dir, e))?;
        }
        if let Err(e) = fs::rename(&tmp_dir, &final_dir) {
            let _ = fs::remove_dir_all(&tmp_dir);
            return Err(write_err(&final_dir, e));
        }
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
        let entries = fs::read_dir(&self.root).map_err(|e| write_err(&self.root, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && name.ends_with(TMP_SUFFIX) {
                let p = entry.path();
                fs::remove_dir_all(&p).map_err(|e| write_err(&p, e))?;
            } else if name.starts_with(LATEST) && name.ends_with(TMP_SUFFIX) {
                // A pointer update cut short by a kill.
                let p = entry.path();
                fs::remove_file(&p).map_err(|e| write_err(&p, e))?;
            }
        }
        Ok(())
    }

    fn prune(&self) -> Result<(), TrainError> {
        let all = self.complete()?;
        if all.len() > self.keep {
            for c in &all[..all.len() - self.keep] {
                fs::remove_dir_all(&c.path).map_err(|e| write_err(&c.path, e))?;
            }
        }
        Ok(())
    }
}

impl Checkpoint {
    /// Reads one part of the checkpoint and verifies it against the
    /// checkpoint's [`CHECKSUMS`] (checkpoints written before checksums
    /// existed have none and are read as they are).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file when it cannot be read,
    /// is not listed in the checksums, or differs from what was written.
    pub fn read(&self, part: &str) -> Result<Vec<u8>, TrainError> {
        let path = self.path.join(part);
        let bytes = fs::read(&path).map_err(|e| io_err(&path, "reading checkpoint part", e))?;
        if let Some(sums) = self.checksums()? {
            let Some(want) = sums.get(part) else {
                return Err(TrainError::Checkpoint(format!(
                    "{}: not listed in {CHECKSUMS} of its checkpoint; the checkpoint was changed after it was written",
                    path.display()
                )));
            };
            let got = PartChecksum::of(&bytes);
            if &got != want {
                return Err(TrainError::Checkpoint(format!(
                    "{}: damaged or changed after it was written ({} bytes with checksum {}, expected {} bytes with checksum {}); \
                     delete the folder {} to resume from the checkpoint before it",
                    path.display(),
                    got.bytes,
                    got.fnv1a64,
                    want.bytes,
                    want.fnv1a64,
                    self.path.display()
                )));
            }
        }
        Ok(bytes)
    }

    /// The checkpoint's [`CHECKSUMS`], or `None` when it has none.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] when the file exists but cannot be read
    /// or decoded.
    pub fn checksums(
        &self,
    ) -> Result<Option<std::collections::BTreeMap<String, PartChecksum>>, TrainError> {
        let path = self.path.join(CHECKSUMS);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, "reading", e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            TrainError::Checkpoint(format!(
                "{}: not a checksum list ({e}); the checkpoint is damaged",
                path.display()
            ))
        })
    }

    /// Verifies every part listed in the checkpoint's [`CHECKSUMS`] (see
    /// [`Self::read`]).
    ///
    /// # Errors
    /// As [`Self::read`], for the first part that fails.
    pub fn verify(&self) -> Result<(), TrainError> {
        if let Some(sums) = self.checksums()? {
            for part in sums.keys() {
                self.read(part)?;
            }
        }
        Ok(())
    }

    /// Reads one part that was written as JSON and decodes it.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, part: &str) -> Result<T, TrainError> {
        let bytes = self.read(part)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            TrainError::Checkpoint(format!("decoding {}: {e}", self.path.join(part).display()))
        })
    }
}

/// Writes `parts` and their [`CHECKSUMS`] into a new folder `dir`, each
/// file flushed to disk, then the folder.
fn write_parts(dir: &Path, parts: &[(&str, &[u8])]) -> Result<(), TrainError> {
    fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let sums: std::collections::BTreeMap<&str, PartChecksum> = parts
        .iter()
        .map(|(name, bytes)| (*name, PartChecksum::of(bytes)))
        .collect();
    let manifest = serde_json::to_vec_pretty(&sums)
        .map_err(|e| TrainError::Checkpoint(format!("encoding {CHECKSUMS}: {e}")))?;
    for (part, bytes) in parts.iter().chain([&(CHECKSUMS, manifest.as_slice())]) {
        let path = dir.join(part);
        let mut f = File::create(&path).map_err(|e| write_err(&path, e))?;
        f.write_all(bytes).map_err(|e| write_err(&path, e))?;
        f.sync_all().map_err(|e| write_err(&path, e))?;
    }
    sync_dir(dir)
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
    // Unique to this process and call, so that concurrent writers of one
    // path never rename each other's half-written file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_added_extension(format!("{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| write_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| write_err(&tmp, e))?;
        f.sync_all().map_err(|e| write_err(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| write_err(path, e))
    })();
    if written.is_err() {
        // Nothing half-written stays behind.
        let _ = fs::remove_file(&tmp);
    }
    written?;
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
    let result = module.load_from(&mut store).map_err(|e| {
        TrainError::Checkpoint(format!(
            "{what}: not a model record this program can read ({e})"
        ))
    })?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        let list = |v: Vec<String>| {
            let n = v.len();
            let mut shown: Vec<String> = v.into_iter().take(8).collect();
            if n > shown.len() {
                shown.push(format!("… {} more", n - shown.len()));
            }
            shown.join(", ")
        };
        let mut parts = Vec::new();
        if !result.missing.is_empty() {
            parts.push(format!(
                "tensors missing from the file: {}",
                list(result.missing.iter().map(|(k, _)| k.clone()).collect())
            ));
        }
        if !result.unused.is_empty() {
            parts.push(format!(
                "tensors the model does not have: {}",
                list(result.unused.clone())
            ));
        }
        if !result.errors.is_empty() {
            parts.push(format!(
                "tensors that do not fit: {}",
                list(result.errors.iter().map(ToString::to_string).collect())
            ));
        }
        return Err(TrainError::Checkpoint(format!(
            "{what} does not match the model ({}); resume with the same architecture",
            parts.join("; ")
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
