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
pub mod moco;
pub mod optim;
pub mod pnl;
pub mod views;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use reid_data::loader::ImageSource;

use crate::checkpoint::{Checkpoint, CheckpointDir};
use crate::error::TrainError;
use crate::finetune::augment_seed;
use crate::metrics_log::{LogLine, MetricsLog};
use crate::parallel::DataParallel;
use crate::precision::Precision;

/// How a training run is operated (not what it computes): where it writes
/// checkpoints and its metrics log, and whether it resumes. Taken by the
/// pre-training recipes and by BoT and MGN fine-tuning
/// ([`finetune_with`](crate::finetune::finetune_with),
/// [`finetune_mgn_with`](crate::finetune::mgn::finetune_mgn_with)).
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
    /// Reads the pre-training images: the file system (the default), or an
    /// LMDB for records that are LMDB keys (`Corpus::image_source`, cargo
    /// feature `lmdb`). Not part of what a checkpoint checks: the same
    /// images may move from folders to an LMDB between a run and its resume.
    /// (Fine-tuning reads image files and refuses LMDB keys.)
    pub image_source: ImageSource,
    /// Data parallelism ([`crate::parallel::DataParallel`]): with two or
    /// more devices, each batch is cut into one shard per device (on
    /// identity-group boundaries) and the gradients are summed with burn's
    /// multi-device primitive; the first device must be the recipe's own.
    /// Empty or one device: the recipe's device alone. Every recipe
    /// (MoCo, PNL, CION, BoT, MGN) takes it.
    pub devices: Vec<Device>,
    /// The float type the backbone computes in ([`Precision`], default
    /// `f32`); heads, losses, optimiser state and the master weights stay
    /// in `f32`. `f16` adds dynamic loss scaling
    /// ([`crate::precision::LossScaler`]); the device's backend must support
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

impl StepReport {
    /// A warning the step's values call for: CION's collapse monitor
    /// (`collapse` 1 = uniform, 2 = one-hot teacher, lasting 50 steps; see
    /// [`reid_losses::dino::CollapseMonitor`]).
    pub fn warning(&self) -> Option<&'static str> {
        let code = self.line.get("collapse")?;
        [
            reid_losses::dino::Collapse::Uniform,
            reid_losses::dino::Collapse::OneHot,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .map(|c| c.describe())
    }
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

/// Reads a `[1]` loss tensor back to the host.
pub(crate) fn scalar(t: &Tensor<1>) -> Result<f64, TrainError> {
    let v: Vec<f32> = t
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
    v.first()
        .map(|&x| f64::from(x))
        .ok_or_else(|| TrainError::Readback("empty loss tensor".into()))
}

/// The batches of one epoch of a shuffled, `drop_last` sampler over `n`
/// items (PyTorch's `DistributedSampler` + `BatchSampler` on one device):
/// a permutation seeded by `(seed, epoch)` cut into `n / batch` batches.
pub fn shuffled_batches(n: usize, batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(seed, epoch, usize::MAX - 2));
    order.shuffle(&mut rng);
    if batch == 0 {
        return Vec::new();
    }
    order.chunks_exact(batch).map(<[usize]>::to_vec).collect()
}

/// The epochs of MoCo's and PNL's sampler: [`shuffled_batches`] over `n`
/// records, capped at `per_epoch` batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShuffledEpochs {
    n: usize,
    batch: usize,
    seed: u64,
    /// Batches run per epoch.
    pub per_epoch: usize,
}

impl ShuffledEpochs {
    /// `n / batch` batches per epoch, at most `cap`; an error when that is 0.
    pub fn new(n: usize, batch: usize, cap: Option<usize>, seed: u64) -> Result<Self, TrainError> {
        let per_epoch = (n / batch.max(1)).min(cap.unwrap_or(usize::MAX));
        if per_epoch == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "{n} images make no batch of {batch}"
            )));
        }
        Ok(Self {
            n,
            batch,
            seed,
            per_epoch,
        })
    }

    /// The batches of `epoch`.
    pub fn epoch(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut b = shuffled_batches(self.n, self.batch, self.seed, epoch);
        b.truncate(self.per_epoch);
        b
    }
}

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

