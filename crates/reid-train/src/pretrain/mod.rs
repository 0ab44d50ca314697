//! The pre-training recipes, on the [`engine`](crate::engine):
//!
//! - [`mod@moco`]: LUPerson's MoCo v2 (query and momentum key encoders,
//!   shuffle-BN, InfoNCE against a queue);
//! - [`mod@pnl`]: LUPerson-NL's PNL (prototypes, label correction,
//!   label-guided contrast);
//! - [`mod@cion`]: CION's identity-guided self-distillation (student/teacher,
//!   multi-crop, identity-grouped batches with the K schedule, AdamW with
//!   warm-up + cosine, weight-decay and teacher-momentum schedules,
//!   per-parameter gradient clipping, last layer frozen in epoch 0);
//!
//! and what only they share: the run of a network trained with its
//! momentum copy (`pair`: checkpoints, exact resume, the [`PairOutput`] of
//! MoCo and PNL), the parts of MoCo and PNL alike (`contrast`: the queue,
//! the shuffle-BN keys, the sharded query pass, the two views), the
//! momentum copy of a network (`fresh_copy`) and pooled features
//! ([`gap_features`]). [`RunOptions`], [`PretrainEvent`] and [`StepReport`]
//! are the engine's, re-exported here.

/// The `ContrastShape` of a MoCo or PNL configuration (both name these
/// fields alike).
macro_rules! contrast_shape {
    ($c:expr) => {
        $crate::pretrain::contrast::ContrastShape {
            epochs: $c.epochs,
            batch_size: $c.batch_size,
            queue_size: $c.queue_size,
            dim: $c.dim,
            bn_groups: $c.bn_groups,
            max_steps_per_epoch: $c.max_steps_per_epoch,
            size: $c.size,
            lr: $c.lr,
            key_momentum: $c.key_momentum,
            seed: $c.seed,
        }
    };
}

/// The `PairTrainer` items every pre-training trainer has alike: its
/// configuration (field `cfg`), its two networks of type `$net` (fields
/// `$online` and `$momentum`, the trained one first) with its
/// `TrainerCore` (field `core`), and the networks at the end.
macro_rules! pair_accessors {
    ($net:ty, $online:ident, $momentum:ident) => {
        fn config(&self) -> &Self::Config {
            &self.cfg
        }

        fn pair(&self) -> ([&$net; 2], &$crate::pretrain::pair::TrainerCore) {
            ([&self.$online, &self.$momentum], &self.core)
        }

        fn pair_mut(&mut self) -> ([&mut $net; 2], &mut $crate::pretrain::pair::TrainerCore) {
            ([&mut self.$online, &mut self.$momentum], &mut self.core)
        }

        fn into_pair(self) -> ($net, $net) {
            (self.$online, self.$momentum)
        }
    };
}

pub mod cion;
mod contrast;
pub mod moco;
mod pair;
pub mod pnl;

use burn::nn::{Linear, Relu};
use burn::tensor::Tensor;
use reid_backbones::{Precision, TrainBackbone};

/// The engine's decoupled weight decay and gradient scaling (moved to
/// [`crate::engine::optim`]).
pub use crate::engine::optim;
pub use crate::engine::seed::shuffled_batches;
pub use crate::engine::{PretrainEvent, RunOptions, StepReport};
/// Parallel multi-view decoding (moved to [`crate::input::views`]).
pub use crate::input::views;
pub use pair::PairOutput;

/// Global average pooling of a backbone's map: `[batch, 3, H, W]` →
/// `[batch, C]`.
pub fn gap_features<B: reid_backbones::Backbone>(backbone: &B, images: Tensor<4>) -> Tensor<2> {
    let map = backbone.forward_features(images);
    let [b, c, _, _] = map.dims();
    map.mean_dim(3).mean_dim(2).reshape([b, c])
}

/// Swaps every parameter id of `module` for a fresh one, keeping the
/// values: a copy that an optimiser treats as a different model (the key
/// encoder or teacher built from the online network of a momentum pair).
struct FreshIds;

impl burn::module::ModuleMapper for FreshIds {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        burn::module::Param::from_mapped_value(burn::module::ParamId::new(), value, mapper)
    }
}

/// `module` with the same values under new parameter ids (see
/// [`FreshIds`]) and BatchNorm running statistics of its own; used to
/// derive a momentum encoder from the online one, whose statistics then
/// move only through its own passes, as upstream's.
///
/// burn 0.22's `RunningState` is reference-counted: `Clone` and
/// `ModuleMapper` keep the one state, while `Module::train` rebuilds each
/// around its current value.
pub(crate) fn fresh_copy<M: burn::module::Module>(module: &M) -> M {
    module.clone().train().map(&mut FreshIds)
}

/// Rows scaled to unit L2 norm (`[batch, dim]`; norms clamped at 1e-12,
/// like `F.normalize`).
pub use reid_backbones::head::classifier::l2_normalize;

/// `backbone`'s pooled feature `[batch, backbone.pooled_dim()]` of
/// `images`, computed in `precision`, with its stochastic depth (ViT, Swin)
/// drawn from `seed` when there is one
/// ([`reid_backbones::Backbone::forward_pooled_seeded`]).
pub(crate) fn pooled<M: TrainBackbone>(
    backbone: &M,
    precision: Precision,
    images: Tensor<4>,
    seed: Option<u64>,
) -> Tensor<2> {
    match seed {
        Some(seed) => precision.run(backbone, images, |b, x| b.forward_pooled_seeded(x, seed)),
        None => precision.run(backbone, images, |b, x| b.forward_pooled(x)),
    }
}

/// The L2-normalised projection `fc2(ReLU(fc1(h)))` of pooled features
/// `h` (MoCo's head, PNL's projection branch).
pub(crate) fn project(fc1: &Linear, relu: &Relu, fc2: &Linear, h: Tensor<2>) -> Tensor<2> {
    l2_normalize(fc2.forward(relu.forward(fc1.forward(h))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// The momentum copy has parameters and BatchNorm statistics of its
    /// own: its passes leave the online network's statistics alone.
    #[test]
    fn a_fresh_copy_keeps_its_own_running_statistics() {
        use burn::module::Module;
        let device = Device::flex().autodiff();
        let bn: burn::nn::BatchNorm = burn::nn::BatchNormConfig::new(3).init(&device);
        let copy = fresh_copy(&bn);
        assert_ne!(copy.gamma.id, bn.gamma.id);
        let _ = copy.forward(Tensor::<4>::ones([2, 3, 2, 2], &device));
        let mean = |m: &burn::nn::BatchNorm| -> Vec<f32> {
            m.valid()
                .running_mean
                .value()
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        assert_eq!(mean(&bn), vec![0.0; 3], "the online statistics moved");
        assert_eq!(mean(&copy), vec![0.1; 3]);
    }
}
