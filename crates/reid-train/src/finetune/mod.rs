//! Supervised fine-tuning with the BoT recipe (Luo et al., "Bag of Tricks
//! and a Strong Baseline for Deep Person Re-identification", 2019), as
//! fast-reid runs it (`Base-bagtricks.yml`):
//!
//! - model: a backbone (a ResNet, last stride 1, from `cfg.arch`; any
//!   [`reid_backbones::TrainBackbone`] through [`finetune_backbone`]) →
//!   global average pooling → BNNeck (BN,
//!   bias frozen) → bias-free linear classifier ([`ReidModel`]);
//! - data: PK batches (`P`=16 × `K`=4) from an endless [`PkSampler`]
//!   stream, `len // (P·K)` iterations per epoch, images decoded and
//!   augmented in parallel ([`TrainTransform::bot`]: bicubic resize, flip,
//!   pad 10 + crop, ImageNet normalisation, random erasing);
//! - loss: label-smoothed cross-entropy (`ε` = 0.1, fast-reid convention) on
//!   the BNNeck output's logits + batch-hard triplet (margin 0.3, Euclidean)
//!   on the pooled feature before the BNNeck (`NECK_FEAT: before`), summed
//!   with weight 1 each;
//! - optimiser: Adam (β = 0.9/0.999, ε = 1e-8) with coupled L2 weight decay
//!   5e-4 on every trained parameter — fast-reid's defaults give every
//!   parameter group the same rate and decay (`BIAS_LR_FACTOR` 1,
//!   `WEIGHT_DECAY_BIAS` = `WEIGHT_DECAY_NORM` = `WEIGHT_DECAY`), so one
//!   group is exact; the BNNeck bias gets no gradient and is never updated;
//! - schedule: [`crate::schedule`] (warm-up per iteration, decay per epoch).
//!
//! Checkpoints and exact resume: [`finetune_with`] and
//! [`finetune_backbone_with`] take the pre-training recipes'
//! [`RunOptions`] (checkpoint folder, period, resume, JSON-lines metrics
//! log, early stop) and run on their shared loop; a checkpoint holds the
//! model (backbone + head), Adam's state, the PK stream's position
//! ([`StreamState`]), the run's position and the configuration, and a
//! resumed run computes bit-identical losses and weights to an
//! uninterrupted one on the flex backend.
//!
//! Not reproduced: mixed precision (AMP) and multi-GPU; the sampler's
//! random stream is ours (ChaCha8), not NumPy's.

mod batch;
mod config;
mod eval;
mod init;
pub mod mgn;

pub use batch::{BatchStream, StreamState, TrainSet, augment_seed, load_train_batch};
pub use config::FinetuneConfig;
pub use eval::{HeadEmbedder, embed_records, evaluate_model};
pub use init::reinit_weights;

use std::path::Path;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use reid_backbones::{Arch, EmbeddingHeadConfig, ReidModel, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_data::sampler::PkSampler;
use reid_losses::{CrossEntropyConfig, TripletConfig, cross_entropy_label_smooth, triplet_loss};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointDir, module_from_bytes, optim_from_bytes};
use crate::error::TrainError;
use crate::metrics_log::LogLine;
use crate::pretrain::{
    Position, PretrainEvent, Recipe, RunOptions, Tracker, drive_with, resume_point, same_config,
    save_parts, state_json,
};
use crate::schedule::LrSchedule;

/// One optimiser step of the log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterationLog {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based global iteration.
    pub iteration: usize,
    /// Label-smoothed cross-entropy of the batch (nats).
    pub loss_ce: f32,
    /// Batch-hard triplet loss of the batch (Euclidean distance units).
    pub loss_tri: f32,
    /// Learning rate used by this step.
    pub lr: f64,
}

