//! MGN fine-tuning as LUPerson's fast-reid configs run it
//! (`configs/CMDM/mgn_R50_moco.yml` over `Base-MGN.yml`):
//!
//! - model: [`Mgn`] (ResNet50 trunk, last stride 1, extra BN per branch for
//!   self-supervised weights, 8 heads of GeM → 1×1 conv 256 → BNNeck with a
//!   circle-softmax classifier, scale 64, margin 0.35);
//! - data: 384×128, flip, pad 10 + crop, random erasing, P×K = 4×16;
//! - loss: label-smoothed CE (ε 0.1) on each head's logits × 0.125, and
//!   batch-hard **soft-margin** triplet on the post-BN features of b1, b2,
//!   b3, cat(b21, b22), cat(b31, b32, b33) × 0.2 each;
//! - optimiser: Adam 3.5e-4, coupled weight decay 5e-4, warm-up over 10
//!   epochs from 0.01, constant until epoch 30, cosine to 7.7e-7 at 60;
//! - the trunk and the three branches are frozen (no gradient, BatchNorm in
//!   inference mode) for the first 10 epochs: only the heads and the extra
//!   BNs train then.
//!
//! Initialisation: [`finetune_mgn`] with [`MgnStart::Trunk`] starts from a pre-trained
//! ResNet trunk (an ImageNet, LUPerson or LUPerson-NL ResNet50 imported
//! with `reid_backbones::import::load_backbone`), copied into the shared
//! trunk and all three branches as fast-reid's `MGN` does
//! ([`Mgn::from_trunk`]), the heads and extra BNs seeded-random; this is
//! how LUPerson's configs fine-tune (`MODEL.BACKBONE.PRETRAIN_PATH`).
//! [`MgnStart::Model`] starts from a whole given MGN, [`MgnStart::Random`]
//! from random weights.
//!
//! Checkpoints and exact resume: [`finetune_mgn`] takes [`RunOptions`] as BoT's
//! [`finetune`](super::finetune) does, on the same shared run; a
//! checkpoint holds the whole MGN, Adam's state, the PK stream's position,
//! the run's position, the configuration and whether the trunk is frozen
//! (lifted when epoch `freeze_epochs` begins, in a resumed run too), and a
//! resumed run computes bit-identical losses and weights to an
//! uninterrupted one on the flex backend.
//!
//! Deviations: the cosine decays per epoch ([`crate::schedule`]), fast-reid's
//! per iteration; the pixel normalisation is the LUPerson mean/std of
//! `reid_data::normalize::LUPERSON` (the config's std differs in the third
//! decimal). Mixed precision through [`RunOptions::precision`](crate::RunOptions)
//! (`bf16`, or `f16` with dynamic loss scaling), as BoT. Data parallel over
//! `RunOptions::devices` like BoT.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use derive_setters::Setters;
use ndarray::Array2;
use reid_backbones::{Arch, Backbone, Mgn, MgnConfig, ResNet};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_data::batch::TestTransform;
use reid_data::normalize::LUPERSON;
use reid_losses::{
    CrossEntropyConfig, Mining, TripletConfig, TripletDistance, cross_entropy_label_smooth,
    triplet_loss,
};
use reid_metrics::EvalResult;
use serde::{Deserialize, Serialize};

use super::eval::cosine_eval;
use super::supervised::{Objective, Plan, Split};
use super::{RunEvent, RunOutput};
use crate::engine::RunOptions;
use crate::error::TrainError;
use crate::extract::{ExtractOptions, extract_features};
use crate::init::reinit_weights;
use crate::input::image_paths;
use crate::schedule::{Decay, LrSchedule, Warmup};