/// The data parallelism `run` asks for ([`RunOptions::devices`]): `None`
/// for no or one device (the recipe runs on `device` alone), otherwise the
/// autodiff versions of the devices, main device first.
///
/// # Errors
/// The first of `run.devices` is not `device`, the recipe's own: the model
/// lives there between steps, and the gradients are summed there.
pub(crate) fn data_parallel(
    run: &RunOptions,
    device: &Device,
) -> Result<Option<DataParallel>, TrainError> {
    match run.devices.first() {
        Some(first) if first != device => Err(TrainError::InvalidConfig(format!(
            "the first data-parallel device ({first:?}) must be the recipe's device ({device:?})"
        ))),
        _ if run.devices.len() < 2 => Ok(None),
        _ => Ok(Some(DataParallel::new(
            run.devices.iter().map(|d| d.clone().autodiff()).collect(),
        )?)),
    }
}

/// The batch's mean loss from its shards' means (weighted by their rows).
pub(crate) fn weighted_loss<T>(outs: &[crate::parallel::ShardOutput<T>]) -> f64 {
    let total: usize = outs.iter().map(|o| o.rows).sum();
    outs.iter()
        .map(|o| o.loss * o.rows as f64 / total.max(1) as f64)
        .sum()
}

/// The newest checkpoint when `run` asks to resume.
pub(crate) fn resume_point(run: &RunOptions) -> Result<Option<Checkpoint>, TrainError> {
    match (run.checkpoints(), run.resume) {
        (Some(dir), true) => dir.latest(),
        _ => Ok(None),
    }
}

/// The small part of an [`InfoNceQueue`](reid_losses::moco::InfoNceQueue)
/// kept in `state.json`; the keys go to a binary part.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueueMeta {
    size: usize,
    dim: usize,
    ptr: usize,
    ids: Vec<i64>,
}

/// Splits a queue into its JSON part and its keys as bytes.
pub(crate) fn queue_to_parts(queue: &reid_losses::moco::InfoNceQueue) -> (QueueMeta, Vec<u8>) {
    let s = queue.state();
    let keys = crate::checkpoint::f32s_to_bytes(&s.keys);
    (
        QueueMeta {
            size: s.size,
            dim: s.dim,
            ptr: s.ptr,
            ids: s.ids,
        },
        keys,
    )
}

