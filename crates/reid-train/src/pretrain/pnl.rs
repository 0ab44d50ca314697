//! LUPerson-NL's PNL pre-training (Fu et al., "Large-Scale Pre-training for
//! Person Re-identification with Noisy Labels", CVPR 2022), as
//! `lup_pnl.py` + `run_pnl.sh` run it.
//!
//! - model ([`PnlNet`]): a ResNet trunk (GAP feature `h`; any
//!   [`TrainBackbone`] given to [`pretrain_pnl`]), a classifier
//!   branch `z = W_c·ReLU(W_e·h)` over the noisy tracklet labels (`W_e` to
//!   256), and a projection branch `q = normalise(W_2·ReLU(W_1·h))` (128);
//!   the key encoder is a momentum copy (0.999) run with shuffle-BN;
//! - views: the query encoder sees the **weak** view (BoT-style resize,
//!   pad, crop, flip), the key encoder the **strong** LUPerson view, as
//!   upstream's unpacking order makes it;
//! - losses ([`pnl_step_losses`]): `CE(z, ŷ)` + label-guided InfoNCE
//!   against the queue (queue positives of the same label from epoch 15) +
//!   prototype `CE(q·Pᵀ/T, ŷ)` (from epoch 1), with the labels corrected
//!   from epoch 11 when `α·softmax(z) + (1−α)·softmax(q·Pᵀ/T)` is above
//!   0.8; then the keys are enqueued with `ŷ` and the prototypes updated
//!   with `(q, ŷ)`;
//! - optimiser: SGD (momentum 0.9, weight decay 1e-4 on every parameter),
//!   learning rate 0.4, ×0.1 at epochs 40 and 80, 90 epochs, no warm-up.
//!
//! [`PnlTrainer`] is the training step itself (networks, optimiser, queue,
//! prototypes; no data pipeline), which [`pretrain_pnl`] drives;
//! `tests/integration/pnl_step_parity.rs` checks twelve of its steps against
//! LUPerson-NL's own code.
//!
//! Mixed precision through [`RunOptions::precision`] (`bf16`, or `f16` with
//! dynamic loss scaling, [`crate::precision`]). On one device shuffle-BN is
//! emulated; with
//! [`RunOptions::devices`] its groups are spread over the devices and each
//! device runs the query side of its rows, as for MoCo
//! ([`super::moco`]); the queue and the prototypes are updated from the
//! whole batch, in batch order.

use burn::module::Module;
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use derive_setters::Setters;
use reid_backbones::{Precision, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::views::PnlViews;
use reid_losses::moco::InfoNceQueue;
use reid_losses::pnl::{PnlLossConfig, PrototypeBank, PrototypeState, pnl_step_losses};
use serde::{Deserialize, Serialize};

use super::contrast::{QueueMeta, query_shards};
use super::moco::{LinearInit, seeded_linear};
use super::pair::{Batch, PairOutput, PairTrainer, Part, TrainerCore, run_pair, start};
use super::{fresh_copy, pooled, project};
use crate::engine::checkpoint::{Checkpoint, bytes_to_f32s, f32s_to_bytes};
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::LogLine;
use crate::engine::optim::sgd;
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, weighted_loss};
use crate::engine::precision::LossScaler;
use crate::engine::seed::{ShuffledEpochs, augment_seed};
use crate::engine::source::{BackboneConfig, BackboneSource};
use crate::engine::step::{check_finite, scalar};
use crate::error::TrainError;
use crate::init::seeded_resnet;
use crate::input::TrainSet;

