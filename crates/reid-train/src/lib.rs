//! # reid-train
//!
//! Composes the other crates into the loops a researcher runs:
//! - [`extract`]: embeddings of a list of images with any backbone and pooling
//!   (batched, in inference mode), as a plain `ndarray` matrix for
//!   `reid-metrics`;
//! - [`mod@finetune`]: the BoT supervised fine-tuning recipe (BNNeck, CE with
//!   label smoothing + batch-hard triplet, PK batches, Adam) with a
//!   per-iteration log, fast-reid-style evaluation, and checkpoints with
//!   exact resume ([`finetune_with`], [`RunOptions`]);
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
//!   into all three branches (`finetune_mgn_from_trunk`); with checkpoints
//!   and exact resume as BoT (`finetune_mgn_with`).
//!
//! See `docs/training.md` and `docs/pretraining.md`.

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

pub use engine::{PretrainEvent, RunOptions, StepReport};
pub use error::TrainError;
pub use extract::{
    ExtractOptions, extract_embeddings, extract_embeddings_from_array, extract_features,
    extract_features_from_array,
};
pub use finetune::{
    FinetuneConfig, FinetuneEvent, FinetuneOutput, IterationLog, evaluate_model, finetune,
    finetune_backbone, finetune_backbone_with, finetune_with,
};
pub use metrics_log::{EVAL_KEYS, EpochMetrics, LogLine, MetricsLog};
pub use parallel::{DataParallel, ShardOutput, shard_ranges};
pub use precision::{LossScaler, Precision};
pub use pretrain::cion::{CionConfig, CionNet, CionOutput, pretrain_cion, pretrain_cion_from};
pub use pretrain::moco::{MocoConfig, MocoNet, MocoOutput, pretrain_moco, pretrain_moco_from};
pub use pretrain::pnl::{PnlConfig, PnlNet, PnlOutput, pretrain_pnl, pretrain_pnl_from};
pub use schedule::{Decay, LrSchedule, Warmup};