/// Every hyper-parameter of MGN fine-tuning; defaults are LUPerson's
/// fast-reid MGN config. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(default, deny_unknown_fields)]
pub struct MgnFinetuneConfig {
    /// Trunk name (`resnet50`; a bottleneck ResNet).
    pub arch: String,
    /// Channels of the trunk's stem (64).
    pub base_width: usize,
    /// The extra BN on each branch map (true for self-supervised weights).
    pub extra_bn: bool,
    /// Embedding size of each head (256).
    pub embedding_dim: usize,
    /// Input height in pixels (384).
    pub height: u32,
    /// Input width in pixels (128).
    pub width: u32,
    /// Identities per batch (4).
    pub p: usize,
    /// Images per identity (16).
    pub k: usize,
    /// Epochs (60).
    pub epochs: usize,
    /// Iterations per epoch; `None` = `len(train) // (P·K)`.
    pub iters_per_epoch: Option<usize>,
    /// Peak learning rate of Adam (3.5e-4).
    pub lr: f64,
    /// Coupled weight decay (5e-4).
    pub weight_decay: f64,
    /// Warm-up epochs (10) and start factor (0.01).
    pub warmup_epochs: usize,
    /// Warm-up start factor (0.01).
    pub warmup_factor: f64,
    /// Epochs at the peak rate before the cosine (30).
    pub delay_epochs: usize,
    /// Final rate of the cosine (7.7e-7).
    pub eta_min: f64,
    /// Epochs with the trunk and branches frozen (10).
    pub freeze_epochs: usize,
    /// Label smoothing (0.1).
    pub ce_epsilon: f64,
    /// Weight of each head's cross-entropy (0.125).
    pub ce_weight: f64,
    /// Weight of each of the 5 triplet terms (0.2).
    pub triplet_weight: f64,
    /// Triplet margin; `<= 0` = soft margin (0, as configured).
    pub triplet_margin: f64,
    /// Seed (0).
    pub seed: u64,
}

impl Default for MgnFinetuneConfig {
    fn default() -> Self {
        Self {
            arch: "resnet50".into(),
            base_width: 64,
            extra_bn: true,
            embedding_dim: 256,
            height: 384,
            width: 128,
            p: 4,
            k: 16,
            epochs: 60,
            iters_per_epoch: None,
            lr: 3.5e-4,
            weight_decay: 5e-4,
            warmup_epochs: 10,
            warmup_factor: 0.01,
            delay_epochs: 30,
            eta_min: 7.7e-7,
            freeze_epochs: 10,
            ce_epsilon: 0.1,
            ce_weight: 0.125,
            triplet_weight: 0.2,
            triplet_margin: 0.0,
            seed: 0,
        }
    }
}

