//! # reid-losses
//!
//! The objectives of ReID fine-tuning and of the three pre-training methods,
//! as burn functions and modules that run on any device with autodiff.
//!
//! Planned modules (each lands with value-and-gradient parity tests against
//! PyTorch fixtures):
//! - `cross_entropy`: label smoothing in the torchreid/BoT and fast-reid conventions;
//! - `triplet`: batch-hard triplet (Euclidean / cosine, margin or soft margin);
//! - `circle`: circle-softmax classifier loss and pair-wise circle loss; `center`;
//! - `moco`: InfoNCE with a momentum key encoder and a FIFO negative queue (LUPerson);
//! - `pnl`: prototype bank, label correction and prototype contrast (LUPerson-NL);
//! - `cion`: DINO head, teacher centering and the identity-guided
//!   self-distillation loss (CION).
//!
//! Nothing is implemented yet; see `docs/architecture.md` for the plan.

/// Errors raised by the losses (shape and label mismatches, non-finite values).
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// Two inputs disagree in shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
}
