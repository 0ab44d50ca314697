//! Training batches: an endless stream of PK index batches, and the parallel
//! decode + BoT augmentation of one batch into a tensor.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use reid_data::augment::TrainTransform;
use reid_data::batch::load_rgb;
use reid_data::loader::{ImageSource, decode_rgb};
use reid_data::sampler::PkSampler;
use reid_data::{ImageLocation, ImageRecord};

use crate::engine::seed::augment_seed;
use crate::error::TrainError;

/// The training split prepared for batching: where each image is, dense
/// class labels `0..num_classes` (pids in ascending order), and the source
/// that reads the images (files, or an LMDB for keys).
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// Each record's location (file path or LMDB key).
    pub locations: Vec<ImageLocation>,
    /// Reads the locations.
    pub source: ImageSource,
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
        let locations: Vec<ImageLocation> = records.iter().map(|r| r.location.clone()).collect();
        let labels = records.iter().map(|r| ids[&r.pid]).collect();
        Ok(Self {
            locations,
            source,
            labels,
            num_classes: ids.len(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether there are no images (never, for a set that was built).
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// How errors name image `index`: its file, or `<lmdb folder>/<key>`
    /// (`None` out of range).
    pub fn name(&self, index: usize) -> Option<PathBuf> {
        self.locations.get(index).map(|l| self.source.name(l))
    }

    /// Decodes image `index` to RGB (files as [`load_rgb`] reads them; LMDB
    /// values with [`decode_rgb`]).
    pub fn load(&self, index: usize) -> Result<RgbImage, TrainError> {
        let location = self.locations.get(index).ok_or_else(|| {
            TrainError::InvalidConfig(format!(
                "image index {index} is out of range for {} images",
                self.locations.len()
            ))
        })?;
        Ok(match location {
            ImageLocation::Path(p) => load_rgb(p)?,
            ImageLocation::LmdbKey(_) => {
                decode_rgb(&self.source.read(location)?, &self.source.name(location))?
            }
        })
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

/// Decodes and augments the images `indices` of `set` in parallel into
/// `([batch, 3, H, W]` images, `[batch]` labels`)` on `device`. An unreadable
/// file is an error naming it.
pub fn load_train_batch(
    set: &TrainSet,
    indices: &[usize],
    transform: &TrainTransform,
    seed: u64,
    iteration: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>), TrainError> {
    load_train_shard(set, indices, 0, transform, seed, iteration, device)
}

/// [`load_train_batch`] for a shard of a batch: `indices` are the batch's
/// slots `first_slot..first_slot + indices.len()`, whose augmentation
/// streams they use, so the shards of a batch hold the whole batch's images.
pub fn load_train_shard(
    set: &TrainSet,
    indices: &[usize],
    first_slot: usize,
    transform: &TrainTransform,
    seed: u64,
    iteration: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>), TrainError> {
    let (h, w) = (transform.height as usize, transform.width as usize);
    let per = 3 * h * w;
    let mut data = vec![0f32; per * indices.len()];
    data.par_chunks_mut(per)
        .zip(indices.par_iter().enumerate())
        .try_for_each(|(out, (slot, &idx))| -> Result<(), TrainError> {
            let img = set.load(idx)?;
            let mut rng =
                ChaCha8Rng::seed_from_u64(augment_seed(seed, iteration, first_slot + slot));
            transform.write(&img, &mut rng, out);
            Ok(())
        })?;
    let images = Tensor::from_data(TensorData::new(data, [indices.len(), 3, h, w]), device);
    let labels: Vec<i64> = indices.iter().map(|&i| set.labels[i]).collect();
    let labels = Tensor::from_data(TensorData::new(labels, [indices.len()]), device);
    Ok((images, labels))
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
        assert_ne!(augment_seed(1, 0, 0), augment_seed(1, 0, 1));
        assert_ne!(augment_seed(1, 0, 1), augment_seed(1, 1, 0));
        assert_eq!(augment_seed(9, 3, 2), augment_seed(9, 3, 2));

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
