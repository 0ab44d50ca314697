//! What MoCo and PNL share beyond the momentum pair: their common settings
//! and their checks ([`ContrastShape`]), the queue of negative keys (drawn
//! from the seed, checked against the configuration, kept in a checkpoint
//! as `queue.bin` and its bookkeeping in `state.json`), the two views of
//! each image of a batch, the key encoder's momentum update and shuffle-BN
//! keys, and the query encoder's pass over each device's rows.

use std::ops::Range;

use burn::module::Module;
use burn::optim::MultiGradientsParams;
use burn::tensor::{Device, Tensor};
use reid_losses::moco::{InfoNceQueue, QueueState, momentum_update};

use super::pair::Batch;
use crate::engine::checkpoint::{bytes_to_f32s, f32s_to_bytes};
use crate::engine::parallel::{DataParallel, ShardOutput};
use crate::engine::seed::{ShuffledEpochs, augment_seed};
use crate::error::TrainError;
use crate::input::views::load_view_batch;
use reid_data::loader::ViewsTransform;

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
    pub seed: u64,
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

    /// The shuffled `drop_last` epochs over `n` records.
    pub fn epochs(&self, n: usize) -> Result<ShuffledEpochs, TrainError> {
        ShuffledEpochs::new(n, self.batch_size, self.max_steps_per_epoch, self.seed)
    }

    /// The initial queue: `queue_size` random unit keys drawn from the seed.
    pub fn queue(&self, device: &Device) -> Result<InfoNceQueue, TrainError> {
        Ok(InfoNceQueue::new(
            self.queue_size,
            self.dim,
            self.seed,
            device,
        )?)
    }

    /// Fails unless `queue` holds `queue_size` keys of dimension `dim`.
    pub fn check_queue(&self, queue: &InfoNceQueue) -> Result<(), TrainError> {
        if queue.size() == self.queue_size && queue.dim() == self.dim {
            return Ok(());
        }
        Err(TrainError::InvalidConfig(format!(
            "the queue holds {} keys of dimension {}; the configuration asks for \
             queue_size {} and dim {}",
            queue.size(),
            queue.dim(),
            self.queue_size,
            self.dim
        )))
    }

    /// The two views of each image of `batch` (`[batch, 3, h, w]` each, on
    /// `device`): `views` draws both from the image's stream of the step.
    /// Views of another shape than `[3, size[0], size[1]]` are an error.
    pub fn two_views<T: ViewsTransform>(
        &self,
        batch: &Batch<'_>,
        device: &Device,
        views: T,
    ) -> Result<[Tensor<4>; 2], TrainError> {
        let want = [3, self.size[0] as usize, self.size[1] as usize];
        let shapes = views.view_shapes();
        if shapes != [want, want] {
            return Err(TrainError::InvalidConfig(format!(
                "the views have shapes {shapes:?}, the recipe's size asks for two of {want:?}"
            )));
        }
        let vs = load_view_batch(
            batch.set,
            batch.indices,
            views,
            self.seed,
            batch.step,
            device,
        )?;
        vs.try_into().map_err(|v: Vec<Tensor<4>>| {
            TrainError::InvalidConfig(format!("2 views per image expected, got {}", v.len()))
        })
    }

    /// The keys of a step: the key encoder first moves towards the query
    /// encoder (momentum `key_momentum`, as upstream, before the keys),
    /// then `forward` runs it on `images` with shuffle-BN over `bn_groups`
    /// groups, spread over `dp`'s devices (the keys are the single-device
    /// ones); detached.
    pub fn momentum_keys<N, F>(
        &self,
        dp: &DataParallel,
        (key, query): (&mut N, &N),
        step: usize,
        images: Tensor<4>,
        forward: F,
    ) -> Result<Tensor<2>, TrainError>
    where
        N: Module,
        F: Fn(&N, Tensor<4>) -> Tensor<2> + Sync,
    {
        momentum_update(key, query, self.key_momentum)?;
        let shuffle_seed = augment_seed(self.seed, step, usize::MAX - 3);
        let keys = dp.shuffled_forward(key, images, self.bn_groups, shuffle_seed, forward)?;
        Ok(keys.detach())
    }
}

/// The query side of a MoCo or PNL step with the batch sharded over `dp`'s
/// devices: for shard `i` (rows `r`) on device `d`, `loss(query, i, r,
/// images, keys)` gets those rows of `images` and of the step's `keys`
/// moved to `d`, and returns the shard's loss (scaled by `scale` for the
/// gradients) and what the step keeps of it.
pub(crate) fn query_shards<N, T, F>(
    dp: &DataParallel,
    query: &N,
    (images, keys): (&Tensor<4>, &Tensor<2>),
    scale: f64,
    loss: F,
) -> Result<(MultiGradientsParams, Vec<ShardOutput<T>>), TrainError>
where
    N: Module,
    T: Send,
    F: Fn(N, usize, Range<usize>, Tensor<4>, Tensor<2>) -> Result<(Tensor<1>, T), TrainError>
        + Sync,
{
    let shards = dp.shards(images.dims()[0], 1)?;
    dp.grads_scaled(query, &shards, scale, |query, i, d| {
        let r = shards[i].clone();
        let x = images.clone().narrow(0, r.start, r.len()).to_device(d);
        let k = keys.clone().narrow(0, r.start, r.len()).to_device(d);
        loss(query, i, r, x, k)
    })
}

/// The small part of an [`InfoNceQueue`] kept in `state.json`; the keys go
/// to a binary part.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueueMeta {
    size: usize,
    dim: usize,
    ptr: usize,
    ids: Vec<i64>,
}

impl QueueMeta {
    /// Splits a queue into its JSON part and its keys as bytes.
    pub fn of(queue: &InfoNceQueue) -> (Self, Vec<u8>) {
        let s = queue.state();
        let keys = f32s_to_bytes(&s.keys);
        let meta = Self {
            size: s.size,
            dim: s.dim,
            ptr: s.ptr,
            ids: s.ids,
        };
        (meta, keys)
    }

    /// Rebuilds the queue from this part and the keys (`queue.bin`).
    pub fn restore(self, keys: &[u8], device: &Device) -> Result<InfoNceQueue, TrainError> {
        let state = QueueState {
            size: self.size,
            dim: self.dim,
            keys: bytes_to_f32s(keys, "queue.bin")?,
            ids: self.ids,
            ptr: self.ptr,
        };
        Ok(InfoNceQueue::from_state(&state, device)?)
    }
}
