//! CION pre-training: identity-guided self-distillation (Zuo et al., "Cross-
//! video Identity Correlating for Person Re-identification Pre-training",
//! NeurIPS 2024), as `CION_Pretrain/run.py` runs it.
//!
//! - model: a backbone (ResNet from `cfg.arch`, last stride 1, GAP
//!   feature; or any [`TrainBackbone`] given to [`pretrain_cion`], with
//!   its pooled feature) followed by a
//!   [`DinoHead`] (MLP 2048-2048-256, L2, weight-normalised prototypes, out
//!   65336), as student and teacher ([`CionNet`]); the teacher starts as a
//!   copy of the student, never gets gradients, stays in train mode
//!   (BatchNorm with batch statistics; its running statistics move only
//!   through its own forward passes) and follows the student's parameters by
//!   EMA with a momentum going from 0.996 to 1 by a cosine;
//! - data: identity-major batches from [`IdentitySampler`] (`K` images of
//!   each identity, `K` = 2/4/6/8 from epochs 0/40/60/80), CION's multi-crop
//!   ([`MultiCrop::cion`]: 2 global 256×128 + 8 local 128×64 crops); the
//!   teacher sees the 2 global crops, the student all of them, each group of
//!   crops with the same size in one backbone pass;
//! - loss: [`identity_guided_dino_loss`] (τ_s 0.1, τ_t 0.04, center momentum
//!   0.9);
//! - optimiser: AdamW (β 0.9/0.999, ε 1e-8) with learning rate
//!   `lr · batch / 256` after 10 warm-up epochs from 0, cosine to 1e-6;
//!   weight decay cosine 0.04 → 0.4 on weights only (biases and rank-1
//!   parameters undecayed); per-parameter gradient clipping at 3.0; the
//!   head's last layer gets no update in epoch 0. All schedules are arrays
//!   of `epochs · (steps of epoch 0)` values, reused past their end, as
//!   upstream.
//!
//! Mixed precision: upstream trains in fp16 AMP with a `GradScaler`;
//! [`RunOptions::precision`] `f16` runs the backbone in half precision with
//! the same dynamic loss scaling ([`crate::precision`]) and, by default,
//! CION's clipping of the *loss-scaled* gradients
//! ([`CionConfig::clip_scaled_gradients`], see `docs/losses.md`); the
//! default `f32` clips the true gradients, as DINO intends. The sampler's
//! random stream is ours (ChaCha8). Multi-GPU: [`RunOptions::devices`] shards each batch on
//! identity boundaries ([`crate::parallel`]). BatchNorm: upstream converts
//! every BatchNorm to `SyncBatchNorm` (statistics over all GPUs' crops); on
//! one device ours normalises over the whole batch, which is the same thing
//! for that batch, while with several devices each normalises its shard
//! (there is no cross-device BatchNorm here).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use derive_setters::Setters;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_backbones::{Precision, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::sampler_identity::{IdentitySampler, KSchedule};
use reid_data::views::multicrop::MultiCrop;
use reid_losses::dino::{
    CollapseMonitor, DinoCenter, DinoHead, DinoHeadConfig, DinoLossConfig, WeightNormLinear,
    dino_diagnostics,
};
use reid_losses::identity_guided_dino_loss;
use reid_losses::schedule::{
    clip_gradients_per_param, cosine_schedule, ema_update, schedule_at, teacher_momentum_schedule,
};
use serde::{Deserialize, Serialize};

use super::pair::{Batch, Batches, PairTrainer, Part, TrainerCore, run_pair, start};
use super::{fresh_copy, pooled};
use crate::engine::checkpoint::{Checkpoint, HostTensor};
use crate::engine::events::PretrainEvent;
use crate::engine::metrics_log::LogLine;
use crate::engine::optim::decay_weights;
use crate::engine::options::RunOptions;
use crate::engine::parallel::{DataParallel, running_stats, weighted_loss};
use crate::engine::precision::unscale;
use crate::engine::seed::augment_seed;
use crate::engine::source::{BackboneConfig, BackboneSource};
use crate::engine::step::check_finite;
use crate::error::TrainError;
use crate::init::{seeded_resnet, standard_normal};
use crate::input::TrainSet;
use crate::input::views::load_view_batch;

