//! Checkpoint saving and resuming shared by the recipes: where to resume
//! from, the configuration and training-set checks, and the parts a save
//! writes.

use std::path::Path;

use reid_data::{ImageLocation, ImageRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::{Checkpoint, CheckpointDir, checksum};
use super::drive::Position;
use super::options::RunOptions;
use crate::error::TrainError;

/// The newest checkpoint when `run` asks to resume.
pub(crate) fn resume_point(run: &RunOptions) -> Result<Option<Checkpoint>, TrainError> {
    match (run.checkpoints(), run.resume) {
        (Some(dir), true) => dir.latest(),
        _ => Ok(None),
    }
}

/// Whether `run` asks to resume but its checkpoint directory holds no
/// checkpoint: the directory, for the caller to say that the run starts
/// afresh.
pub fn nothing_to_resume(run: &RunOptions) -> Result<Option<&Path>, TrainError> {
    match (&run.checkpoint_dir, run.resume) {
        (Some(dir), true) => {
            let found = CheckpointDir::new(dir.clone(), 1).latest()?;
            Ok(found.is_none().then_some(dir.as_path()))
        }
        _ => Ok(None),
    }
}

/// Fails unless a checkpoint's stored configuration equals the run's; the
/// error names the first fields that differ and both values.
pub(crate) fn same_config<C: PartialEq + Serialize>(
    ckpt: &Checkpoint,
    stored: &C,
    current: &C,
) -> Result<(), TrainError> {
    if stored == current {
        return Ok(());
    }
    let stored = serde_json::to_value(stored).unwrap_or(Value::Null);
    let current = serde_json::to_value(current).unwrap_or(Value::Null);
    let mut diffs = Vec::new();
    config_diff("", &stored, &current, &mut diffs);
    let detail = if diffs.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = diffs.iter().take(4).map(String::as_str).collect();
        let more = diffs.len().saturating_sub(shown.len());
        format!(
            " ({}{})",
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )
    };
    Err(TrainError::Checkpoint(format!(
        "{} was written with another configuration{detail}; resume with the same one, or start a fresh run in another folder",
        ckpt.path.display()
    )))
}

/// The fields in which `stored` and `current` differ, as
/// "`path`: the checkpoint has X, this run Y". A tuple (a JSON array of
/// objects at the top) is compared element by element without an index in
/// the path.
fn config_diff(path: &str, stored: &Value, current: &Value, out: &mut Vec<String>) {
    if stored == current {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (stored, current) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                config_diff(&join(k), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b))
            if path.is_empty() && a.len() == b.len() && a.iter().any(Value::is_object) =>
        {
            for (x, y) in a.iter().zip(b) {
                config_diff("", x, y, out);
            }
        }
        _ => {
            let name = if path.is_empty() { "value" } else { path };
            out.push(format!(
                "`{name}`: the checkpoint has {stored}, this run {current}"
            ));
        }
    }
}

/// What a checkpoint records of the training set it was written for: the
/// number of images and identities and a checksum over every record's
/// file name and label, in order (the samplers index records by position).
/// File names, not full paths: the data may move to another folder (or
/// between a folder tree and an LMDB) between a run and its resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFingerprint {
    /// Training images.
    pub images: usize,
    /// Distinct labels (identities, tracklets) among them.
    pub identities: usize,
    /// Checksum of the records' file names and labels, 16 hex digits.
    pub checksum: String,
}

