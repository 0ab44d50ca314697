//! The engine every recipe runs on, and that depends on no recipe:
//!
//! - [`options`]: [`RunOptions`], how a run is operated;
//! - [`drive`]: the shared loop over a recipe's steps, positions and the
//!   step bookkeeping; [`events`]: what a run reports;
//! - [`resume`] and [`checkpoint`]: atomic checkpoint folders and exact
//!   resume; [`metrics_log`]: the JSON-lines metrics log;
//! - [`seed`]: per-slot augmentation seeds and the shuffled epoch sampler;
//! - [`parallel`]: data parallelism over devices (and shuffle-BN);
//! - [`precision`]: mixed precision and `f16` loss scaling;
//! - [`optim`]: decoupled weight decay, gradient scaling and the SGD of
//!   MoCo and PNL; [`step`]: loss read-back and finiteness checks;
//! - [`source`]: where a recipe's backbone comes from ([`FromConfig`] or a
//!   given one).
//!
//! `pretrain` and `finetune` depend on this module and on `input` and
//! `init`, never on each other (see `docs/architecture.md`).

pub mod checkpoint;
pub mod drive;
pub mod events;
pub mod metrics_log;
pub mod optim;
pub mod options;
pub mod parallel;
pub mod precision;
pub mod resume;
pub mod seed;
pub mod source;
pub mod step;

pub use drive::Position;
pub use events::{PretrainEvent, StepReport};
pub use options::RunOptions;
pub use seed::{augment_seed, shuffled_batches};
pub use source::{BackboneConfig, BackboneSource, FromConfig, StartingBackbone};