/// Every hyper-parameter of CION pre-training; defaults are `run.py`'s (with
/// the ResNet50-IBN command of the README). Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(default, deny_unknown_fields)]
pub struct CionConfig {
    /// Backbone name (`resnet50_ibn_a`, …; see `reid_backbones::Arch`).
    pub arch: String,
    /// Channels of the backbone's stem (64 in the published models).
    pub base_width: usize,
    /// Stride of the last stage (1 in CION).
    pub last_stride: usize,
    /// Global crop `[height, width]` in pixels (256 × 128).
    pub global_size: [u32; 2],
    /// Local crop `[height, width]` in pixels (128 × 64).
    pub local_size: [u32; 2],
    /// Local crops per image (8).
    pub local_crops: usize,
    /// Area range of the global crops, as a fraction of the image
    /// (`--global_crops_scale`, (0.8, 1.0)).
    pub global_crops_scale: [f64; 2],
    /// Area range of the local crops (`--local_crops_scale`, (0.05, 0.8)).
    pub local_crops_scale: [f64; 2],
    /// Images per batch (120 per GPU upstream); a multiple of every `K`.
    pub batch_size: usize,
    /// Instances per identity by epoch (2/4/6/8 from epochs 0/40/60/80).
    pub k_schedule: KSchedule,
    /// Epochs (100).
    pub epochs: usize,
    /// Cap on the steps of each epoch; `None` = the sampler's full epoch.
    pub max_steps_per_epoch: Option<usize>,
    /// Base learning rate before the `batch / 256` scaling (5e-4).
    pub lr: f64,
    /// Final learning rate of the cosine (1e-6).
    pub min_lr: f64,
    /// Linear warm-up epochs from 0 (10).
    pub warmup_epochs: usize,
    /// Weight decay at the start (0.04).
    pub weight_decay: f64,
    /// Weight decay at the end (0.4).
    pub weight_decay_end: f64,
    /// Teacher EMA momentum at the start (0.996; goes to 1).
    pub momentum_teacher: f64,
    /// Per-parameter gradient-norm clip (3.0); 0 = off.
    pub clip_grad: f64,
    /// With `f16` loss scaling ([`RunOptions::precision`]): clip the
    /// *loss-scaled* gradients, as CION's `run.py` does (`true`, the
    /// default: every tensor then ends at norm `3/S` before AdamW), or the
    /// true gradients, as DINO does (`false`). Without a loss scaler the
    /// true gradients are clipped either way.
    pub clip_scaled_gradients: bool,
    /// Epochs during which the head's last layer is not updated (1).
    pub freeze_last_layer: usize,
    /// Head MLP hidden size (2048).
    pub head_hidden_dim: usize,
    /// Head bottleneck size (256).
    pub head_bottleneck_dim: usize,
    /// Head output size, the number of prototypes (65336, as released).
    pub out_dim: usize,
    /// BatchNorm after the head's hidden layers (`--use_bn_in_head`,
    /// false).
    pub use_bn_in_head: bool,
    /// Student temperature (0.1).
    pub student_temp: f64,
    /// Teacher temperature (0.04) after the warm-up.
    pub teacher_temp: f64,
    /// Teacher temperature at step 0 of a warm-up (DINO's
    /// `warmup_teacher_temp`, 0.04). `run.py` parses this but its loss
    /// never reads it; here it takes effect when
    /// `warmup_teacher_temp_epochs > 0`.
    pub warmup_teacher_temp: f64,
    /// Epochs of the linear teacher-temperature warm-up from
    /// `warmup_teacher_temp` to `teacher_temp`, then constant (0: none, as
    /// CION). Indexed per step, like the other schedules.
    pub warmup_teacher_temp_epochs: usize,
    /// Center momentum (0.9).
    pub center_momentum: f64,
    /// Stochastic depth in the teacher too (`true`, as CION: its teacher is
    /// built by the same `model_zoo` constructor as the student and never
    /// put in eval mode, so e.g. Swin's drop-path rate 0.1 is active in
    /// both). `false` runs the teacher without it, as DINO does (DINO builds
    /// its teacher without `drop_path_rate`). Only families with a nonzero
    /// rate are affected (ResNet has none). Drawn from a seed of its own per
    /// step, so a resumed run repeats it.
    pub teacher_drop_path: bool,
    /// Sinkhorn–Knopp iterations replacing the teacher's centering (0 =
    /// centering, as CION; 3 as SwAV and DINOv2). Not part of CION: an
    /// option for small batches, where the centered teacher collapses (see
    /// `docs/pretraining.md`). The center is still updated and logged.
    pub sinkhorn_iterations: usize,
    /// Seed of the weights, the sampler and the augmentations (0).
    pub seed: u64,
}

impl Default for CionConfig {
    fn default() -> Self {
        Self {
            arch: "resnet50_ibn_a".into(),
            base_width: 64,
            last_stride: 1,
            global_size: [256, 128],
            local_size: [128, 64],
            local_crops: 8,
            global_crops_scale: [0.8, 1.0],
            local_crops_scale: [0.05, 0.8],
            batch_size: 120,
            k_schedule: KSchedule::default(),
            epochs: 100,
            max_steps_per_epoch: None,
            lr: 5e-4,
            min_lr: 1e-6,
            warmup_epochs: 10,
            weight_decay: 0.04,
            weight_decay_end: 0.4,
            momentum_teacher: 0.996,
            clip_grad: 3.0,
            clip_scaled_gradients: true,
            freeze_last_layer: 1,
            head_hidden_dim: 2048,
            head_bottleneck_dim: 256,
            out_dim: 65336,
            use_bn_in_head: false,
            student_temp: 0.1,
            teacher_temp: 0.04,
            warmup_teacher_temp: 0.04,
            warmup_teacher_temp_epochs: 0,
            center_momentum: 0.9,
            teacher_drop_path: true,
            sinkhorn_iterations: 0,
            seed: 0,
        }
    }
}

