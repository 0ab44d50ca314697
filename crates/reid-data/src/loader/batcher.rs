//! Parallel decode + transform + stacking: [`TrainBatcher`] (burn's
//! [`Batcher`] over decoded [`ReidItem`]s) and [`TrainLoader`] (index
//! batches from a sampler → [`HostBatch`] / [`TrainBatch`], decoding inside
//! the rayon workers, with a [`CorruptPolicy`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::ThreadPool;
use rayon::prelude::*;

use crate::error::{DataError, Result};

use super::dataset::{ReidDataset, ReidItem};
use super::item::ItemTransform;
use super::item_rng;
use super::policy::{CorruptPolicy, LoaderStats, StatsCounter};
use super::views::{HostViews, ViewsTransform};

/// A batch on the host: what the prefetch thread produces. Convert it with
/// [`HostBatch::into_tensors`] on the training thread.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Images, layout `[len, channels, height, width]`, row-major.
    pub data: Vec<f32>,
    /// `[len, channels, height, width]`.
    pub shape: [usize; 4],
    /// Identity label of each image, `[len]`.
    pub pids: Vec<i64>,
    /// 0-based camera of each image, `[len]`.
    pub camids: Vec<i64>,
    /// Dataset index of each image, `[len]`.
    pub indices: Vec<usize>,
    /// Dataset indices dropped as corrupt ([`CorruptPolicy::Skip`]).
    pub skipped: Vec<usize>,
}

impl HostBatch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when every image of the batch was skipped.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The one view of a one-view batch (`views` must hold exactly one view).
    fn from_views(mut v: HostViews) -> Self {
        Self {
            data: v.views.swap_remove(0),
            shape: v.shapes[0],
            pids: v.pids,
            camids: v.camids,
            indices: v.indices,
            skipped: v.skipped,
        }
    }

    /// Moves the batch onto `device`.
    pub fn into_tensors(self, device: &Device) -> TrainBatch {
        let n = self.indices.len();
        TrainBatch {
            images: Tensor::from_data(TensorData::new(self.data, self.shape), device),
            pids: Tensor::from_data(TensorData::new(self.pids, [n]), device),
            camids: Tensor::from_data(TensorData::new(self.camids, [n]), device),
            indices: self.indices,
        }
    }
}

/// A training batch on a device.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Transformed images `[batch, channels, height, width]` (normalised).
    pub images: Tensor<4>,
    /// Identity labels `[batch]`.
    pub pids: Tensor<1, Int>,
    /// 0-based cameras `[batch]`.
    pub camids: Tensor<1, Int>,
    /// Dataset index of each image.
    pub indices: Vec<usize>,
}

/// What became of one slot of a batch.
enum Slot {
    Kept { index: usize, pid: i64, camid: u32 },
    Skipped { index: usize, name: PathBuf },
}

/// Applies an [`ItemTransform`] to every image of a batch in parallel and
/// stacks the results. Each item's generator is seeded from `(seed, epoch,
/// key, position in the batch)` ([`item_rng`]), so the output does not
/// depend on the number of threads or their scheduling.
///
/// As burn's [`Batcher<ReidItem, BatchResult>`](Batcher) (for burn's
/// own `DataLoader`) the key is each item's dataset index and the epoch is
/// [`TrainBatcher::set_epoch`]'s; [`TrainLoader`] uses the batch number.
pub struct TrainBatcher<T> {
    transform: Arc<T>,
    seed: u64,
    epoch: Arc<AtomicU64>,
    pool: Option<Arc<ThreadPool>>,
}

impl<T> Clone for TrainBatcher<T> {
    fn clone(&self) -> Self {
        Self {
            transform: Arc::clone(&self.transform),
            seed: self.seed,
            epoch: Arc::clone(&self.epoch),
            pool: self.pool.clone(),
        }
    }
}

impl<T> std::fmt::Debug for TrainBatcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainBatcher")
            .field("seed", &self.seed)
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field(
                "threads",
                &self.pool.as_ref().map(|p| p.current_num_threads()),
            )
            .finish()
    }
}

