//! Mixed precision in the training loops: the [`Precision`] a recipe's
//! backbone computes in ([`RunOptions::precision`](super::options::RunOptions::precision),
//! see [`reid_backbones::precision`]) and, for `f16`, dynamic loss scaling
//! ([`LossScaler`], the rule of PyTorch's `torch.cuda.amp.GradScaler` with
//! its defaults).
//!
//! A step with a scaler: the loss is multiplied by [`LossScaler::scale`]
//! before the backward pass; the gradients (of `f32` parameters, so in
//! `f32`) are then checked and divided by the scale
//! ([`LossScaler::unscale`]). A step whose gradients hold an infinity or a
//! NaN (an `f16` overflow) applies no update (optimiser, weight decay), and
//! the scale halves; after 2,000 good steps in a row it doubles. The
//! recipes log the scale (`loss_scale`) and count skipped steps
//! (`skipped_steps`), and keep the scaler in their checkpoints.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use reid_backbones::Precision;

use super::metrics_log::LogLine;
use super::optim::scale_grads;
use crate::error::TrainError;

/// Dynamic loss scaling (PyTorch's `GradScaler` rule and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The current scale (starts at 2¹⁶).
    pub scale: f64,
    /// Factor applied after `growth_interval` good steps in a row (2).
    pub growth_factor: f64,
    /// Factor applied after a step with non-finite gradients (0.5).
    pub backoff_factor: f64,
    /// Good steps in a row before the scale grows (2,000).
    pub growth_interval: usize,
    /// Good steps since the last growth or backoff.
    pub good_steps: usize,
    /// Steps skipped so far for non-finite gradients.
    pub skipped_steps: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            good_steps: 0,
            skipped_steps: 0,
        }
    }
}

impl LossScaler {
    /// The scaler a run in `precision` needs: one for `f16` (5-bit exponent:
    /// small gradients underflow unscaled), none for `f32` and `bf16`.
    pub fn for_precision(precision: Precision) -> Option<Self> {
        (precision == Precision::F16).then(Self::default)
    }

    /// The scaler of a run with these options: [`LossScaler::for_precision`]
    /// starting at [`RunOptions::init_loss_scale`] when that is set.
    ///
    /// [`RunOptions::init_loss_scale`]: super::options::RunOptions::init_loss_scale
    pub fn for_run(run: &super::options::RunOptions) -> Option<Self> {
        Self::for_precision(run.precision).map(|s| Self {
            scale: run.init_loss_scale.unwrap_or(s.scale),
            ..s
        })
    }

    /// On resume: the checkpoint's scaler (`stored`) replaces the run's
    /// (`current`) when both have one.
    pub(crate) fn resume(current: &mut Option<Self>, stored: Option<Self>) {
        if current.is_some() && stored.is_some() {
            *current = stored;
        }
    }

    /// Checks the (scaled) gradients of `module`'s parameters in `grads`
    /// and updates the scale. Finite: returns them divided by the scale
    /// (the scale used for this step) and counts a good step. Not finite:
    /// returns `None` (the caller skips the update), halves the scale and
    /// counts a skipped step.
    ///
    /// # Errors
    /// The gradients' check could not be read back from the device.
    pub fn unscale<M: Module>(
        &mut self,
        module: &M,
        grads: GradientsParams,
    ) -> Result<Option<GradientsParams>, TrainError> {
        let finite = grads_finite(module, &grads)?;
        if !finite {
            self.scale *= self.backoff_factor;
            self.good_steps = 0;
            self.skipped_steps += 1;
            return Ok(None);
        }
        let grads = scale_grads(module, grads, 1.0 / self.scale);
        self.good_steps += 1;
        if self.good_steps >= self.growth_interval {
            self.scale *= self.growth_factor;
            self.good_steps = 0;
        }
        Ok(Some(grads))
    }
}

/// The loss scale of a step: the scaler's, or 1 without one.
pub(crate) fn step_scale(scaler: &Option<LossScaler>) -> f64 {
    scaler.as_ref().map_or(1.0, |s| s.scale)
}

/// [`LossScaler::unscale`] with a scaler; the gradients as they are without.
pub(crate) fn unscale<M: Module>(
    scaler: &mut Option<LossScaler>,
    module: &M,
    grads: GradientsParams,
) -> Result<Option<GradientsParams>, TrainError> {
    match scaler {
        Some(s) => s.unscale(module, grads),
        None => Ok(Some(grads)),
    }
}

/// `line` with the scaler's fields of a step that used `scale`
/// (`loss_scale`, `skipped_steps`); unchanged without a scaler.
pub(crate) fn log_scaler(line: LogLine, scaler: &Option<LossScaler>, scale: f64) -> LogLine {
    match scaler {
        Some(s) => line
            .with("loss_scale", scale)
            .with("skipped_steps", s.skipped_steps as f64),
        None => line,
    }
}

/// Whether every gradient of `module`'s parameters in `grads` is finite
/// (one value read back from the device: the sum of all absolute values,
/// which is infinite or NaN as soon as one entry is).
///
/// # Errors
/// The sum could not be read back.
pub fn grads_finite<M: Module>(module: &M, grads: &GradientsParams) -> Result<bool, TrainError> {
    struct Sum<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.abs().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => {
                        let device = t.device();
                        t + s.to_device(&device)
                    }
                    None => s,
                });
            }
        }
    }
    let mut sum = Sum { grads, total: None };
    module.visit(&mut sum);
    match sum.total {
        None => Ok(true),
        Some(t) => Ok(super::step::scalar(&t)?.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    fn grads_of(scale: f32, poison: bool) -> (Linear, GradientsParams) {
        let device = Device::default().autodiff();
        let lin = LinearConfig::new(3, 2).init(&device);
        let mut x = vec![1.0f32, 2.0, 3.0];
        if poison {
            x[1] = f32::INFINITY;
        }
        let x = Tensor::<2>::from_data(TensorData::new(x, [1, 3]), &device);
        let loss = lin.forward(x).sum().mul_scalar(scale);
        let grads = GradientsParams::from_grads(loss.backward(), &lin);
        (lin, grads)
    }

    #[test]
    fn unscale_divides_and_grows() {
        let (lin, grads) = grads_of(8.0, false);
        let mut s = LossScaler {
            scale: 8.0,
            growth_interval: 2,
            ..LossScaler::default()
        };
        let out = s.unscale(&lin, grads).unwrap().expect("finite");
        let w = out
            .get::<2>(lin.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // d(sum(x W + b))/dW = x per output column, times 8, divided by 8.
        assert_eq!(w, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!((s.scale, s.good_steps), (8.0, 1));
        let (lin, grads) = grads_of(8.0, false);
        s.unscale(&lin, grads).unwrap().expect("finite");
        assert_eq!((s.scale, s.good_steps), (16.0, 0));
    }

    #[test]
    fn overflow_skips_and_backs_off() {
        let (lin, grads) = grads_of(1.0, true);
        let mut s = LossScaler {
            good_steps: 5,
            ..LossScaler::default()
        };
        assert!(s.unscale(&lin, grads).unwrap().is_none());
        assert_eq!((s.scale, s.good_steps, s.skipped_steps), (32768.0, 0, 1));
    }

    #[test]
    fn only_f16_gets_a_scaler() {
        assert!(LossScaler::for_precision(Precision::F16).is_some());
        assert!(LossScaler::for_precision(Precision::Bf16).is_none());
        assert!(LossScaler::for_precision(Precision::F32).is_none());
    }
}
