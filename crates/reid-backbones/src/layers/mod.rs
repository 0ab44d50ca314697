//! Layers shared by the model families: stochastic depth ([`drop_path()`],
//! its three noise sources, and the per-block rates every family derives
//! the same way).

pub mod drop_path;

pub(crate) use drop_path::mix;
pub use drop_path::{DropPathRng, drop_path, drop_path_rate, drop_path_seeded, drop_path_stream};
