//! Training batches: the training split ([`TrainSet`], read through
//! reid-data's loader), an endless stream of PK index batches, and the
//! decode + BoT augmentation of one batch into a tensor.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use reid_data::augment::TrainTransform;
use reid_data::loader::{ImageSource, ReidDataset, TrainLoader};
use reid_data::sampler::PkSampler;
use reid_data::{ImageLocation, ImageRecord};

use crate::error::TrainError;

/// The training split prepared for batching: its images as a loader
/// dataset (files, or an LMDB for keys) and dense class labels
/// `0..num_classes` (pids in ascending order).
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// The records and the source that reads them.
    pub dataset: ReidDataset,
    /// Dense label of each record.
    pub labels: Vec<i64>,
    /// Number of distinct identities.
    pub num_classes: usize,
}

impl TrainSet {
    /// Image files and dense labels of `records`. An empty split or a
    /// record that is an LMDB key is an error naming it (see
    /// [`Self::with_source`]).
    pub fn new(records: &[ImageRecord]) -> Result<Self, TrainError> {
        Self::with_source(records, ImageSource::files())
    }

    /// [`Self::new`] reading the images through `source`: LMDB keys are
    /// allowed when it has an LMDB reader.
    pub fn with_source(records: &[ImageRecord], source: ImageSource) -> Result<Self, TrainError> {
        if records.is_empty() {
            return Err(TrainError::InvalidConfig(
                "the training split is empty".into(),
            ));
        }
        if !source.reads_lmdb()
            && let Some(k) = records.iter().find_map(|r| match &r.location {
                ImageLocation::LmdbKey(k) => Some(k),
                ImageLocation::Path(_) => None,
            })
        {
            return Err(TrainError::InvalidConfig(format!(
                "training record {k:?} is an LMDB key, but no LMDB image source was given \
                 (RunOptions::image_source, from Corpus::image_source with the `lmdb` feature)"
            )));
        }
        let mut ids: BTreeMap<i64, i64> = records.iter().map(|r| (r.pid, 0)).collect();
        for (i, v) in ids.values_mut().enumerate() {
            *v = i as i64;
        }
        let labels = records.iter().map(|r| ids[&r.pid]).collect();
        Ok(Self {
            dataset: ReidDataset::new(records.to_vec(), source),
            labels,
            num_classes: ids.len(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images (never, for a set that was built).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How errors name image `index`: its file, or `<lmdb folder>/<key>`
    /// (`None` out of range).
    pub fn name(&self, index: usize) -> Option<PathBuf> {
        self.dataset.name(index).ok()
    }

    /// The loader that reads this set and draws `transform` (one view, or
    /// several with a [`ViewsTransform`](reid_data::loader::ViewsTransform))
    /// with `seed`: batch `b` of epoch `e` draws image `i` from
    /// [`item_rng`](reid_data::loader::item_rng)`(seed, e, b, i)`. The
    /// recipes pass their global step as `b` and 0 as `e`, so a resumed run
    /// draws the same views.
    pub fn loader<T>(&self, transform: T, seed: u64) -> TrainLoader<T> {
        TrainLoader::new(self.dataset.clone(), transform, seed)
    }

    /// The dense labels of dataset `indices`, `[indices.len()]`; an index
    /// out of range is an error.
    pub fn labels_of(&self, indices: &[usize]) -> Result<Vec<i64>, TrainError> {
        indices
            .iter()
            .map(|&i| {
                self.labels.get(i).copied().ok_or_else(|| {
                    TrainError::InvalidConfig(format!(
                        "image index {i} is out of range for {} images",
                        self.labels.len()
                    ))
                })
            })
            .collect()
    }
}

/// fast-reid-style endless PK stream: consecutive [`PkSampler::epoch`]
/// batch lists concatenated, so a training "epoch" of any length just takes
/// the next batches. Its position ([`StreamState`]) can be saved with
/// [`state`](Self::state) and restored with [`from_state`](Self::from_state)
/// (checkpoints resume the exact batch sequence).
#[derive(Debug)]
pub struct BatchStream {
    sampler: PkSampler,
    next_round: u64,
    queue: VecDeque<Vec<usize>>,
}

impl BatchStream {
    /// A stream over `sampler`'s rounds 0, 1, 2, …
    pub fn new(sampler: PkSampler) -> Self {
        Self {
            sampler,
            next_round: 0,
            queue: VecDeque::new(),
        }
    }

    /// A stream over `sampler` positioned at `state` (from
    /// [`state`](Self::state) of a stream over the same sampler).
    pub fn from_state(sampler: PkSampler, state: StreamState) -> Self {
        Self {
            sampler,
            next_round: state.next_round,
            queue: state.queue.into(),
        }
    }

    /// Where the stream stands: the next round to draw and the batches of
    /// the current round not yet taken.
    pub fn state(&self) -> StreamState {
        StreamState {
            next_round: self.next_round,
            queue: self.queue.iter().cloned().collect(),
        }
    }

    /// The next batch of `P·K` record indices.
    pub fn next_batch(&mut self) -> Result<Vec<usize>, TrainError> {
        if self.queue.is_empty() {
            self.queue.extend(self.sampler.epoch(self.next_round));
            self.next_round += 1;
        }
        self.queue.pop_front().ok_or_else(|| {
            TrainError::InvalidConfig(format!(
                "the PK sampler produced no batch (P={}, K={}, {} identities)",
                self.sampler.p(),
                self.sampler.k(),
                self.sampler.num_identities()
            ))
        })
    }
}

/// The position of a [`BatchStream`], serialisable (checkpoints keep it in
/// `state.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StreamState {
    /// The sampler round drawn when the queue runs empty.
    pub next_round: u64,
    /// Batches of the current round not yet taken, in order.
    pub queue: Vec<Vec<usize>>,
}

/// Decodes and BoT-augments the images `indices` of `set` in parallel
/// (through [`TrainSet::loader`], as batch `iteration`) into
/// `([batch, 3, H, W]` images, `[batch]` dense labels`)` on `device`. An
/// unreadable file is an error naming it.
pub fn load_train_batch(
    set: &TrainSet,
    indices: &[usize],
    transform: &TrainTransform,
    seed: u64,
    iteration: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>), TrainError> {
    let host = set
        .loader(transform.clone(), seed)
        .load(indices, 0, iteration as u64)?;
    let labels = set.labels_of(&host.indices)?;
    let n = labels.len();
    let labels = Tensor::from_data(TensorData::new(labels, [n]), device);
    Ok((host.into_tensors(device).images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_dense_in_pid_order_and_lmdb_is_rejected() {
        let recs = vec![
            ImageRecord::new("a.jpg", 7, 0),
            ImageRecord::new("b.jpg", 3, 1),
            ImageRecord::new("c.jpg", 7, 1),
        ];
        let set = TrainSet::new(&recs).unwrap();
        assert_eq!(set.labels, vec![1, 0, 1]);
        assert_eq!(set.num_classes, 2);
        let mut lmdb = recs.clone();
        lmdb[1].location = ImageLocation::LmdbKey("00_00_0000_00000001".into());
        let e = TrainSet::new(&lmdb).unwrap_err().to_string();
        assert!(e.contains("00_00_0000_00000001"), "{e}");
        assert!(TrainSet::new(&[]).is_err());
    }

    #[test]
    fn stream_crosses_rounds_and_seeds_differ_per_slot() {
        let recs: Vec<_> = (0..12)
            .map(|i| ImageRecord::new(format!("{i}.jpg"), i / 4, 0))
            .collect();
        let mut s = BatchStream::new(PkSampler::new(&recs, 2, 2, 5).unwrap());
        // 3 ids × 2 chunks = 6 chunks → 3 batches per round; take 7.
        let batches: Vec<_> = (0..7).map(|_| s.next_batch().unwrap()).collect();
        assert!(batches.iter().all(|b| b.len() == 4));

        // A stream restored from a saved state continues the same sequence.
        let saved = s.state();
        let sampler = PkSampler::new(&recs, 2, 2, 5).unwrap();
        let json = serde_json::to_string(&saved).unwrap();
        let back: StreamState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
        let mut r = BatchStream::from_state(sampler, back);
        for _ in 0..5 {
            assert_eq!(r.next_batch().unwrap(), s.next_batch().unwrap());
        }
    }
}