impl MgnFinetuneConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.p == 0 || self.k == 0 || self.epochs == 0 || self.embedding_dim == 0 {
            return bad("p, k, epochs and embedding_dim must be >= 1".into());
        }
        // The branch maps (stride 16) must have at least 3 rows to chunk.
        if self.height < 48 || self.width < 16 {
            return bad(format!(
                "MGN needs inputs of at least 48×16 pixels, got {}×{}",
                self.height, self.width
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        Ok(())
    }

    /// The learning-rate schedule for `iters_per_epoch`.
    pub fn schedule(&self, iters_per_epoch: usize) -> LrSchedule {
        LrSchedule {
            base_lr: self.lr,
            warmup: Warmup {
                iters: self.warmup_epochs * iters_per_epoch,
                factor: self.warmup_factor,
            },
            decay: Decay::Cosine {
                eta_min: self.eta_min,
                delay_epochs: self.delay_epochs,
            },
            epochs: self.epochs,
            iters_per_epoch,
        }
    }

    /// The MGN model configuration for `num_classes` identities.
    pub fn model(&self, num_classes: usize) -> Result<MgnConfig, TrainError> {
        let trunk = Arch::from_name(&self.arch)?
            .config()
            .with_base_width(self.base_width)
            .with_last_stride(1);
        Ok(MgnConfig::new(trunk)
            .with_embedding_dim(self.embedding_dim)
            .with_num_classes(num_classes)
            .with_extra_bn(self.extra_bn))
    }

    /// The training transform: BoT's at this size with LUPerson's mean/std
    /// and erasing filled with black (0 in pixel space).
    pub fn transform(&self) -> TrainTransform {
        let mut t = TrainTransform::bot(self.height, self.width);
        t.norm = LUPERSON;
        if let Some(e) = t.erasing.as_mut() {
            for c in 0..3 {
                e.fill[c] = -LUPERSON.mean[c] / LUPERSON.std[c];
            }
        }
        t
    }
}

/// What [`finetune_mgn`] reports: a [`RunEvent`]
/// over [`Mgn`] (`Iteration`: `loss_ce` is the weighted sum of the 8 CE
/// terms, `loss_tri` of the 5 triplet terms; `EpochEnd::evaluate` is
/// always `false`, MGN has no evaluation period: the caller evaluates with
/// [`evaluate_mgn`] when it likes and records the result in
/// `EpochEnd::metrics` for the metrics log).
pub type MgnEvent<'a> = RunEvent<'a, Mgn>;

/// The result of [`finetune_mgn`]: a [`RunOutput`]
/// with the trained [`Mgn`].
pub type MgnFinetuneOutput = RunOutput<Mgn>;

/// `model` with the trunk and the three branches frozen (no gradient,
/// BatchNorm in inference mode) or trainable.
fn set_trunk_frozen(m: Mgn, frozen: bool) -> Mgn {
    if frozen {
        Mgn {
            backbone: m.backbone.freeze(),
            b1: m.b1.freeze(),
            b2: m.b2.freeze(),
            b3: m.b3.freeze(),
            ..m
        }
    } else {
        Mgn {
            backbone: m.backbone.unfreeze(),
            b1: m.b1.unfreeze(),
            b2: m.b2.unfreeze(),
            b3: m.b3.unfreeze(),
            ..m
        }
    }
}

/// Where MGN fine-tuning starts.
#[derive(Debug)]
pub enum MgnStart<'a> {
    /// The MGN of [`MgnFinetuneConfig::model`] with weights drawn from
    /// `cfg.seed`.
    Random,
    /// A whole given model (e.g. loaded with
    /// `reid_backbones::import::load_mgn`; its heads must have as many
    /// classes as the training split has identities).
    Model(Box<Mgn>),
    /// A pre-trained ResNet trunk, as LUPerson's fast-reid configs start
    /// (e.g. a LUPerson or torchvision ResNet50 loaded with
    /// `reid_backbones::import::load_backbone`, on any device): the MGN of
    /// [`MgnFinetuneConfig::model`] gets the trunk's stem, `layer1`,
    /// `layer2` and `layer3[0]` in its shared part and copies of
    /// `layer3[1:]` and `layer4` in each of its three branches
    /// ([`Mgn::load_trunk`]); the 8 heads and the extra BNs are drawn from
    /// `cfg.seed`. Strides come from the recipe (last stride 1), not from
    /// the trunk; a trunk that does not fit `cfg.arch` / `cfg.base_width`
    /// (other depth, width or IBN variant) is an error naming the mismatch.
    Trunk(&'a ResNet),
}

/// Fine-tunes MGN on `train` on the autodiff version of `device`, from
/// `start` (see [`MgnStart`]), operated by `run` as BoT's
/// [`finetune`](super::finetune) is: checkpoints every
/// [`RunOptions::checkpoint_every`] steps into
/// [`RunOptions::checkpoint_dir`] (model, Adam, the PK stream's position,
/// whether the trunk is frozen, the run's position and the configuration),
/// exact resume from the newest one ([`RunOptions::resume`]; the same
/// configuration and training split are required, otherwise
/// [`TrainError::Checkpoint`]; the weights come from the checkpoint, so a
/// given model or trunk only has to have the same structure), a JSON-lines
/// metrics log and an early stop (`RunOptions::default()` for none). A
/// resumed run computes bit-identical losses and weights to an
/// uninterrupted one on the flex backend. See the module docs.
pub fn finetune_mgn<F>(
    cfg: &MgnFinetuneConfig,
    start: MgnStart<'_>,
    train: &[ImageRecord],
    device: &Device,
    run: &RunOptions,
    callback: F,
) -> Result<MgnFinetuneOutput, TrainError>
where
    F: FnMut(MgnEvent<'_>),
{
    cfg.validate()?;
    let ad = device.clone().autodiff();
    let split = Split::new(train, cfg.p, cfg.k, cfg.seed, cfg.iters_per_epoch)?;
    let classes = split.geometry.classes;
    let model = match start {
        MgnStart::Model(m) => {
            let c = m.b1_head.weight.as_ref().map_or(0, |w| w.dims()[0]);
            if c != classes {
                return Err(TrainError::InvalidConfig(format!(
                    "the given MGN classifies {c} identities, the training split has {classes}"
                )));
            }
            (*m).to_device(&ad).train()
        }
        MgnStart::Random => reinit_weights(cfg.model(classes)?.init(&ad)?, cfg.seed, 0.01),
        MgnStart::Trunk(trunk) => {
            // Seeded draws for every part, then the trunk's weights over the
            // shared part and the branches.
            let mut m = reinit_weights(cfg.model(classes)?.init(&ad)?, cfg.seed, 0.01);
            m.load_trunk(trunk)?;
            m
        }
    };
    let plan = Plan {
        schedule: cfg.schedule(split.geometry.iters_per_epoch),
        transform: cfg.transform(),
        seed: cfg.seed,
        weight_decay: cfg.weight_decay,
    };
    let obj = MgnObjective {
        cfg,
        ce_cfg: CrossEntropyConfig::fast_reid().with_epsilon(cfg.ce_epsilon),
        tri_cfg: TripletConfig::default()
            .with_margin((cfg.triplet_margin > 0.0).then_some(cfg.triplet_margin))
            .with_distance(TripletDistance::Euclidean)
            .with_normalize_features(false)
            .with_mining(Mining::Hard),
        frozen: cfg.freeze_epochs > 0,
    };
    // Frozen for the first `freeze_epochs` (fast-reid's `FREEZE_ITERS`),
    // explicitly trainable (gradients, BatchNorm in training mode) otherwise.
    let mut model = set_trunk_frozen(model, obj.frozen);
    run.precision.check(&ad)?;
    model.precision = run.precision;
    super::supervised::train(obj, model, split, plan, &ad, run, callback)
}

/// What an MGN checkpoint keeps besides the shared run state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FreezeState {
    /// The trunk and the branches are frozen.
    trunk_frozen: bool,
}

/// MGN's losses on the shared run, and the trunk freeze.
struct MgnObjective<'a> {
    cfg: &'a MgnFinetuneConfig,
    ce_cfg: CrossEntropyConfig,
    tri_cfg: TripletConfig,
    /// Whether the trunk and the branches are frozen now.
    frozen: bool,
}

