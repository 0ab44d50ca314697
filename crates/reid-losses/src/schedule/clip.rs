//! Per-parameter-tensor gradient-norm clipping (DINO's `clip_gradients`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::LossError;

const NAME: &str = "clip_gradients_per_param";

/// The `ε` added to each gradient norm before dividing (upstream's 1e-6).
pub const CLIP_EPSILON: f64 = 1e-6;

/// Clips each parameter's gradient separately: `g ← g · min(1, c / (‖g‖₂ +
/// 1e-6))` with `c = max_norm` (3.0 in CION), for every parameter of
/// `module` that has a gradient in `grads`. This is not the global-norm
/// clipping of `torch.nn.utils.clip_grad_norm_`: each tensor is scaled on
/// its own. Parameters without a gradient are skipped. Computed on the
/// device (no host synchronisation).
///
/// CION clips the fp16 *loss-scaled* gradients (it never unscales before
/// clipping); to reproduce that, multiply the gradients by the loss scale
/// before calling this and divide after, or call it on the unscaled ones to
/// follow DINO's intent.
///
/// # Errors
/// [`LossError::InvalidParameter`] when `max_norm` is not positive and finite.
pub fn clip_gradients_per_param<M: Module>(
    module: &M,
    grads: GradientsParams,
    max_norm: f64,
) -> Result<GradientsParams, LossError> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(LossError::InvalidParameter {
            loss: NAME,
            name: "max_norm",
            value: max_norm,
            expected: "a positive finite norm",
        });
    }
    let mut clipper = Clipper { grads, max_norm };
    module.visit(&mut clipper);
    Ok(clipper.grads)
}

struct Clipper {
    grads: GradientsParams,
    max_norm: f64,
}

impl ModuleVisitor for Clipper {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let norm = grad.clone().powi_scalar(2).sum().sqrt();
        let coef = norm
            .add_scalar(CLIP_EPSILON)
            .recip()
            .mul_scalar(self.max_norm)
            .clamp_max(1.0)
            .reshape([1; D]);
        self.grads.register::<D>(param.id, grad.mul(coef));
    }
}
