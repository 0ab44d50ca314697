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
//! Initialisation: [`finetune_mgn_from_trunk`] starts from a pre-trained
//! ResNet trunk (an ImageNet, LUPerson or LUPerson-NL ResNet50 imported
//! with `reid_backbones::import::load_backbone`), copied into the shared
//! trunk and all three branches as fast-reid's `MGN` does
//! ([`Mgn::from_trunk`]), the heads and extra BNs seeded-random; this is
//! how LUPerson's configs fine-tune (`MODEL.BACKBONE.PRETRAIN_PATH`).
//! [`finetune_mgn`] starts from a whole given MGN or from random weights.
//!
//! Deviations: the cosine decays per epoch ([`crate::schedule`]), fast-reid's
//! per iteration; the pixel normalisation is the LUPerson mean/std of
//! `reid_data::normalize::LUPERSON` (the config's std differs in the third
//! decimal); no AMP, one device.

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use ndarray::Array2;
use reid_backbones::{Arch, Backbone, Mgn, MgnConfig, ResNet};
use reid_data::ImageRecord;
use reid_data::augment::TrainTransform;
use reid_data::batch::TestTransform;
use reid_data::normalize::LUPERSON;
use reid_data::sampler::PkSampler;
use reid_losses::{
    CrossEntropyConfig, Mining, TripletConfig, TripletDistance, cross_entropy_label_smooth,
    triplet_loss,
};
use reid_metrics::EvalResult;
use serde::{Deserialize, Serialize};

use super::IterationLog;
use super::batch::{BatchStream, TrainSet, load_train_batch};
use super::eval::{cosine_eval, paths};
use super::init::reinit_weights;
use crate::error::TrainError;
use crate::extract::{ExtractOptions, extract_features};
use crate::schedule::{Decay, LrSchedule, Warmup};

/// Every hyper-parameter of MGN fine-tuning; defaults are LUPerson's
/// fast-reid MGN config. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What [`finetune_mgn`] reports.
#[derive(Debug)]
pub enum MgnEvent<'a> {
    /// After each optimiser step (`loss_ce`: the weighted sum of the 8 CE
    /// terms; `loss_tri`: of the 5 triplet terms).
    Iteration(&'a IterationLog),
    /// After the last step of an epoch.
    EpochEnd {
        /// 0-based epoch.
        epoch: usize,
        /// The model (autodiff device).
        model: &'a Mgn,
    },
}

/// The result of [`finetune_mgn`].
#[derive(Debug)]
pub struct MgnFinetuneOutput {
    /// The trained model, a validation snapshot on the plain device.
    pub model: Mgn,
    /// One entry per step.
    pub log: Vec<IterationLog>,
    /// Training identities.
    pub num_classes: usize,
}

fn set_trunk_frozen(model: Mgn, frozen: bool) -> Mgn {
    let f = |m: Mgn| -> Mgn {
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
    };
    f(model)
}

/// Where fine-tuning starts.
enum Start<'a> {
    /// Seeded random weights.
    Random,
    /// A whole given model.
    Model(Box<Mgn>),
    /// A pre-trained trunk; heads and extra BNs seeded-random.
    Trunk(&'a ResNet),
}

