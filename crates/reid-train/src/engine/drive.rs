//! The loop every recipe shares (`drive`) over a
//! `Recipe`: epochs and batches from a [`Position`], the early stop,
//! periodic, epoch-boundary and final checkpoints, the metrics log and
//! progress events (`Tracker`).

use super::checkpoint::Checkpoint;
use super::events::{PretrainEvent, StepReport};
use super::metrics_log::{LogLine, MetricsLog};
use super::options::RunOptions;
use crate::error::TrainError;

/// Where a run stands: completed steps and the next batch to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Completed optimiser steps.
    pub step: usize,
    /// Epoch of the next step.
    pub epoch: usize,
    /// Index of the next batch within that epoch.
    pub step_in_epoch: usize,
}

impl Position {
    /// The position after running batch `index` of `epoch` (of `n_batches`)
    /// as the `step`-th completed step: the next batch, or the next epoch.
    pub fn after(step: usize, epoch: usize, index: usize, n_batches: usize) -> Self {
        if index + 1 >= n_batches {
            Self {
                step,
                epoch: epoch + 1,
                step_in_epoch: 0,
            }
        } else {
            Self {
                step,
                epoch,
                step_in_epoch: index + 1,
            }
        }
    }
}

/// The step bookkeeping every recipe shares: the metrics log, the
/// in-memory log, progress events and checkpoint announcements.
pub(crate) struct Tracker {
    log_file: Option<MetricsLog>,
    /// One line per step run in this process.
    pub log: Vec<LogLine>,
    /// The epoch-end lines (evaluations) recorded in this process.
    pub epoch_lines: Vec<LogLine>,
    total: usize,
    epoch_losses: Vec<f64>,
}

impl Tracker {
    /// Opens the log (continuing it after a resume from `resumed`).
    pub fn new(
        run: &RunOptions,
        resumed: Option<&Checkpoint>,
        total: usize,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            log_file: run.open_log(resumed.map(|c| c.step))?,
            log: Vec::new(),
            epoch_lines: Vec::new(),
            total,
            epoch_losses: Vec::new(),
        })
    }

    /// Records a finished step: `line` must hold `loss` and `lr`.
    pub fn step<F: FnMut(PretrainEvent<'_>)>(
        &mut self,
        line: LogLine,
        images: usize,
        secs: f64,
        callback: &mut F,
    ) -> Result<(), TrainError> {
        let ips = images as f64 / secs.max(1e-9);
        let line = line.with("images_per_sec", ips);
        if let Some(f) = self.log_file.as_mut() {
            f.write(&line)?;
        }
        let loss = line.get("loss").unwrap_or(f64::NAN);
        let report = StepReport {
            epoch: line.epoch,
            step: line.step,
            total_steps: self.total,
            loss,
            lr: line.get("lr").unwrap_or(f64::NAN),
            images_per_sec: ips,
            line: line.clone(),
        };
        callback(PretrainEvent::Step(&report));
        self.epoch_losses.push(loss);
        self.log.push(line);
        Ok(())
    }

    /// Reports the end of `epoch` (when it ran any step here).
    pub fn epoch_end<F: FnMut(PretrainEvent<'_>)>(&mut self, epoch: usize, callback: &mut F) {
        if !self.epoch_losses.is_empty() {
            let mean_loss = self.epoch_losses.iter().sum::<f64>() / self.epoch_losses.len() as f64;
            callback(PretrainEvent::EpochEnd { epoch, mean_loss });
        }
        self.epoch_losses.clear();
    }

    /// Writes `values` recorded for `epoch`, whose last step was `step`, as
    /// one line of the log (after that step's own line).
    pub fn epoch_values(
        &mut self,
        step: usize,
        epoch: usize,
        values: Vec<(String, f64)>,
    ) -> Result<(), TrainError> {
        let line = LogLine {
            step,
            epoch,
            values,
        };
        if let Some(f) = self.log_file.as_mut() {
            f.write(&line)?;
        }
        self.epoch_lines.push(line);
        Ok(())
    }
}

/// Announces a written checkpoint.
pub(crate) fn announce<F: FnMut(PretrainEvent<'_>)>(c: Option<Checkpoint>, callback: &mut F) {
    if let Some(c) = c {
        callback(PretrainEvent::Checkpoint {
            step: c.step,
            path: &c.path,
        });
    }
}

