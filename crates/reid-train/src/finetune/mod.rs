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
//! Not reproduced: mixed precision (AMP) and multi-GPU; the sampler's
//! random stream is ours (ChaCha8), not NumPy's.

mod batch;
mod config;
mod eval;
mod init;
pub mod mgn;

pub use batch::{BatchStream, TrainSet, augment_seed, load_train_batch};
pub use config::FinetuneConfig;
pub use eval::{HeadEmbedder, embed_records, evaluate_model};
pub use init::reinit_weights;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use reid_backbones::{Arch, EmbeddingHeadConfig, ReidModel, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_data::sampler::PkSampler;
use reid_losses::{cross_entropy_label_smooth, triplet_loss};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

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

/// What [`finetune`] reports to its callback.
#[derive(Debug)]
pub enum FinetuneEvent<'a, M: TrainBackbone = ResNet> {
    /// After each optimiser step.
    Iteration(&'a IterationLog),
    /// After the last step of an epoch.
    EpochEnd {
        /// 0-based epoch that just ended.
        epoch: usize,
        /// The log entries of that epoch.
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
    /// One entry per optimiser step.
    pub log: Vec<IterationLog>,
    /// Number of training identities (rows of the classifier).
    pub num_classes: usize,
    /// Iterations per epoch that were run.
    pub iters_per_epoch: usize,
}

/// Fine-tunes a randomly initialised `cfg.arch` backbone with a fresh BNNeck
/// head on `train` (pids may be any integers; they are mapped to dense
/// labels in ascending order). The initial weights are drawn by
/// [`reinit_weights`] from `cfg.seed`. See [`finetune_backbone`].
pub fn finetune<F>(
    cfg: &FinetuneConfig,
    train: &[ImageRecord],
    device: &Device,
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
    run(cfg, backbone, true, train, &ad, callback)
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
/// with [`TrainError::NonFiniteLoss`] naming the step.
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
    cfg.validate()?;
    let ad = device.clone().autodiff();
    run(
        cfg,
        backbone.to_device(&ad).train(),
        false,
        train,
        &ad,
        callback,
    )
}

fn run<M, F>(
    cfg: &FinetuneConfig,
    backbone: M,
    reinit_backbone: bool,
    train: &[ImageRecord],
    ad: &Device,
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
    let mut model = if reinit_backbone {
        reinit_weights(
            ReidModel { backbone, heads },
            cfg.seed,
            head_cfg.classifier_std,
        )
    } else {
        let heads = reinit_weights(heads, cfg.seed, head_cfg.classifier_std);
        ReidModel { backbone, heads }
    };
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
        )
        .init();
    let transform = TrainTransform::bot(cfg.height, cfg.width);
    let ce_cfg = cfg.ce_config();
    let tri_cfg = cfg.triplet_config();
    let mut stream = BatchStream::new(sampler);
    let mut log: Vec<IterationLog> = Vec::with_capacity(cfg.epochs * ipe);

    for epoch in 0..cfg.epochs {
        let epoch_start = log.len();
        for i in 0..ipe {
            let iteration = epoch * ipe + i;
            let lr = schedule.lr_at(iteration);
            let indices = stream.next_batch()?;
            let (images, targets) =
                load_train_batch(&set, &indices, &transform, cfg.seed, iteration, ad)?;
            let out = model.forward(images);
            let logits = model.heads.logits(&out, targets.clone())?;
            let ce = cross_entropy_label_smooth(logits, targets.clone(), &ce_cfg)?;
            let tri = triplet_loss(out.before_neck, targets, &tri_cfg)?;
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
            let grads = GradientsParams::from_grads(ce.add(tri).backward(), &model);
            model = optim.step(lr, model, grads);
            let entry = IterationLog {
                epoch,
                iteration,
                loss_ce,
                loss_tri,
                lr,
            };
            log.push(entry);
            callback(FinetuneEvent::Iteration(&entry));
        }
        let last = epoch + 1 == cfg.epochs;
        let evaluate = cfg.eval_every > 0 && ((epoch + 1) % cfg.eval_every == 0 || last);
        callback(FinetuneEvent::EpochEnd {
            epoch,
            log: &log[epoch_start..],
            model: &model,
            evaluate,
        });
    }
    Ok(FinetuneOutput {
        model: model.valid(),
        log,
        num_classes: set.num_classes,
        iters_per_epoch: ipe,
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