impl CionConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad("epochs and batch_size must be >= 1".into());
        }
        if self.warmup_epochs > self.epochs {
            return bad(format!(
                "warmup_epochs {} exceeds epochs {}",
                self.warmup_epochs, self.epochs
            ));
        }
        if self.max_steps_per_epoch == Some(0) {
            return bad("max_steps_per_epoch must be >= 1".into());
        }
        if self.global_size.contains(&0) || self.local_size.contains(&0) {
            return bad("crop sizes must be positive".into());
        }
        for (name, v) in [
            ("lr", self.lr),
            ("student_temp", self.student_temp),
            ("teacher_temp", self.teacher_temp),
            ("warmup_teacher_temp", self.warmup_teacher_temp),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be positive, got {v}"));
            }
        }
        for (name, v) in [
            ("momentum_teacher", self.momentum_teacher),
            ("center_momentum", self.center_momentum),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        for (name, [lo, hi]) in [
            ("global_crops_scale", self.global_crops_scale),
            ("local_crops_scale", self.local_crops_scale),
        ] {
            if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
                return bad(format!(
                    "{name} must satisfy 0 < min <= max <= 1, got [{lo}, {hi}]"
                ));
            }
        }
        if self.warmup_teacher_temp_epochs > self.epochs {
            return bad(format!(
                "warmup_teacher_temp_epochs {} exceeds epochs {}",
                self.warmup_teacher_temp_epochs, self.epochs
            ));
        }
        if !(self.clip_grad.is_finite() && self.clip_grad >= 0.0) {
            return bad(format!("clip_grad must be >= 0, got {}", self.clip_grad));
        }
        self.k_schedule
            .validate()
            .map_err(|e| TrainError::InvalidConfig(format!("k_schedule: {e}")))
    }

    /// Peak learning rate `lr · batch / 256`.
    pub fn peak_lr(&self) -> f64 {
        self.lr * self.batch_size as f64 / 256.0
    }

    /// The multi-crop views of this configuration.
    pub fn multi_crop(&self) -> MultiCrop {
        let mut mc = MultiCrop::cion(self.local_crops);
        let [gh, gw] = self.global_size;
        let [lh, lw] = self.local_size;
        let [g0, g1] = self.global_crops_scale;
        let [l0, l1] = self.local_crops_scale;
        for p in [&mut mc.global1, &mut mc.global2] {
            p.crop.height = gh;
            p.crop.width = gw;
            p.crop.scale = (g0, g1);
        }
        mc.local.crop.height = lh;
        mc.local.crop.width = lw;
        mc.local.crop.scale = (l0, l1);
        mc
    }
}

/// Backbone + DINO head: CION's student or teacher.
///
/// The backbone is any [`TrainBackbone`] (default a [`ResNet`]); its
/// pooled feature ([`reid_backbones::Backbone::forward_pooled`]: GAP for
/// ResNet, the class token for ViT, …) feeds the head, as in CION.
#[derive(Module, Debug)]
pub struct CionNet<M: TrainBackbone = ResNet> {
    /// The backbone; its pooled feature feeds the head.
    pub backbone: M,
    /// The projection head.
    pub head: DinoHead,
    /// The float type the backbone computes in ([`Precision`]; the
    /// heads and the losses stay in `f32`). Not saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl<M: TrainBackbone> CionNet<M> {
    /// The backbone's pooled feature: `[batch, 3, H, W]` →
    /// `[batch, backbone.pooled_dim()]`.
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        pooled(&self.backbone, self.precision, images, None)
    }

    /// Runs the crops (each `[batch, 3, h_v, w_v]`, same batch) through the
    /// backbone — consecutive crops of the same size in one pass, so
    /// BatchNorm sees CION's groups — then the head once: `[V·batch,
    /// out_dim]`, crop-major.
    pub fn forward(&self, crops: &[Tensor<4>]) -> Result<Tensor<2>, TrainError> {
        self.forward_groups(crops, None)
    }

    /// [`CionNet::forward`] of a training step: the backbone's stochastic
    /// depth (ViT, Swin) drawn from `seed`, a stream per crop group
    /// ([`reid_backbones::Backbone::forward_pooled_seeded`]).
    pub fn forward_seeded(&self, crops: &[Tensor<4>], seed: u64) -> Result<Tensor<2>, TrainError> {
        self.forward_groups(crops, Some(seed))
    }

    fn forward_groups(
        &self,
        crops: &[Tensor<4>],
        seed: Option<u64>,
    ) -> Result<Tensor<2>, TrainError> {
        let mut feats = Vec::new();
        let mut i = 0;
        while i < crops.len() {
            let dims = crops[i].dims();
            let mut j = i + 1;
            while j < crops.len() && crops[j].dims()[2..] == dims[2..] {
                j += 1;
            }
            let group = Tensor::cat(crops[i..j].to_vec(), 0);
            let seed = seed.map(|s| augment_seed(s, i, usize::MAX - 6));
            feats.push(pooled(&self.backbone, self.precision, group, seed));
            i = j;
        }
        if feats.is_empty() {
            return Err(TrainError::InvalidConfig("no crops to run".into()));
        }
        Ok(self.head.forward(Tensor::cat(feats, 0))?)
    }
}