/// Every hyper-parameter of PNL; defaults are `run_pnl.sh`'s. Unknown keys
/// are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(default, deny_unknown_fields)]
pub struct PnlConfig {
    /// Backbone name (`resnet50`).
    pub arch: String,
    /// Channels of the backbone's stem (64).
    pub base_width: usize,
    /// Stride of the last stage (2).
    pub last_stride: usize,
    /// View `[height, width]` in pixels (256 × 128).
    pub size: [u32; 2],
    /// Images per batch (1,536 over 8 GPUs upstream).
    pub batch_size: usize,
    /// Shuffle-BN groups (8).
    pub bn_groups: usize,
    /// Epochs (90).
    pub epochs: usize,
    /// Cap on the steps of each epoch; `None` = `len / batch`.
    pub max_steps_per_epoch: Option<usize>,
    /// Learning rate (0.4).
    pub lr: f64,
    /// Epochs at which the rate is multiplied by `lr_gamma` (`[40, 80]`).
    pub lr_milestones: Vec<usize>,
    /// Step factor (0.1).
    pub lr_gamma: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// Weight decay, coupled, on every parameter (1e-4).
    pub weight_decay: f64,
    /// Classifier embedding size (`cls_dim`, 256).
    pub cls_dim: usize,
    /// Projection hidden size (2048).
    pub mlp_hidden_dim: usize,
    /// Projection output size (128).
    pub dim: usize,
    /// Queue length (65,536).
    pub queue_size: usize,
    /// Key-encoder momentum (0.999).
    pub key_momentum: f64,
    /// Prototype momentum (0.999).
    pub proto_momentum: f64,
    /// Temperature of the instance and prototype logits (0.07).
    pub temperature: f64,
    /// Classifier weight `α` in the correction score (0.5).
    pub alpha: f64,
    /// Correction threshold (0.8).
    pub threshold: f64,
    /// First epoch with label correction (11).
    pub start_clean_epoch: usize,
    /// First epoch with label-guided queue positives (15).
    pub start_supcont_epoch: usize,
    /// First epoch with the prototype loss (1).
    pub start_proto_epoch: usize,
    /// Seed (0).
    pub seed: u64,
}

impl Default for PnlConfig {
    fn default() -> Self {
        let l = PnlLossConfig::default();
        Self {
            arch: "resnet50".into(),
            base_width: 64,
            last_stride: 2,
            size: [256, 128],
            batch_size: 1536,
            bn_groups: 8,
            epochs: 90,
            max_steps_per_epoch: None,
            lr: 0.4,
            lr_milestones: vec![40, 80],
            lr_gamma: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            cls_dim: 256,
            mlp_hidden_dim: 2048,
            dim: 128,
            queue_size: 65536,
            key_momentum: 0.999,
            proto_momentum: 0.999,
            temperature: l.temperature,
            alpha: l.alpha,
            threshold: l.threshold,
            start_clean_epoch: l.start_clean_epoch,
            start_supcont_epoch: l.start_supcont_epoch,
            start_proto_epoch: l.start_proto_epoch,
            seed: 0,
        }
    }
}

impl PnlConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        contrast_shape!(self).validate()?;
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if !(0.0..=1.0).contains(&self.proto_momentum) {
            return bad(format!(
                "proto_momentum must be in [0, 1], got {}",
                self.proto_momentum
            ));
        }
        self.loss_config()
            .validate()
            .map_err(|e| TrainError::InvalidConfig(e.to_string()))
    }

    /// The loss settings of this configuration.
    pub fn loss_config(&self) -> PnlLossConfig {
        PnlLossConfig::default()
            .with_alpha(self.alpha)
            .with_threshold(self.threshold)
            .with_temperature(self.temperature)
            .with_start_clean_epoch(self.start_clean_epoch)
            .with_start_supcont_epoch(self.start_supcont_epoch)
            .with_start_proto_epoch(self.start_proto_epoch)
    }

    /// The weak/strong views at this configuration's size.
    pub fn views(&self) -> PnlViews {
        let mut v = PnlViews::new();
        let [h, w] = self.size;
        v.weak.height = h;
        v.weak.width = w;
        v.strong.crop.height = h;
        v.strong.crop.width = w;
        v
    }

    /// Learning rate of `epoch` (step schedule).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let passed = self.lr_milestones.iter().filter(|&&m| epoch >= m).count();
        self.lr * self.lr_gamma.powi(passed as i32)
    }
}