impl MgnObjective<'_> {
    /// `model` frozen or not, changed only when that differs from now.
    fn set_frozen(&mut self, model: Mgn, frozen: bool) -> Mgn {
        if frozen == self.frozen {
            return model;
        }
        self.frozen = frozen;
        set_trunk_frozen(model, frozen)
    }
}

impl Objective for MgnObjective<'_> {
    type Model = Mgn;
    type Config = MgnFinetuneConfig;
    type Extra = FreezeState;

    fn config(&self) -> &MgnFinetuneConfig {
        self.cfg
    }

    fn losses(
        &self,
        model: &Mgn,
        images: Tensor<4>,
        targets: Tensor<1, Int>,
        _iteration: usize,
    ) -> Result<(Tensor<1>, Tensor<1>), TrainError> {
        let cfg = self.cfg;
        let outs = model.train_outputs(images)?;
        let mut ce: Option<Tensor<1>> = None;
        for (head, out) in model.heads().into_iter().zip(&outs) {
            let logits = head.logits(out, targets.clone())?;
            let l = cross_entropy_label_smooth(logits, targets.clone(), &self.ce_cfg)?
                .mul_scalar(cfg.ce_weight);
            ce = Some(match ce {
                Some(s) => s.add(l),
                None => l,
            });
        }
        let feats: Vec<Tensor<2>> = outs.iter().map(|o| o.after_neck.clone()).collect();
        let groups = [
            feats[0].clone(),
            feats[1].clone(),
            feats[2].clone(),
            Tensor::cat(feats[3..5].to_vec(), 1),
            Tensor::cat(feats[5..8].to_vec(), 1),
        ];
        let mut tri: Option<Tensor<1>> = None;
        for g in groups {
            let l = triplet_loss(g, targets.clone(), &self.tri_cfg)?.mul_scalar(cfg.triplet_weight);
            tri = Some(match tri {
                Some(s) => s.add(l),
                None => l,
            });
        }
        match (ce, tri) {
            (Some(ce), Some(tri)) => Ok((ce, tri)),
            _ => Err(TrainError::InvalidConfig("MGN has no heads".into())),
        }
    }

    fn begin_epoch(&mut self, model: Mgn, epoch: usize) -> Mgn {
        self.set_frozen(model, epoch < self.cfg.freeze_epochs)
    }

    fn extra(&self) -> FreezeState {
        FreezeState {
            trunk_frozen: self.frozen,
        }
    }

    fn restore(&mut self, model: Mgn, extra: FreezeState) -> Mgn {
        self.set_frozen(model, extra.trunk_frozen)
    }
}

/// A [`Backbone`] view of an [`Mgn`] whose "feature map" is the inference
/// feature (8 post-BN head features concatenated, `[batch, 8·dim, 1, 1]`).
struct MgnEmbedder<'a> {
    model: &'a Mgn,
    dim: usize,
}