/// What [`finetune`] / [`finetune_with`] report to their callback.
#[derive(Debug)]
pub enum FinetuneEvent<'a, M: TrainBackbone = ResNet> {
    /// The run continues from a checkpoint of `step` completed steps
    /// ([`finetune_with`] with [`RunOptions::resume`]); sent before the
    /// first step.
    Resumed {
        /// Completed steps in the checkpoint.
        step: usize,
        /// Its folder.
        path: &'a Path,
    },
    /// After each optimiser step.
    Iteration(&'a IterationLog),
    /// A checkpoint was written ([`finetune_with`] with a
    /// [`RunOptions::checkpoint_dir`]).
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
        /// with [`evaluate_model`], which takes a validation snapshot).
        model: &'a ReidModel<M>,
        /// Whether [`FinetuneConfig::eval_every`] asks for an evaluation now
        /// (always `true` after the last epoch when `eval_every > 0`).
        evaluate: bool,
    },
}

/// The result of [`finetune`].
#[derive(Debug)]
pub struct FinetuneOutput<M: TrainBackbone = ResNet> {
    /// The trained model, as a validation snapshot on the plain device
    /// (BatchNorm uses running statistics).
    pub model: ReidModel<M>,
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
}

/// Fine-tunes a randomly initialised `cfg.arch` backbone with a fresh BNNeck
/// head on `train` (pids may be any integers; they are mapped to dense
/// labels in ascending order). The initial weights are drawn by
/// [`reinit_weights`] from `cfg.seed`. See [`finetune_backbone`]; no
/// checkpoints ([`finetune_with`] writes them).
pub fn finetune<F>(
    cfg: &FinetuneConfig,
    train: &[ImageRecord],
    device: &Device,
    callback: F,
) -> Result<FinetuneOutput, TrainError>
where
    F: FnMut(FinetuneEvent<'_>),
{
    finetune_with(cfg, train, device, &RunOptions::default(), callback)
}

/// [`finetune`] operated by `run`: checkpoints every
/// [`RunOptions::checkpoint_every`] steps into
/// [`RunOptions::checkpoint_dir`], exact resume from the newest one
/// ([`RunOptions::resume`]; same configuration and training split
/// required, otherwise [`TrainError::Checkpoint`]), a JSON-lines metrics
/// log and an early stop. See the module docs.
pub fn finetune_with<F>(
    cfg: &FinetuneConfig,
    train: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<FinetuneOutput, TrainError>
where
    F: FnMut(FinetuneEvent<'_>),
{
    cfg.validate()?;
    let ad = device.clone().autodiff();
    let backbone = Arch::from_name(&cfg.arch)?
        .config()
        .with_base_width(cfg.base_width)
        .with_last_stride(cfg.last_stride)
        .init(&ad)?;
    run_bot(cfg, backbone, true, train, &ad, run, callback)
}

/// Fine-tunes `backbone` (e.g. pre-trained weights loaded with
/// [`reid_backbones::load_backbone`], or any zoo model —
/// [`reid_backbones::ZooNet`] — or other [`TrainBackbone`]; `cfg.arch`,
/// `base_width` and `last_stride` are then ignored) with a fresh BNNeck
/// head on the backbone's feature map, on `train`, on the autodiff version
/// of `device`.
///
/// Calls `callback` after every step and every epoch. Deterministic given
/// `cfg.seed` on the flex backend. A NaN or infinite loss stops training
/// with [`TrainError::NonFiniteLoss`] naming the step. No checkpoints
/// ([`finetune_backbone_with`] writes them).
pub fn finetune_backbone<M, F>(
    cfg: &FinetuneConfig,
    backbone: M,
    train: &[ImageRecord],
    device: &Device,
    callback: F,
) -> Result<FinetuneOutput<M>, TrainError>
where
    M: TrainBackbone,
    F: FnMut(FinetuneEvent<'_, M>),
{
    finetune_backbone_with(
        cfg,
        backbone,
        train,
        device,
        &RunOptions::default(),
        callback,
    )
}

/// [`finetune_backbone`] operated by `run` (checkpoints, exact resume,
/// metrics log, early stop; see [`finetune_with`]). Resuming needs the same
/// backbone structure as the interrupted run; its weights come from the
/// checkpoint.
pub fn finetune_backbone_with<M, F>(
    cfg: &FinetuneConfig,
    backbone: M,
    train: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<FinetuneOutput<M>, TrainError>
where
    M: TrainBackbone,
    F: FnMut(FinetuneEvent<'_, M>),
{
    cfg.validate()?;
    let ad = device.clone().autodiff();
    run_bot(
        cfg,
        backbone.to_device(&ad).train(),
        false,
        train,
        &ad,
        run,
        callback,
    )
}

/// What a BoT checkpoint keeps in `state.json` besides the model and Adam.
#[derive(Debug, Serialize, Deserialize)]
struct BotState {
    /// Where the run stands.
    position: Position,
    /// The PK stream at the start of `position.epoch` (its batches are
    /// drawn again on resume).
    stream: StreamState,
    /// Training images, identities and iterations per epoch of the run.
    geometry: Geometry,
    /// The recipe.
    config: FinetuneConfig,
}

/// The shape of the training split a run was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Geometry {
    images: usize,
    classes: usize,
    iters_per_epoch: usize,
}

/// A BoT fine-tuning run's state for the shared loop.
struct BotRun<'a, M: TrainBackbone> {
    cfg: &'a FinetuneConfig,
    set: TrainSet,
    geometry: Geometry,
    schedule: LrSchedule,
    transform: TrainTransform,
    ce_cfg: CrossEntropyConfig,
    tri_cfg: TripletConfig,
    model: ReidModel<M>,
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
    device: Device,
}

impl<M: TrainBackbone> Recipe for BotRun<'_, M> {
    fn begin_epoch(&mut self, epoch: usize) -> Result<(), TrainError> {
        let before = self.stream.state();
        self.current = (0..self.geometry.iters_per_epoch)
            .map(|_| self.stream.next_batch())
            .collect::<Result<_, _>>()?;
        self.drawn = Some((epoch, before));
        self.epoch_start = self.log.len();
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
        let cfg = self.cfg;
        let lr = self.schedule.lr_at(iteration);
        let (images, targets) = load_train_batch(
            &self.set,
            indices,
            &self.transform,
            cfg.seed,
            iteration,
            &self.device,
        )?;
        // Stochastic depth (ViT, Swin) from a per-step seed: reproducible,
        // and repeated exactly after a resume.
        let drop_seed = augment_seed(cfg.seed, iteration, usize::MAX - 5);
        let out = self.model.forward_seeded(images, drop_seed);
        let logits = self.model.heads.logits(&out, targets.clone())?;
        let ce = cross_entropy_label_smooth(logits, targets.clone(), &self.ce_cfg)?;
        let tri = triplet_loss(out.before_neck, targets, &self.tri_cfg)?;
        let loss_ce = scalar(&ce)?;
        let loss_tri = scalar(&tri)?;
        if !(loss_ce.is_finite() && loss_tri.is_finite()) {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                iteration,
                loss_ce,
                loss_tri,
                lr,
            });
        }
        let grads = GradientsParams::from_grads(ce.add(tri).backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.log.push(IterationLog {
            epoch,
            iteration,
            loss_ce,
            loss_tri,
            lr,
        });
        Ok(LogLine::new(iteration, epoch)
            .with("loss", f64::from(loss_ce) + f64::from(loss_tri))
            .with("loss_ce", f64::from(loss_ce))
            .with("loss_tri", f64::from(loss_tri))
            .with("lr", lr))
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
        let state = state_json(&BotState {
            position: pos,
            stream,
            geometry: self.geometry,
            config: self.cfg.clone(),
        })?;
        save_parts(
            &self.checkpoints,
            pos,
            [("model.bpk", &self.model)],
            &self.optim,
            &[("state.json", &state)],
        )
    }
}

fn run_bot<M, F>(
    cfg: &FinetuneConfig,
    backbone: M,
    reinit_backbone: bool,
    train: &[ImageRecord],
    ad: &Device,
    run: &RunOptions,
    mut callback: F,
) -> Result<FinetuneOutput<M>, TrainError>
where
    M: TrainBackbone,
    F: FnMut(FinetuneEvent<'_, M>),
{
    let set = TrainSet::new(train)?;
    let sampler = PkSampler::new(train, cfg.p, cfg.k, cfg.seed)?;
    let ipe = match cfg.iters_per_epoch {
        Some(n) => n,
        None => sampler.iters_per_epoch_fastreid(),
    };
    if ipe == 0 {
        return Err(TrainError::InvalidConfig(format!(
            "the training split has {} images, fewer than one batch of P·K = {}: set iters_per_epoch",
            train.len(),
            cfg.batch_size()
        )));
    }
    let schedule = cfg.schedule(ipe);
    schedule.validate()?;

    let head_cfg = EmbeddingHeadConfig::fastreid(backbone.out_channels(), set.num_classes);
    let heads = head_cfg.init(ad)?;
    // Weights from our own seeded streams (burn's generator is process-global).
    let model = if reinit_backbone {
        reinit_weights(
            ReidModel { backbone, heads },
            cfg.seed,
            head_cfg.classifier_std,
        )
    } else {
        let heads = reinit_weights(heads, cfg.seed, head_cfg.classifier_std);
        ReidModel { backbone, heads }
    };
    let optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
        )
        .init();
    let geometry = Geometry {
        images: train.len(),
        classes: set.num_classes,
        iters_per_epoch: ipe,
    };
    let mut r = BotRun {
        cfg,
        set,
        geometry,
        schedule,
        transform: TrainTransform::bot(cfg.height, cfg.width),
        ce_cfg: cfg.ce_config(),
        tri_cfg: cfg.triplet_config(),
        model,
        optim,
        stream: BatchStream::new(sampler.clone()),
        drawn: None,
        current: Vec::new(),
        log: Vec::with_capacity(cfg.epochs * ipe),
        epoch_start: 0,
        checkpoints: run.checkpoints(),
        device: ad.clone(),
    };

    let resumed = resume_point(run)?;
    let mut pos = Position::default();
    if let Some(ckpt) = &resumed {
        let state: BotState = ckpt.read_json("state.json")?;
        same_config(ckpt, &(&state.config, state.geometry), &(cfg, geometry))?;
        if let Some(bad) = state
            .stream
            .queue
            .iter()
            .flatten()
            .find(|&&i| i >= train.len())
        {
            return Err(TrainError::Checkpoint(format!(
                "{}: sampler position names image {bad} of a split of {}",
                ckpt.path.display(),
                train.len()
            )));
        }
        let mut model = module_from_bytes(r.model, ckpt.read("model.bpk")?, "model.bpk")?;
        // The BNNeck bias stays frozen whatever the file's flags.
        model.heads.neck.beta = model.heads.neck.beta.set_require_grad(false);
        r.model = model;
        r.optim = optim_from_bytes(r.optim, ckpt.read("optim.bpk")?, "optim.bpk")?;
        r.stream = BatchStream::from_state(sampler, state.stream);
        pos = state.position;
        callback(FinetuneEvent::Resumed {
            step: pos.step,
            path: &ckpt.path,
        });
    }

    let mut tracker = Tracker::new(run, resumed.as_ref(), cfg.epochs * ipe)?;
    let epochs = cfg.epochs;
    let mut on_event = |r: &BotRun<'_, M>, e: PretrainEvent<'_>| match e {
        PretrainEvent::Step(_) => {
            if let Some(entry) = r.log.last() {
                callback(FinetuneEvent::Iteration(entry));
            }
        }
        PretrainEvent::EpochEnd { epoch, .. } => {
            let last = epoch + 1 == epochs;
            let evaluate = cfg.eval_every > 0 && ((epoch + 1) % cfg.eval_every == 0 || last);
            callback(FinetuneEvent::EpochEnd {
                epoch,
                log: &r.log[r.epoch_start.min(r.log.len())..],
                model: &r.model,
                evaluate,
            });
        }
        PretrainEvent::Checkpoint { step, path } => {
            callback(FinetuneEvent::Checkpoint { step, path });
        }
        PretrainEvent::Resumed { step, path } => {
            callback(FinetuneEvent::Resumed { step, path });
        }
    };
    let (steps_done, finished) = drive_with(&mut r, run, pos, epochs, &mut tracker, &mut on_event)?;
    Ok(FinetuneOutput {
        model: r.model.valid(),
        log: r.log,
        num_classes: geometry.classes,
        iters_per_epoch: ipe,
        steps_done,
        finished,
    })
}

/// Reads a `[1]` loss tensor back to the host.
pub(crate) fn scalar(t: &Tensor<1>) -> Result<f32, TrainError> {
    let v: Vec<f32> = t
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
    v.first()
        .copied()
        .ok_or_else(|| TrainError::Readback("empty loss tensor".into()))
}
