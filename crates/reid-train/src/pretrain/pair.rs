//! The run every pre-training recipe shares: a network trained by an
//! optimiser and its momentum copy (MoCo's and PNL's query and key
//! encoders, CION's student and teacher), driven by the engine's loop over
//! the recipe's batches, with checkpoints of both networks, the optimiser,
//! the recipe's own parts and a `state.json`, and exact resume from them.
//!
//! A recipe's trainer says what is its own ([`PairTrainer`]: its step on a
//! batch, its parts of a checkpoint; its batches come from its
//! [`Batches`]); [`run_pair`] does the rest. The trainers keep their
//! optimiser, loss scaler and devices in a [`TrainerCore`].

use burn::module::Module;
use burn::optim::{ModuleOptimizer, MultiGradientsParams};
use burn::tensor::Device;
use reid_data::ImageRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::checkpoint::{Checkpoint, CheckpointDir};
use crate::engine::drive::{Position, Recipe, Tracker, drive};
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::LogLine;
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, data_parallel};
use crate::engine::precision::{LossScaler, log_scaler, step_scale, unscale};
use crate::engine::resume::{
    DataFingerprint, load_module, load_optim, nothing_to_resume, resume_point, same_config,
    same_data, save_parts, state_json,
};
use crate::engine::seed::ShuffledEpochs;
use crate::engine::source::BackboneSource;
use crate::error::TrainError;
use crate::input::TrainSet;

/// The result of a run that trains a query encoder and keeps its momentum
/// copy, the key encoder: [`MocoOutput`](super::moco::MocoOutput) and
/// [`PnlOutput`](super::pnl::PnlOutput).
#[derive(Debug)]
pub struct PairOutput<N> {
    /// The query encoder after the last step (autodiff device).
    pub query: N,
    /// The key encoder (trainable again, so it can be fine-tuned).
    pub key: N,
    /// One log line per step run in this call.
    pub log: Vec<LogLine>,
    /// Completed steps (including those before a resume).
    pub steps_done: usize,
    /// Whether every epoch ran (false when `stop_after` ended the run).
    pub finished: bool,
}

/// What a pre-training trainer keeps besides its networks and its loss
/// state: the optimiser, the device the networks live on, the loss scaler
/// of an `f16` run and the devices each batch is sharded over.
pub(crate) struct TrainerCore {
    /// The optimiser of the trained network.
    pub optim: ModuleOptimizer,
    /// The (autodiff) device of the networks.
    pub device: Device,
    /// Dynamic loss scaling of an `f16` run.
    pub scaler: Option<LossScaler>,
    /// The devices each batch is sharded over (one: `device`).
    pub parallel: DataParallel,
}

impl TrainerCore {
    /// `optim` on `device` alone, without loss scaling.
    pub fn new(optim: ModuleOptimizer, device: &Device) -> Self {
        Self {
            optim,
            device: device.clone(),
            scaler: None,
            parallel: DataParallel::single(device),
        }
    }

    /// Shards each batch over `parallel`'s devices (`None`: `device` alone).
    pub fn set_parallel(&mut self, parallel: Option<DataParallel>) {
        self.parallel = parallel.unwrap_or_else(|| DataParallel::single(&self.device));
    }

    /// The devices and the loss scaler `run` asks for (`device`: the
    /// recipe's, not autodiff).
    pub fn for_run(&mut self, run: &RunOptions, device: &Device) -> Result<(), TrainError> {
        self.parallel = data_parallel(run, device)?;
        self.scaler = LossScaler::for_run(run);
        Ok(())
    }

    /// The loss scale of the next step (1 without a scaler).
    pub fn scale(&self) -> f64 {
        step_scale(&self.scaler)
    }

    /// The end of a step: the shards' gradients summed on the main device,
    /// unscaled, and one optimiser step of `model` at rate `lr` (none when
    /// `f16` gradients overflowed).
    pub fn update<M: Module>(
        &mut self,
        model: &mut M,
        grads: MultiGradientsParams,
        lr: f64,
    ) -> Result<(), TrainError> {
        let grads = self.parallel.reduce(model, grads);
        if let Some(grads) = unscale(&mut self.scaler, model, grads)? {
            *model = self.optim.step(lr, model.clone(), grads);
        }
        Ok(())
    }

