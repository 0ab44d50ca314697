//! What the recipes read: a training split prepared for batching
//! ([`TrainSet`]), the endless PK stream of fine-tuning ([`BatchStream`]),
//! the parallel decode + augmentation of a batch ([`load_train_batch`]) and
//! the multi-view pre-training batches ([`views::load_view_batch`]); the
//! image files and labels evaluation reads ([`image_paths`], [`eval_labels`]). Every
//! random draw comes from [`augment_seed`](crate::engine::augment_seed)
//! streams, so a batch does not depend on the thread schedule.

mod batch;
mod records;
pub mod views;

pub use batch::{BatchStream, StreamState, TrainSet, load_train_batch, load_train_shard};
pub use records::{eval_labels, image_paths};
