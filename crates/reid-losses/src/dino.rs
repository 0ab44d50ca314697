//! CION's identity-guided self-distillation (Zuo et al., NeurIPS 2024), built
//! on DINO (Caron et al., 2021).
//!
//! - [`DinoHead`]: the projection head of student and teacher
//!   (MLP → L2 normalisation → weight-normalised last layer);
//! - [`identity_guided_dino_loss`] / [`dino_loss`]: the distillation
//!   objective over multi-crop outputs, with the identity cross terms;
//! - [`DinoCenter`]: the teacher-output center and its momentum update;
//! - [`dino_diagnostics`] / [`CollapseMonitor`]: teacher entropies, KL and
//!   collapse detection for the metrics log.
//!
//! The schedules, the teacher EMA and the per-tensor gradient clipping of the
//! recipe live in [`crate::schedule`]. See `docs/losses.md` for the formula
//! and the upstream quirks.

mod center;
mod diagnostics;
mod head;
mod loss;

pub use center::DinoCenter;
pub use diagnostics::{Collapse, CollapseMonitor, DinoDiagnostics, dino_diagnostics};
pub use head::{CION_OUT_DIM, DinoHead, DinoHeadConfig, WeightNormLinear};
pub use loss::{
    DinoLossConfig, dino_loss, identity_guided_dino_loss, sinkhorn_targets, teacher_targets,
};