/// PNL's encoder: trunk, classifier branch and projection branch.
///
/// The backbone is any [`TrainBackbone`] (default a [`ResNet`]); its pooled
/// feature ([`reid_backbones::Backbone::forward_pooled`]) is `h`.
#[derive(Module, Debug)]
pub struct PnlNet<M: TrainBackbone = ResNet> {
    /// The backbone (pooled feature `h`).
    pub backbone: M,
    /// Classifier embedding `W_e` (`[C, cls_dim]`).
    pub cls_embed: Linear,
    /// Classifier `W_c` (`[cls_dim, classes]`).
    pub cls_out: Linear,
    /// Projection `W_1` (`[C, hidden]`).
    pub fc1: Linear,
    /// Projection `W_2` (`[hidden, dim]`).
    pub fc2: Linear,
    relu: Relu,
    /// The float type the backbone computes in ([`Precision`]; the
    /// heads and the losses stay in `f32`). Not saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl<M: TrainBackbone> PnlNet<M> {
    /// The backbone's pooled feature: `[batch, 3, H, W]` → `[batch,
    /// backbone.pooled_dim()]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        pooled(&self.backbone, self.precision, images, None)
    }

    /// Classifier logits and projections of a pooled feature `h` `[batch, C]`.
    fn heads(&self, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self
            .cls_out
            .forward(self.relu.forward(self.cls_embed.forward(h.clone())));
        (z, self.project(h))
    }

    /// Classifier logits `[batch, classes]` and L2-normalised projections
    /// `[batch, dim]`.
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        self.heads(self.embed(images))
    }

    /// The L2-normalised projection of a pooled feature `[batch, C]`.
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        project(&self.fc1, &self.relu, &self.fc2, h)
    }

    /// [`PnlNet::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`
    /// ([`reid_backbones::Backbone::forward_pooled_seeded`]).
    pub fn forward_seeded(&self, images: Tensor<4>, seed: u64) -> (Tensor<2>, Tensor<2>) {
        self.heads(pooled(&self.backbone, self.precision, images, Some(seed)))
    }
}

/// Builds the query encoder for `cfg` and `classes` labels, seeded.
pub fn init_encoder(
    cfg: &PnlConfig,
    classes: usize,
    device: &Device,
) -> Result<PnlNet, TrainError> {
    Ok(encoder_with(
        cfg,
        init_backbone(cfg, device)?,
        classes,
        device,
    ))
}

/// The ResNet `cfg.arch` (`base_width`, `last_stride`) with weights drawn
/// from `cfg.seed` ([`seeded_resnet`]).
pub fn init_backbone(cfg: &PnlConfig, device: &Device) -> Result<ResNet, TrainError> {
    seeded_resnet(&cfg.arch, cfg.base_width, cfg.last_stride, cfg.seed, device)
}

/// `embed_fc`: `kaiming_normal_(mode="fan_out")`, bias 0.
const FAN_OUT_ZERO_BIAS: LinearInit = LinearInit::KaimingFanOut { zero_bias: true };
/// `fc1`, `fc2`: `kaiming_normal_(mode="fan_out")`, `nn.Linear`'s bias.
const FAN_OUT: LinearInit = LinearInit::KaimingFanOut { zero_bias: false };
/// `classifier`: `normal_(std=0.001)`, bias 0.
const CLASSIFIER: LinearInit = LinearInit::Normal(0.001);