/// Rebuilds a queue from [`queue_to_parts`]' output.
pub(crate) fn queue_from_parts(
    meta: QueueMeta,
    keys: &[u8],
    device: &burn::tensor::Device,
) -> Result<reid_losses::moco::InfoNceQueue, TrainError> {
    let state = reid_losses::moco::QueueState {
        size: meta.size,
        dim: meta.dim,
        keys: crate::checkpoint::bytes_to_f32s(keys, "queue.bin")?,
        ids: meta.ids,
        ptr: meta.ptr,
    };
    Ok(reid_losses::moco::InfoNceQueue::from_state(&state, device)?)
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
    /// written by [`drive_with`] as one line at the epoch's last step.
    /// Default: none.
    fn epoch_values(&mut self, _epoch: usize) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// The loop every recipe shares: epochs from `start`, batches, the early
/// stop (with a checkpoint there), periodic and final checkpoints, log
/// lines and progress events. Returns `(completed steps, finished)`.
pub(crate) fn drive<R: Recipe, F: FnMut(PretrainEvent<'_>)>(
    recipe: &mut R,
    run: &RunOptions,
    start: Position,
    epochs: usize,
    tracker: &mut Tracker,
    callback: &mut F,
) -> Result<(usize, bool), TrainError> {
    drive_with(recipe, run, start, epochs, tracker, &mut |_, e| callback(e))
}

/// [`drive`] with a callback that also sees the recipe's state at each
/// event (fine-tuning hands its model to its own epoch-end event and keeps
/// what its caller records there for [`Recipe::epoch_values`]).
///
/// At the end of an epoch: the `EpochEnd` event, then the epoch's values
/// ([`Recipe::epoch_values`], one log line), then a checkpoint due at the
/// epoch's last step, so that a run resumed from that checkpoint finds the
/// epoch's line in the log.
pub(crate) fn drive_with<R: Recipe, F: FnMut(&mut R, PretrainEvent<'_>)>(
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

/// SGD with (non-Nesterov, undampened) momentum and coupled weight decay on
/// every parameter, as MoCo and PNL use it.
pub(crate) fn sgd(momentum: f64, weight_decay: f64) -> burn::optim::ModuleOptimizer {
    burn::optim::SgdConfig::new()
        .with_momentum(Some(burn::optim::momentum::MomentumConfig {
            momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(
            (weight_decay > 0.0)
                .then(|| burn::optim::decay::WeightDecayConfig::new(weight_decay as f32)),
        )
        .init()
}

/// Global average pooling of a backbone's map: `[batch, 3, H, W]` →
/// `[batch, C]`.
pub fn gap_features<B: reid_backbones::Backbone>(backbone: &B, images: Tensor<4>) -> Tensor<2> {
    let map = backbone.forward_features(images);
    let [b, c, _, _] = map.dims();
    map.mean_dim(3).mean_dim(2).reshape([b, c])
}

/// Swaps every parameter id of `module` for a fresh one, keeping the
/// values: a copy that an optimiser treats as a different model (the key
/// encoder or teacher built from the online network of a momentum pair).
struct FreshIds;

impl burn::module::ModuleMapper for FreshIds {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        burn::module::Param::from_mapped_value(burn::module::ParamId::new(), value, mapper)
    }
}

/// `module` with the same values under new parameter ids (see
/// [`FreshIds`]) and BatchNorm running statistics of its own; used to
/// derive a momentum encoder from the online one, whose statistics then
/// move only through its own passes, as upstream's.
///
/// burn 0.22's `RunningState` is reference-counted: `Clone` and
/// `ModuleMapper` keep the one state, while `Module::train` rebuilds each
/// around its current value.
pub(crate) fn fresh_copy<M: burn::module::Module>(module: &M) -> M {
    module.clone().train().map(&mut FreshIds)
}

/// Rows scaled to unit L2 norm (`[batch, dim]`; norms clamped at 1e-12,
/// like `F.normalize`).
pub use reid_backbones::head::classifier::l2_normalize;

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
        .map(|(_, m)| crate::checkpoint::module_to_bytes(*m))
        .collect::<Result<Vec<_>, _>>()?;
    let o = crate::checkpoint::optim_to_bytes(optim)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_parallelism_starts_at_two_devices() {
        let device = Device::flex();
        assert!(
            data_parallel(&RunOptions::default(), &device)
                .unwrap()
                .is_none()
        );
        let one = RunOptions {
            devices: vec![device.clone()],
            ..RunOptions::default()
        };
        assert!(data_parallel(&one, &device).unwrap().is_none());
        let two = RunOptions {
            devices: vec![device.clone(), device.clone()],
            ..RunOptions::default()
        };
        let dp = data_parallel(&two, &device).unwrap().unwrap();
        assert_eq!(dp.devices().len(), 2);
        assert!(dp.devices().iter().all(Device::is_autodiff));
        // burn compares devices by hardware, so the autodiff handle is the
        // recipe's device too (flex has no second device to refuse).
        assert!(data_parallel(&two, &device.clone().autodiff()).is_ok());
    }

    /// The momentum copy has parameters and BatchNorm statistics of its
    /// own: its passes leave the online network's statistics alone.
    #[test]
    fn a_fresh_copy_keeps_its_own_running_statistics() {
        use burn::module::Module;
        let device = Device::flex().autodiff();
        let bn: burn::nn::BatchNorm = burn::nn::BatchNormConfig::new(3).init(&device);
        let copy = fresh_copy(&bn);
        assert_ne!(copy.gamma.id, bn.gamma.id);
        let _ = copy.forward(Tensor::<4>::ones([2, 3, 2, 2], &device));
        let mean = |m: &burn::nn::BatchNorm| -> Vec<f32> {
            m.valid()
                .running_mean
                .value()
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        assert_eq!(mean(&bn), vec![0.0; 3], "the online statistics moved");
        assert_eq!(mean(&copy), vec![0.1; 3]);
    }
}