    /// `line` with the scaler's fields of a step that used `scale`.
    pub fn log(&self, line: LogLine, scale: f64) -> LogLine {
        log_scaler(line, &self.scaler, scale)
    }
}

/// Where a run's batches come from.
pub(crate) trait Batches {
    /// The batches of `epoch` (record indices), as many as run.
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>>;
}

/// MoCo's and PNL's shuffled `drop_last` epochs.
impl Batches for ShuffledEpochs {
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        self.epoch(epoch)
    }
}

/// One batch of a run: records `indices` of `set`, run as global step
/// `step` of `epoch`.
pub(crate) struct Batch<'a> {
    /// The training set.
    pub set: &'a TrainSet,
    /// The batch's records.
    pub indices: &'a [usize],
    /// The epoch of the step.
    pub epoch: usize,
    /// The global step.
    pub step: usize,
}

/// A checkpoint part a recipe adds: its name and bytes.
pub(crate) type Part = (&'static str, Vec<u8>);

/// A pre-training trainer as [`run_pair`] drives it: its two networks
/// (the trained one first) and [`TrainerCore`], its batches and step, and
/// what its checkpoints hold beside the networks and the optimiser.
pub(crate) trait PairTrainer: Sized {
    /// The type of both networks.
    type Net: Module;
    /// The recipe's configuration, kept in every checkpoint and compared on
    /// resume.
    type Config: Clone + PartialEq + Serialize + DeserializeOwned;
    /// The recipe's own fields of `state.json` (besides the position, the
    /// configuration, the training set and the loss scaler).
    type Own: Serialize + DeserializeOwned;
    /// What the recipe draws its batches (and views) from.
    type Data: Batches;

    /// The checkpoint parts of the two networks (MoCo's and PNL's names).
    const NETS: [&'static str; 2] = ["query.bpk", "key.bpk"];

    /// The configuration.
    fn config(&self) -> &Self::Config;

    /// The two networks and the core.
    fn pair(&self) -> ([&Self::Net; 2], &TrainerCore);

    /// The two networks and the core, to restore them.
    fn pair_mut(&mut self) -> ([&mut Self::Net; 2], &mut TrainerCore);

    /// Loads the views of `batch` and runs the step on them.
    fn run_batch(&mut self, data: &Self::Data, batch: Batch<'_>) -> Result<LogLine, TrainError>;

    /// The recipe's own `state.json` fields and checkpoint parts now.
    fn own(&self, set: &TrainSet) -> Result<(Self::Own, Vec<Part>), TrainError>;

    /// Fails when a checkpoint's own fields do not fit this run (checked
    /// before anything is loaded). Default: they always do.
    fn check(
        &self,
        _own: &Self::Own,
        _set: &TrainSet,
        _ckpt: &Checkpoint,
    ) -> Result<(), TrainError> {
        Ok(())
    }

    /// Restores the recipe's own state from a checkpoint.
    fn restore(&mut self, own: Self::Own, ckpt: &Checkpoint) -> Result<(), TrainError>;

    /// The two networks, consuming the trainer.
    fn into_pair(self) -> (Self::Net, Self::Net);
}

/// What `state.json` holds: the run's position, the recipe's own fields
/// (inline), its configuration, training set and loss scaler.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PairState<C, X> {
    position: Position,
    #[serde(flatten)]
    own: X,
    config: C,
    /// The training set the run was started on (absent in checkpoints
    /// written before fingerprints).
    #[serde(default)]
    data: Option<DataFingerprint>,
    /// The loss scaler of an `f16` run.
    #[serde(default)]
    scaler: Option<LossScaler>,
}

/// The training set of a run and its fingerprint (kept in every
/// checkpoint, compared on resume).
pub(crate) struct Records {
    /// The records prepared for loading.
    pub set: TrainSet,
    fingerprint: DataFingerprint,
}

/// The first steps of every pre-training entry, after the configuration's
/// check: the backbone (built or given) and the training set.
pub(crate) fn start<C, S: BackboneSource<C>>(
    cfg: &C,
    backbone: S,
    records: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
) -> Result<(S::Model, Records), TrainError> {
    let backbone = backbone.into_backbone(cfg, device)?.model;
    let set = TrainSet::with_source(records, run.image_source.clone())?;
    let fingerprint = DataFingerprint::of(records);
    Ok((backbone, Records { set, fingerprint }))
}

/// A pre-training run's state for the engine's loop.
struct PairRun<T: PairTrainer> {
    trainer: T,
    data: T::Data,
    records: Records,
    checkpoints: Option<CheckpointDir>,
}

impl<T: PairTrainer> PairRun<T> {
    /// Restores the run from `ckpt` (same training set and configuration):
    /// the networks, the optimiser, the recipe's own state and the loss
    /// scaler; reports it and returns where to continue.
    fn resume<F: FnMut(PretrainEvent<'_>)>(
        &mut self,
        ckpt: &Checkpoint,
        callback: &mut F,
    ) -> Result<Position, TrainError> {
        let state: PairState<T::Config, T::Own> = ckpt.read_json("state.json")?;
        same_data(ckpt, state.data.as_ref(), &self.records.fingerprint)?;
        same_config(ckpt, &state.config, self.trainer.config())?;
        self.trainer.check(&state.own, &self.records.set, ckpt)?;
        let ([online, momentum], core) = self.trainer.pair_mut();
        *online = load_module(ckpt, T::NETS[0], online.clone())?;
        *momentum = load_module(ckpt, T::NETS[1], momentum.clone())?.no_grad();
        load_optim(ckpt, &mut core.optim)?;
        self.trainer.restore(state.own, ckpt)?;
        LossScaler::resume(&mut self.trainer.pair_mut().1.scaler, state.scaler);
        callback(PretrainEvent::Resumed {
            step: state.position.step,
            path: &ckpt.path,
        });
        Ok(state.position)
    }
}

impl<T: PairTrainer> Recipe for PairRun<T> {
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        self.data.batches(epoch)
    }

    fn step(
        &mut self,
        epoch: usize,
        step: usize,
        indices: &[usize],
    ) -> Result<LogLine, TrainError> {
        let batch = Batch {
            set: &self.records.set,
            indices,
            epoch,
            step,
        };
        self.trainer.run_batch(&self.data, batch)
    }

    fn save(&self, pos: Position) -> Result<Option<Checkpoint>, TrainError> {
        if self.checkpoints.is_none() {
            return Ok(None);
        }
        let (own, parts) = self.trainer.own(&self.records.set)?;
        let ([online, momentum], core) = self.trainer.pair();
        let state = state_json(&PairState {
            position: pos,
            own,
            config: self.trainer.config().clone(),
            data: Some(self.records.fingerprint.clone()),
            scaler: core.scaler.clone(),
        })?;
        let mut extra: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, &b[..])).collect();
        extra.push(("state.json", &state));
        let nets = [(T::NETS[0], online), (T::NETS[1], momentum)];
        save_parts(&self.checkpoints, pos, nets, &core.optim, &extra)
    }
}