impl DataFingerprint {
    /// The fingerprint of `records`.
    pub fn of(records: &[ImageRecord]) -> Self {
        let mut text = Vec::new();
        for r in records {
            let name = match &r.location {
                ImageLocation::Path(p) => p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ImageLocation::LmdbKey(k) => k.rsplit('/').next().unwrap_or(k).to_string(),
            };
            text.extend_from_slice(name.as_bytes());
            text.push(0);
            text.extend_from_slice(&r.pid.to_le_bytes());
        }
        let mut pids: Vec<i64> = records.iter().map(|r| r.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        Self {
            images: records.len(),
            identities: pids.len(),
            checksum: format!("{:016x}", checksum(&text)),
        }
    }
}

/// Fails when a checkpoint's recorded training set (`stored`; absent in
/// checkpoints written before fingerprints) differs from the run's.
pub fn same_data(
    ckpt: &Checkpoint,
    stored: Option<&DataFingerprint>,
    current: &DataFingerprint,
) -> Result<(), TrainError> {
    match stored {
        Some(s) if s != current => Err(TrainError::Checkpoint(format!(
            "{} was written for another training set ({} images, {} identities, checksum {}); \
             this run has {} images, {} identities, checksum {}: resume with the same data, \
             or start a fresh run in another folder",
            ckpt.path.display(),
            s.images,
            s.identities,
            s.checksum,
            current.images,
            current.identities,
            current.checksum
        ))),
        _ => Ok(()),
    }
}

/// Checkpoint parts of `N` networks of one type (the online + key/teacher
/// networks of a momentum pair; the one fine-tuned model), their optimiser
/// (`optim.bpk`) and extra parts, in one save.
pub(crate) fn save_parts<M: burn::module::Module, const N: usize>(
    dir: &Option<CheckpointDir>,
    pos: Position,
    nets: [(&str, &M); N],
    optim: &burn::optim::ModuleOptimizer,
    extra: &[(&str, &[u8])],
) -> Result<Option<Checkpoint>, TrainError> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let bytes = nets
        .iter()
        .map(|(_, m)| super::checkpoint::module_to_bytes(*m))
        .collect::<Result<Vec<_>, _>>()?;
    let o = super::checkpoint::optim_to_bytes(optim)?;
    let mut parts: Vec<(&str, &[u8])> = nets
        .iter()
        .zip(&bytes)
        .map(|((name, _), b)| (*name, b.as_slice()))
        .collect();
    parts.push(("optim.bpk", &o));
    parts.extend_from_slice(extra);
    dir.save(pos.step, &parts).map(Some)
}

/// Loads checkpoint part `name` (written by [`save_parts`]) into `module`,
/// which must have the same structure; the parameter ids come back too.
pub(crate) fn load_module<M: burn::module::Module>(
    ckpt: &Checkpoint,
    name: &str,
    module: M,
) -> Result<M, TrainError> {
    let what = ckpt.path.join(name).display().to_string();
    super::checkpoint::module_from_bytes(module, ckpt.read(name)?, &what)
}

/// Restores `optim` (a fresh optimiser of the run's kind) from the
/// checkpoint's `optim.bpk`.
pub(crate) fn load_optim(
    ckpt: &Checkpoint,
    optim: &mut burn::optim::ModuleOptimizer,
) -> Result<(), TrainError> {
    let what = ckpt.path.join("optim.bpk").display().to_string();
    let bytes = ckpt.read("optim.bpk")?;
    *optim = super::checkpoint::optim_from_bytes(optim.clone(), bytes, &what)?;
    Ok(())
}

/// Encodes a `state.json` part.
pub(crate) fn state_json<S: serde::Serialize>(state: &S) -> Result<Vec<u8>, TrainError> {
    serde_json::to_vec(state)
        .map_err(|e| TrainError::Checkpoint(format!("encoding state.json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_names_each_changed_field() {
        let a = serde_json::json!({"lr": 0.1, "k": {"start": 2, "end": 4}, "arch": "r18"});
        let b = serde_json::json!({"lr": 0.2, "k": {"start": 2, "end": 8}, "arch": "r18"});
        let mut out = Vec::new();
        config_diff("", &a, &b, &mut out);
        assert_eq!(
            out,
            [
                "`k.end`: the checkpoint has 4, this run 8",
                "`lr`: the checkpoint has 0.1, this run 0.2"
            ]
        );
        // A tuple of (config, count) compares its elements without an index.
        let mut out = Vec::new();
        config_diff(
            "",
            &serde_json::json!([{"lr": 0.1}, 10]),
            &serde_json::json!([{"lr": 0.1}, 11]),
            &mut out,
        );
        assert_eq!(out, ["`value`: the checkpoint has 10, this run 11"]);
    }

    #[test]
    fn the_fingerprint_follows_names_labels_and_order() {
        let recs = |v: &[(&str, i64)]| -> Vec<ImageRecord> {
            v.iter()
                .map(|(p, id)| ImageRecord::new(*p, *id, 0))
                .collect()
        };
        let a = DataFingerprint::of(&recs(&[("/x/a.jpg", 0), ("/x/b.jpg", 1)]));
        // Another folder: the same set.
        assert_eq!(
            a,
            DataFingerprint::of(&recs(&[("/y/a.jpg", 0), ("/y/b.jpg", 1)]))
        );
        assert_eq!((a.images, a.identities), (2, 2));
        for other in [
            recs(&[("/x/a.jpg", 0), ("/x/b.jpg", 0)]),
            recs(&[("/x/b.jpg", 1), ("/x/a.jpg", 0)]),
            recs(&[("/x/a.jpg", 0)]),
            recs(&[("/x/a.jpg", 0), ("/x/c.jpg", 1)]),
        ] {
            assert_ne!(a, DataFingerprint::of(&other));
        }
    }
}
