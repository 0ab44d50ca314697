//! CION's identity sampler (`RandomIdentitySampler_DDP` run on one process)
//! with its progressive ("gradual") schedule of instances per identity `K`.
//!
//! # Epoch semantics (CION `data/sampler_ddp.py`, one process)
//! - `K` comes from the [`KSchedule`] for the epoch; a batch holds
//!   `N_id = batch_size / K` identities × `K` images, identity-major
//!   (`K` consecutive indices share a pid).
//! - At the start of the epoch every identity's index list is shuffled. An
//!   identity with fewer than `K` images gets `K` indices drawn **with
//!   replacement**; otherwise its list is padded with `len % K` random
//!   repeats of its own indices (upstream's padding rule, reproduced as is:
//!   it does not always make the length a multiple of `K`).
//! - While at least `N_id` identities remain, `N_id` distinct identities are
//!   drawn uniformly without replacement; each contributes its next `K`
//!   indices, and leaves the pool when fewer than `K` of its indices remain.
//! - The index list is cut into batches of `batch_size` with `drop_last`
//!   (every round fills exactly one batch).
//!
//! The random generator is `rand_chacha::ChaCha8Rng` seeded from
//! `(seed, epoch)`: reproducible, not Python's stream.

use rand::SeedableRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::record::ImageRecord;
use crate::sampler::groups_of_at_least;

/// Piecewise-constant schedule of instances per identity `K`: epochs
/// `< epochs[0]` use `instances[0]`, epochs in `[epochs[i-1], epochs[i])`
/// use `instances[i]`, and epochs past the last boundary keep the last `K`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KSchedule {
    /// Exclusive end epoch of each stage, strictly increasing (0-based epochs).
    pub epochs: Vec<u64>,
    /// `K` of each stage (≥ 1), same length as `epochs`.
    pub instances: Vec<usize>,
}

impl Default for KSchedule {
    /// CION's defaults (`--gradual_epochs 40 60 80 100`,
    /// `--gradual_instances 2 4 6 8`): K = 2 for epochs 0–39, 4 for 40–59,
    /// 6 for 60–79, 8 for 80–99.
    fn default() -> Self {
        Self {
            epochs: vec![40, 60, 80, 100],
            instances: vec![2, 4, 6, 8],
        }
    }
}

impl KSchedule {
    /// The same `k` for every epoch.
    pub fn constant(k: usize) -> Self {
        Self {
            epochs: vec![u64::MAX],
            instances: vec![k],
        }
    }

    /// Errors when the lists are empty, of different lengths, not strictly
    /// increasing, or a `K` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.epochs.is_empty() || self.epochs.len() != self.instances.len() {
            return Err(DataError::InvalidArgument(format!(
                "K schedule needs equally long, non-empty epochs and instances lists (got {} and {})",
                self.epochs.len(),
                self.instances.len()
            )));
        }
        if self.epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DataError::InvalidArgument(format!(
                "K schedule epochs must be strictly increasing, got {:?}",
                self.epochs
            )));
        }
        if self.instances.contains(&0) {
            return Err(DataError::InvalidArgument(format!(
                "K schedule instances must be >= 1, got {:?}",
                self.instances
            )));
        }
        Ok(())
    }

    /// `K` for `epoch` (0-based).
    pub fn k_for(&self, epoch: u64) -> usize {
        self.epochs
            .iter()
            .position(|&e| epoch < e)
            .and_then(|i| self.instances.get(i))
            .or(self.instances.last())
            .copied()
            .unwrap_or(1)
    }

    /// Epochs at which `K` changes (where CION rebuilds its data loader):
    /// `[40, 60, 80]` for the default.
    pub fn switch_epochs(&self) -> Vec<u64> {
        self.epochs
            .iter()
            .zip(self.instances.windows(2))
            .filter(|(_, w)| w[0] != w[1])
            .map(|(&e, _)| e)
            .collect()
    }
}

/// CION's identity sampler over a training split: batches of indices into
/// the records it was built from, `batch_size` long, `N_id × K`
/// identity-major.
#[derive(Debug, Clone)]
pub struct IdentitySampler {
    /// Identities in ascending pid order with their record indices.
    groups: Vec<(i64, Vec<usize>)>,
    batch_size: usize,
    schedule: KSchedule,
    seed: u64,
}