/// `backbone` (any [`TrainBackbone`]; moved to `device`, trainable) with
/// PNL's seeded classifier and projection branches on its pooled feature,
/// initialised as LUPerson-NL's `MoCoEncoder`.
pub fn encoder_with<M: TrainBackbone>(
    cfg: &PnlConfig,
    backbone: M,
    classes: usize,
    device: &Device,
) -> PnlNet<M> {
    let backbone = backbone.to_device(device).set_require_grad(true).train();
    let c = backbone.pooled_dim();
    PnlNet {
        backbone,
        // LUPerson-NL `PNL/libs/encoder.py` (`MoCoEncoder.__init__`).
        cls_embed: seeded_linear(c, cfg.cls_dim, cfg.seed, 10, FAN_OUT_ZERO_BIAS, device),
        cls_out: seeded_linear(cfg.cls_dim, classes, cfg.seed, 11, CLASSIFIER, device),
        fc1: seeded_linear(c, cfg.mlp_hidden_dim, cfg.seed, 12, FAN_OUT, device),
        fc2: seeded_linear(cfg.mlp_hidden_dim, cfg.dim, cfg.seed, 13, FAN_OUT, device),
        relu: Relu::new(),
        precision: Precision::F32,
    }
}

/// The result of [`pretrain_pnl`]: the query and key encoders (`query`,
/// `key`), the log, the completed steps and whether every epoch ran.
pub type PnlOutput<M = ResNet> = PairOutput<PnlNet<M>>;

/// PNL's own fields of `state.json`: the queue's bookkeeping (its keys are
/// `queue.bin`, the prototypes `prototypes.bin`) and the number of
/// tracklet labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PnlOwn {
    queue: QueueMeta,
    classes: usize,
}

/// The classifier's accuracy against the given (tracklet) labels, and how
/// many of the batch's labels the correction changed. `predicted` is the
/// arg-max `[N, 1]`, `corrected` the labels the losses used `[N]`.
fn label_agreement(
    given: &[i64],
    predicted: &Tensor<2, Int>,
    corrected: &Tensor<1, Int>,
) -> (f64, usize) {
    let p: Vec<i64> = predicted.to_data().iter::<i64>().collect();
    let c: Vec<i64> = corrected.to_data().iter::<i64>().collect();
    let hits = given.iter().zip(&p).filter(|(g, p)| g == p).count();
    let changed = given.iter().zip(&c).filter(|(g, c)| g != c).count();
    (hits as f64 / given.len().max(1) as f64, changed)
}

/// The loss terms of a PNL step, as the metrics log names them.
const PNL_LOSSES: [&str; 4] = ["loss", "loss_cls", "loss_inst", "loss_proto"];

/// A NaN or infinite PNL loss term (`values` in [`PNL_LOSSES`] order) or
/// learning rate is an error naming the step.
fn check_pnl(epoch: usize, step: usize, lr: f64, values: [f64; 4]) -> Result<(), TrainError> {
    let mut named: Vec<(&str, f64)> = PNL_LOSSES.iter().copied().zip(values).collect();
    named.push(("lr", lr));
    check_finite("pnl", epoch, step, &named)
}

/// PNL's networks, optimiser, key queue and prototypes, stepped on given
/// views: the composed training step of LUPerson-NL's `lup_pnl.py` `train`
/// and `PNL.forward` (`PNL/libs/pnl_builder.py`) without the data pipeline
/// — the epoch's learning rate, the query forward on the weak view, the
/// key-encoder momentum update, the shuffle-BN key forward on the strong
/// view, the instance, classification and prototype losses with the label
/// correction ([`pnl_step_losses`]), backward, SGD, then the enqueue of the
/// keys with the corrected labels and the prototype update. Optionally
/// data-parallel ([`PnlTrainer::with_data_parallel`]) and loss-scaled
/// ([`PnlTrainer::with_loss_scaler`]).
///
/// [`pretrain_pnl`] drives one over the sampler's batches; use it
/// directly to train on views of your own or to check a step against
/// upstream (`tests/integration/pnl_step_parity.rs`).
pub struct PnlTrainer<M: TrainBackbone = ResNet> {
    cfg: PnlConfig,
    /// The query encoder (trained by SGD).
    pub query: PnlNet<M>,
    /// The key encoder (momentum copy of the query, no gradients).
    pub key: PnlNet<M>,
    /// The key queue, each key with its (corrected) label.
    pub queue: InfoNceQueue,
    /// The class prototypes.
    pub bank: PrototypeBank,
    /// SGD, the device, the loss scaler of an `f16` run and the devices
    /// (two or more: each batch sharded over them).
    core: TrainerCore,
}