impl<T> TrainBatcher<T> {
    /// A batcher applying `transform`, seeded by `seed`, on rayon's global
    /// pool, epoch 0.
    pub fn new(transform: T, seed: u64) -> Self {
        Self {
            transform: Arc::new(transform),
            seed,
            epoch: Arc::new(AtomicU64::new(0)),
            pool: None,
        }
    }

    /// Runs the parallel work on `pool` instead of rayon's global pool.
    pub fn with_pool(mut self, pool: Arc<ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Runs the parallel work on a new pool of `threads` threads.
    pub fn with_threads(self, threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| {
                DataError::InvalidArgument(format!("cannot start {threads} threads: {e}"))
            })?;
        Ok(self.with_pool(Arc::new(pool)))
    }

    /// The transform.
    pub fn transform(&self) -> &T {
        &self.transform
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Sets the epoch used by the [`Batcher`] implementation (shared by clones).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
}

impl<T: ItemTransform> TrainBatcher<T> {
    /// Floats per image, and the per-image shape.
    fn per_image(&self) -> Result<(usize, [usize; 3])> {
        let shape = self.transform.shape();
        let per = shape.iter().product::<usize>();
        if per == 0 {
            return Err(DataError::InvalidArgument(format!(
                "the transform's output shape {shape:?} is empty"
            )));
        }
        Ok((per, shape))
    }

    /// Transforms already decoded `items` into a host batch `[items.len(),
    /// C, H, W]`; item `i` uses `item_rng(seed, epoch, key, i)`.
    pub fn host_batch(&self, items: &[ReidItem], epoch: u64, key: u64) -> Result<HostBatch> {
        self.stack(items, epoch, |_| key)
    }

