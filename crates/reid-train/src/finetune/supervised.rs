//! The run that the supervised fine-tuning recipes (BoT, MGN) share, on the
//! pre-training recipes' loop ([`drive`]): PK batches from an endless
//! [`BatchStream`], a cross-entropy + triplet loss from the recipe, one
//! Adam, checkpoints (model, Adam, stream, position, configuration and the
//! recipe's own state such as MGN's trunk freeze) and exact resume.

use std::path::Path;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_data::loader::TrainLoader;
use reid_data::sampler::PkSampler;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::IterationLog;
use crate::engine::checkpoint::{Checkpoint, CheckpointDir};
use crate::engine::drive::{Position, Recipe, Tracker, drive};
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::{EpochMetrics, LogLine};
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, data_parallel};
use crate::engine::precision::{LossScaler, log_scaler, step_scale, unscale};
use crate::engine::resume::{
    load_module, load_optim, resume_point, same_config, save_parts, state_json,
};
use crate::error::TrainError;
use crate::input::{BatchStream, StreamState, TrainSet};
use crate::schedule::LrSchedule;

/// What a fine-tuning run reports to its callback.
/// [`FinetuneEvent`](super::FinetuneEvent) (BoT) and
/// [`MgnEvent`](super::mgn::MgnEvent) (MGN) are this enum for their models.
#[derive(Debug)]
pub enum RunEvent<'a, Model> {
    /// The run continues from a checkpoint of `step` completed steps
    /// ([`RunOptions::resume`]); sent before the first step.
    Resumed {
        /// Completed steps in the checkpoint.
        step: usize,
        /// Its folder.
        path: &'a Path,
    },
    /// After each optimiser step.
    Iteration(&'a IterationLog),
    /// A checkpoint was written ([`RunOptions::checkpoint_dir`]).
    Checkpoint {
        /// Completed steps it holds.
        step: usize,
        /// Its folder.
        path: &'a Path,
    },
    /// After the last step of an epoch.
    EpochEnd {
        /// 0-based epoch that just ended.
        epoch: usize,
        /// The log entries of that epoch run in this process (after a resume
        /// inside an epoch, only the steps after the checkpoint).
        log: &'a [IterationLog],
        /// The model being trained (on the autodiff device; evaluate it
        /// with [`evaluate_model`](super::evaluate_model) or
        /// [`evaluate_mgn`](super::mgn::evaluate_mgn), which take a
        /// validation snapshot).
        model: &'a Model,
        /// Whether the recipe's evaluation period asks for an evaluation now
        /// (BoT: [`FinetuneConfig::eval_every`](super::FinetuneConfig::eval_every),
        /// always `true` after the last epoch when it is `> 0`; MGN has no
        /// period: always `false`).
        evaluate: bool,
        /// Where the caller records what it measured for this epoch
        /// (`metrics.record(&result)` after an evaluation; empty when
        /// given). What it holds when the callback returns is written to
        /// the metrics log ([`RunOptions::log_path`]) as one line at the
        /// epoch's last step, before a checkpoint at that step, and
        /// returned in [`RunOutput::evaluations`]. Record the final
        /// evaluation here too (the model after the last epoch is the
        /// run's result), so that the log has it and a resume keeps it.
        metrics: &'a mut EpochMetrics,
    },
}

/// The result of a fine-tuning run.
/// [`FinetuneOutput`](super::FinetuneOutput) (BoT) and
/// [`MgnFinetuneOutput`](super::mgn::MgnFinetuneOutput) (MGN) are this
/// struct for their models.
#[derive(Debug)]
pub struct RunOutput<Model> {
    /// The trained model, as a validation snapshot on the plain device
    /// (BatchNorm uses running statistics).
    pub model: Model,
    /// One entry per optimiser step run in this process (after a resume,
    /// the steps after the checkpoint).
    pub log: Vec<IterationLog>,
    /// Number of training identities (rows of the classifier).
    pub num_classes: usize,
    /// Iterations per epoch that were run.
    pub iters_per_epoch: usize,
    /// Completed optimiser steps in total (counting steps before a resume).
    pub steps_done: usize,
    /// Whether every epoch ran (`false` after [`RunOptions::stop_after`]).
    pub finished: bool,
    /// The values recorded in [`RunEvent::EpochEnd::metrics`] in this
    /// process, one line per epoch that recorded any (the lines written to
    /// the metrics log: the epoch's last step, the epoch, the values).
    pub evaluations: Vec<LogLine>,
}

