//! Training-schedule helpers of the DINO/CION recipe.
//!
//! - [`cosine_schedule`]: per-iteration values, linear warm-up then a
//!   half-cosine (DINO's `cosine_scheduler`): learning rate
//!   (peak `5e-4·batch/256` → 1e-6, 10 warm-up epochs from 0), weight decay
//!   (0.04 → 0.4) and, through [`teacher_momentum_schedule`], the teacher
//!   EMA momentum (0.996 → 1);
//! - [`schedule_at`]: a schedule's value at an iteration, the last one past
//!   the end (CION's arrays are sized for the first, `K = 2`, data loader);
//! - [`cion_instances`]: CION's progressive instances-per-identity `K`;
//! - [`ema_update`]: `θ_t ← m·θ_t + (1 − m)·θ_s` over parameters only;
//! - [`clip_gradients_per_param`]: per-parameter-tensor gradient-norm
//!   clipping (DINO's `clip_gradients`, 3.0 in CION).

mod clip;

pub use clip::{CLIP_EPSILON, clip_gradients_per_param};

use burn::module::Module;

use crate::LossError;
use crate::validate::nonzero_sizes;

const NAME: &str = "cosine_schedule";

/// CION's progressive schedule: `K = CION_GRADUAL_INSTANCES[i]` while
/// `epoch < CION_GRADUAL_EPOCHS[i]`.
pub const CION_GRADUAL_EPOCHS: [usize; 4] = [40, 60, 80, 100];

/// Instances per identity of each stage of [`CION_GRADUAL_EPOCHS`].
pub const CION_GRADUAL_INSTANCES: [usize; 4] = [2, 4, 6, 8];

/// Per-iteration schedule of `epochs · iters_per_epoch` values: a linear
/// warm-up over `warmup_epochs · iters_per_epoch` iterations from
/// `warmup_start` to `base` (both ends included, like `numpy.linspace`),
/// then `final + ½(base − final)(1 + cos(π·i/R))` for `i = 0..R`, `R` the
/// remaining iterations.
///
/// # Errors
/// [`LossError::InvalidParameter`] when `epochs` or `iters_per_epoch` is 0,
/// `warmup_epochs > epochs`, or a value is not finite.
pub fn cosine_schedule(
    base: f64,
    final_value: f64,
    epochs: usize,
    iters_per_epoch: usize,
    warmup_epochs: usize,
    warmup_start: f64,
) -> Result<Vec<f64>, LossError> {
    for (name, value) in [
        ("base", base),
        ("final_value", final_value),
        ("warmup_start", warmup_start),
    ] {
        if !value.is_finite() {
            return Err(LossError::InvalidParameter {
                loss: NAME,
                name,
                value,
                expected: "a finite value",
            });
        }
    }
    nonzero_sizes(
        NAME,
        &[("epochs", epochs), ("iters_per_epoch", iters_per_epoch)],
        "at least 1",
    )?;
    if warmup_epochs > epochs {
        return Err(LossError::InvalidParameter {
            loss: NAME,
            name: "warmup_epochs",
            value: warmup_epochs as f64,
            expected: "warmup_epochs <= epochs",
        });
    }
    let total = epochs * iters_per_epoch;
    let warmup = warmup_epochs * iters_per_epoch;
    let mut out = Vec::with_capacity(total);
    if warmup == 1 {
        out.push(warmup_start);
    } else if warmup > 1 {
        let step = (base - warmup_start) / (warmup - 1) as f64;
        out.extend((0..warmup - 1).map(|i| warmup_start + i as f64 * step));
        out.push(base);
    }
    let rest = total - warmup;
    out.extend((0..rest).map(|i| {
        let phase = std::f64::consts::PI * i as f64 / rest as f64;
        final_value + 0.5 * (base - final_value) * (1.0 + phase.cos())
    }));
    Ok(out)
}

/// The teacher EMA momentum per iteration: cosine from `base` (0.996 in
/// CION) to 1 over `epochs · iters_per_epoch` iterations, no warm-up.
///
/// # Errors
/// As [`cosine_schedule`].
pub fn teacher_momentum_schedule(
    base: f64,
    epochs: usize,
    iters_per_epoch: usize,
) -> Result<Vec<f64>, LossError> {
    cosine_schedule(base, 1.0, epochs, iters_per_epoch, 0, 0.0)
}

/// `schedule[iteration]`, or the last value past the end; `None` when the
/// schedule is empty.
pub fn schedule_at(schedule: &[f64], iteration: usize) -> Option<f64> {
    schedule.get(iteration).or_else(|| schedule.last()).copied()
}

/// DINO/CION's teacher update `θ_t ← m·θ_t + (1 − m)·θ_s` over the
/// **parameters** of `teacher` (in place), `m` from
/// [`teacher_momentum_schedule`]. BatchNorm running statistics are left
/// untouched (the teacher's change only through its own forward passes in
/// train mode, as upstream); frozen parameters are averaged too, like
/// PyTorch's `zip(student.parameters(), teacher.parameters())`. The same
/// update as MoCo's key encoder: this is [`crate::moco::momentum_update`].
///
/// # Errors
/// [`LossError::InvalidParameter`] when `m ∉ [0, 1]`;
/// [`LossError::ModuleMismatch`] when the modules' parameter paths or shapes
/// differ. The teacher is unchanged on error.
pub fn ema_update<M: Module>(teacher: &mut M, student: &M, momentum: f64) -> Result<(), LossError> {
    crate::moco::momentum_update(teacher, student, momentum)
}

/// CION's instances per identity `K` at `epoch` (0-based): 2 before epoch
/// 40, 4 before 60, 6 before 80, 8 before 100; `None` from epoch 100 on
/// (upstream has no value there either).
pub fn cion_instances(epoch: usize) -> Option<usize> {
    CION_GRADUAL_EPOCHS
        .iter()
        .zip(CION_GRADUAL_INSTANCES)
        .find(|(end, _)| epoch < **end)
        .map(|(_, k)| k)
}
