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
use burn::tensor::{Device, Tensor, TensorData};
use derive_setters::Setters;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_backbones::{Precision, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::views::TwoCrops;
use reid_data::views::ViewPipeline;
use reid_losses::moco::{InfoNceQueue, info_nce, instance_accuracy};
use serde::{Deserialize, Serialize};

use super::contrast::{QueueMeta, query_shards};
use super::pair::{Batch, PairOutput, PairTrainer, Part, TrainerCore, run_pair, start};
use super::{fresh_copy, pooled, project};
use crate::engine::checkpoint::Checkpoint;
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::LogLine;
use crate::engine::optim::sgd;
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, weighted_loss};
use crate::engine::seed::{ShuffledEpochs, augment_seed};
use crate::engine::source::{BackboneConfig, BackboneSource};
use crate::engine::step::check_finite;
use crate::error::TrainError;
use crate::init::{seeded_resnet, standard_normal};
use crate::input::TrainSet;

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
    /// Probability that a view is turned to grayscale (0.2: LUPerson's
    /// `RandomGrayscale(p=0.2)`). 0 keeps every view's colours, which the
    /// study's small recipe uses (docs/pretraining.md, "Why MoCo ends below
    /// scratch").
    pub grayscale_p: f64,
    /// Probability that a view is blurred (0.5: LUPerson's Gaussian blur,
    /// σ ~ U(0.1, 2) pixels). 0 turns the blur off.
    pub blur_p: f64,
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
            grayscale_p: 0.2,
            blur_p: 0.5,
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
        for (name, p) in [("grayscale_p", self.grayscale_p), ("blur_p", self.blur_p)] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        Ok(())
    }

    /// The view of this configuration (LUPerson's, resized, with
    /// [`grayscale_p`](Self::grayscale_p) and [`blur_p`](Self::blur_p)).
    pub fn view(&self) -> ViewPipeline {
        let mut v = ViewPipeline::lup();
        v.crop.height = self.size[0];
        v.crop.width = self.size[1];
        v.grayscale_p = self.grayscale_p;
        if let Some(blur) = v.blur.as_mut() {
            blur.p = self.blur_p;
        }
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
        pooled(&self.backbone, self.precision, images, None)
    }

    /// The L2-normalised projection `[batch, dim]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.project(self.embed(images))
    }

    /// [`MocoNet::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`
    /// ([`reid_backbones::Backbone::forward_pooled_seeded`]).
    pub fn forward_seeded(&self, images: Tensor<4>, seed: u64) -> Tensor<2> {
        self.project(pooled(&self.backbone, self.precision, images, Some(seed)))
    }

    /// The L2-normalised projection of a pooled feature `[batch, C]`.
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        project(&self.fc1, &self.relu, &self.fc2, h)
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

/// The result of [`pretrain_moco`]: the query and key encoders (`query`,
/// `key`), the log, the completed steps and whether every epoch ran.
pub type MocoOutput<M = ResNet> = PairOutput<MocoNet<M>>;