/// What differs between the fine-tuning recipes: the model and its losses,
/// its trainable set over the epochs, and what a checkpoint keeps of them.
pub(crate) trait Objective {
    /// The model trained (on the autodiff device).
    type Model: Module + Clone;
    /// The recipe's configuration, kept in checkpoints: a resume needs an
    /// equal one.
    type Config: Serialize + DeserializeOwned + PartialEq + Clone;
    /// Recipe state beyond the model, Adam, the stream and the position
    /// that the rest of the run depends on (MGN: whether the trunk is
    /// frozen), kept in checkpoints.
    type Extra: Serialize + DeserializeOwned + Default;

    /// The configuration.
    fn config(&self) -> &Self::Config;
    /// Epochs between evaluations flagged in [`RunEvent::EpochEnd`] (0 =
    /// never).
    fn eval_every(&self) -> usize {
        0
    }
    /// `(cross-entropy, triplet)` of a batch, each weighted as the recipe
    /// sums them, for global step `iteration`.
    fn losses(
        &self,
        model: &Self::Model,
        images: Tensor<4>,
        targets: Tensor<1, Int>,
        iteration: usize,
    ) -> Result<(Tensor<1>, Tensor<1>), TrainError>;
    /// The start of `epoch` (also the one a resume continues inside), before
    /// its first step: may change the trainable set. Default: nothing.
    fn begin_epoch(&mut self, model: Self::Model, _epoch: usize) -> Self::Model {
        model
    }
    /// The recipe state to save now.
    fn extra(&self) -> Self::Extra;
    /// Puts the saved recipe state back, on `model` just loaded from a
    /// checkpoint.
    fn restore(&mut self, model: Self::Model, extra: Self::Extra) -> Self::Model;
}

/// The shape of the training split a run was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Geometry {
    /// Training images.
    pub images: usize,
    /// Identities.
    pub classes: usize,
    /// Iterations per epoch.
    pub iters_per_epoch: usize,
}

/// A training split ready for PK sampling: dense labels, the sampler and
/// the run's geometry.
pub(crate) struct Split {
    set: TrainSet,
    sampler: PkSampler,
    /// Images, identities, iterations per epoch.
    pub geometry: Geometry,
    /// Images per identity in a batch (`K`).
    group: usize,
}

impl Split {
    /// `train` sampled `p` × `k` with `seed`; `iters_per_epoch` `None` =
    /// fast-reid's `len // (P·K)` (an error when that is 0).
    pub fn new(
        train: &[ImageRecord],
        p: usize,
        k: usize,
        seed: u64,
        iters_per_epoch: Option<usize>,
    ) -> Result<Self, TrainError> {
        let set = TrainSet::new(train)?;
        let sampler = PkSampler::new(train, p, k, seed)?;
        let ipe = iters_per_epoch.unwrap_or_else(|| sampler.iters_per_epoch_fastreid());
        if ipe == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "the training split has {} images, fewer than one batch of P·K = {}: set iters_per_epoch",
                train.len(),
                p * k
            )));
        }
        let geometry = Geometry {
            images: train.len(),
            classes: set.num_classes,
            iters_per_epoch: ipe,
        };
        Ok(Self {
            set,
            sampler,
            geometry,
            group: k,
        })
    }
}

