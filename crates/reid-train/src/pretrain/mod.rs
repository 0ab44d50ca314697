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
//! and what only they share: the momentum copy of a network
//! (`fresh_copy`), pooled features ([`gap_features`]) and the queue's
//! checkpoint parts. [`RunOptions`], [`PretrainEvent`] and [`StepReport`]
//! are the engine's, re-exported here.

/// The [`ContrastShape`] of a MoCo or PNL configuration (both name these
/// fields alike).
macro_rules! contrast_shape {
    ($c:expr) => {
        $crate::pretrain::ContrastShape {
            epochs: $c.epochs,
            batch_size: $c.batch_size,
            queue_size: $c.queue_size,
            dim: $c.dim,
            bn_groups: $c.bn_groups,
            max_steps_per_epoch: $c.max_steps_per_epoch,
            size: $c.size,
            lr: $c.lr,
            key_momentum: $c.key_momentum,
        }
    };
}

pub mod cion;
pub mod moco;
pub mod pnl;

use burn::tensor::Tensor;

/// The engine's decoupled weight decay and gradient scaling (moved to
/// [`crate::engine::optim`]).
pub use crate::engine::optim;
pub use crate::engine::seed::shuffled_batches;
pub use crate::engine::{PretrainEvent, RunOptions, StepReport};
use crate::error::TrainError;
/// Parallel multi-view decoding (moved to [`crate::input::views`]).
pub use crate::input::views;

/// The small part of an [`InfoNceQueue`](reid_losses::moco::InfoNceQueue)
/// kept in `state.json`; the keys go to a binary part.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueueMeta {
    size: usize,
    dim: usize,
    ptr: usize,
    ids: Vec<i64>,
}

/// Splits a queue into its JSON part and its keys as bytes.
pub(crate) fn queue_to_parts(queue: &reid_losses::moco::InfoNceQueue) -> (QueueMeta, Vec<u8>) {
    let s = queue.state();
    let keys = crate::checkpoint::f32s_to_bytes(&s.keys);
    (
        QueueMeta {
            size: s.size,
            dim: s.dim,
            ptr: s.ptr,
            ids: s.ids,
        },
        keys,
    )
}

/// Rebuilds a queue from [`queue_to_parts`]' output.
pub(crate) fn queue_from_parts(
    meta: QueueMeta,
    keys: &[u8],
    device: &burn::tensor::Device,
) -> Result<reid_losses::moco::InfoNceQueue, TrainError> {
    let state = reid_losses::moco::QueueState {
        size: meta.size,
        dim: meta.dim,
        keys: crate::checkpoint::bytes_to_f32s(keys, "queue.bin")?,
        ids: meta.ids,
        ptr: meta.ptr,
    };
    Ok(reid_losses::moco::InfoNceQueue::from_state(&state, device)?)
}

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

/// The settings MoCo and PNL share, checked the same way for both: the
/// error names the field.
pub(crate) struct ContrastShape {
    pub epochs: usize,
    pub batch_size: usize,
    pub queue_size: usize,
    pub dim: usize,
    pub bn_groups: usize,
    pub max_steps_per_epoch: Option<usize>,
    pub size: [u32; 2],
    pub lr: f64,
    pub key_momentum: f64,
}

impl ContrastShape {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.epochs == 0 || self.batch_size == 0 || self.queue_size == 0 || self.dim == 0 {
            return bad("epochs, batch_size, queue_size and dim must be >= 1".into());
        }
        if self.bn_groups == 0 || self.bn_groups > self.batch_size {
            return bad(format!(
                "bn_groups must be in 1..=batch_size, got {}",
                self.bn_groups
            ));
        }
        if self.max_steps_per_epoch == Some(0) || self.size.contains(&0) {
            return bad("max_steps_per_epoch and size must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        if !(0.0..=1.0).contains(&self.key_momentum) {
            return bad(format!(
                "key_momentum must be in [0, 1], got {}",
                self.key_momentum
            ));
        }
        Ok(())
    }
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
