//! LUPerson's MoCo v2 pre-training (Fu et al., "Unsupervised Pre-training
//! for Person Re-identification", CVPR 2021), as `lup_moco.py` runs it.
//!
//! - model: a ResNet (standard last stride 2, no IBN; any
//!   [`TrainBackbone`] given to [`pretrain_moco`]) with a 2-layer MLP
//!   projection (2048-2048-128, ReLU), L2-normalised output ([`MocoNet`]);
//!   the key encoder is a momentum copy (`m` 0.999, parameters only,
//!   updated **before** the keys are computed), run with shuffle-BN
//!   (`groups` batches of one device emulate the GPUs; see below for
//!   several devices);
//! - data: two independent draws of the LUPerson view (`ori-cj+sre`,
//!   [`ViewPipeline::lup`]) per image, shuffled `drop_last` epochs;
//! - loss: InfoNCE against a queue of 65,536 keys (`T` 0.1 for LUPerson);
//! - optimiser: SGD (momentum 0.9, weight decay 1e-4 on every parameter),
//!   learning rate 0.3 for the whole batch (no linear scaling), cosine per
//!   epoch `lr·½(1 + cos(π·e/E))`, no warm-up.
//!
//! Data parallel with [`RunOptions::devices`]: shuffle-BN's groups of the key
//! encoder are spread over the devices
//! ([`DataParallel::shuffled_forward`]; the keys are the single-device
//! ones) and each device runs the query encoder and InfoNCE on its share of
//! the batch, so the query's BatchNorm sees one shard as on upstream's GPUs.
//!
//! Mixed precision through [`RunOptions::precision`] (`bf16`, or `f16` with
//! dynamic loss scaling, [`crate::precision`]).

use burn::module::{Module, Param};
use burn::nn::{Linear, Relu};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use derive_setters::Setters;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_backbones::{Precision, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::views::ViewPipeline;
use reid_losses::moco::{InfoNceQueue, info_nce, instance_accuracy, momentum_update};
use serde::{Deserialize, Serialize};

use super::{QueueMeta, fresh_copy, l2_normalize, queue_from_parts, queue_to_parts};
use crate::engine::checkpoint::{Checkpoint, CheckpointDir, module_from_bytes, optim_from_bytes};
use crate::engine::drive::{Position, Recipe, Tracker, drive};
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::LogLine;
use crate::engine::optim::sgd;
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, data_parallel, weighted_loss};
use crate::engine::precision::{LossScaler, log_scaler, step_scale, unscale};
use crate::engine::resume::{
    DataFingerprint, nothing_to_resume, resume_point, same_config, same_data, save_parts,
    state_json,
};
use crate::engine::seed::{ShuffledEpochs, augment_seed};
use crate::engine::source::{BackboneConfig, BackboneSource};
use crate::engine::step::check_finite;
use crate::error::TrainError;
use crate::init::{seeded_resnet, standard_normal};
use crate::input::TrainSet;
use crate::input::views::load_view_batch;

/// Every hyper-parameter of LUPerson MoCo v2; defaults are `run_moco.sh`'s.
/// Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(default, deny_unknown_fields)]
pub struct MocoConfig {
    /// Backbone name (`resnet50`).
    pub arch: String,
    /// Channels of the backbone's stem (64).
    pub base_width: usize,
    /// Stride of the last stage (2: torchvision's ResNet50 as is).
    pub last_stride: usize,
    /// Crop `[height, width]` in pixels (256 × 128).
    pub size: [u32; 2],
    /// Images per batch (2,560 over 8 GPUs upstream).
    pub batch_size: usize,
    /// Shuffle-BN groups: the GPUs the batch is split over (8).
    pub bn_groups: usize,
    /// Epochs (200).
    pub epochs: usize,
    /// Cap on the steps of each epoch; `None` = `len / batch`.
    pub max_steps_per_epoch: Option<usize>,
    /// Learning rate for the whole batch (0.3; not scaled with the batch).
    pub lr: f64,
    /// Cosine decay per epoch (true) or a constant rate.
    pub cosine: bool,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// Weight decay, coupled, on every parameter (1e-4).
    pub weight_decay: f64,
    /// Projection hidden size (2048 = the trunk's channels for ResNet50).
    pub mlp_hidden_dim: usize,
    /// Projection output size (128).
    pub dim: usize,
    /// Queue length `K` (65,536).
    pub queue_size: usize,
    /// Key-encoder momentum (0.999).
    pub key_momentum: f64,
    /// InfoNCE temperature (0.1 for LUPerson; 0.07 in the LUPerson-NL baseline).
    pub temperature: f64,
    /// Seed of the weights, the sampler, the views and the queue (0).
    pub seed: u64,
}