/// Runs `trainer` over `data`'s batches of `records` for `epochs` epochs of
/// `total` steps in all, as `run` asks: a fresh start or a resume from its
/// newest checkpoint (the same training set and configuration), periodic
/// and final checkpoints, the metrics log and progress events. The
/// momentum network comes back trainable.
pub(crate) fn run_pair<T, F>(
    trainer: T,
    data: T::Data,
    records: Records,
    run: &RunOptions,
    (epochs, total): (usize, usize),
    mut callback: F,
) -> Result<PairOutput<T::Net>, TrainError>
where
    T: PairTrainer,
    F: FnMut(PretrainEvent<'_>),
{
    let mut r = PairRun {
        trainer,
        data,
        records,
        checkpoints: run.checkpoints(),
    };
    let resumed = resume_point(run)?;
    if let Some(dir) = nothing_to_resume(run)? {
        callback(PretrainEvent::Fresh { dir });
    }
    let pos = match &resumed {
        Some(ckpt) => r.resume(ckpt, &mut callback)?,
        None => Position::default(),
    };
    let mut tracker = Tracker::new(run, resumed.as_ref(), total)?;
    let mut on_event = |_: &mut PairRun<T>, e: PretrainEvent<'_>| callback(e);
    let (steps_done, finished) = drive(&mut r, run, pos, epochs, &mut tracker, &mut on_event)?;
    let (query, key) = r.trainer.into_pair();
    Ok(PairOutput {
        query,
        // `no_grad` persists through `Module::train`.
        key: key.set_require_grad(true),
        log: tracker.log,
        steps_done,
        finished,
    })
}