/// How a run trains, besides its objective and model.
pub(crate) struct Plan {
    /// The learning rate per step (its `epochs` is the run's length).
    pub schedule: LrSchedule,
    /// The training augmentation.
    pub transform: TrainTransform,
    /// Seed of the augmentation streams.
    pub seed: u64,
    /// Adam's coupled weight decay (0 = none).
    pub weight_decay: f64,
}

/// What a fine-tuning checkpoint keeps in `state.json` besides the model
/// and Adam.
#[derive(Debug, Serialize, Deserialize)]
struct RunState<C, X> {
    /// Where the run stands.
    position: Position,
    /// The PK stream at the start of `position.epoch` (its batches are
    /// drawn again on resume).
    stream: StreamState,
    /// Training images, identities and iterations per epoch of the run.
    geometry: Geometry,
    /// The recipe.
    config: C,
    /// The recipe's own state (absent in BoT checkpoints).
    #[serde(default)]
    recipe: X,
    /// The loss scaler of an `f16` run.
    #[serde(default)]
    scaler: Option<LossScaler>,
}

/// A fine-tuning run's state for the shared loop.
struct Supervised<O: Objective> {
    obj: O,
    set: TrainSet,
    /// Reads and BoT-augments the batches of `set` (`plan`'s transform and
    /// seed).
    loader: TrainLoader<TrainTransform>,
    geometry: Geometry,
    plan: Plan,
    model: O::Model,
    optim: ModuleOptimizer,
    stream: BatchStream,
    /// The epoch whose batches are in `current`, and the stream before
    /// they were drawn.
    drawn: Option<(usize, StreamState)>,
    current: Vec<Vec<usize>>,
    /// Every step run in this process.
    log: Vec<IterationLog>,
    /// Index in `log` of the current epoch's first step.
    epoch_start: usize,
    checkpoints: Option<CheckpointDir>,
    /// The devices each batch is sharded over (one: `device`).
    parallel: DataParallel,
    /// Images per identity in a batch (`K`): shards keep identities whole.
    group: usize,
    /// Dynamic loss scaling of an `f16` run.
    scaler: Option<LossScaler>,
    /// What the caller recorded in the last `EpochEnd` event.
    epoch_metrics: EpochMetrics,
}

impl<O: Objective + Sync> Recipe for Supervised<O> {
    fn begin_epoch(&mut self, epoch: usize) -> Result<(), TrainError> {
        let before = self.stream.state();
        self.current = (0..self.geometry.iters_per_epoch)
            .map(|_| self.stream.next_batch())
            .collect::<Result<_, _>>()?;
        self.drawn = Some((epoch, before));
        self.epoch_start = self.log.len();
        self.model = self.obj.begin_epoch(self.model.clone(), epoch);
        Ok(())
    }

    fn batches(&self, _epoch: usize) -> Vec<Vec<usize>> {
        self.current.clone()
    }

