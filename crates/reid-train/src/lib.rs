//! # reid-train
//!
//! Training recipes composed from the other crates: LUPerson MoCo v2,
//! LUPerson-NL PNL and CION pre-training; BoT and MGN fine-tuning; schedules,
//! EMA, checkpoints with exact resume, progress and metrics logs.
//!
//! Nothing is implemented yet; see `docs/architecture.md` for the plan.

/// Errors raised by the training recipes.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
