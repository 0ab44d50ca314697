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
//!   `N(0, 2/fan_out)`, `fan_out = out · kh · kw` — torchvision's ResNet
//!   initialisation (`kaiming_normal_(mode="fan_out",
//!   nonlinearity="relu")`, torchvision `models/resnet.py`), which the
//!   IBN-Net and fast-reid ResNets share (`normal_(0, √(2/n))`, `n = k·k·out`).
//!   Until 2026-12-06 this drew `U(±1/√fan_in)` (burn's default), about
//!   2.4× smaller for a ResNet's 3×3 convolutions;
//! - rank-2 parameters (classifier weights `[classes, dim]`):
//!   `N(0, std²)`;
//! - other ranks (BatchNorm γ/β, GeM `p`): unchanged (they are constants).
//!
//! [`zoo_from_scratch`] builds any ReIDZoo model for training from scratch:
//! ResNets through [`reinit_weights`], every other family with the rules of
//! CION's own model code (`reid_backbones::init`), which draw from the same
//! per-tensor streams.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_backbones::{Arch, ResNet, ZooModel, ZooNet};

use crate::engine::seed::augment_seed;
use crate::error::TrainError;

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
                let std = conv_std(dims);
                Some(
                    (0..n)
                        .map(|_| (standard_normal(&mut rng) * std) as f32)
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

/// Standard deviation of a convolution kernel `[out, in/groups, kh, kw]`
/// under torchvision's ResNet initialisation: `√(2 / (out · kh · kw))`.
pub fn conv_std(dims: &[usize]) -> f64 {
    let fan_out = dims.first().copied().unwrap_or(1) * dims.iter().skip(2).product::<usize>();
    (2.0 / fan_out.max(1) as f64).sqrt()
}

/// One standard-normal draw (Box–Muller), shared by every seeded
/// initialisation of the crate.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
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

/// The ResNet `arch` (`base_width`, `last_stride`) with its weights drawn by
/// [`reinit_weights`] from `seed` (classifier-style layers `N(0, 0.01²)`):
/// the from-config backbone of the pre-training recipes.
pub fn seeded_resnet(
    arch: &str,
    base_width: usize,
    last_stride: usize,
    seed: u64,
    device: &Device,
) -> Result<ResNet, TrainError> {
    let backbone = Arch::from_name(arch)?
        .config()
        .with_base_width(base_width)
        .with_last_stride(last_stride)
        .init(device)?;
    Ok(reinit_weights(backbone, seed, 0.01))
}

/// The ReIDZoo model `name` (CION's names, `reid_backbones::ZOO`) at full
/// size on `device`, with its initial weights drawn from `seed` for
/// training from scratch: ResNet / ResNet-IBN (last stride 1) by
/// [`reinit_weights`], as the ResNet recipes draw their trunks; the other
/// families as CION's model code initialises them
/// ([`ZooNet::init_from_scratch`]). Deterministic whatever other threads
/// do. Hand it to any recipe ([`crate::finetune()`], [`crate::pretrain_moco`],
/// [`crate::pretrain_pnl`], [`crate::pretrain_cion`]) as its backbone.
pub fn zoo_from_scratch(name: &str, seed: u64, device: &Device) -> Result<ZooNet, TrainError> {
    Ok(match ZooModel::build(name, device)?.net {
        ZooNet::ResNet(m) => ZooNet::ResNet(reinit_weights(m, seed, 0.01)),
        net => net.init_from_scratch(seed)?,
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
        assert_eq!(conv_std(&[8, 4, 3, 3]), (2.0f64 / 72.0).sqrt());
    }

    /// `reid_backbones`' ResNet rule draws the trunk `reinit_weights` draws,
    /// bit for bit, and `zoo_from_scratch` gives the other families
    /// `ZooModel::from_scratch`'s weights.
    #[test]
    fn zoo_models_from_scratch_match_both_initialisations() {
        use reid_backbones::ZooModel;
        let device = Device::flex();
        let bits = |net: &ZooNet| -> Vec<u32> {
            struct Bits(Vec<u32>);
            impl burn::module::ModuleVisitor for Bits {
                fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                    let v = param.val().into_data();
                    self.0.extend(v.iter::<f32>().map(f32::to_bits));
                }
            }
            let mut b = Bits(Vec::new());
            net.visit(&mut b);
            b.0
        };
        for (name, seed) in [("resnet18_ibn", 4), ("ghostnet_0_5", 5)] {
            let ours = zoo_from_scratch(name, seed, &device).unwrap();
            let zoo = ZooModel::from_scratch(name, seed, &device).unwrap().net;
            assert!(bits(&ours) == bits(&zoo), "{name}");
        }
    }

    /// Every convolution of a ResNet50-IBN-a trunk is drawn with torchvision's
    /// `kaiming_normal_(mode="fan_out")` std, `√(2/(out·kh·kw))`, within the
    /// sampling error of its element count; BatchNorm/InstanceNorm weights are
    /// 1 and biases 0.
    #[test]
    fn resnet_layers_match_the_reference_std() {
        use reid_backbones::Arch;
        let device = Device::flex();
        let net = Arch::from_name("resnet50_ibn_a")
            .unwrap()
            .config()
            .with_base_width(16)
            .init(&device)
            .unwrap();
        let net = reinit_weights(net, 3, 0.01);
        struct Check(usize, usize);
        impl burn::module::ModuleVisitor for Check {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let dims = param.lazy_shape().to_vec();
                let v: Vec<f64> = param.val().into_data().iter::<f64>().collect();
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                if D == 4 {
                    let want = conv_std(&dims);
                    // The sample std of n normal draws has relative error ~1/√(2n).
                    let tol = 5.0 / (2.0 * n).sqrt() + 1e-3;
                    assert!(
                        (std / want - 1.0).abs() < tol,
                        "conv {dims:?}: std {std} vs {want} (tol {tol})"
                    );
                    assert!(
                        mean.abs() < 5.0 * want / n.sqrt() + 1e-6,
                        "conv {dims:?}: mean {mean}"
                    );
                    self.0 += 1;
                } else if D == 1 {
                    // Norm weights are all 1 or all 0 (biases): constant.
                    assert!(std < 1e-12, "norm parameter {dims:?} not constant");
                    assert!(
                        mean == 0.0 || mean == 1.0,
                        "norm parameter {dims:?}: {mean}"
                    );
                    self.1 += 1;
                }
            }
        }
        let mut check = Check(0, 0);
        net.visit(&mut check);
        // 53 convolutions in a ResNet50 trunk (stem, 16 blocks × 3, 4 shortcuts).
        assert_eq!(check.0, 53);
        assert!(check.1 > 0);
    }
}