impl<M: TrainBackbone> PnlTrainer<M> {
    /// A trainer for `cfg` starting from `query` (used as given, on the
    /// autodiff `device`), the key `queue` and the prototype `bank`; the key
    /// encoder starts as the query's copy with parameter ids and BatchNorm
    /// statistics of its own (as upstream copies the parameters into a
    /// fresh encoder), the SGD state empty.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid `cfg`, or a queue or
    /// bank whose sizes are not the configuration's (`queue_size`, `dim`)
    /// and the classifier's (classes).
    pub fn new(
        cfg: &PnlConfig,
        query: PnlNet<M>,
        queue: InfoNceQueue,
        bank: PrototypeBank,
        device: &Device,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        contrast_shape!(cfg).check_queue(&queue)?;
        let classes = query.cls_out.weight.dims()[1];
        if bank.classes() != classes || bank.dim() != cfg.dim {
            return Err(TrainError::InvalidConfig(format!(
                "the prototype bank holds {} prototypes of dimension {}; the classifier has {} \
                 classes and the configuration dimension {}",
                bank.classes(),
                bank.dim(),
                classes,
                cfg.dim
            )));
        }
        // The key encoder: own parameter ids, the query's values, no gradients.
        let key = fresh_copy(&query).no_grad();
        Ok(Self {
            core: TrainerCore::new(sgd(cfg.momentum, cfg.weight_decay), device),
            cfg: cfg.clone(),
            query,
            key,
            queue,
            bank,
        })
    }

    /// The same trainer sharding each batch over `parallel`'s devices
    /// (`None`: one device); see the module documentation.
    pub fn with_data_parallel(mut self, parallel: Option<DataParallel>) -> Self {
        self.core.set_parallel(parallel);
        self
    }

    /// The same trainer with dynamic loss scaling (`f16` runs; `None`:
    /// none).
    pub fn with_loss_scaler(mut self, scaler: Option<LossScaler>) -> Self {
        self.core.scaler = scaler;
        self
    }

    /// The query and key encoders, consuming the trainer.
    pub fn into_networks(self) -> (PnlNet<M>, PnlNet<M>) {
        (self.query, self.key)
    }