    fn step(
        &mut self,
        epoch: usize,
        iteration: usize,
        indices: &[usize],
    ) -> Result<LogLine, TrainError> {
        let lr = self.plan.schedule.lr_at(iteration);
        let finite = |loss_ce: f32, loss_tri: f32| {
            if loss_ce.is_finite() && loss_tri.is_finite() {
                Ok(())
            } else {
                Err(TrainError::NonFiniteLoss {
                    epoch,
                    iteration,
                    loss_ce,
                    loss_tri,
                    lr,
                })
            }
        };
        let loss_scale = step_scale(&self.scaler);
        // Whole identities per device: each mines its triplets in its
        // shard, as fast-reid does per GPU.
        // The whole batch is decoded once (in parallel), then cut into
        // the devices' shards.
        let dp = &self.parallel;
        let shards = dp.shards(indices.len(), self.group)?;
        let host = self.loader.load_views(indices, 0, iteration as u64)?;
        let labels = self.set.labels_of(&host.indices)?;
        let obj = &self.obj;
        let (multi, outs) = dp.grads_scaled(&self.model, &shards, loss_scale, |model, i, d| {
            let r = shards[i].clone();
            let images = host.rows_to_device(r.clone(), d)?.remove(0);
            let targets =
                Tensor::from_data(TensorData::new(labels[r.clone()].to_vec(), [r.len()]), d);
            let (ce, tri) = obj.losses(&model, images, targets, iteration)?;
            let values = (scalar(&ce)?, scalar(&tri)?);
            Ok((ce.add(tri), values))
        })?;
        let (mut loss_ce, mut loss_tri) = (0f32, 0f32);
        for o in &outs {
            let w = o.rows as f32 / indices.len() as f32;
            loss_ce += o.extra.0 * w;
            loss_tri += o.extra.1 * w;
        }
        finite(loss_ce, loss_tri)?;
        let grads = dp.reduce(&self.model, multi);
        // A step with overflowing f16 gradients leaves the model as it is.
        if let Some(grads) = unscale(&mut self.scaler, &self.model, grads)? {
            self.model = self.optim.step(lr, self.model.clone(), grads);
        }
        self.log.push(IterationLog {
            epoch,
            iteration,
            loss_ce,
            loss_tri,
            lr,
        });
        let line = LogLine::new(iteration, epoch)
            .with("loss", f64::from(loss_ce) + f64::from(loss_tri))
            .with("loss_ce", f64::from(loss_ce))
            .with("loss_tri", f64::from(loss_tri))
            .with("lr", lr);
        Ok(log_scaler(line, &self.scaler, loss_scale))
    }

    fn save(&self, pos: Position) -> Result<Option<Checkpoint>, TrainError> {
        if self.checkpoints.is_none() {
            return Ok(None);
        }
        // Inside (or at the start of) the drawn epoch the stream is kept as
        // it was before that epoch: resuming draws the epoch again and
        // skips to the next batch. After it, the stream as it is now.
        let stream = match &self.drawn {
            Some((epoch, before)) if *epoch == pos.epoch => before.clone(),
            _ => self.stream.state(),
        };
        let state = state_json(&RunState {
            position: pos,
            stream,
            geometry: self.geometry,
            config: self.obj.config().clone(),
            recipe: self.obj.extra(),
            scaler: self.scaler.clone(),
        })?;
        save_parts(
            &self.checkpoints,
            pos,
            [("model.bpk", &self.model)],
            &self.optim,
            &[("state.json", &state)],
        )
    }

    fn epoch_values(&mut self, _epoch: usize) -> Vec<(String, f64)> {
        self.epoch_metrics.take()
    }
}

