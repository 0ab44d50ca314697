//! Supervised fine-tuning with the BoT recipe (Luo et al., "Bag of Tricks
//! and a Strong Baseline for Deep Person Re-identification", 2019), as
//! fast-reid runs it (`Base-bagtricks.yml`):
//!
//! - model: a backbone (a ResNet, last stride 1, from `cfg.arch`; or any
//!   [`reid_backbones::TrainBackbone`] given to [`finetune`]) →
//!   global average pooling → BNNeck (BN,
//!   bias frozen) → bias-free linear classifier ([`ReidModel`]);
//! - data: PK batches (`P`=16 × `K`=4) from an endless
//!   [`PkSampler`](reid_data::sampler::PkSampler) stream, `len // (P·K)`
//!   iterations per epoch, images decoded and
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
//! Checkpoints and exact resume: [`finetune`] takes the pre-training
//! recipes' [`RunOptions`] (checkpoint folder, period, resume, JSON-lines metrics
//! log, early stop) and run on their shared loop; a checkpoint holds the
//! model (backbone + head), Adam's state, the PK stream's position
//! ([`StreamState`]), the run's position and the configuration, and a
//! resumed run computes bit-identical losses and weights to an
//! uninterrupted one on the flex backend. What the caller records at an
//! epoch's end (`RunEvent::EpochEnd::metrics`, e.g. an [`evaluate_model`]
//! result) is written to the metrics log as one line at the epoch's last
//! step, and kept exactly by a resume. MGN fine-tuning ([`mgn`]) shares
//! this run (each recipe supplies its losses, its trainable set per epoch
//! and any state of its own) and resumes the same way; both report
//! [`RunEvent`]s and return a [`RunOutput`] over their model.
//!
//! Mixed precision (fast-reid's AMP): [`RunOptions::precision`] `bf16`, or
//! `f16` with dynamic loss scaling ([`crate::precision`]). The sampler's
//! random stream is ours (ChaCha8), not NumPy's. Multi-GPU: [`RunOptions::devices`] shards
//! each PK batch into whole identities per device ([`crate::parallel`]).

mod config;
mod eval;
pub mod mgn;
mod supervised;

pub use crate::engine::seed::augment_seed;
pub use crate::init::{reinit_weights, zoo_from_scratch};
pub use crate::input::{BatchStream, StreamState, TrainSet, load_train_batch};
pub use config::FinetuneConfig;
pub use eval::{HeadEmbedder, embed_records, evaluate_model};
pub use supervised::{RunEvent, RunOutput};

