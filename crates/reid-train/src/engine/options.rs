//! [`RunOptions`]: how a run is operated (checkpoints, resume, metrics log,
//! early stop, devices, precision), shared by every recipe.

use derive_setters::Setters;
use std::path::PathBuf;

use burn::tensor::Device;
use reid_backbones::Precision;
use reid_data::loader::ImageSource;

use super::checkpoint::CheckpointDir;
use super::metrics_log::MetricsLog;
use crate::error::TrainError;

/// How a training run is operated (not what it computes): where it writes
/// checkpoints and its metrics log, and whether it resumes. Taken by the
/// pre-training recipes and by BoT and MGN fine-tuning
/// ([`finetune`](crate::finetune()),
/// [`finetune_mgn`](crate::finetune::mgn::finetune_mgn)).
///
/// The struct is `#[non_exhaustive]` (a field added later breaks no
/// caller): start from [`Default`] and set fields with the `with_<field>`
/// setters, or assign the public fields.
///
/// ```
/// use reid_train::RunOptions;
///
/// let opts = RunOptions::default()
///     .with_checkpoint_dir(Some("run/checkpoints".into()))
///     .with_checkpoint_every(100)
///     .with_resume(true);
/// assert!(opts.resume && opts.checkpoint_due(200));
/// ```
#[derive(Debug, Clone, Default, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
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
    /// Reads the pre-training images: the file system (the default), or an
    /// LMDB for records that are LMDB keys (`Corpus::image_source`, cargo
    /// feature `lmdb`). Not part of what a checkpoint checks: the same
    /// images may move from folders to an LMDB between a run and its resume.
    /// (Fine-tuning reads image files and refuses LMDB keys.)
    pub image_source: ImageSource,
    /// Data parallelism ([`DataParallel`](super::parallel::DataParallel)): with two or
    /// more devices, each batch is cut into one shard per device (on
    /// identity-group boundaries) and the gradients are summed with burn's
    /// multi-device primitive; the first device must be the recipe's own.
    /// Empty or one device: the recipe's device alone. Every recipe
    /// (MoCo, PNL, CION, BoT, MGN) takes it.
    pub devices: Vec<Device>,
    /// The float type the backbone computes in ([`Precision`], default
    /// `f32`); heads, losses, optimiser state and the master weights stay
    /// in `f32`. `f16` adds dynamic loss scaling
    /// ([`LossScaler`](super::precision::LossScaler)); the device's backend must support
    /// the type (an error otherwise). Every recipe takes it.
    pub precision: Precision,
    /// The first loss scale of an `f16` run (`None`: 2¹⁶, `GradScaler`'s
    /// default); the scale then adapts.
    pub init_loss_scale: Option<f64>,
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