/// Fine-tunes `model` (on `device`, an autodiff device) with `obj`'s losses
/// on `split`, operated by `run`: checkpoints, exact resume from the newest
/// one (same configuration and split geometry, otherwise
/// [`TrainError::Checkpoint`]), metrics log, early stop. Reports to
/// `callback`.
pub(crate) fn train<O, F>(
    obj: O,
    model: O::Model,
    split: Split,
    plan: Plan,
    device: &Device,
    run: &RunOptions,
    mut callback: F,
) -> Result<RunOutput<O::Model>, TrainError>
where
    O: Objective + Sync,
    F: FnMut(RunEvent<'_, O::Model>),
{
    plan.schedule.validate()?;
    let Split {
        set,
        sampler,
        geometry,
        group,
    } = split;
    let epochs = plan.schedule.epochs;
    let ipe = geometry.iters_per_epoch;
    let mut r = Supervised {
        obj,
        loader: set.loader(plan.transform.clone(), plan.seed),
        set,
        geometry,
        optim: adam(plan.weight_decay),
        plan,
        model,
        stream: BatchStream::new(sampler.clone()),
        drawn: None,
        current: Vec::new(),
        log: Vec::with_capacity(epochs * ipe),
        epoch_start: 0,
        checkpoints: run.checkpoints(),
        parallel: data_parallel(run, device)?,
        group,
        scaler: LossScaler::for_run(run),
        epoch_metrics: EpochMetrics::default(),
    };

    let resumed = resume_point(run)?;
    let mut pos = Position::default();
    if let Some(ckpt) = &resumed {
        let state: RunState<O::Config, O::Extra> = ckpt.read_json("state.json")?;
        same_config(
            ckpt,
            &(&state.config, state.geometry),
            &(r.obj.config(), geometry),
        )?;
        if let Some(bad) = state
            .stream
            .queue
            .iter()
            .flatten()
            .find(|&&i| i >= geometry.images)
        {
            return Err(TrainError::Checkpoint(format!(
                "{}: sampler position names image {bad} of a split of {}",
                ckpt.path.display(),
                geometry.images
            )));
        }
        let model = load_module(ckpt, "model.bpk", r.model)?;
        r.model = r.obj.restore(model, state.recipe);
        load_optim(ckpt, &mut r.optim)?;
        r.stream = BatchStream::from_state(sampler, state.stream);
        LossScaler::resume(&mut r.scaler, state.scaler);
        pos = state.position;
        callback(RunEvent::Resumed {
            step: pos.step,
            path: &ckpt.path,
        });
    }

    let mut tracker = Tracker::new(run, resumed.as_ref(), epochs * ipe)?;
    let eval_every = r.obj.eval_every();
    let mut on_event = |r: &mut Supervised<O>, e: PretrainEvent<'_>| match e {
        PretrainEvent::Step(_) => {
            if let Some(entry) = r.log.last() {
                callback(RunEvent::Iteration(entry));
            }
        }
        PretrainEvent::EpochEnd { epoch, .. } => {
            let last = epoch + 1 == epochs;
            let evaluate = eval_every > 0 && ((epoch + 1) % eval_every == 0 || last);
            let mut metrics = EpochMetrics::default();
            callback(RunEvent::EpochEnd {
                epoch,
                log: &r.log[r.epoch_start.min(r.log.len())..],
                model: &r.model,
                evaluate,
                metrics: &mut metrics,
            });
            r.epoch_metrics = metrics;
        }
        PretrainEvent::Checkpoint { step, path } => {
            callback(RunEvent::Checkpoint { step, path });
        }
        PretrainEvent::Resumed { step, path } => {
            callback(RunEvent::Resumed { step, path });
        }
        // Sent by the pre-training recipes only.
        PretrainEvent::Fresh { .. } => {}
    };
    let (steps_done, finished) = drive(&mut r, run, pos, epochs, &mut tracker, &mut on_event)?;
    Ok(RunOutput {
        model: r.model.valid(),
        log: r.log,
        num_classes: geometry.classes,
        iters_per_epoch: ipe,
        steps_done,
        finished,
        evaluations: tracker.epoch_lines,
    })
}

/// Adam (β 0.9/0.999, ε 1e-8) with coupled L2 weight decay on every
/// trained parameter, as fast-reid's defaults configure it.
fn adam(weight_decay: f64) -> ModuleOptimizer {
    AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
        )
        .init()
}