/// Fine-tunes MGN on `train` on the autodiff version of `device`: from
/// `model` (e.g. loaded with `reid_backbones::import::load_mgn`; its heads
/// must have as many classes as `train` has identities) or, with `None`, a
/// model built from `cfg` with seeded random weights. See the module docs.
pub fn finetune_mgn<F>(
    cfg: &MgnFinetuneConfig,
    model: Option<Mgn>,
    train: &[ImageRecord],
    device: &Device,
    callback: F,
) -> Result<MgnFinetuneOutput, TrainError>
where
    F: FnMut(MgnEvent<'_>),
{
    let start = match model {
        Some(m) => Start::Model(Box::new(m)),
        None => Start::Random,
    };
    run(cfg, start, train, device, callback)
}

/// Fine-tunes MGN on `train` on the autodiff version of `device`, starting
/// as LUPerson's fast-reid configs do from a pre-trained ResNet `trunk`
/// (e.g. a LUPerson or torchvision ResNet50 loaded with
/// `reid_backbones::import::load_backbone`, on any device): the MGN of
/// [`MgnFinetuneConfig::model`] gets the trunk's stem, `layer1`, `layer2`
/// and `layer3[0]` in its shared part and copies of `layer3[1:]` and
/// `layer4` in each of its three branches ([`Mgn::load_trunk`]); the 8
/// heads and the extra BNs are drawn from `cfg.seed`. Strides come from the
/// recipe (last stride 1), not from the trunk.
///
/// Errors: as [`finetune_mgn`], and a trunk that does not fit `cfg.arch` /
/// `cfg.base_width` (other depth, width or IBN variant), named in the
/// message.
pub fn finetune_mgn_from_trunk<F>(
    cfg: &MgnFinetuneConfig,
    trunk: &ResNet,
    train: &[ImageRecord],
    device: &Device,
    callback: F,
) -> Result<MgnFinetuneOutput, TrainError>
where
    F: FnMut(MgnEvent<'_>),
{
    run(cfg, Start::Trunk(trunk), train, device, callback)
}

fn run<F>(
    cfg: &MgnFinetuneConfig,
    start: Start<'_>,
    train: &[ImageRecord],
    device: &Device,
    mut callback: F,
) -> Result<MgnFinetuneOutput, TrainError>
where
    F: FnMut(MgnEvent<'_>),
{
    cfg.validate()?;
    let ad = device.clone().autodiff();
    let set = TrainSet::new(train)?;
    let classes = set.num_classes;
    let model = match start {
        Start::Model(m) => {
            let c = m.b1_head.weight.as_ref().map_or(0, |w| w.dims()[0]);
            if c != classes {
                return Err(TrainError::InvalidConfig(format!(
                    "the given MGN classifies {c} identities, the training split has {classes}"
                )));
            }
            (*m).to_device(&ad).train()
        }
        Start::Random => reinit_weights(cfg.model(classes)?.init(&ad)?, cfg.seed, 0.01),
        Start::Trunk(trunk) => {
            // Seeded draws for every part, then the trunk's weights over the
            // shared part and the branches.
            let mut m = reinit_weights(cfg.model(classes)?.init(&ad)?, cfg.seed, 0.01);
            m.load_trunk(trunk)?;
            m
        }
    };
    let sampler = PkSampler::new(train, cfg.p, cfg.k, cfg.seed)?;
    let ipe = cfg
        .iters_per_epoch
        .unwrap_or_else(|| sampler.iters_per_epoch_fastreid());
    if ipe == 0 {
        return Err(TrainError::InvalidConfig(format!(
            "{} images make no batch of P·K = {}: set iters_per_epoch",
            train.len(),
            cfg.p * cfg.k
        )));
    }
    let schedule = cfg.schedule(ipe);
    schedule.validate()?;
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
        )
        .init();
    let transform = cfg.transform();
    let ce_cfg = CrossEntropyConfig {
        epsilon: cfg.ce_epsilon,
        ..CrossEntropyConfig::fast_reid()
    };
    let tri_cfg = TripletConfig {
        margin: (cfg.triplet_margin > 0.0).then_some(cfg.triplet_margin),
        distance: TripletDistance::Euclidean,
        normalize_features: false,
        mining: Mining::Hard,
    };
    let mut model = set_trunk_frozen(model, cfg.freeze_epochs > 0);
    let mut stream = BatchStream::new(sampler);
    let mut log = Vec::with_capacity(cfg.epochs * ipe);
    for epoch in 0..cfg.epochs {
        if epoch == cfg.freeze_epochs && epoch > 0 {
            model = set_trunk_frozen(model, false);
        }
        for i in 0..ipe {
            let iteration = epoch * ipe + i;
            let lr = schedule.lr_at(iteration);
            let indices = stream.next_batch()?;
            let (images, targets) =
                load_train_batch(&set, &indices, &transform, cfg.seed, iteration, &ad)?;
            let outs = model.train_outputs(images)?;
            let mut ce: Option<Tensor<1>> = None;
            for (head, out) in model.heads().into_iter().zip(&outs) {
                let logits = head.logits(out, targets.clone())?;
                let l = cross_entropy_label_smooth(logits, targets.clone(), &ce_cfg)?
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
                let l = triplet_loss(g, targets.clone(), &tri_cfg)?.mul_scalar(cfg.triplet_weight);
                tri = Some(match tri {
                    Some(s) => s.add(l),
                    None => l,
                });
            }
            let (Some(ce), Some(tri)) = (ce, tri) else {
                return Err(TrainError::InvalidConfig("MGN has no heads".into()));
            };
            let loss_ce = super::scalar(&ce)?;
            let loss_tri = super::scalar(&tri)?;
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
            callback(MgnEvent::Iteration(&entry));
            log.push(entry);
        }
        callback(MgnEvent::EpochEnd {
            epoch,
            model: &model,
        });
    }
    Ok(MgnFinetuneOutput {
        model: model.valid(),
        log,
        num_classes: classes,
    })
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
        &paths(records, "evaluation")?,
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