/// MoCo's own fields of `state.json`: the queue's bookkeeping (its keys
/// are `queue.bin`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MocoOwn {
    queue: QueueMeta,
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
    /// The queue of negative keys (`[K, dim]`).
    pub queue: InfoNceQueue,
    /// SGD, the device, the loss scaler of an `f16` run and the devices
    /// each batch is sharded over (one: the trainer's device).
    core: TrainerCore,
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
        contrast_shape!(cfg).check_queue(&queue)?;
        let mut key = fresh_copy(&query).no_grad();
        key.precision = query.precision;
        let core = TrainerCore::new(sgd(cfg.momentum, cfg.weight_decay), device);
        Ok(Self {
            cfg: cfg.clone(),
            query,
            key,
            queue,
            core,
        })
    }

    /// The same trainer sharding each batch over `parallel`'s devices
    /// (the first must be the trainer's; `None`: the trainer's device
    /// alone). The keys are computed as on one device (shuffle-BN's groups
    /// spread over the devices); each device runs the query forward and
    /// InfoNCE of its rows against its copy of the queue.
    pub fn with_data_parallel(mut self, parallel: Option<DataParallel>) -> Self {
        self.core.set_parallel(parallel);
        self
    }

    /// The query and the key encoder, consuming the trainer.
    pub fn into_networks(self) -> (MocoNet<M>, MocoNet<M>) {
        (self.query, self.key)
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
        let drop_seed = augment_seed(cfg.seed, step, usize::MAX - 5);
        let loss_scale = self.core.scale();
        let dp = &self.core.parallel;
        // The key encoder moves first, then computes the keys (the query is
        // not touched by the update, so its forward may come before or after).
        let pair = (&mut self.key, &self.query);
        let k = contrast_shape!(cfg)
            .momentum_keys(dp, pair, step, k_images, |key, x| key.forward(x))?;
        let queues: Vec<Tensor<2>> = dp
            .devices()
            .iter()
            .map(|d| self.queue.keys().to_device(d))
            .collect();
        let (multi, outs) = query_shards(
            dp,
            &self.query,
            (&q_images, &k),
            loss_scale,
            |query, i, _, x, k| {
                let q = query.forward_seeded(x, drop_seed);
                let q_rows = q.clone().detach();
                Ok((info_nce(q, k, queues[i].clone(), cfg.temperature)?, q_rows))
            },
        )?;
        let loss_v = weighted_loss(&outs);
        check_finite("moco", epoch, step, &[("loss", loss_v), ("lr", lr)])?;
        let q_rows = Tensor::cat(
            outs.into_iter()
                .map(|o| o.extra.to_device(&self.core.device))
                .collect(),
            0,
        );
        // A step with overflowing f16 gradients leaves the query as it is.
        self.core.update(&mut self.query, multi, lr)?;
        // Accuracy against the queue the step used (before the enqueue).
        let acc = instance_accuracy(q_rows, k.clone(), self.queue.keys(), &[1, 5])?;
        self.queue.enqueue(k, None)?;
        let line = LogLine::new(step, epoch)
            .with("loss", loss_v)
            .with("lr", lr)
            .with("acc1", acc[0])
            .with("acc5", acc[1]);
        Ok(self.core.log(line, loss_scale))
    }
}

impl<M: TrainBackbone> PairTrainer for MocoTrainer<M> {
    type Net = MocoNet<M>;
    type Config = MocoConfig;
    type Own = MocoOwn;
    type Data = ShuffledEpochs;

    pair_accessors!(MocoNet<M>, query, key);

    fn run_batch(&mut self, _: &ShuffledEpochs, batch: Batch<'_>) -> Result<LogLine, TrainError> {
        // Two independent draws of the same view.
        let views = TwoCrops {
            view: self.cfg.view(),
        };
        let [q, k] = contrast_shape!(self.cfg).two_views(&batch, &self.core.device, views)?;
        self.step(batch.epoch, batch.step, q, k)
    }

    fn own(&self, _: &TrainSet) -> Result<(MocoOwn, Vec<Part>), TrainError> {
        let (queue, keys) = QueueMeta::of(&self.queue);
        Ok((MocoOwn { queue }, vec![("queue.bin", keys)]))
    }

    fn restore(&mut self, own: MocoOwn, ckpt: &Checkpoint) -> Result<(), TrainError> {
        self.queue = own
            .queue
            .restore(&ckpt.read("queue.bin")?, &self.core.device)?;
        Ok(())
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
    callback: F,
) -> Result<MocoOutput<S::Model>, TrainError>
where
    S: BackboneSource<MocoConfig>,
    F: FnMut(PretrainEvent<'_>),
{
    cfg.validate()?;
    let (backbone, train) = start(cfg, backbone, records, device, run)?;
    let shape = contrast_shape!(cfg);
    let epochs = shape.epochs(train.set.len())?;
    run.precision.check(device)?;
    let ad = device.clone().autodiff();
    let mut query = encoder_with(cfg, backbone, &ad);
    query.precision = run.precision;
    let mut trainer = MocoTrainer::new(cfg, query, shape.queue(&ad)?, &ad)?;
    trainer.core.for_run(run, device)?;
    let total = epochs.per_epoch * cfg.epochs;
    run_pair(trainer, epochs, train, run, (cfg.epochs, total), callback)
}

impl BackboneConfig for MocoConfig {
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError> {
        init_backbone(self, device)
    }
}