impl Backbone for MgnEmbedder<'_> {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let b = images.dims()[0];
        let device = images.device();
        // Inputs are checked to be tall enough before extraction starts.
        let e = self
            .model
            .forward(images)
            .unwrap_or_else(|_| Tensor::zeros([b, self.dim], &device));
        e.reshape([b, self.dim, 1, 1])
    }

    fn out_channels(&self) -> usize {
        self.dim
    }

    fn output_stride(&self) -> usize {
        16
    }
}

/// MGN inference features `[records.len(), 8·dim]` of `records` (not
/// normalised), batched, on the plain device.
pub fn embed_records_mgn(
    model: &Mgn,
    records: &[ImageRecord],
    transform: TestTransform,
    batch_size: usize,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    if transform.height < 48 {
        return Err(TrainError::InvalidConfig(format!(
            "MGN needs test images at least 48 pixels high, got {}",
            transform.height
        )));
    }
    let model = model.valid();
    let dim = model
        .heads()
        .iter()
        .map(|h| h.neck.gamma.val().dims()[0])
        .sum();
    let options = ExtractOptions {
        transform,
        batch_size,
        pool: reid_backbones::GlobalPool::Avg,
        normalize: false,
    };
    let device = device.clone().inner();
    extract_features(
        &MgnEmbedder { model: &model, dim },
        &image_paths(records, "evaluation")?,
        &options,
        &device,
    )
}

/// fast-reid's MGN test: the 8 post-BN features concatenated, cosine
/// distance, Market protocol.
pub fn evaluate_mgn(
    model: &Mgn,
    query: &[ImageRecord],
    gallery: &[ImageRecord],
    transform: TestTransform,
    batch_size: usize,
    device: &Device,
) -> Result<EvalResult, TrainError> {
    let q = embed_records_mgn(model, query, transform, batch_size, device)?;
    let g = embed_records_mgn(model, gallery, transform, batch_size, device)?;
    cosine_eval(&q, &g, query, gallery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;
    use reid_backbones::resnet::ResidualBlock;
    use reid_backbones::{ResNetConfig, ResNetDepth};

    fn conv1(b: &ResidualBlock) -> Vec<f32> {
        let w = match b {
            ResidualBlock::Bottleneck(b) => b.conv1.weight.val(),
            ResidualBlock::Basic(b) => b.conv1.weight.val(),
        };
        w.into_data().try_to_vec::<f32>().unwrap()
    }

    /// `res_conv4[0].conv1` and `res_conv5[0].conv1` of b1, b2, b3.
    fn branch_weights(m: &Mgn) -> Vec<Vec<f32>> {
        [&m.b1, &m.b2, &m.b3]
            .iter()
            .flat_map(|b| [conv1(&b.res_conv4[0]), conv1(&b.res_conv5[0])])
            .collect()
    }

    #[test]
    fn a_step_on_one_branch_leaves_the_other_branches_alone() {
        // From a trunk, the branches start equal but own their parameters:
        // an optimiser step driven by b2 alone moves b2 only (shared
        // ParamIds would move all three).
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let trunk_cfg = ResNetConfig::new()
            .with_depth(ResNetDepth::Custom {
                blocks: [1, 1, 2, 3],
                bottleneck: true,
            })
            .with_base_width(2);
        let trunk = trunk_cfg.init(&device).unwrap();
        let cfg = MgnConfig::new(trunk_cfg).with_embedding_dim(4);
        let model = Mgn::from_trunk(&trunk, &cfg, &ad).unwrap();
        let before = branch_weights(&model);
        assert_eq!(before[0], before[2]);
        assert_eq!(before[0], before[4]);
        let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Normal(0.0, 1.0), &ad);
        let [_, b2, _] = model.branch_maps(x);
        let grads = GradientsParams::from_grads(b2.square().mean().backward(), &model);
        let mut optim = AdamConfig::new().init();
        let model = optim.step(1e-2, model, grads);
        let after = branch_weights(&model);
        assert_eq!(after[0], before[0], "b1 res_conv4 moved");
        assert_eq!(after[1], before[1], "b1 res_conv5 moved");
        assert_ne!(after[2], before[2], "b2 res_conv4 did not train");
        assert_ne!(after[3], before[3], "b2 res_conv5 did not train");
        assert_eq!(after[4], before[4], "b3 res_conv4 moved");
        assert_eq!(after[5], before[5], "b3 res_conv5 moved");
    }
}