impl Default for MocoConfig {
    fn default() -> Self {
        Self {
            arch: "resnet50".into(),
            base_width: 64,
            last_stride: 2,
            size: [256, 128],
            batch_size: 2560,
            bn_groups: 8,
            epochs: 200,
            max_steps_per_epoch: None,
            lr: 0.3,
            cosine: true,
            momentum: 0.9,
            weight_decay: 1e-4,
            mlp_hidden_dim: 2048,
            dim: 128,
            queue_size: 65536,
            key_momentum: 0.999,
            temperature: 0.1,
            seed: 0,
        }
    }
}

impl MocoConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        contrast_shape!(self).validate()?;
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!(
                "temperature must be positive, got {}",
                self.temperature
            ));
        }
        Ok(())
    }

    /// The view of this configuration (LUPerson's, resized).
    pub fn view(&self) -> ViewPipeline {
        let mut v = ViewPipeline::lup();
        v.crop.height = self.size[0];
        v.crop.width = self.size[1];
        v
    }

    /// Learning rate of `epoch`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        if self.cosine {
            self.lr * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / self.epochs as f64).cos())
        } else {
            self.lr
        }
    }
}

/// Backbone + MLP projection: MoCo's query or key encoder.
///
/// The backbone is any [`TrainBackbone`] (default a [`ResNet`]); its pooled
/// feature ([`reid_backbones::Backbone::forward_pooled`]) feeds the MLP.
#[derive(Module, Debug)]
pub struct MocoNet<M: TrainBackbone = ResNet> {
    /// The backbone; its pooled feature feeds the projection.
    pub backbone: M,
    /// First projection layer (`[C, hidden]`).
    pub fc1: Linear,
    /// Second projection layer (`[hidden, dim]`).
    pub fc2: Linear,
    relu: Relu,
    /// The float type the backbone computes in ([`Precision`]; the
    /// heads and the losses stay in `f32`). Not saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl<M: TrainBackbone> MocoNet<M> {
    /// The backbone's pooled feature: `[batch, 3, H, W]` → `[batch,
    /// backbone.pooled_dim()]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.precision
            .run(&self.backbone, images, |b, x| b.forward_pooled(x))
    }

    /// The L2-normalised projection `[batch, dim]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.project(self.embed(images))
    }

    /// [`MocoNet::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`
    /// ([`reid_backbones::Backbone::forward_pooled_seeded`]).
    pub fn forward_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        self.project(self.precision.run(&self.backbone, images, |b, x| {
            b.forward_pooled_seeded(x, seed)
        }))
    }

    /// The L2-normalised projection of a pooled feature `[batch, C]`.
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        let p = self.fc2.forward(self.relu.forward(self.fc1.forward(h)));
        l2_normalize(p)
    }
}

/// Builds the query encoder for `cfg` with seeded weights.
pub fn init_encoder(cfg: &MocoConfig, device: &Device) -> Result<MocoNet, TrainError> {
    Ok(encoder_with(cfg, init_backbone(cfg, device)?, device))
}

/// The ResNet `cfg.arch` (`base_width`, `last_stride`) with weights drawn
/// from `cfg.seed` ([`seeded_resnet`]).
pub fn init_backbone(cfg: &MocoConfig, device: &Device) -> Result<ResNet, TrainError> {
    seeded_resnet(&cfg.arch, cfg.base_width, cfg.last_stride, cfg.seed, device)
}