impl IdentitySampler {
    /// Builds the sampler from records (grouped by `pid`). Errors when the
    /// split is empty, `batch_size` is not a multiple of every `K` of the
    /// schedule, the schedule is invalid, or the split has fewer identities
    /// than the largest `N_id = batch_size / K`.
    pub fn new(
        records: &[ImageRecord],
        batch_size: usize,
        schedule: KSchedule,
        seed: u64,
    ) -> Result<Self> {
        let pids: Vec<i64> = records.iter().map(|r| r.pid).collect();
        Self::from_pids(&pids, batch_size, schedule, seed)
    }

    /// As [`IdentitySampler::new`] from one pid per record.
    pub fn from_pids(
        pids: &[i64],
        batch_size: usize,
        schedule: KSchedule,
        seed: u64,
    ) -> Result<Self> {
        schedule.validate()?;
        if pids.is_empty() {
            return Err(DataError::InvalidArgument(
                "identity sampler needs a non-empty training split".into(),
            ));
        }
        if batch_size == 0 {
            return Err(DataError::InvalidArgument(
                "identity sampler batch size must be >= 1".into(),
            ));
        }
        if let Some(k) = schedule
            .instances
            .iter()
            .find(|&&k| !batch_size.is_multiple_of(k))
        {
            return Err(DataError::InvalidArgument(format!(
                "identity sampler batch size {batch_size} must be a multiple of every K of the schedule (K = {k})"
            )));
        }
        let min_k = schedule.instances.iter().copied().min().unwrap_or(1);
        let max_ids = batch_size / min_k;
        let groups = groups_of_at_least(pids.iter().copied(), max_ids, || {
            format!("identity sampler needs at least batch_size / K = {max_ids}")
        })?;
        Ok(Self {
            groups,
            batch_size,
            schedule,
            seed,
        })
    }

    /// Batch size (images per batch).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The K schedule.
    pub fn schedule(&self) -> &KSchedule {
        &self.schedule
    }

    /// Number of distinct identities.
    pub fn num_identities(&self) -> usize {
        self.groups.len()
    }

    /// `K` (images per identity) in `epoch`.
    pub fn k(&self, epoch: u64) -> usize {
        self.schedule.k_for(epoch)
    }

    /// `N_id = batch_size / K` in `epoch`.
    pub fn ids_per_batch(&self, epoch: u64) -> usize {
        self.batch_size / self.k(epoch)
    }

    /// The batches of `epoch` (see the module docs). Deterministic given
    /// `(seed, epoch)`.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let k = self.k(epoch);
        let n_id = self.batch_size / k;
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ epoch.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        // Per-identity pools, consumed from the front.
        let mut pools: Vec<Vec<usize>> = Vec::with_capacity(self.groups.len());
        for (_, idxs) in &self.groups {
            let mut pool: Vec<usize> = if idxs.len() < k {
                (0..k)
                    .filter_map(|_| idxs.choose(&mut rng).copied())
                    .collect()
            } else {
                let mut p = idxs.clone();
                let extra = idxs.len() % k;
                for _ in 0..extra {
                    if let Some(&i) = idxs.choose(&mut rng) {
                        p.push(i);
                    }
                }
                p
            };
            pool.shuffle(&mut rng);
            pools.push(pool);
        }
        let mut cursor = vec![0usize; pools.len()];
        let mut available: Vec<usize> = (0..pools.len()).filter(|&g| pools[g].len() >= k).collect();
        let mut batches = Vec::new();
        while available.len() >= n_id && n_id > 0 {
            let picked: Vec<usize> = available.choose_multiple(&mut rng, n_id).copied().collect();
            let mut batch = Vec::with_capacity(self.batch_size);
            for &g in &picked {
                let start = cursor[g];
                batch.extend_from_slice(&pools[g][start..start + k]);
                cursor[g] = start + k;
            }
            available.retain(|&g| pools[g].len() - cursor[g] >= k);
            batches.push(batch);
        }
        batches
    }
}
