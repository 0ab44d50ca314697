//! Checkpoint saving and resuming shared by the recipes: where to resume
//! from, the configuration check, and the parts a save writes.

use super::checkpoint::{Checkpoint, CheckpointDir};
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

/// Fails unless a checkpoint's stored configuration equals the run's.
pub(crate) fn same_config<C: PartialEq>(
    ckpt: &Checkpoint,
    stored: &C,
    current: &C,
) -> Result<(), TrainError> {
    if stored == current {
        Ok(())
    } else {
        Err(TrainError::Checkpoint(format!(
            "{} was written with another configuration; resume with the same one",
            ckpt.path.display()
        )))
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

/// Encodes a `state.json` part.
pub(crate) fn state_json<S: serde::Serialize>(state: &S) -> Result<Vec<u8>, TrainError> {
    serde_json::to_vec(state)
        .map_err(|e| TrainError::Checkpoint(format!("encoding state.json: {e}")))
}
