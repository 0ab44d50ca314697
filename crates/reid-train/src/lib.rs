//! # reid-train
//!
//! Composes the other crates into the loops a researcher runs:
//! - [`extract`]: embeddings of a list of images with any backbone and pooling
//!   (batched, in inference mode), as a plain `ndarray` matrix for
//!   `reid-metrics`;
//! - [`mod@finetune`]: the BoT supervised fine-tuning recipe (BNNeck, CE with
//!   label smoothing + batch-hard triplet, PK batches, Adam) with a
//!   per-iteration log, fast-reid-style evaluation, and checkpoints with
//!   exact resume ([`finetune()`], [`RunOptions`]);
//! - [`schedule`]: learning-rate warm-up and decay (multi-step, cosine);
//!
//! - [`pretrain`]: the pre-training recipes — LUPerson MoCo v2
//!   ([`pretrain_moco`]), LUPerson-NL PNL ([`pretrain_pnl`]) and CION
//!   ([`pretrain_cion`]) — with [`RunOptions`] for checkpoints and exact
//!   resume, a JSON-lines metrics log and progress events;
//! - [`precision`]: mixed precision (`f16`/`bf16` backbones with `f32`
//!   master weights, [`RunOptions::precision`]) and `f16` loss scaling;
//! - [`checkpoint`]: atomic checkpoint folders, module/optimiser
//!   serialisation; [`metrics_log`]: the JSON-lines log.
//!
//! - [`finetune::mgn`]: MGN fine-tuning as LUPerson's fast-reid configs run
//!   it (8 circle-softmax heads, soft-margin triplet, frozen trunk first),
//!   from random weights, a whole MGN, or a pre-trained ResNet trunk copied
//!   into all three branches ([`finetune_mgn`], [`MgnStart`]); with
//!   checkpoints and exact resume as BoT.
//!
//! One entry function per recipe — [`finetune()`], [`finetune_mgn`],
//! [`pretrain_moco`], [`pretrain_pnl`], [`pretrain_cion`] — each taking its
//! configuration, where the backbone comes from ([`FromConfig`] or a given
//! [`reid_backbones::TrainBackbone`]; [`MgnStart`] for MGN), the data, the
//! device, the [`RunOptions`] and a progress callback.
//!
//! See `docs/training.md` and `docs/pretraining.md`.
//!
//! # Example
//!
//! BoT fine-tuning for two steps on a tiny synthetic Market-1501 (a
//! ResNet18 of base width 4 on 64×32 crops, P×K = 2×2; the recipe's
//! defaults are fast-reid's: ResNet50, 256×128, 16×4, 120 epochs), then the
//! trained model evaluated on the set's query and gallery:
//!
//! ```
//! use burn::tensor::Device;
//! use reid_data::batch::TestTransform;
//! use reid_data::datasets::{ImageDatasetOptions, market1501};
//! use reid_synth::{Market1501Config, Span, WorldConfig, write_market1501};
//! use reid_train::{FinetuneConfig, FinetuneEvent, FromConfig, RunOptions, evaluate_model, finetune};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = std::env::temp_dir().join(format!("reid-train-doc-{}", std::process::id()));
//!     let world = WorldConfig::default()
//!         .with_height(64)
//!         .with_width(32)
//!         .with_overwrite(true);
//!     let sizes = Market1501Config::default()
//!         .with_train_ids(4)
//!         .with_test_ids(2)
//!         .with_cameras(2)
//!         .with_cams_per_id(Span::new(2, 2))
//!         .with_images_per_cam(Span::new(2, 2))
//!         .with_junk(0)
//!         .with_distractors(0);
//!     let report = write_market1501(&dir, &world, &sizes)?;
//!     let data = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default())?;
//!
//!     // Option and config structs are `#[non_exhaustive]`: a preset or
//!     // `Default`, then `with_<field>` setters.
//!     let cfg = FinetuneConfig::bot()
//!         .with_arch("resnet18".into())
//!         .with_base_width(4)
//!         .with_height(64)
//!         .with_width(32)
//!         .with_p(2)
//!         .with_k(2)
//!         .with_epochs(1)
//!         .with_iters_per_epoch(Some(2));
//!     let device = Device::flex(); // the recipe trains on `device.autodiff()`
//!     let mut steps = 0;
//!     let run = RunOptions::default(); // no checkpoints, no metrics log
//!     let out = finetune(&cfg, FromConfig, &data.splits.train, &device, &run, |event| {
//!         if let FinetuneEvent::Iteration(log) = event {
//!             assert!(log.loss_ce.is_finite() && log.loss_tri.is_finite());
//!             steps += 1;
//!         }
//!     })?;
//!     assert_eq!((steps, out.log.len(), out.num_classes), (2, 2, 4));
//!
//!     let q = &data.splits.query;
//!     let g = &data.splits.gallery;
//!     let result = evaluate_model(&out.model, q, g, TestTransform::new(64, 32), 8, &device)?;
//!     assert!((0.0..=1.0).contains(&result.map));
//!     std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod error;
pub mod extract;
pub mod finetune;
pub mod init;
pub mod input;
pub mod pretrain;
pub mod schedule;

pub use engine::{checkpoint, metrics_log, parallel, precision};

pub use engine::{
    BackboneConfig, BackboneSource, FromConfig, PretrainEvent, RunOptions, StartingBackbone,
    StepReport,
};
pub use error::TrainError;
pub use extract::{
    ExtractOptions, extract_embeddings, extract_embeddings_from_array, extract_features,
    extract_features_from_array,
};
pub use finetune::mgn::{MgnStart, finetune_mgn};
pub use finetune::{
    FinetuneConfig, FinetuneEvent, FinetuneOutput, IterationLog, evaluate_model, finetune,
};
pub use metrics_log::{EVAL_KEYS, EpochMetrics, LogLine, MetricsLog};
pub use parallel::{DataParallel, ShardOutput, shard_ranges};
pub use precision::{LossScaler, Precision};
pub use pretrain::cion::{CionConfig, CionNet, CionOutput, pretrain_cion};
pub use pretrain::moco::{MocoConfig, MocoNet, MocoOutput, pretrain_moco};
pub use pretrain::pnl::{PnlConfig, PnlNet, PnlOutput, pretrain_pnl};
pub use schedule::{Decay, LrSchedule, Warmup};