/// `backbone` (any [`TrainBackbone`]; moved to `device`, trainable) with
/// the seeded 2-layer projection on its pooled feature.
pub fn encoder_with<M: TrainBackbone>(
    cfg: &MocoConfig,
    backbone: M,
    device: &Device,
) -> MocoNet<M> {
    let backbone = backbone.to_device(device).set_require_grad(true).train();
    let c = backbone.pooled_dim();
    MocoNet {
        backbone,
        fc1: seeded_linear(
            c,
            cfg.mlp_hidden_dim,
            cfg.seed,
            0,
            LinearInit::Torch,
            device,
        ),
        fc2: seeded_linear(
            cfg.mlp_hidden_dim,
            cfg.dim,
            cfg.seed,
            1,
            LinearInit::Torch,
            device,
        ),
        relu: Relu::new(),
        precision: Precision::F32,
    }
}

/// How [`seeded_linear`] draws a layer (PyTorch layout `[out, in]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LinearInit {
    /// `nn.Linear`'s default: weight and bias `U(±1/√in)` (MoCo's MLP).
    Torch,
    /// `kaiming_normal_(mode="fan_out")`: weight `N(0, 2/out)`; the bias
    /// keeps `nn.Linear`'s `U(±1/√in)` or, with `zero_bias`, is 0
    /// (LUPerson-NL's `MoCoEncoder`: `fc1`, `fc2` keep the default bias,
    /// `embed_fc` gets 0).
    KaimingFanOut {
        /// Bias 0 instead of the default.
        zero_bias: bool,
    },
    /// Weight `N(0, std²)`, bias 0 (LUPerson-NL's classifier, std 0.001).
    Normal(f64),
}

/// `Linear(d_in, d_out)` drawn as `init` from a ChaCha8 stream of `(seed,
/// index)` (deterministic whatever other threads do).
pub(crate) fn seeded_linear(
    d_in: usize,
    d_out: usize,
    seed: u64,
    index: usize,
    init: LinearInit,
    device: &Device,
) -> Linear {
    let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(seed, usize::MAX - 4, index));
    let bound = 1.0 / (d_in as f64).sqrt();
    let uniform = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..n)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect()
    };
    let normal = |n: usize, std: f64, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..n)
            .map(|_| (standard_normal(rng) * std) as f32)
            .collect()
    };
    let (w, b) = match init {
        LinearInit::Torch => {
            let w = uniform(d_in * d_out, &mut rng);
            (w, uniform(d_out, &mut rng))
        }
        LinearInit::KaimingFanOut { zero_bias } => {
            let w = normal(d_in * d_out, (2.0 / d_out as f64).sqrt(), &mut rng);
            let b = if zero_bias {
                vec![0.0; d_out]
            } else {
                uniform(d_out, &mut rng)
            };
            (w, b)
        }
        LinearInit::Normal(std) => (normal(d_in * d_out, std, &mut rng), vec![0.0; d_out]),
    };
    Linear {
        // Drawn in burn's `[in, out]` layout; the distributions are
        // element-wise, so the layout does not change them.
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        ))),
    }
}