use std::marker::PhantomData;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use reid_backbones::{Arch, EmbeddingHeadConfig, ReidModel, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_losses::{CrossEntropyConfig, TripletConfig, cross_entropy_label_smooth, triplet_loss};
use serde::{Deserialize, Serialize};

use crate::engine::RunOptions;
use crate::engine::source::{BackboneConfig, BackboneSource};
use crate::error::TrainError;
use supervised::{Objective, Plan, Split};

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

/// What [`finetune`] reports to their callback: a
/// [`RunEvent`] over the BoT model (`EpochEnd::evaluate` follows
/// [`FinetuneConfig::eval_every`]; an evaluation recorded in
/// `EpochEnd::metrics` goes into the metrics log).
pub type FinetuneEvent<'a, M = ResNet> = RunEvent<'a, ReidModel<M>>;

/// The result of [`finetune`]: a [`RunOutput`] with the
/// trained BoT model.
pub type FinetuneOutput<M = ResNet> = RunOutput<ReidModel<M>>;

/// Fine-tunes a backbone with a fresh BNNeck head on `train` (pids may be
/// any integers; they are mapped to dense labels in ascending order), on
/// the autodiff version of `device`, operated by `run` (checkpoints every
/// [`RunOptions::checkpoint_every`] steps into
/// [`RunOptions::checkpoint_dir`], exact resume from the newest one —
/// [`RunOptions::resume`]; same configuration and training split required,
/// otherwise [`TrainError::Checkpoint`] —, a JSON-lines metrics log and an
/// early stop; `RunOptions::default()` for none of these).
///
/// `backbone` is [`FromConfig`](crate::FromConfig) — a randomly initialised
/// `cfg.arch` ResNet (`base_width`, `last_stride`) whose weights are drawn
/// together with the head's by [`reinit_weights`] from `cfg.seed` — or any
/// [`TrainBackbone`]: pre-trained weights loaded with
/// [`reid_backbones::load_backbone`], a zoo model
/// ([`reid_backbones::ZooNet`]), a user's module (`cfg.arch`, `base_width`
/// and `last_stride` are then ignored; the head alone is drawn from
/// `cfg.seed`). Resuming needs the same backbone structure as the
/// interrupted run; its weights come from the checkpoint.
///
/// Calls `callback` after every step and every epoch. Deterministic given
/// `cfg.seed` on the flex backend. A NaN or infinite loss stops training
/// with [`TrainError::NonFiniteLoss`] naming the step. See the module docs.
pub fn finetune<S, F>(
    cfg: &FinetuneConfig,
    backbone: S,
    train: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<FinetuneOutput<S::Model>, TrainError>
where
    S: BackboneSource<FinetuneConfig>,
    F: FnMut(FinetuneEvent<'_, S::Model>),
{
    cfg.validate()?;
    let ad = device.clone().autodiff();
    let start = backbone.into_backbone(cfg, &ad)?;
    let model = if start.from_config {
        start.model
    } else {
        start.model.to_device(&ad).train()
    };
    run_bot(cfg, model, start.from_config, train, &ad, run, callback)
}

impl BackboneConfig for FinetuneConfig {
    /// The `cfg.arch` ResNet (`base_width`, `last_stride`) at burn's
    /// initialisation; [`finetune`] then draws its weights from `cfg.seed`.
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError> {
        Ok(Arch::from_name(&self.arch)?
            .config()
            .with_base_width(self.base_width)
            .with_last_stride(self.last_stride)
            .init(device)?)
    }
}

/// BoT's losses on the shared run: label-smoothed CE on the BNNeck
/// logits + batch-hard triplet before the BNNeck, weight 1 each.
struct Bot<'a, M> {
    cfg: &'a FinetuneConfig,
    ce_cfg: CrossEntropyConfig,
    tri_cfg: TripletConfig,
    backbone: PhantomData<fn() -> M>,
}

impl<M: TrainBackbone> Objective for Bot<'_, M> {
    type Model = ReidModel<M>;
    type Config = FinetuneConfig;
    type Extra = ();

    fn config(&self) -> &FinetuneConfig {
        self.cfg
    }

    fn eval_every(&self) -> usize {
        self.cfg.eval_every
    }

    fn losses(
        &self,
        model: &ReidModel<M>,
        images: Tensor<4>,
        targets: Tensor<1, Int>,
        iteration: usize,
    ) -> Result<(Tensor<1>, Tensor<1>), TrainError> {
        // Stochastic depth (ViT, Swin) from a per-step seed: reproducible,
        // and repeated exactly after a resume.
        let drop_seed = augment_seed(self.cfg.seed, iteration, usize::MAX - 5);
        let out = model.forward_seeded(images, drop_seed);
        let logits = model.heads.logits(&out, targets.clone())?;
        let ce = cross_entropy_label_smooth(logits, targets.clone(), &self.ce_cfg)?;
        let tri = triplet_loss(out.before_neck, targets, &self.tri_cfg)?;
        Ok((ce, tri))
    }

    fn extra(&self) {}

    fn restore(&mut self, mut model: ReidModel<M>, _extra: ()) -> ReidModel<M> {
        // The BNNeck bias stays frozen whatever the file's flags.
        model.heads.neck.beta = model.heads.neck.beta.set_require_grad(false);
        model
    }
}

fn run_bot<M, F>(
    cfg: &FinetuneConfig,
    backbone: M,
    reinit_backbone: bool,
    train: &[ImageRecord],
    ad: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<FinetuneOutput<M>, TrainError>
where
    M: TrainBackbone,
    F: FnMut(FinetuneEvent<'_, M>),
{
    let split = Split::new(train, cfg.p, cfg.k, cfg.seed, cfg.iters_per_epoch)?;
    let ipe = split.geometry.iters_per_epoch;
    let head_cfg = EmbeddingHeadConfig::fastreid(backbone.out_channels(), split.geometry.classes);
    let heads = head_cfg.init(ad)?;
    // Weights from our own seeded streams (burn's generator is process-global).
    let model = if reinit_backbone {
        reinit_weights(
            ReidModel::new(backbone, heads),
            cfg.seed,
            head_cfg.classifier_std,
        )
    } else {
        let heads = reinit_weights(heads, cfg.seed, head_cfg.classifier_std);
        ReidModel::new(backbone, heads)
    };
    run.precision.check(ad)?;
    let model = model.with_precision(run.precision);
    let plan = Plan {
        schedule: cfg.schedule(ipe),
        transform: TrainTransform::bot(cfg.height, cfg.width),
        seed: cfg.seed,
        weight_decay: cfg.weight_decay,
    };
    let bot = Bot {
        cfg,
        ce_cfg: cfg.ce_config(),
        tri_cfg: cfg.triplet_config(),
        backbone: PhantomData,
    };
    supervised::train(bot, model, split, plan, ad, run, callback)
}