    /// One training step (global step `step` of epoch `epoch`, 0-based) on
    /// the query encoder's `weak` views and the key encoder's `strong` views
    /// (`[batch, 3, h, w]` each, on the trainer's device) of images with the
    /// dataset's (noisy) `labels`. The learning rate is `cfg.lr_at(epoch)`;
    /// which losses run and whether labels are corrected follow the
    /// configuration's start epochs. Returns the step's log line: `loss`,
    /// `loss_cls`, `loss_inst`, `loss_proto`, `lr`, `cls_acc` (classifier
    /// against the given labels) and `corrected` (labels the correction
    /// changed).
    ///
    /// # Errors
    /// [`TrainError`] for views of other batch sizes than `labels`, labels
    /// out of range, or a non-finite loss.
    pub fn step(
        &mut self,
        epoch: usize,
        step: usize,
        weak: Tensor<4>,
        strong: Tensor<4>,
        labels: &[i64],
    ) -> Result<LogLine, TrainError> {
        let n = labels.len();
        for (name, view) in [("weak", &weak), ("strong", &strong)] {
            let d = view.dims();
            if d[0] != n || d[1] != 3 || n == 0 {
                return Err(TrainError::InvalidConfig(format!(
                    "the {name} views have shape {d:?}; a PNL step needs [{n}, 3, h, w] for its \
                     {n} labels"
                )));
            }
        }
        let classes = self.query.cls_out.weight.dims()[1];
        if let Some(y) = labels.iter().find(|&&y| y < 0 || y as usize >= classes) {
            return Err(TrainError::InvalidConfig(format!(
                "label {y} is outside the classifier's {classes} classes"
            )));
        }
        let cfg = &self.cfg;
        let lr = cfg.lr_at(epoch);
        let given = labels.to_vec();
        let drop_seed = augment_seed(cfg.seed, step, usize::MAX - 5);
        let loss_cfg = cfg.loss_config();
        let loss_scale = self.core.scale();
        let dp = &self.core.parallel;
        // Keys as on one device (shuffle-BN's groups spread over the
        // devices); each device then its rows' query forward and
        // losses against its copies of the queue and the bank, both
        // as they were before this step. The corrected labels and
        // queries come back in batch order for the enqueue and the
        // (order-dependent) prototype update.
        let pair = (&mut self.key, &self.query);
        let k = contrast_shape!(cfg)
            .momentum_keys(dp, pair, step, strong, |key, x| key.project(key.embed(x)))?;
        let copies: Vec<(InfoNceQueue, PrototypeBank)> = dp
            .devices()
            .iter()
            .map(|d| (self.queue.to_device(d), self.bank.to_device(d)))
            .collect();
        let (multi, outs) = query_shards(
            dp,
            &self.query,
            (&weak, &k),
            loss_scale,
            |query, i, r, x, k| {
                let d = x.device();
                let (z, q) = query.forward_seeded(x, drop_seed);
                let predicted = z.clone().detach().argmax(1);
                let y = Tensor::<1, Int>::from_data(
                    TensorData::new(labels[r.clone()].to_vec(), [r.len()]),
                    &d,
                );
                let (queue, bank) = &copies[i];
                let l = pnl_step_losses(epoch, z, q.clone(), k, queue, y, bank, &loss_cfg)?;
                let parts = [
                    scalar(&l.classification)?,
                    scalar(&l.instance)?,
                    scalar(&l.prototype)?,
                ];
                Ok((l.total, (parts, q.detach(), l.corrected_labels, predicted)))
            },
        )?;
        let mut values = [weighted_loss(&outs), 0.0, 0.0, 0.0];
        let (mut qs, mut ys, mut ps) = (Vec::new(), Vec::new(), Vec::new());
        let main = &self.core.device;
        for o in outs {
            let w = o.rows as f64 / n as f64;
            let (parts, q, y, p) = o.extra;
            for (v, p) in values[1..].iter_mut().zip(parts) {
                *v += p * w;
            }
            qs.push(q.to_device(main));
            ys.push(y.to_device(main));
            ps.push(p.to_device(main));
        }
        check_pnl(epoch, step, lr, values)?;
        let (q, corrected, predicted) =
            (Tensor::cat(qs, 0), Tensor::cat(ys, 0), Tensor::cat(ps, 0));
        // A step with overflowing f16 gradients leaves the query as it is.
        self.core.update(&mut self.query, multi, lr)?;
        let (accuracy, relabelled) = label_agreement(&given, &predicted, &corrected);
        self.queue.enqueue(k, Some(corrected.clone()))?;
        self.bank.update(q, corrected)?;
        let line = PNL_LOSSES
            .iter()
            .zip(values)
            .fold(LogLine::new(step, epoch), |l, (k, v)| l.with(k, v))
            .with("lr", lr)
            .with("cls_acc", accuracy)
            .with("corrected", relabelled as f64);
        Ok(self.core.log(line, loss_scale))
    }
}

impl<M: TrainBackbone> PairTrainer for PnlTrainer<M> {
    type Net = PnlNet<M>;
    type Config = PnlConfig;
    type Own = PnlOwn;
    type Data = ShuffledEpochs;

    pair_accessors!(PnlNet<M>, query, key);