/// Builds the student for `cfg` with seeded weights: the backbone as
/// [`reinit_weights`](crate::init::reinit_weights) draws it, the head's MLP `N(0, 0.02²)` with zero
/// biases, its prototypes `U(±1/√bottleneck)` and magnitudes 1 (CION's
/// initialisation).
pub fn init_student(cfg: &CionConfig, device: &Device) -> Result<CionNet, TrainError> {
    student_with(cfg, init_backbone(cfg, device)?, device)
}

/// The ResNet `cfg.arch` (`base_width`, `last_stride`) with weights drawn
/// from `cfg.seed` ([`seeded_resnet`]).
pub fn init_backbone(cfg: &CionConfig, device: &Device) -> Result<ResNet, TrainError> {
    seeded_resnet(&cfg.arch, cfg.base_width, cfg.last_stride, cfg.seed, device)
}

/// `backbone` (any [`TrainBackbone`], on `device`, trainable) with a
/// fresh seeded DINO head on its pooled feature (see [`init_student`]).
pub fn student_with<M: TrainBackbone>(
    cfg: &CionConfig,
    backbone: M,
    device: &Device,
) -> Result<CionNet<M>, TrainError> {
    let backbone = backbone.to_device(device).set_require_grad(true).train();
    let head = DinoHeadConfig::new(backbone.pooled_dim())
        .with_hidden_dim(cfg.head_hidden_dim)
        .with_bottleneck_dim(cfg.head_bottleneck_dim)
        .with_out_dim(cfg.out_dim)
        .with_bn(cfg.use_bn_in_head)
        .init(device)?;
    let head = seeded_head(head, cfg.seed, device);
    Ok(CionNet {
        backbone,
        head,
        precision: Precision::F32,
    })
}

/// Redraws the head's random weights from streams of `seed`.
fn seeded_head(head: DinoHead, seed: u64, device: &Device) -> DinoHead {
    let draw = |index: usize, shape: [usize; 2], f: &dyn Fn(&mut ChaCha8Rng) -> f32| {
        let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(seed, usize::MAX - 1, index));
        let values: Vec<f32> = (0..shape[0] * shape[1]).map(|_| f(&mut rng)).collect();
        Tensor::<2>::from_data(TensorData::new(values, shape), device)
    };
    let mlp = head
        .mlp
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let [din, dout] = l.weight.dims();
            let w = draw(i, [din, dout], &|r| {
                (standard_normal(r) * 0.02).clamp(-2.0, 2.0) as f32
            });
            Linear {
                weight: Param::from_tensor(w),
                bias: Some(Param::from_tensor(Tensor::zeros([dout], device))),
            }
        })
        .collect::<Vec<_>>();
    let [out, bottleneck] = head.last_layer.weight_v.dims();
    let bound = 1.0 / (bottleneck as f64).sqrt();
    let v = draw(mlp.len(), [out, bottleneck], &|r| {
        r.random_range(-bound..bound) as f32
    });
    DinoHead {
        mlp,
        // BatchNorm layers (`use_bn_in_head`) start at γ = 1, β = 0.
        bn: head.bn,
        last_layer: WeightNormLinear::new(Tensor::ones([out, 1], device), v),
    }
}

/// The result of [`pretrain_cion`].
#[derive(Debug)]
pub struct CionOutput<M: TrainBackbone = ResNet> {
    /// The student after the last step (autodiff device, train mode).
    pub student: CionNet<M>,
    /// The teacher after the last step; CION releases the teacher's backbone.
    pub teacher: CionNet<M>,
    /// One log line per step run in this call.
    pub log: Vec<LogLine>,
    /// Completed steps (including those before a resume).
    pub steps_done: usize,
    /// Whether every epoch ran (false when `stop_after` ended the run).
    pub finished: bool,
}

/// CION's own field of `state.json` beside the networks and the
/// optimiser: the teacher-output center.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CionOwn {
    center: HostTensor,
}

