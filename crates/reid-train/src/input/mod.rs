//! What the recipes read: a training split prepared for batching
//! ([`TrainSet`]), the endless PK stream of fine-tuning ([`BatchStream`]),
//! the parallel decode + augmentation of a batch ([`load_train_batch`]) and
//! the multi-view pre-training batches ([`views::load_view_batch`]). Every
//! random draw comes from [`augment_seed`](crate::engine::augment_seed)
//! streams, so a batch does not depend on the thread schedule.

mod batch;
pub mod views;

pub use batch::{BatchStream, StreamState, TrainSet, load_train_batch, load_train_shard};