/// The result of [`pretrain_moco`].
#[derive(Debug)]
pub struct MocoOutput<M: TrainBackbone = ResNet> {
    /// The query encoder after the last step (autodiff device).
    pub query: MocoNet<M>,
    /// The key encoder.
    pub key: MocoNet<M>,
    /// One log line per step run in this call.
    pub log: Vec<LogLine>,
    /// Completed steps (including those before a resume).
    pub steps_done: usize,
    /// Whether every epoch ran.
    pub finished: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MocoState {
    position: Position,
    queue: QueueMeta,
    config: MocoConfig,
    /// The training set the run was started on (absent in checkpoints
    /// written before fingerprints).
    #[serde(default)]
    data: Option<DataFingerprint>,
    /// The loss scaler of an `f16` run.
    #[serde(default)]
    scaler: Option<LossScaler>,
}

/// One MoCo v2 training step, composed as `lup_moco.py` + `moco_builder.py`
/// run it, without the data pipeline: the key encoder's momentum update,
/// the query forward, the shuffle-BN key forward, InfoNCE against the
/// queue, SGD (coupled weight decay) and the enqueue of the keys.
///
/// [`pretrain_moco`] drives it over a dataset; a caller with its own
/// batches (or a parity test against upstream) calls [`MocoTrainer::step`].
pub struct MocoTrainer<M: TrainBackbone = ResNet> {
    cfg: MocoConfig,
    /// The query encoder (trained by SGD).
    pub query: MocoNet<M>,
    /// The key encoder (momentum copy of the query's parameters, no
    /// gradients; its BatchNorm statistics are its own).
    pub key: MocoNet<M>,
    optim: ModuleOptimizer,
    /// The queue of negative keys (`[K, dim]`).
    pub queue: InfoNceQueue,
    device: Device,
    /// Dynamic loss scaling of an `f16` run.
    scaler: Option<LossScaler>,
    /// The devices each batch is sharded over (one: the trainer's device).
    parallel: DataParallel,
}

impl<M: TrainBackbone> MocoTrainer<M> {
    /// A trainer for `cfg`: `query` is used as given (its weights, on the
    /// autodiff `device`), the key encoder starts as its copy with
    /// parameter ids of its own, and `queue` holds the initial negatives
    /// (e.g. [`InfoNceQueue::new`] from `cfg.seed`, or upstream's).
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid `cfg` or a queue whose
    /// size or key dimension is not `cfg.queue_size` × `cfg.dim`.
    pub fn new(
        cfg: &MocoConfig,
        query: MocoNet<M>,
        queue: InfoNceQueue,
        device: &Device,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        if queue.size() != cfg.queue_size || queue.dim() != cfg.dim {
            return Err(TrainError::InvalidConfig(format!(
                "the queue holds {} keys of dimension {}; the configuration asks for \
                 queue_size {} and dim {}",
                queue.size(),
                queue.dim(),
                cfg.queue_size,
                cfg.dim
            )));
        }
        let mut key = fresh_copy(&query).no_grad();
        key.precision = query.precision;
        Ok(Self {
            cfg: cfg.clone(),
            query,
            key,
            optim: sgd(cfg.momentum, cfg.weight_decay),
            queue,
            device: device.clone(),
            scaler: None,
            parallel: DataParallel::single(device),
        })
    }

    /// The same trainer sharding each batch over `parallel`'s devices
    /// (the first must be the trainer's; `None`: the trainer's device
    /// alone). The keys are computed as on one device (shuffle-BN's groups
    /// spread over the devices); each device runs the query forward and
    /// InfoNCE of its rows against its copy of the queue.
    pub fn with_data_parallel(mut self, parallel: Option<DataParallel>) -> Self {
        self.parallel = parallel.unwrap_or_else(|| DataParallel::single(&self.device));
        self
    }

