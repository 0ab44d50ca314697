//! # reid-losses
//!
//! The objectives of ReID fine-tuning as burn functions that run on any
//! device, with or without autodiff (`Device::flex().autodiff()` for training).
//!
//! Implemented (value-and-gradient parity with PyTorch references in
//! `tests/integration/parity.rs`):
//! - [`cross_entropy`]: label smoothing in the torchreid/BoT and fast-reid conventions;
//! - [`triplet`]: batch-hard or softmax-weighted triplet (Euclidean / cosine,
//!   margin or soft margin, optional feature normalisation);
//! - [`center`]: BoT's center loss;
//! - [`circle`]: circle-softmax classifier logits and the pair-wise circle loss;
//! - [`dino`]: CION's DINO head, identity-guided self-distillation loss and
//!   center (`tests/integration/parity_cion.rs`);
//! - [`schedule`]: cosine schedules, teacher EMA, per-tensor gradient clipping;
//! - [`moco`]: LUPerson's MoCo v2 — InfoNCE, the key queue, the key-encoder
//!   momentum update and single-device shuffle-BN (`tests/integration/parity_pretrain.rs`);
//! - [`pnl`]: LUPerson-NL's PNL — prototype bank, label correction,
//!   label-guided contrastive loss and the per-step losses (`tests/integration/parity_pretrain.rs`).
//!
//! See `docs/losses.md` for the formulas and the upstream quirks reproduced
//! (each with its switch).
//!
//! # Example
//!
//! BoT's batch-hard triplet loss (margin 0.3, Euclidean) on a PK batch of
//! two identities with two images each, on an autodiff device so that the
//! gradient reaches the features:
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use reid_losses::{TripletConfig, triplet_loss};
//!
//! fn main() -> Result<(), reid_losses::LossError> {
//!     let device = Device::flex().autodiff();
//!     let features = Tensor::<2>::from_data(
//!         TensorData::new(vec![0.0f32, 0.0, 0.0, 2.0, 1.0, 0.0, 1.0, 2.0], [4, 2]),
//!         &device,
//!     )
//!     .require_grad();
//!     let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1], [4]), &device);
//!
//!     let loss = triplet_loss(features.clone(), labels, &TripletConfig::default())?;
//!     // Every anchor: hardest positive at distance 2, hardest negative at 1,
//!     // so the loss is 2 − 1 + 0.3.
//!     let value: f32 = loss.clone().into_scalar();
//!     assert!((value - 1.3).abs() < 1e-5);
//!
//!     let grads = loss.backward();
//!     let grad = features.grad(&grads).expect("features require a gradient");
//!     assert_eq!(grad.dims(), [4, 2]);
//!     Ok(())
//! }
//! ```

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
