//! Self-supervised and weakly supervised pre-training recipes, and the
//! machinery they share:
//!
//! - [`mod@cion`]: CION's identity-guided self-distillation (student/teacher,
//!   multi-crop, identity-grouped batches with the K schedule, AdamW with
//!   warm-up + cosine, weight-decay and teacher-momentum schedules,
//!   per-parameter gradient clipping, last layer frozen in epoch 0);
//! - [`RunOptions`]: checkpoints every N steps with exact resume, a JSON-lines
//!   metrics log, an early stop (used to test interruption);
//! - [`views::load_view_batch`]: parallel multi-view augmentation;
//! - [`optim`]: decoupled weight decay with a per-step rate;
//! - [`StepReport`]: what a recipe tells its progress callback.

pub mod cion;
pub mod optim;
pub mod views;

use std::path::PathBuf;

use crate::checkpoint::CheckpointDir;
use crate::error::TrainError;
use crate::metrics_log::{LogLine, MetricsLog};

/// How a pre-training run is operated (not what it computes): where it
/// writes checkpoints and its metrics log, and whether it resumes.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Checkpoint directory; `None` writes no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// Write a checkpoint every this many optimiser steps (0 = only at the
    /// end of the run). A checkpoint is also written at the end.
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk (older ones are pruned; at least 1).
    pub keep_checkpoints: usize,
    /// Continue from the newest checkpoint in `checkpoint_dir`, if any.
    pub resume: bool,
    /// JSON-lines metrics log (one line per step); `None` = no log.
    pub log_path: Option<PathBuf>,
    /// Stop after this many steps in total (counting steps before a
    /// resume), writing a checkpoint there; `None` = run every epoch.
    pub stop_after: Option<usize>,
}

impl RunOptions {
    /// The checkpoint directory handle, if checkpoints are on.
    pub fn checkpoints(&self) -> Option<CheckpointDir> {
        self.checkpoint_dir
            .as_ref()
            .map(|d| CheckpointDir::new(d.clone(), self.keep_checkpoints.max(1)))
    }

    /// Opens the metrics log: a fresh file, or (when resuming from `step`)
    /// the existing one truncated to the steps before it.
    pub fn open_log(&self, resumed_step: Option<usize>) -> Result<Option<MetricsLog>, TrainError> {
        match (&self.log_path, resumed_step) {
            (None, _) => Ok(None),
            (Some(p), Some(step)) => MetricsLog::resume(p.clone(), step).map(Some),
            (Some(p), None) => MetricsLog::create(p.clone()).map(Some),
        }
    }

    /// Whether a checkpoint is due after `done` completed steps.
    pub fn checkpoint_due(&self, done: usize) -> bool {
        self.checkpoint_dir.is_some()
            && self.checkpoint_every > 0
            && done.is_multiple_of(self.checkpoint_every)
    }
}

/// What a recipe reports after each optimiser step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based global step.
    pub step: usize,
    /// Total steps of the run (for a progress bar).
    pub total_steps: usize,
    /// The main loss of the step.
    pub loss: f64,
    /// Learning rate used by the step.
    pub lr: f64,
    /// Training images per second over the step (decode + forward +
    /// backward + update).
    pub images_per_sec: f64,
    /// All logged values of the step (losses, schedules, ...).
    pub line: LogLine,
}

/// Events of a pre-training run, for progress display.
#[derive(Debug)]
pub enum PretrainEvent<'a> {
    /// The run continues from a checkpoint of `step` completed steps.
    Resumed {
        /// Completed steps in the checkpoint.
        step: usize,
        /// Its folder.
        path: &'a std::path::Path,
    },
    /// After each optimiser step.
    Step(&'a StepReport),
    /// A checkpoint was written.
    Checkpoint {
        /// Completed steps it holds.
        step: usize,
        /// Its folder.
        path: &'a std::path::Path,
    },
    /// After the last step of an epoch.
    EpochEnd {
        /// 0-based epoch that ended.
        epoch: usize,
        /// Mean loss over the epoch's steps run in this process.
        mean_loss: f64,
    },
}

/// Fails with [`TrainError::NonFiniteStep`] when any value is not finite.
pub(crate) fn check_finite(
    recipe: &'static str,
    epoch: usize,
    step: usize,
    values: &[(&str, f64)],
) -> Result<(), TrainError> {
    if values.iter().all(|(_, v)| v.is_finite()) {
        return Ok(());
    }
    let detail = values
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(TrainError::NonFiniteStep {
        recipe,
        epoch,
        step,
        detail,
    })
}
