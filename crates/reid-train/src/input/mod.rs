//! What the recipes read: a training split prepared for batching
//! ([`TrainSet`]), the endless PK stream of fine-tuning ([`BatchStream`]),
//! the parallel decode + augmentation of a batch ([`load_train_batch`]) and
//! the multi-view pre-training batches ([`views::load_view_batch`]); the
//! image files and labels evaluation reads ([`image_paths`], [`eval_labels`]).
//! Every batch is read by reid-data's loader ([`TrainSet::loader`]: parallel
//! decode, the fused BoT transform, per-image random streams keyed by the
//! step and the slot), so a batch does not depend on the thread schedule.

mod batch;
mod records;
pub mod views;

pub use batch::{BatchStream, StreamState, TrainSet, load_train_batch};
pub use records::{eval_labels, image_paths};