    /// Transforms `items` in parallel, item `i` with `item_rng(seed, epoch,
    /// key(item), i)`, and stacks them.
    fn stack(
        &self,
        items: &[ReidItem],
        epoch: u64,
        key: impl Fn(&ReidItem) -> u64 + Sync,
    ) -> Result<HostBatch> {
        let (per, shape) = self.per_image()?;
        let mut data = vec![0f32; per * items.len()];
        let slots: Vec<Result<Slot>> = self.install(|| {
            data.par_chunks_mut(per)
                .zip(items.par_iter().enumerate())
                .map(|(out, (pos, item))| {
                    let mut rng = item_rng(self.seed, epoch, key(item), pos as u64);
                    self.transform.write(&item.image, &mut rng, out)?;
                    Ok(Slot::Kept {
                        index: item.index,
                        pid: item.pid,
                        camid: item.camid,
                    })
                })
                .collect()
        });
        Ok(HostBatch::from_views(assemble(
            vec![data],
            &[shape],
            slots,
        )?))
    }
}

/// Stacks the kept slots (in batch order) of every view buffer (view `v`
/// holds `slots.len()` rows of `shapes[v]`), dropping skipped ones; the first
/// error in batch order wins.
fn assemble(
    mut views: Vec<Vec<f32>>,
    shapes: &[[usize; 3]],
    slots: Vec<Result<Slot>>,
) -> Result<HostViews> {
    let pers: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let n = slots.len();
    let mut out = HostViews {
        views: Vec::new(),
        shapes: Vec::new(),
        pids: Vec::with_capacity(n),
        camids: Vec::with_capacity(n),
        indices: Vec::with_capacity(n),
        skipped: Vec::new(),
    };
    let mut kept = 0;
    for (pos, slot) in slots.into_iter().enumerate() {
        match slot? {
            Slot::Kept { index, pid, camid } => {
                if kept != pos {
                    for (data, &per) in views.iter_mut().zip(&pers) {
                        data.copy_within(pos * per..(pos + 1) * per, kept * per);
                    }
                }
                kept += 1;
                out.pids.push(pid);
                out.camids.push(i64::from(camid));
                out.indices.push(index);
            }
            Slot::Skipped { index, .. } => out.skipped.push(index),
        }
    }
    for (data, &per) in views.iter_mut().zip(&pers) {
        data.truncate(kept * per);
    }
    out.views = views;
    out.shapes = shapes.iter().map(|s| [kept, s[0], s[1], s[2]]).collect();
    Ok(out)
}

/// The output of [`TrainBatcher`] as burn's batcher: burn's `DataLoader`
/// needs `Clone` outputs, hence the shared error.
pub type BatchResult = std::result::Result<TrainBatch, Arc<DataError>>;

/// burn's batcher over decoded items: parallel transform + stacking on
/// `device`. Errors (a view that cannot be drawn) are returned, never
/// panicked on.
impl<T: ItemTransform> Batcher<ReidItem, BatchResult> for TrainBatcher<T> {
    fn batch(&self, items: Vec<ReidItem>, device: &Device) -> BatchResult {
        self.batch_items(items, device).map_err(Arc::new)
    }
}

impl<T: ItemTransform> TrainBatcher<T> {
    /// What the [`Batcher`] implementation does, with a plain [`DataError`]:
    /// item `i` draws from `item_rng(seed, epoch, item.index, i)`.
    pub fn batch_items(&self, items: Vec<ReidItem>, device: &Device) -> Result<TrainBatch> {
        let epoch = self.epoch.load(Ordering::Relaxed);
        Ok(self
            .stack(&items, epoch, |item| item.index as u64)?
            .into_tensors(device))
    }
}

/// The training loader: index batches (from
/// [`PkSampler::epoch`](crate::sampler::PkSampler::epoch) or
/// [`IdentitySampler::epoch`](crate::sampler_identity::IdentitySampler::epoch))
/// → decoded, transformed, stacked batches. Decoding and transforming run
/// together in the rayon workers (one task per image); item `i` of batch `b`
/// in epoch `e` uses `item_rng(seed, e, b, i)`. Cloning is cheap (shared
/// dataset, transform and counters).
pub struct TrainLoader<T> {
    dataset: ReidDataset,
    batcher: TrainBatcher<T>,
    policy: CorruptPolicy,
    stats: Arc<StatsCounter>,
}

impl<T> Clone for TrainLoader<T> {
    fn clone(&self) -> Self {
        Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            policy: self.policy,
            stats: Arc::clone(&self.stats),
        }
    }
}

impl<T> std::fmt::Debug for TrainLoader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainLoader")
            .field("images", &self.dataset.records().len())
            .field("batcher", &self.batcher)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<T> TrainLoader<T> {
    /// A loader of `dataset` applying `transform`, seeded by `seed`, with
    /// [`CorruptPolicy::Error`] on rayon's global pool.
    pub fn new(dataset: ReidDataset, transform: T, seed: u64) -> Self {
        Self {
            dataset,
            batcher: TrainBatcher::new(transform, seed),
            policy: CorruptPolicy::Error,
            stats: Arc::new(StatsCounter::default()),
        }
    }

    /// Sets the corrupt-image policy.
    pub fn with_policy(mut self, policy: CorruptPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs the parallel work on `pool`.
    pub fn with_pool(mut self, pool: Arc<ThreadPool>) -> Self {
        self.batcher = self.batcher.with_pool(pool);
        self
    }

    /// Runs the parallel work on a new pool of `threads` threads.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.batcher = self.batcher.with_threads(threads)?;
        Ok(self)
    }

    /// The dataset.
    pub fn dataset(&self) -> &ReidDataset {
        &self.dataset
    }

    /// The batcher (transform, seed, pool).
    pub fn batcher(&self) -> &TrainBatcher<T> {
        &self.batcher
    }

    /// The corrupt-image policy.
    pub fn policy(&self) -> CorruptPolicy {
        self.policy
    }

    /// Images loaded and skipped so far (all clones and prefetch threads).
    pub fn stats(&self) -> LoaderStats {
        self.stats.snapshot()
    }

    /// Sets the counters back to zero.
    pub fn reset_stats(&self) {
        self.stats.reset();
    }
}

