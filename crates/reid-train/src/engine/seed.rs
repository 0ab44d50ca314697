//! Seeds and samplers that make a run deterministic: the per-slot
//! augmentation seed every input pipeline draws from, and the shuffled,
//! `drop_last` epoch sampler of MoCo and PNL.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::TrainError;

/// SplitMix64 finaliser: a well-mixed 64-bit value of `x`.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The augmentation seed of slot `slot` of iteration `iteration`: a
/// function of `(seed, iteration, slot)` only, so the batch is the same
/// whatever the thread schedule.
pub fn augment_seed(seed: u64, iteration: usize, slot: usize) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ iteration as u64) ^ slot as u64)
}

/// The batches of one epoch of a shuffled, `drop_last` sampler over `n`
/// items (PyTorch's `DistributedSampler` + `BatchSampler` on one device):
/// a permutation seeded by `(seed, epoch)` cut into `n / batch` batches.
pub fn shuffled_batches(n: usize, batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(seed, epoch, usize::MAX - 2));
    order.shuffle(&mut rng);
    if batch == 0 {
        return Vec::new();
    }
    order.chunks_exact(batch).map(<[usize]>::to_vec).collect()
}

/// The epochs of MoCo's and PNL's sampler: [`shuffled_batches`] over `n`
/// records, capped at `per_epoch` batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShuffledEpochs {
    n: usize,
    batch: usize,
    seed: u64,
    /// Batches run per epoch.
    pub per_epoch: usize,
}

impl ShuffledEpochs {
    /// `n / batch` batches per epoch, at most `cap`; an error when that is 0.
    pub fn new(n: usize, batch: usize, cap: Option<usize>, seed: u64) -> Result<Self, TrainError> {
        let per_epoch = (n / batch.max(1)).min(cap.unwrap_or(usize::MAX));
        if per_epoch == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "{n} images make no batch of {batch}"
            )));
        }
        Ok(Self {
            n,
            batch,
            seed,
            per_epoch,
        })
    }

    /// The batches of `epoch`.
    pub fn epoch(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut b = shuffled_batches(self.n, self.batch, self.seed, epoch);
        b.truncate(self.per_epoch);
        b
    }
}