/// Per-epoch step counts and the schedules, fixed for a run.
struct Plan {
    steps_per_epoch: Vec<usize>,
    lr: Vec<f64>,
    wd: Vec<f64>,
    momentum: Vec<f64>,
    /// Teacher temperature per step (DINO's warm-up, then constant).
    teacher_temp: Vec<f64>,
}

impl Plan {
    /// Steps of each epoch of a run over `sampler`.
    fn epoch_steps(cfg: &CionConfig, sampler: &IdentitySampler) -> Vec<usize> {
        let cap = cfg.max_steps_per_epoch.unwrap_or(usize::MAX);
        (0..cfg.epochs)
            .map(|e| sampler.epoch(e as u64).len().min(cap))
            .collect()
    }

    fn new(cfg: &CionConfig, steps_per_epoch: Vec<usize>) -> Result<Self, TrainError> {
        let first = steps_per_epoch.first().copied().unwrap_or(0);
        if first == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "the identity sampler yields no batch of {} images in epoch 0",
                cfg.batch_size
            )));
        }
        let lr = cosine_schedule(
            cfg.peak_lr(),
            cfg.min_lr,
            cfg.epochs,
            first,
            cfg.warmup_epochs,
            0.0,
        )?;
        let wd = cosine_schedule(
            cfg.weight_decay,
            cfg.weight_decay_end,
            cfg.epochs,
            first,
            0,
            0.0,
        )?;
        let momentum = teacher_momentum_schedule(cfg.momentum_teacher, cfg.epochs, first)?;
        // DINO's `np.linspace(warmup, final, warmup_epochs)` is per epoch;
        // here, as every other schedule of the recipe, per step.
        let warm = cfg.warmup_teacher_temp_epochs * first;
        let teacher_temp = (0..cfg.epochs * first)
            .map(|i| {
                if i < warm {
                    let t = i as f64 / warm as f64;
                    cfg.warmup_teacher_temp + t * (cfg.teacher_temp - cfg.warmup_teacher_temp)
                } else {
                    cfg.teacher_temp
                }
            })
            .collect();
        Ok(Self {
            steps_per_epoch,
            lr,
            wd,
            momentum,
            teacher_temp,
        })
    }

    fn total(&self) -> usize {
        self.steps_per_epoch.iter().sum()
    }
}

/// CION's networks, optimiser and loss state, stepped on given crops: the
/// composed training step of `run.py`'s `train_one_epoch` (schedules by
/// global step, forward of teacher and student, identity-guided loss,
/// backward, per-tensor clipping, last-layer freeze, decoupled weight decay,
/// AdamW, teacher EMA, center update), without the data pipeline.
/// [`pretrain_cion`] drives one over the sampler's batches; use it
/// directly to train on crops of your own or to check a step against
/// upstream (`tests/integration/cion_step_parity.rs`).
pub struct CionTrainer<M: TrainBackbone = ResNet> {
    cfg: CionConfig,
    plan: Plan,
    /// The student (trained by AdamW).
    pub student: CionNet<M>,
    /// The teacher (EMA of the student, train mode, no gradients).
    pub teacher: CionNet<M>,
    /// The teacher-output center.
    pub center: DinoCenter,
    /// Flags a uniform or one-hot teacher that lasts (restarts on resume).
    monitor: CollapseMonitor,
    /// AdamW, the device, the loss scaler of an `f16` run and the devices
    /// each batch is sharded over (one: the trainer's device).
    core: TrainerCore,
}

impl<M: TrainBackbone> CionTrainer<M> {
    /// A trainer for `cfg` with `steps_per_epoch[e]` steps in epoch `e`
    /// (the schedules are arrays of `epochs × steps_per_epoch[0]` values, as
    /// upstream's); `student` is used as given (its weights, on the autodiff
    /// `device`), and the teacher starts as its copy with parameter ids and
    /// BatchNorm statistics of its own.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid `cfg`, or when
    /// `steps_per_epoch` is empty, shorter than `cfg.epochs` or starts at 0.
    pub fn new(
        cfg: &CionConfig,
        student: CionNet<M>,
        steps_per_epoch: Vec<usize>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        if steps_per_epoch.len() < cfg.epochs {
            return Err(TrainError::InvalidConfig(format!(
                "steps_per_epoch has {} entries for {} epochs",
                steps_per_epoch.len(),
                cfg.epochs
            )));
        }
        let plan = Plan::new(cfg, steps_per_epoch)?;
        let teacher = fresh_copy(&student).no_grad();
        Ok(Self {
            cfg: cfg.clone(),
            plan,
            student,
            teacher,
            center: DinoCenter::new(cfg.out_dim, device).with_momentum(cfg.center_momentum)?,
            monitor: CollapseMonitor::default(),
            core: TrainerCore::new(AdamConfig::new().with_epsilon(1e-8).init(), device),
        })
    }