impl<T: ViewsTransform> TrainLoader<T> {
    /// Decodes the images at dataset `indices` and draws every view of each
    /// as batch number `batch` of `epoch`: view `v` is `[kept, C, h_v, w_v]`
    /// on the host. Image `i` draws from `item_rng(seed, epoch, batch, i)`.
    ///
    /// A corrupt image is an error naming the file ([`CorruptPolicy::Error`])
    /// or is dropped from every view and counted ([`CorruptPolicy::Skip`]);
    /// a missing file, an unreadable LMDB entry or an index out of range is
    /// always an error. The first error in batch order is returned.
    pub fn load_views(&self, indices: &[usize], epoch: u64, batch: u64) -> Result<HostViews> {
        let shapes = self.batcher.transform.view_shapes();
        if shapes.is_empty() || shapes.iter().any(|s| s.contains(&0)) {
            return Err(DataError::InvalidArgument(format!(
                "the transform's view shapes {shapes:?} are empty"
            )));
        }
        let n = indices.len();
        let mut views: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| vec![0f32; n * s.iter().product::<usize>()])
            .collect();
        // One list of disjoint output slices per image (view-major buffers).
        let mut outs: Vec<Vec<&mut [f32]>> =
            (0..n).map(|_| Vec::with_capacity(shapes.len())).collect();
        for (data, s) in views.iter_mut().zip(&shapes) {
            for (o, chunk) in outs.iter_mut().zip(data.chunks_mut(s.iter().product())) {
                o.push(chunk);
            }
        }
        let (seed, transform, dataset, policy) = (
            self.batcher.seed,
            &self.batcher.transform,
            &self.dataset,
            self.policy,
        );
        let slots: Vec<Result<Slot>> = self.batcher.install(|| {
            outs.into_par_iter()
                .zip(indices.par_iter().enumerate())
                .map(|(mut out, (pos, &index))| {
                    let item = match dataset.load(index) {
                        Ok(item) => item,
                        Err(DataError::Image { path, .. }) if policy == CorruptPolicy::Skip => {
                            return Ok(Slot::Skipped { index, name: path });
                        }
                        Err(e) => return Err(e),
                    };
                    let mut rng = item_rng(seed, epoch, batch, pos as u64);
                    transform
                        .write_views(&item.image, &mut rng, &mut out)
                        .map_err(|e| match e {
                            DataError::InvalidArgument(m) => DataError::InvalidArgument(format!(
                                "{}: {m}",
                                dataset.name(index).unwrap_or_default().display()
                            )),
                            other => other,
                        })?;
                    Ok(Slot::Kept {
                        index,
                        pid: item.pid,
                        camid: item.camid,
                    })
                })
                .collect()
        });
        // Count skips in batch order (deterministic path list), then stack.
        for slot in slots.iter().flatten() {
            if let Slot::Skipped { name, .. } = slot {
                self.stats.add_skipped(name.clone());
            }
        }
        let out = assemble(views, &shapes, slots)?;
        self.stats.add_images(out.len() as u64);
        Ok(out)
    }
}

impl<T: ItemTransform> TrainLoader<T> {
    /// Decodes, transforms and stacks the images at dataset `indices` as
    /// batch number `batch` of `epoch`: `[kept, C, H, W]` on the host (the
    /// one view of [`TrainLoader::load_views`]).
    pub fn load(&self, indices: &[usize], epoch: u64, batch: u64) -> Result<HostBatch> {
        self.load_views(indices, epoch, batch)
            .map(HostBatch::from_views)
    }

    /// [`TrainLoader::load`] moved onto `device`.
    pub fn load_tensors(
        &self,
        indices: &[usize],
        epoch: u64,
        batch: u64,
        device: &Device,
    ) -> Result<TrainBatch> {
        Ok(self.load(indices, epoch, batch)?.into_tensors(device))
    }
}
