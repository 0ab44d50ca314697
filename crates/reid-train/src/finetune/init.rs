//! Seeded re-initialisation of a module's weights with our own random
//! streams.
//!
//! burn's `Tensor::random` draws from a backend-global generator (on flex,
//! one per process), so two models initialised at the same time on
//! different threads interleave their draws and a seed alone does not fix
//! the weights. [`reinit_weights`] redraws them from ChaCha8 streams keyed by
//! `(seed, parameter index in traversal order)`, with the same
//! distributions as burn's (and PyTorch's) defaults:
//!
//! - rank-4 parameters (convolution kernels `[out, in/groups, kh, kw]`):
//!   `U(−1/√fan_in, 1/√fan_in)`, `fan_in = in/groups · kh · kw` (burn's
//!   `KaimingUniform` with gain `1/√3`);
//! - rank-2 parameters (classifier weights `[classes, dim]`):
//!   `N(0, std²)`;
//! - other ranks (BatchNorm γ/β, GeM `p`): unchanged (they are constants).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::batch::augment_seed;

struct Reinit {
    seed: u64,
    linear_std: f64,
    index: usize,
}

impl Reinit {
    /// `n` draws of the distribution for a parameter of shape `dims`.
    fn values(&mut self, dims: &[usize]) -> Option<Vec<f32>> {
        let n: usize = dims.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(self.seed, usize::MAX, self.index));
        self.index += 1;
        match dims.len() {
            4 => {
                let fan_in = (dims[1] * dims[2] * dims[3]).max(1) as f64;
                let bound = 1.0 / fan_in.sqrt();
                Some(
                    (0..n)
                        .map(|_| rng.random_range(-bound..bound) as f32)
                        .collect(),
                )
            }
            2 => Some(
                (0..n)
                    .map(|_| (standard_normal(&mut rng) * self.linear_std) as f32)
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// One standard-normal draw (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl ModuleMapper for Reinit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dims = param.lazy_shape().to_vec();
        match self.values(&dims) {
            Some(values) => param.map(|t| {
                let device = t.device();
                let grad = t.is_require_grad();
                Tensor::<D>::from_data(TensorData::new(values, dims), &device)
                    .set_require_grad(grad)
            }),
            None => param,
        }
    }
}

/// Redraws the rank-4 (convolution) and rank-2 (classifier, `N(0,
/// linear_std²)`) parameters of `module` from streams seeded by `seed`; see
/// the module docs. Deterministic whatever other threads do.
pub fn reinit_weights<M: Module>(module: M, seed: u64, linear_std: f64) -> M {
    module.map(&mut Reinit {
        seed,
        linear_std,
        index: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Device;

    #[test]
    fn conv_weights_follow_the_seed_and_the_bound() {
        let device = Device::flex();
        let conv = || Conv2dConfig::new([4, 8], [3, 3]).init(&device);
        let a = reinit_weights(conv(), 5, 0.01);
        let b = reinit_weights(conv(), 5, 0.01);
        let c = reinit_weights(conv(), 6, 0.01);
        let va: Vec<f32> = a.weight.val().into_data().try_to_vec().unwrap();
        let vb: Vec<f32> = b.weight.val().into_data().try_to_vec().unwrap();
        let vc: Vec<f32> = c.weight.val().into_data().try_to_vec().unwrap();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let bound = 1.0 / (4.0f32 * 9.0).sqrt();
        assert!(va.iter().all(|v| v.abs() <= bound));
        assert!(va.iter().any(|v| v.abs() > 0.5 * bound));
    }
}
