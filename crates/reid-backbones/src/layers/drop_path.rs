//! Stochastic depth (timm's `DropPath`, `scale_by_keep`): each sample's
//! residual branch is zeroed with probability `rate` and the kept ones are
//! scaled by `1 / (1 − rate)`. Three sources of the per-sample draws, as the
//! families need them:
//!
//! - [`drop_path`]: burn's random Bernoulli on an autodiff (training)
//!   device (ConvNeXt, EdgeNeXt, FastViT, VOLO);
//! - [`drop_path_seeded`]: one uniform per sample derived from a seed
//!   (ViT, so a training step is reproducible independently of burn's
//!   process-global generator);
//! - [`drop_path_stream`]: a running [`DropPathRng`] stream through the
//!   whole forward pass (Swin).
//!
//! [`drop_path_rate`] gives block `i` of `total` its rate, `linspace(0,
//! rate, total)` as every family's official code computes it.

use burn::tensor::{Distribution, Tensor, TensorData};

/// The rate of block `index` of `total` blocks: `rate · index / (total −
/// 1)` (`torch.linspace(0, rate, total)[index]`), 0 for a single block.
pub fn drop_path_rate(rate: f64, index: usize, total: usize) -> f64 {
    if total > 1 {
        rate * index as f64 / (total - 1) as f64
    } else {
        0.0
    }
}

/// The rates of `total` blocks numbered across all stages, in order:
/// `linspace(0, rate, total)` ([`drop_path_rate`] of each block).
pub fn drop_path_rates(rate: f64, total: usize) -> Vec<f64> {
    (0..total).map(|i| drop_path_rate(rate, i, total)).collect()
}

/// `x` `[batch, …]` times the per-sample factors `scale` (`batch` values:
/// 0 or `1 / keep`).
fn scale_samples<const D: usize>(x: Tensor<D>, scale: Vec<f32>) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[0] = scale.len();
    let mask = Tensor::<D>::from_data(TensorData::new(scale, shape), &x.device());
    x * mask
}

/// Stochastic depth with burn's random Bernoulli draws, on `x` `[batch,
/// …]`. Only on an autodiff (training) device and for `rate > 0`; the
/// identity otherwise.
pub fn drop_path<const D: usize>(x: Tensor<D>, rate: f64) -> Tensor<D> {
    if rate <= 0.0 || !x.device().is_autodiff() {
        return x;
    }
    let keep = 1.0 - rate;
    let mut shape = [1usize; D];
    shape[0] = x.dims()[0];
    let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &x.device());
    x * mask / keep
}

/// SplitMix64 step: a well-mixed 64-bit value from `state`.
pub(crate) fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent seed for stream `i` of `seed`.
pub(crate) fn mix(seed: u64, i: u64) -> u64 {
    splitmix64(seed ^ splitmix64(i.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

/// A uniform value in `[0, 1)` from the top 53 bits of `bits`.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Stochastic depth with seeded draws, on `x` `[batch, …]`: sample `i` is
/// kept iff `u_i ≥ rate`, `u_i ∈ [0, 1)` derived from `seed` and `i` (as in
/// `floor(1 − rate + u)`). The identity for `rate ≤ 0`.
pub fn drop_path_seeded<const D: usize>(x: Tensor<D>, rate: f64, seed: u64) -> Tensor<D> {
    if rate <= 0.0 {
        return x;
    }
    let keep = 1.0 - rate;
    let scale = (0..x.dims()[0] as u64)
        .map(|i| {
            if unit(splitmix64(mix(seed, i))) >= rate {
                (1.0 / keep) as f32
            } else {
                0.0
            }
        })
        .collect();
    scale_samples(x, scale)
}

/// A small deterministic random stream (SplitMix64) for stochastic depth.
#[derive(Debug, Clone)]
pub struct DropPathRng {
    state: u64,
}

impl DropPathRng {
    /// A stream started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x5EED_D80F_A7A5_0001,
        }
    }

    /// The next value, uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        unit(z)
    }
}

/// Stochastic depth with draws from a running stream, on `x` `[batch, …]`:
/// each sample is kept iff the stream's next value is below `1 − rate`.
/// The identity (no value drawn) when `rng` is `None` (inference) or
/// `rate ≤ 0`.
pub fn drop_path_stream<const D: usize>(
    x: Tensor<D>,
    rate: f64,
    rng: Option<&mut DropPathRng>,
) -> Tensor<D> {
    let Some(rng) = rng else { return x };
    if rate <= 0.0 {
        return x;
    }
    let keep = 1.0 - rate;
    let scale = (0..x.dims()[0])
        .map(|_| {
            if rng.next_f64() < keep {
                (1.0 / keep) as f32
            } else {
                0.0
            }
        })
        .collect();
    scale_samples(x, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn rates_are_a_linspace() {
        let r: Vec<f64> = (0..5).map(|i| drop_path_rate(0.2, i, 5)).collect();
        assert_eq!(r, vec![0.0, 0.05, 0.1, 0.15000000000000002, 0.2]);
        assert_eq!(drop_path_rate(0.3, 0, 1), 0.0);
    }

    #[test]
    fn every_source_keeps_or_zeroes_whole_samples() {
        let device = Device::flex();
        let x = Tensor::<3>::ones([64, 2, 3], &device);
        let seeded = drop_path_seeded(x.clone(), 0.25, 7);
        let mut rng = DropPathRng::new(7);
        let stream = drop_path_stream(x.clone(), 0.25, Some(&mut rng));
        for y in [seeded, stream] {
            let v = y.into_data().try_to_vec::<f32>().unwrap();
            let mut kept = 0;
            for s in v.chunks(6) {
                assert!(s.iter().all(|&a| a == s[0]), "{s:?}");
                assert!(s[0] == 0.0 || (s[0] - 1.0 / 0.75).abs() < 1e-6);
                kept += usize::from(s[0] != 0.0);
            }
            assert!((30..=62).contains(&kept), "{kept} of 64 kept at rate 0.25");
        }
        // Inference: the identity, and no value drawn from the stream.
        let before = rng.clone().next_f64();
        let y = drop_path_stream(x.clone(), 0.25, None);
        assert_eq!(y.into_data(), x.clone().into_data());
        assert_eq!(rng.next_f64(), before);
        assert_eq!(drop_path(x.clone(), 0.5).into_data(), x.into_data());
    }
}