/// One recipe's state (pre-training, or BoT / MGN fine-tuning), as the shared
/// loop [`drive`] sees it.
pub(crate) trait Recipe {
    /// Called at the start of every epoch the loop enters (also the one it
    /// resumes inside), before [`batches`](Self::batches): lets a recipe
    /// with a stateful sampler draw the epoch's batches. Default: nothing.
    fn begin_epoch(&mut self, _epoch: usize) -> Result<(), TrainError> {
        Ok(())
    }
    /// The batches of `epoch` that are run (already capped), as record
    /// indices.
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>>;
    /// Runs one optimiser step on `indices` as global step `step`; returns
    /// its log line (with at least `loss` and `lr`).
    fn step(&mut self, epoch: usize, step: usize, indices: &[usize])
    -> Result<LogLine, TrainError>;
    /// Writes a checkpoint at `pos` (`None` when checkpoints are off).
    fn save(&self, pos: Position) -> Result<Option<Checkpoint>, TrainError>;
    /// Values to log for `epoch`, which has just ended (asked after its
    /// `EpochEnd` event; fine-tuning: what the caller recorded in it),
    /// written by [`drive`] as one line at the epoch's last step.
    /// Default: none.
    fn epoch_values(&mut self, _epoch: usize) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// The loop every recipe shares: epochs from `start`, batches, the early
/// stop (with a checkpoint there), periodic and final checkpoints, log
/// lines and progress events. Returns `(completed steps, finished)`. The
/// callback also sees the recipe's state at each event (fine-tuning hands
/// its model to its own epoch-end event and keeps what its caller records
/// there for [`Recipe::epoch_values`]).
///
/// At the end of an epoch: the `EpochEnd` event, then the epoch's values
/// ([`Recipe::epoch_values`], one log line), then a checkpoint due at the
/// epoch's last step, so that a run resumed from that checkpoint finds the
/// epoch's line in the log.
pub(crate) fn drive<R: Recipe, F: FnMut(&mut R, PretrainEvent<'_>)>(
    recipe: &mut R,
    run: &RunOptions,
    start: Position,
    epochs: usize,
    tracker: &mut Tracker,
    callback: &mut F,
) -> Result<(usize, bool), TrainError> {
    let mut step = start.step;
    for epoch in start.epoch..epochs {
        recipe.begin_epoch(epoch)?;
        let batches = recipe.batches(epoch);
        let first = if epoch == start.epoch {
            start.step_in_epoch
        } else {
            0
        };
        let mut boundary_checkpoint = None;
        for (i, indices) in batches.iter().enumerate().skip(first) {
            if run.stop_after.is_some_and(|s| step >= s) {
                let here = Position {
                    step,
                    epoch,
                    step_in_epoch: i,
                };
                let saved = recipe.save(here)?;
                announce(saved, &mut |e| callback(recipe, e));
                return Ok((step, false));
            }
            let t0 = std::time::Instant::now();
            let line = recipe.step(epoch, step, indices)?;
            step += 1;
            let secs = t0.elapsed().as_secs_f64();
            tracker.step(line, indices.len(), secs, &mut |e| callback(recipe, e))?;
            if run.checkpoint_due(step) {
                let next = Position::after(step, epoch, i, batches.len());
                if next.epoch > epoch {
                    // After the epoch's own line, below.
                    boundary_checkpoint = Some(next);
                } else {
                    let saved = recipe.save(next)?;
                    announce(saved, &mut |e| callback(recipe, e));
                }
            }
        }
        tracker.epoch_end(epoch, &mut |e| callback(recipe, e));
        let values = recipe.epoch_values(epoch);
        if !values.is_empty() {
            tracker.epoch_values(step.saturating_sub(1), epoch, values)?;
        }
        if let Some(next) = boundary_checkpoint {
            let saved = recipe.save(next)?;
            announce(saved, &mut |e| callback(recipe, e));
        }
    }
    if !run.checkpoint_due(step) {
        let end = Position {
            step,
            epoch: epochs,
            step_in_epoch: 0,
        };
        let saved = recipe.save(end)?;
        announce(saved, &mut |e| callback(recipe, e));
    }
    Ok((step, true))
}