    /// One training step (global step `step` of epoch `epoch`, 0-based):
    /// `q_images` (`[batch, 3, h, w]`) through the query encoder,
    /// `k_images` (the other view of the same images, same shape) through
    /// the key encoder with shuffle-BN over `cfg.bn_groups` groups. Returns
    /// the step's log line (`loss`, `lr`, and `acc1`, `acc5` as fractions
    /// of the batch).
    ///
    /// # Errors
    /// [`TrainError`] for views of different shapes or a non-finite loss.
    pub fn step(
        &mut self,
        epoch: usize,
        step: usize,
        q_images: Tensor<4>,
        k_images: Tensor<4>,
    ) -> Result<LogLine, TrainError> {
        if q_images.dims() != k_images.dims() || q_images.dims()[1] != 3 {
            return Err(TrainError::InvalidConfig(format!(
                "a MoCo step needs two views of shape [batch, 3, h, w], got {:?} and {:?}",
                q_images.dims(),
                k_images.dims()
            )));
        }
        let cfg = &self.cfg;
        let lr = cfg.lr_at(epoch);
        let n = q_images.dims()[0];
        // The key encoder moves first, then computes the keys (the query is
        // not touched by the update, so its forward may come before or after).
        momentum_update(&mut self.key, &self.query, cfg.key_momentum)?;
        let drop_seed = augment_seed(cfg.seed, step, usize::MAX - 5);
        let shuffle_seed = augment_seed(cfg.seed, step, usize::MAX - 3);
        let loss_scale = step_scale(&self.scaler);
        let dp = &self.parallel;
        let k = dp
            .shuffled_forward(
                &self.key,
                k_images,
                cfg.bn_groups,
                shuffle_seed,
                |key, x| key.forward(x),
            )?
            .detach();
        let shards = dp.shards(n, 1)?;
        let queues: Vec<Tensor<2>> = dp
            .devices()
            .iter()
            .map(|d| self.queue.keys().to_device(d))
            .collect();
        let (multi, outs) = dp.grads_scaled(&self.query, &shards, loss_scale, |query, i, d| {
            let r = shards[i].clone();
            let x = q_images.clone().narrow(0, r.start, r.len()).to_device(d);
            let q = query.forward_seeded(x, drop_seed);
            let q_rows = q.clone().detach();
            let k = k.clone().narrow(0, r.start, r.len()).to_device(d);
            Ok((info_nce(q, k, queues[i].clone(), cfg.temperature)?, q_rows))
        })?;
        let loss_v = weighted_loss(&outs);
        check_finite("moco", epoch, step, &[("loss", loss_v), ("lr", lr)])?;
        let q_rows = Tensor::cat(
            outs.into_iter()
                .map(|o| o.extra.to_device(&self.device))
                .collect(),
            0,
        );
        let grads = dp.reduce(&self.query, multi);
        // A step with overflowing f16 gradients leaves the query as it is.
        if let Some(grads) = unscale(&mut self.scaler, &self.query, grads)? {
            self.query = self.optim.step(lr, self.query.clone(), grads);
        }
        // Accuracy against the queue the step used (before the enqueue).
        let acc = instance_accuracy(q_rows, k.clone(), self.queue.keys(), &[1, 5])?;
        self.queue.enqueue(k, None)?;
        let line = LogLine::new(step, epoch)
            .with("loss", loss_v)
            .with("lr", lr)
            .with("acc1", acc[0])
            .with("acc5", acc[1]);
        Ok(log_scaler(line, &self.scaler, loss_scale))
    }

    /// The query and the key encoder, consuming the trainer.
    pub fn into_networks(self) -> (MocoNet<M>, MocoNet<M>) {
        (self.query, self.key)
    }
}

/// A MoCo run's state for the shared loop.
struct MocoRun<'a, M: TrainBackbone> {
    cfg: &'a MocoConfig,
    set: TrainSet,
    epochs: ShuffledEpochs,
    trainer: MocoTrainer<M>,
    checkpoints: Option<CheckpointDir>,
    /// The training set's fingerprint, kept in every checkpoint.
    data: DataFingerprint,
}

impl<M: TrainBackbone> Recipe for MocoRun<'_, M> {
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        self.epochs.epoch(epoch)
    }

    fn step(
        &mut self,
        epoch: usize,
        step: usize,
        indices: &[usize],
    ) -> Result<LogLine, TrainError> {
        let cfg = self.cfg;
        let size = (cfg.size[0], cfg.size[1]);
        let view = cfg.view();
        let f = |img: &image::RgbImage, rng: &mut ChaCha8Rng| {
            let a = view.apply(img, rng)?;
            let b = view.apply(img, rng)?;
            Ok(vec![a, b])
        };
        let t = &mut self.trainer;
        let mut vs = load_view_batch(
            &self.set,
            indices,
            &[size, size],
            &f,
            cfg.seed,
            step,
            &t.device,
        )?;
        let (Some(k_images), Some(q_images)) = (vs.pop(), vs.pop()) else {
            return Err(TrainError::InvalidConfig(
                "MoCo views: two per image".into(),
            ));
        };
        t.step(epoch, step, q_images, k_images)
    }

    fn save(&self, pos: Position) -> Result<Option<Checkpoint>, TrainError> {
        if self.checkpoints.is_none() {
            return Ok(None);
        }
        let t = &self.trainer;
        let (meta, keys) = queue_to_parts(&t.queue);
        let state = state_json(&MocoState {
            position: pos,
            queue: meta,
            config: self.cfg.clone(),
            data: Some(self.data.clone()),
            scaler: t.scaler.clone(),
        })?;
        save_parts(
            &self.checkpoints,
            pos,
            [("query.bpk", &t.query), ("key.bpk", &t.key)],
            &t.optim,
            &[("queue.bin", &keys), ("state.json", &state)],
        )
    }
}