    /// The same trainer sharding each batch over `parallel`'s devices in
    /// whole identity groups (the first device must be the trainer's;
    /// `None`: the trainer's device alone). Each device runs a copy of the
    /// teacher and the student's forward and loss on its groups; the
    /// teacher's BatchNorm statistics are averaged over the devices.
    pub fn with_data_parallel(mut self, parallel: Option<DataParallel>) -> Self {
        self.core.set_parallel(parallel);
        self
    }

    /// Global steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.plan.total()
    }

    /// The loss settings of global step `step` (teacher temperature warm-up
    /// included), for `n_crops` crops per image.
    fn loss_config(&self, step: usize, n_crops: usize) -> DinoLossConfig {
        DinoLossConfig::default()
            .with_n_crops(n_crops)
            .with_student_temp(self.cfg.student_temp)
            .with_teacher_temp(
                schedule_at(&self.plan.teacher_temp, step).unwrap_or(self.cfg.teacher_temp),
            )
            .with_sinkhorn_iterations(self.cfg.sinkhorn_iterations)
    }

    /// The seed of the teacher's stochastic depth at step `step`, `None`
    /// when [`CionConfig::teacher_drop_path`] is off.
    fn teacher_seed(&self, step: usize) -> Option<u64> {
        self.cfg
            .teacher_drop_path
            .then(|| augment_seed(self.cfg.seed, step, usize::MAX - 6))
    }

    /// One training step (global step `step` of epoch `epoch`, 0-based) on
    /// `crops`: the 2 global crops first, then the local ones, each
    /// `[batch, 3, h, w]` with the batch identity-major (`K` consecutive
    /// images per identity, `k` = `K`). Returns the step's log line (loss,
    /// schedules, collapse diagnostics).
    ///
    /// # Errors
    /// [`TrainError`] for inconsistent crops, a batch not divisible by `k`,
    /// or a non-finite loss.
    pub fn step(
        &mut self,
        epoch: usize,
        step: usize,
        crops: &[Tensor<4>],
        k: usize,
    ) -> Result<LogLine, TrainError> {
        if crops.len() < 2 {
            return Err(TrainError::InvalidConfig(format!(
                "a CION step needs the 2 global crops and any local ones, got {} crops",
                crops.len()
            )));
        }
        let batch = crops[0].dims()[0];
        if let Some((i, c)) = crops
            .iter()
            .enumerate()
            .find(|(_, c)| c.dims()[0] != batch || c.dims()[1] != 3)
        {
            return Err(TrainError::InvalidConfig(format!(
                "crop {i} has shape {:?}; every crop must be [{batch}, 3, h, w] like crop 0",
                c.dims()
            )));
        }
        if k == 0 || batch == 0 || !batch.is_multiple_of(k) {
            return Err(TrainError::InvalidConfig(format!(
                "a batch of {batch} images is not whole identities of K = {k}"
            )));
        }
        let loss_cfg = self.loss_config(step, crops.len());
        let drop_seed = augment_seed(self.cfg.seed, step, usize::MAX - 5);
        let loss_scale = self.core.scale();
        let lr = schedule_at(&self.plan.lr, step).unwrap_or(0.0);
        let teacher_seed = self.teacher_seed(step);
        let dp = &self.core.parallel;
        // Identity groups of `k` images stay on one device, so the
        // identity-guided loss of every group is the single-device one.
        let shards = dp.shards(batch, k)?;
        // One teacher copy per device, each taken by its worker (a module is
        // `Send`, not necessarily `Sync`).
        let teachers: Vec<std::sync::Mutex<Option<CionNet<M>>>> = (0..dp.devices().len())
            .map(|i| std::sync::Mutex::new(Some(dp.replica(&self.teacher, i))))
            .collect();
        let centers: Vec<Tensor<2>> = dp
            .devices()
            .iter()
            .map(|d| self.center.value().to_device(d))
            .collect();
        let (multi, outs) =
            dp.grads_scaled(&self.student, &shards, loss_scale, |student, i, d| {
                let r = shards[i].clone();
                let vs: Vec<Tensor<4>> = crops
                    .iter()
                    .map(|c| c.clone().narrow(0, r.start, r.len()).to_device(d))
                    .collect();
                let teacher = teachers[i]
                    .lock()
                    .map_err(|_| TrainError::InvalidConfig("teacher copy poisoned".into()))?
                    .take()
                    .ok_or_else(|| TrainError::InvalidConfig("teacher copy taken".into()))?;
                let t_out = teacher_forward(&teacher, &vs[..2], teacher_seed)?;
                let s_out = student.forward_seeded(&vs, drop_seed)?;
                let loss = identity_guided_dino_loss(
                    s_out.clone(),
                    t_out.clone(),
                    centers[i].clone(),
                    k,
                    &loss_cfg,
                )?;
                let s_out = s_out.detach();
                Ok((loss, (t_out, s_out, running_stats(&teacher))))
            })?;
        let loss_v = weighted_loss(&outs);
        check_finite("cion", epoch, step, &[("loss", loss_v), ("lr", lr)])?;
        let mut t_outs = Vec::new();
        let mut s_outs = Vec::new();
        let mut t_stats = Vec::new();
        for o in outs {
            let (to, so, stats) = o.extra;
            t_outs.push(to.to_device(&self.core.device));
            s_outs.push(so.to_device(&self.core.device));
            t_stats.push(stats);
        }
        dp.fold_running_stats(&self.teacher, t_stats);
        let t_out = crop_major_cat(t_outs, 2);
        let s_out = crop_major_cat(s_outs, loss_cfg.n_crops);
        let grads = dp.reduce(&self.student, multi);
        self.finish(epoch, step, k, &loss_cfg, loss_v, grads, (t_out, s_out))
    }

    /// The part of a step after the gradients: clipping (of the scaled or
    /// the true gradients), unscaling, last-layer freeze, weight decay and
    /// AdamW (skipped when f16 gradients overflowed), the teacher EMA, the
    /// center update and the log line. `outputs` are the step's teacher
    /// `[2B, D]` and student `[V·B, D]` outputs in single-device
    /// (crop-major) order, `loss_cfg` the loss settings the step used.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        epoch: usize,
        step: usize,
        k: usize,
        loss_cfg: &DinoLossConfig,
        loss_v: f64,
        mut grads: GradientsParams,
        (t_out, s_out): (Tensor<2>, Tensor<2>),
    ) -> Result<LogLine, TrainError> {
        let cfg = &self.cfg;
        let lr = schedule_at(&self.plan.lr, step).unwrap_or(0.0);
        let wd = schedule_at(&self.plan.wd, step).unwrap_or(0.0);
        let m = schedule_at(&self.plan.momentum, step).unwrap_or(1.0);
        let loss_scale = self.core.scale();
        // With a loss scaler the gradients are still scaled here; CION's
        // run.py clips them so (`clip_scaled_gradients`), DINO after
        // unscaling.
        let clip_scaled = self.core.scaler.is_some() && cfg.clip_scaled_gradients;
        if cfg.clip_grad > 0.0 && clip_scaled {
            grads = clip_gradients_per_param(&self.student, grads, cfg.clip_grad)?;
        }
        let grads = unscale(&mut self.core.scaler, &self.student, grads)?;
        // A step with overflowing f16 gradients updates nothing but the
        // teacher and the center, as GradScaler skips `optimizer.step`.
        if let Some(mut grads) = grads {
            if cfg.clip_grad > 0.0 && !clip_scaled {
                grads = clip_gradients_per_param(&self.student, grads, cfg.clip_grad)?;
            }
            if epoch < cfg.freeze_last_layer {
                self.student.head.cancel_last_layer_gradients(&mut grads);
            }
            let student = decay_weights(self.student.clone(), &grads, lr * wd);
            self.student = self.core.optim.step(lr, student, grads);
        }
        let diag = dino_diagnostics(s_out, t_out.clone(), self.center.value(), loss_cfg)?;
        let collapse = self.monitor.observe(&diag);
        ema_update(&mut self.teacher, &self.student, m)?;
        self.center.update(t_out)?;
        let line = LogLine::new(step, epoch)
            .with("loss", loss_v)
            .with("lr", lr)
            .with("wd", wd)
            .with("teacher_momentum", m)
            .with("teacher_temp", loss_cfg.teacher_temp)
            .with("k", k as f64)
            .with("teacher_entropy", diag.teacher_entropy)
            .with("teacher_mean_entropy", diag.teacher_mean_entropy)
            .with("kl_teacher_student", diag.kl_teacher_student)
            .with("center_norm", diag.center_norm)
            .with("collapse", collapse.map_or(0.0, |c| c.code()));
        Ok(self.core.log(line, loss_scale))
    }

    /// The student and the teacher, consuming the trainer.
    pub fn into_networks(self) -> (CionNet<M>, CionNet<M>) {
        (self.student, self.teacher)
    }
}

