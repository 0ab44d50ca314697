//! Decoupled weight decay with a rate that changes every step (DINO/CION's
//! AdamW with a weight-decay schedule).
//!
//! PyTorch's `AdamW` step is `θ ← θ·(1 − lr·wd)` followed by the Adam update,
//! which does not depend on `θ`; so "AdamW with a per-step `wd`" is exactly
//! [`decay_weights`] with `lr·wd` followed by burn's Adam without weight decay.
//! As in DINO's `get_params_groups`, biases and rank-1 parameters (norm
//! scales and shifts) get no decay, and parameters without a gradient this
//! step (frozen ones, the DINO head's last layer in its first epoch) are
//! skipped entirely, as PyTorch skips parameters whose `.grad` is `None`.

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Multiplies every decayed parameter of `module` by `1 − factor`
/// (`factor = lr · wd`): parameters of rank ≥ 2 whose name is not `bias`
/// and that have a gradient in `grads`. Parameter ids, devices and
/// `require_grad` flags are kept.
pub fn decay_weights<M: Module>(module: M, grads: &GradientsParams, factor: f64) -> M {
    if factor == 0.0 {
        return module;
    }
    module.map(&mut Decay {
        grads,
        scale: 1.0 - factor,
        path: Vec::new(),
    })
}

struct Decay<'a> {
    grads: &'a GradientsParams,
    scale: f64,
    path: Vec<String>,
}

impl ModuleMapper for Decay<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let is_bias = self.path.last().is_some_and(|n| n == "bias");
        if D < 2 || is_bias || self.grads.get::<D>(param.id).is_none() {
            return param;
        }
        let scale = self.scale;
        param.map(|t| {
            let autodiff = t.is_autodiff();
            let require_grad = t.is_require_grad();
            // Computed off the graph, then made a fresh leaf again.
            let mut out = t.detach().without_autodiff().mul_scalar(scale);
            if autodiff {
                out = out.autodiff();
            }
            if require_grad {
                out = out.require_grad();
            }
            out
        })
    }
}

/// Multiplies the gradient of every parameter of `module` present in
/// `grads` by `factor` (loss scaling and unscaling). Computed on the
/// device.
pub fn scale_grads<M: Module>(module: &M, grads: GradientsParams, factor: f64) -> GradientsParams {
    struct Scale {
        grads: GradientsParams,
        factor: f64,
    }
    impl burn::module::ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads
                    .register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut s = Scale { grads, factor };
    module.visit(&mut s);
    s.grads
}

/// SGD with (non-Nesterov, undampened) momentum and coupled weight decay on
/// every parameter, as MoCo and PNL use it.
pub(crate) fn sgd(momentum: f64, weight_decay: f64) -> burn::optim::ModuleOptimizer {
    burn::optim::SgdConfig::new()
        .with_momentum(Some(burn::optim::momentum::MomentumConfig {
            momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(
            (weight_decay > 0.0)
                .then(|| burn::optim::decay::WeightDecayConfig::new(weight_decay as f32)),
        )
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Distribution};

    #[test]
    fn decays_weights_with_gradients_only_and_never_biases() {
        let device = Device::flex().autodiff();
        let lin: Linear = LinearConfig::new(3, 2).init(&device);
        // The weight's and the bias's values.
        let values = |l: &Linear| -> (Vec<f32>, Vec<f32>) {
            let v = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
            let bias = l.bias.as_ref().unwrap().val();
            (v(l.weight.val()), v(bias.unsqueeze()))
        };
        let (w0, b0) = values(&lin);
        let x = Tensor::<2>::random([4, 3], Distribution::Default, &device);
        let grads = GradientsParams::from_grads(lin.forward(x).sum().backward(), &lin);
        let lin2 = decay_weights(lin.clone(), &grads, 0.25);
        let (w1, b1) = values(&lin2);
        for (a, b) in w0.iter().zip(&w1) {
            assert!((a * 0.75 - b).abs() < 1e-7);
        }
        assert_eq!(b0, b1);
        assert_eq!(lin2.weight.id, lin.weight.id);
        assert!(lin2.weight.val().is_require_grad());
        // Without a gradient the parameter is left alone.
        let lin3 = decay_weights(lin.clone(), &GradientsParams::new(), 0.25);
        assert_eq!(w0, values(&lin3).0);
    }
}
