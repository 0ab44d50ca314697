//! Global pooling: feature map `[batch, channels, h, w]` → `[batch, channels]`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// Parameter-free global pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GlobalPool {
    /// Mean over the spatial positions.
    Avg,
    /// Maximum over the spatial positions.
    Max,
}

impl GlobalPool {
    /// Pools `features` `[batch, channels, h, w]` into `[batch, channels]`.
    pub fn forward(self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = features.dims();
        let flat = features.reshape([b, c, h * w]);
        match self {
            GlobalPool::Avg => flat.mean_dim(2).reshape([b, c]),
            GlobalPool::Max => flat.max_dim(2).reshape([b, c]),
        }
    }
}

/// Global average pooling that keeps the map's rank: `[batch, channels, h,
/// w]` → `[batch, channels, 1, 1]`, ready for 1×1 convolutions (the
/// squeeze of a squeeze-and-excitation block, GhostNet's head). The same
/// computation as [`GlobalPool::Avg`].
pub fn avg_pool_map(features: Tensor<4>) -> Tensor<4> {
    let [b, c, _, _] = features.dims();
    GlobalPool::Avg.forward(features).reshape([b, c, 1, 1])
}

/// Configuration of [`GemPool`].
#[derive(Config, Debug)]
pub struct GemPoolConfig {
    /// Initial exponent `p` (3.0 in fast-reid).
    #[config(default = 3.0)]
    pub p: f64,
    /// Lower clamp applied before the power (1e-6 in fast-reid).
    #[config(default = 1e-6)]
    pub eps: f64,
}

/// Generalised-mean pooling, `(mean(clamp(x, eps)^p))^(1/p)`, with a
/// trainable scalar `p` (Radenović et al. 2018).
#[derive(Module, Debug)]
pub struct GemPool {
    /// The exponent `p`, shape `[1]`.
    pub p: Param<Tensor<1>>,
    /// Lower clamp applied before the power.
    pub eps: f64,
}

impl GemPoolConfig {
    /// Builds the module on `device`.
    pub fn init(&self, device: &Device) -> GemPool {
        GemPool {
            p: Param::from_tensor(Tensor::from_floats([self.p as f32], device)),
            eps: self.eps,
        }
    }
}

impl GemPool {
    /// Pools `features` `[batch, channels, h, w]` into `[batch, channels]`.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = features.dims();
        let p = self.p.val();
        let p4 = p.clone().reshape([1, 1, 1, 1]);
        let powered = features.clamp_min(self.eps).powf(p4);
        let mean = powered.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        mean.powf(p.recip().reshape([1, 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avg_and_max_pool_match_hand_computed_values() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 6.0]]]], &device);
        let avg: Vec<f32> = GlobalPool::Avg
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let max: Vec<f32> = GlobalPool::Max
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(avg, vec![3.0]);
        assert_eq!(max, vec![6.0]);
    }

    #[test]
    fn gem_with_p1_is_average_and_large_p_approaches_max() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 6.0]]]], &device);
        let gem1 = GemPoolConfig::new().with_p(1.0).init(&device);
        let v: Vec<f32> = gem1
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((v[0] - 3.0).abs() < 1e-5, "{v:?}");
        let gem3 = GemPoolConfig::new().init(&device);
        let v: Vec<f32> = gem3.forward(x).into_data().try_to_vec::<f32>().unwrap();
        // (1 + 8 + 27 + 216) / 4 = 63, 63^(1/3) = 3.979...
        assert!((v[0] - 63f32.powf(1.0 / 3.0)).abs() < 1e-4, "{v:?}");
    }
}