/// The teacher's output `[crops·B, out_dim]` (detached) on global crops,
/// with its stochastic depth drawn from `seed` (none without one).
fn teacher_forward<M: TrainBackbone>(
    teacher: &CionNet<M>,
    crops: &[Tensor<4>],
    seed: Option<u64>,
) -> Result<Tensor<2>, TrainError> {
    let out = match seed {
        Some(seed) => teacher.forward_seeded(crops, seed)?,
        None => teacher.forward(crops)?,
    };
    Ok(out.detach())
}

/// What a CION run draws its batches and crops from: the identity
/// sampler, capped at the plan's steps of each epoch, and the multi-crop.
pub(crate) struct CionData {
    sampler: IdentitySampler,
    steps_per_epoch: Vec<usize>,
    views: MultiCrop,
}

impl Batches for CionData {
    fn batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut b = self.sampler.epoch(epoch as u64);
        b.truncate(self.steps_per_epoch[epoch]);
        b
    }
}

/// Concatenates per-device outputs that are each crop-major (`[crops·b_i,
/// D]`, row `v·b_i + j`) into one crop-major `[crops·Σb_i, D]` in device
/// order, as a single device would have produced them.
fn crop_major_cat(parts: Vec<Tensor<2>>, crops: usize) -> Tensor<2> {
    let dim = parts[0].dims()[1];
    let parts: Vec<Tensor<3>> = parts
        .into_iter()
        .map(|t| {
            let rows = t.dims()[0] / crops;
            t.reshape([crops, rows, dim])
        })
        .collect();
    let joined = Tensor::cat(parts, 1);
    let rows = joined.dims()[1];
    joined.reshape([crops * rows, dim])
}