    fn run_batch(&mut self, _: &ShuffledEpochs, batch: Batch<'_>) -> Result<LogLine, TrainError> {
        let labels: Vec<i64> = batch.indices.iter().map(|&j| batch.set.labels[j]).collect();
        // The weak view for the query encoder, the strong one for the key's.
        let views = self.cfg.views();
        let [weak, strong] =
            contrast_shape!(self.cfg).two_views(&batch, &self.core.device, views)?;
        self.step(batch.epoch, batch.step, weak, strong, &labels)
    }

    fn own(&self, set: &TrainSet) -> Result<(PnlOwn, Vec<Part>), TrainError> {
        let (queue, keys) = QueueMeta::of(&self.queue);
        let protos = f32s_to_bytes(&self.bank.state().prototypes);
        let own = PnlOwn {
            queue,
            classes: set.num_classes,
        };
        Ok((own, vec![("queue.bin", keys), ("prototypes.bin", protos)]))
    }

    fn check(&self, own: &PnlOwn, set: &TrainSet, ckpt: &Checkpoint) -> Result<(), TrainError> {
        if own.classes == set.num_classes {
            return Ok(());
        }
        Err(TrainError::Checkpoint(format!(
            "{} was written for a training set of {} tracklet labels, this run has {}: \
             resume with the same data, or start a fresh run in another folder",
            ckpt.path.display(),
            own.classes,
            set.num_classes
        )))
    }

    fn restore(&mut self, own: PnlOwn, ckpt: &Checkpoint) -> Result<(), TrainError> {
        let device = &self.core.device;
        self.queue = own.queue.restore(&ckpt.read("queue.bin")?, device)?;
        let prototypes = bytes_to_f32s(&ckpt.read("prototypes.bin")?, "prototypes.bin")?;
        let bank = PrototypeState {
            classes: own.classes,
            dim: self.cfg.dim,
            momentum: self.cfg.proto_momentum,
            prototypes,
        };
        self.bank = PrototypeBank::from_state(&bank, device)?;
        Ok(())
    }
}

/// Runs PNL pre-training on `records` (pids = noisy tracklet labels) on the
/// autodiff version of `device`; `run` sets checkpoints, resume, the
/// metrics log and an early stop. Deterministic given `cfg.seed` on the
/// flex backend; a resumed run computes the same losses as an
/// uninterrupted one.
///
/// `backbone` is [`FromConfig`](crate::FromConfig) (the ResNet `cfg.arch` with `base_width` and
/// `last_stride`, weights from [`init_backbone`]) or any [`TrainBackbone`]
/// (a zoo model, imported weights, a user's module; `cfg.arch`,
/// `base_width` and `last_stride` are then ignored); the head is drawn fresh
/// from `cfg.seed` on the backbone's pooled feature. Resuming needs the same
/// backbone structure.
pub fn pretrain_pnl<S, F>(
    cfg: &PnlConfig,
    backbone: S,
    records: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<PnlOutput<S::Model>, TrainError>
where
    S: BackboneSource<PnlConfig>,
    F: FnMut(PretrainEvent<'_>),
{
    cfg.validate()?;
    let (backbone, train) = start(cfg, backbone, records, device, run)?;
    let classes = train.set.num_classes;
    let shape = contrast_shape!(cfg);
    let epochs = shape.epochs(train.set.len())?;
    run.precision.check(device)?;
    let ad = device.clone().autodiff();
    let mut query = encoder_with(cfg, backbone, classes, &ad);
    query.precision = run.precision;
    let bank = PrototypeBank::new(classes, cfg.dim, &ad)?.with_momentum(cfg.proto_momentum)?;
    let mut trainer = PnlTrainer::new(cfg, query, shape.queue(&ad)?, bank, &ad)?;
    trainer.core.for_run(run, device)?;
    let total = epochs.per_epoch * cfg.epochs;
    run_pair(trainer, epochs, train, run, (cfg.epochs, total), callback)
}

impl BackboneConfig for PnlConfig {
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError> {
        init_backbone(self, device)
    }
}
