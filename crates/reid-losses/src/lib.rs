//! # reid-losses
//!
//! The objectives of ReID fine-tuning as burn functions that run on any
//! device, with or without autodiff (`Device::flex().autodiff()` for training).
//!
//! Implemented (value-and-gradient parity with PyTorch references in
//! `tests/parity.rs`):
//! - [`cross_entropy`]: label smoothing in the torchreid/BoT and fast-reid conventions;
//! - [`triplet`]: batch-hard or softmax-weighted triplet (Euclidean / cosine,
//!   margin or soft margin, optional feature normalisation);
//! - [`center`]: BoT's center loss;
//! - [`circle`]: circle-softmax classifier logits and the pair-wise circle loss;
//! - [`dino`]: CION's DINO head, identity-guided self-distillation loss and
//!   center (`tests/parity_cion.rs`);
//! - [`schedule`]: cosine schedules, teacher EMA, per-tensor gradient clipping;
//! - [`moco`]: LUPerson's MoCo v2 — InfoNCE, the key queue, the key-encoder
//!   momentum update and single-device shuffle-BN (`tests/parity_pretrain.rs`);
//! - [`pnl`]: LUPerson-NL's PNL — prototype bank, label correction,
//!   label-guided contrastive loss and the per-step losses (`tests/parity_pretrain.rs`).
//!
//! See `docs/losses.md` for the formulas and the upstream quirks reproduced
//! (each with its switch).

#![warn(missing_docs)]

pub mod center;
pub mod circle;
pub mod cross_entropy;
pub mod dino;
mod error;
pub mod moco;
pub mod pnl;
pub mod schedule;
pub mod triplet;
mod validate;

pub use center::{CENTER_LOSS_WEIGHT, center_loss};
pub use circle::{circle_softmax_logits, pairwise_circle_loss};
pub use cross_entropy::{
    ADAPTIVE_EPSILON, ADAPTIVE_SMOOTHING_ALPHA, CrossEntropyConfig, SmoothingConvention,
    cross_entropy_adaptive_smooth, cross_entropy_label_smooth,
};
pub use dino::{
    CION_OUT_DIM, DinoCenter, DinoHead, DinoHeadConfig, DinoLossConfig, WeightNormLinear,
    dino_loss, identity_guided_dino_loss,
};
pub use error::LossError;
pub use moco::{
    InfoNceQueue, QueueState, info_nce, instance_accuracy, momentum_update, shuffled_group_forward,
};
pub use pnl::{
    PnlLossConfig, PnlStepLosses, PrototypeBank, PrototypeState, correct_labels,
    label_guided_instance_loss, pnl_step_losses, proto_logits,
};
pub use schedule::{
    clip_gradients_per_param, cosine_schedule, ema_update, schedule_at, teacher_momentum_schedule,
};
pub use triplet::{Mining, TripletConfig, TripletDistance, triplet_loss};