impl<M: TrainBackbone> PairTrainer for CionTrainer<M> {
    type Net = CionNet<M>;
    type Config = CionConfig;
    type Own = CionOwn;
    type Data = CionData;

    const NETS: [&'static str; 2] = ["student.bpk", "teacher.bpk"];

    pair_accessors!(CionNet<M>, student, teacher);

    fn run_batch(&mut self, data: &CionData, batch: Batch<'_>) -> Result<LogLine, TrainError> {
        let Batch {
            set,
            indices,
            epoch,
            step,
        } = batch;
        let k = data.sampler.k(epoch as u64);
        let views = data.views.clone();
        let device = &self.core.device;
        let vs = load_view_batch(set, indices, views, self.cfg.seed, step, device)?;
        self.step(epoch, step, &vs, k)
    }

    fn own(&self, _: &TrainSet) -> Result<(CionOwn, Vec<Part>), TrainError> {
        let center = HostTensor::from_tensor(&self.center.value())?;
        Ok((CionOwn { center }, Vec::new()))
    }

    fn restore(&mut self, own: CionOwn, _: &Checkpoint) -> Result<(), TrainError> {
        let center = own.center.to_tensor(&self.core.device)?;
        self.center = DinoCenter::from_tensor(center, self.cfg.center_momentum)?;
        Ok(())
    }
}

/// Runs CION pre-training on `records` (file paths with pseudo-identities,
/// e.g. the `annos.json` written by `reid-denoise`) on the autodiff version
/// of `device`; see the module docs. `run` sets checkpoints, resume, the
/// metrics log and an early stop; `callback` gets progress events.
///
/// Deterministic given `cfg.seed` on the flex backend, and a run resumed
/// from a checkpoint computes the same losses as an uninterrupted one.
///
/// `backbone` is [`FromConfig`](crate::FromConfig) (the ResNet `cfg.arch` with `base_width` and
/// `last_stride`, weights from [`init_backbone`]) or any [`TrainBackbone`]
/// (a zoo model, imported weights, a user's module; `cfg.arch`,
/// `base_width` and `last_stride` are then ignored); the head is drawn fresh
/// from `cfg.seed` on the backbone's pooled feature. Resuming needs the same
/// backbone structure.
pub fn pretrain_cion<S, F>(
    cfg: &CionConfig,
    backbone: S,
    records: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<CionOutput<S::Model>, TrainError>
where
    S: BackboneSource<CionConfig>,
    F: FnMut(PretrainEvent<'_>),
{
    cfg.validate()?;
    let (backbone, train) = start(cfg, backbone, records, device, run)?;
    let pids: Vec<i64> = records.iter().map(|r| r.pid).collect();
    let sampler =
        IdentitySampler::from_pids(&pids, cfg.batch_size, cfg.k_schedule.clone(), cfg.seed)?;
    run.precision.check(device)?;
    let ad = device.clone().autodiff();
    let mut student = student_with(cfg, backbone, &ad)?;
    student.precision = run.precision;
    let steps_per_epoch = Plan::epoch_steps(cfg, &sampler);
    let mut trainer = CionTrainer::new(cfg, student, steps_per_epoch.clone(), &ad)?;
    trainer.core.for_run(run, device)?;
    trainer.teacher.precision = run.precision;
    let total = trainer.total_steps();
    let data = CionData {
        sampler,
        steps_per_epoch,
        views: cfg.multi_crop(),
    };
    let out = run_pair(trainer, data, train, run, (cfg.epochs, total), callback)?;
    Ok(CionOutput {
        student: out.query,
        teacher: out.key,
        log: out.log,
        steps_done: out.steps_done,
        finished: out.finished,
    })
}

impl BackboneConfig for CionConfig {
    fn build_backbone(&self, device: &Device) -> Result<ResNet, TrainError> {
        init_backbone(self, device)
    }
}
