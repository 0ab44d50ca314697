//! The center subtracted from the teacher's logits (DINO's centering).

use burn::tensor::{Device, Tensor};

use crate::LossError;

const NAME: &str = "DinoCenter";

/// Running center `c` (`[1, D]`) of the teacher's raw logits, updated by
/// `c ← m·c + (1 − m)·mean_rows(teacher_logits)` with momentum `m` = 0.9.
///
/// Upstream all-reduces the batch mean over the GPUs; on several devices,
/// pass the concatenation of every device's teacher logits (or keep one
/// center per device only if that is what you mean).
#[derive(Debug, Clone)]
pub struct DinoCenter {
    center: Tensor<2>,
    momentum: f64,
}

impl DinoCenter {
    /// A zero center of width `dim` on `device`, momentum 0.9 (CION, DINO).
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            center: Tensor::zeros([1, dim], device),
            momentum: 0.9,
        }
    }

    /// Restores a center (`[1, D]`, e.g. from a checkpoint's `center` buffer)
    /// with momentum `momentum` in `[0, 1]`.
    ///
    /// # Errors
    /// [`LossError`] when `center` is not `[1, D]` with `D ≥ 1` or the
    /// momentum is outside `[0, 1]`.
    pub fn from_tensor(center: Tensor<2>, momentum: f64) -> Result<Self, LossError> {
        let dims = center.dims();
        if dims[0] != 1 || dims[1] == 0 {
            return Err(LossError::InvalidShape {
                loss: NAME,
                what: "center",
                shape: dims.to_vec(),
                expected: "[1, D] with D ≥ 1".into(),
            });
        }
        check_momentum(momentum)?;
        Ok(Self {
            center: center.detach(),
            momentum,
        })
    }

    /// Sets the momentum `m` (in `[0, 1]`).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] when `m ∉ [0, 1]`.
    pub fn with_momentum(mut self, momentum: f64) -> Result<Self, LossError> {
        check_momentum(momentum)?;
        self.momentum = momentum;
        Ok(self)
    }

    /// The current center, `[1, D]` (no gradient).
    pub fn value(&self) -> Tensor<2> {
        self.center.clone()
    }

    /// The momentum `m`.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Width `D`.
    pub fn dim(&self) -> usize {
        self.center.dims()[1]
    }

    /// Moves the center towards the mean of `teacher_logits` (`[rows, D]`,
    /// the raw teacher head outputs of both global crops, before centering
    /// and temperature). No gradient is recorded.
    ///
    /// # Errors
    /// [`LossError::InvalidShape`] when `teacher_logits` has no rows or a
    /// width other than `D`.
    pub fn update(&mut self, teacher_logits: Tensor<2>) -> Result<(), LossError> {
        let dims = teacher_logits.dims();
        if dims[0] == 0 || dims[1] != self.dim() {
            return Err(LossError::InvalidShape {
                loss: NAME,
                what: "teacher_logits",
                shape: dims.to_vec(),
                expected: format!("[rows ≥ 1, {}]", self.dim()),
            });
        }
        let batch_mean = teacher_logits.detach().mean_dim(0);
        self.center = self
            .center
            .clone()
            .mul_scalar(self.momentum)
            .add(batch_mean.mul_scalar(1.0 - self.momentum))
            .detach();
        Ok(())
    }
}

fn check_momentum(momentum: f64) -> Result<(), LossError> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(LossError::InvalidParameter {
            loss: NAME,
            name: "momentum",
            value: momentum,
            expected: "0 <= momentum <= 1",
        });
    }
    Ok(())
}