/// Reads a `[1]` loss tensor back to the host (as `f32`, its own type).
fn scalar(t: &Tensor<1>) -> Result<f32, TrainError> {
    // Widened from f32 by `pretrain::scalar`, so narrowing back is exact.
    crate::engine::step::scalar(t).map(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::parallel::tests::{max_abs_diff, weights};
    use crate::finetune::FinetuneConfig;
    use crate::schedule::Decay;
    use burn::nn::{Linear, LinearConfig};
    use reid_data::datasets::{ImageDatasetOptions, market1501};
    use reid_losses::CrossEntropyConfig;
    use reid_losses::cross_entropy_label_smooth;
    use reid_synth::{Market1501Config, WorldConfig, write_market1501};

    /// A linear classifier on each image's channel means, with a per-row
    /// second term: nothing couples the rows of a batch, so a sharded step
    /// must equal the single-device one.
    struct Probe {
        classes: usize,
    }

    /// A batch's two loss terms.
    type Losses = Result<(Tensor<1>, Tensor<1>), TrainError>;

    impl Objective for Probe {
        type Model = Linear;
        type Config = usize;
        type Extra = ();

        fn config(&self) -> &usize {
            &self.classes
        }

        /// Cross-entropy of the channel means' logits `z`, and `0.1·mean(z²)`.
        fn losses(&self, m: &Linear, x: Tensor<4>, y: Tensor<1, Int>, _: usize) -> Losses {
            let [n, c, h, w] = x.dims();
            let logits = m.forward(x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]));
            let ce = cross_entropy_label_smooth(logits.clone(), y, &CrossEntropyConfig::default())?;
            let second = logits.square().mean().mul_scalar(0.1);
            Ok((ce, second))
        }

        fn extra(&self) {}

        fn restore(&mut self, model: Linear, _extra: ()) -> Linear {
            model
        }
    }

    /// Fine-tuning with each PK batch sharded over two or three device
    /// handles (identities whole, each shard's images from its batch slots'
    /// augmentation streams, losses weighted by rows, gradients summed on
    /// the main device, Adam with coupled weight decay) takes the
    /// single-device steps.
    #[test]
    fn sharded_fine_tuning_takes_the_single_device_steps() {
        let dir = std::env::temp_dir().join(format!("reid-supervised-dp-{}", std::process::id()));
        let world = WorldConfig::sized(9, 32, 16).with_overwrite(true);
        let market = Market1501Config::two_camera(6, 2);
        let report = write_market1501(&dir, &world, &market).unwrap();
        let records = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default())
            .unwrap()
            .splits
            .train;
        let train_set = records;
        let cfg = FinetuneConfig {
            height: 32,
            width: 16,
            p: 3,
            k: 2,
            epochs: 1,
            iters_per_epoch: Some(3),
            lr: 1e-2,
            weight_decay: 5e-4,
            decay: Decay::Constant,
            ..FinetuneConfig::default()
        };
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(3, 6).init(&device);
        let run_on = |devices: usize| {
            let split =
                Split::new(&train_set, cfg.p, cfg.k, cfg.seed, cfg.iters_per_epoch).unwrap();
            let plan = Plan {
                schedule: cfg.schedule(3),
                transform: TrainTransform::bot(32, 16),
                seed: cfg.seed,
                weight_decay: cfg.weight_decay,
            };
            let run = RunOptions {
                devices: vec![device.clone(); devices],
                ..RunOptions::default()
            };
            train(
                Probe { classes: 6 },
                model.clone(),
                split,
                plan,
                &device,
                &run,
                |_| {},
            )
            .unwrap()
        };
        let one = run_on(1);
        assert_eq!(one.log.len(), 3);
        for devices in [2, 3] {
            let many = run_on(devices);
            for (a, b) in one.log.iter().zip(&many.log) {
                assert!((a.loss_ce - b.loss_ce).abs() < 1e-6, "{a:?} vs {b:?}");
                assert!((a.loss_tri - b.loss_tri).abs() < 1e-6, "{a:?} vs {b:?}");
            }
            let diff = max_abs_diff(&weights(&one.model), &weights(&many.model));
            assert!(diff < 1e-6, "{devices} devices: weights differ by {diff}");
        }
        assert_ne!(weights(&one.model), weights(&model.valid()));
        // Identity groups of K = 2 cannot feed more devices than P = 3.
        let split = Split::new(&train_set, cfg.p, cfg.k, cfg.seed, cfg.iters_per_epoch).unwrap();
        let plan = Plan {
            schedule: cfg.schedule(3),
            transform: TrainTransform::bot(32, 16),
            seed: cfg.seed,
            weight_decay: 0.0,
        };
        let run = RunOptions {
            devices: vec![device.clone(); 4],
            ..RunOptions::default()
        };
        let Err(err) = train(
            Probe { classes: 6 },
            model,
            split,
            plan,
            &device,
            &run,
            |_| {},
        ) else {
            panic!("4 devices for 3 identities ran");
        };
        assert!(err.to_string().contains("identity groups"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