impl BackboneConfig for MocoConfig {
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError> {
        init_backbone(self, device)
    }
}

/// Runs MoCo v2 pre-training on `records` (labels unused) on the autodiff
/// version of `device`; `run` sets checkpoints, resume, the metrics log and
/// an early stop. Deterministic given `cfg.seed` on the flex backend; a
/// resumed run computes the same losses as an uninterrupted one.
///
/// `backbone` is [`FromConfig`](crate::FromConfig) (the ResNet `cfg.arch` with `base_width` and
/// `last_stride`, weights from [`init_backbone`]) or any [`TrainBackbone`]
/// (a zoo model, imported weights, a user's module; `cfg.arch`,
/// `base_width` and `last_stride` are then ignored); the head is drawn fresh
/// from `cfg.seed` on the backbone's pooled feature. Resuming needs the same
/// backbone structure.
pub fn pretrain_moco<S, F>(
    cfg: &MocoConfig,
    backbone: S,
    records: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    mut callback: F,
) -> Result<MocoOutput<S::Model>, TrainError>
where
    S: BackboneSource<MocoConfig>,
    F: FnMut(PretrainEvent<'_>),
{
    cfg.validate()?;
    let backbone = backbone.into_backbone(cfg, device)?.model;
    let ad = device.clone().autodiff();
    let set = TrainSet::with_source(records, run.image_source.clone())?;
    let epochs = ShuffledEpochs::new(
        records.len(),
        cfg.batch_size,
        cfg.max_steps_per_epoch,
        cfg.seed,
    )?;
    run.precision.check(device)?;
    let mut query = encoder_with(cfg, backbone, &ad);
    query.precision = run.precision;
    let queue = InfoNceQueue::new(cfg.queue_size, cfg.dim, cfg.seed, &ad)?;
    let mut trainer = MocoTrainer::new(cfg, query, queue, &ad)?
        .with_data_parallel(Some(data_parallel(run, device)?));
    trainer.scaler = LossScaler::for_run(run);
    let mut r = MocoRun {
        cfg,
        set,
        epochs,
        trainer,
        checkpoints: run.checkpoints(),
        data: DataFingerprint::of(records),
    };
    let resumed = resume_point(run)?;
    if let Some(dir) = nothing_to_resume(run)? {
        callback(PretrainEvent::Fresh { dir });
    }
    let mut pos = Position::default();
    if let Some(ckpt) = &resumed {
        let state: MocoState = ckpt.read_json("state.json")?;
        same_data(ckpt, state.data.as_ref(), &r.data)?;
        same_config(ckpt, &state.config, cfg)?;
        let part = |name: &str| ckpt.path.join(name).display().to_string();
        let t = &mut r.trainer;
        t.query = module_from_bytes(t.query.clone(), ckpt.read("query.bpk")?, &part("query.bpk"))?;
        t.key =
            module_from_bytes(t.key.clone(), ckpt.read("key.bpk")?, &part("key.bpk"))?.no_grad();
        let optim = std::mem::replace(&mut t.optim, sgd(cfg.momentum, cfg.weight_decay));
        t.optim = optim_from_bytes(optim, ckpt.read("optim.bpk")?, &part("optim.bpk"))?;
        t.queue = queue_from_parts(state.queue, &ckpt.read("queue.bin")?, &ad)?;
        if t.scaler.is_some() && state.scaler.is_some() {
            t.scaler = state.scaler;
        }
        pos = state.position;
        callback(PretrainEvent::Resumed {
            step: pos.step,
            path: &ckpt.path,
        });
    }
    let mut tracker = Tracker::new(run, resumed.as_ref(), epochs.per_epoch * cfg.epochs)?;
    let (steps_done, finished) = drive(&mut r, run, pos, cfg.epochs, &mut tracker, &mut callback)?;
    let (query, key) = r.trainer.into_networks();
    Ok(MocoOutput {
        query,
        // Trainable again, so it can be fine-tuned (`no_grad` persists
        // through `Module::train`).
        key: key.set_require_grad(true),
        log: tracker.log,
        steps_done,
        finished,
    })
}
