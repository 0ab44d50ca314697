//! The PK identity sampler: batches of `P` identities × `K` images each.
//!
//! # Which upstream it follows
//! The epoch semantics follow torchreid's `RandomIdentitySampler`: at the
//! start of each epoch every identity's image indices are shuffled (drawn
//! **with replacement up to `K`** when the identity has fewer than `K`
//! images) and cut into chunks of `K` (a leftover shorter than `K` is
//! dropped); then, while at least `P` identities still have chunks, `P`
//! distinct identities are drawn uniformly without replacement and one chunk
//! of each forms a batch. An epoch therefore visits (almost) every image once.
//!
//! fast-reid's `NaiveIdentitySampler` (BoT, AGW, SBS, MGN) differs: it is an
//! infinite stream whose "epoch" is only `len(train_set) // (P·K)`
//! iterations, and its per-identity pools persist across rounds. Within a
//! pool-refill cycle its draws are the same in distribution (P distinct ids,
//! K images each, with replacement for short ids). Use
//! [`PkSampler::iters_per_epoch_fastreid`] to size epochs the fast-reid way
//! and draw from consecutive [`PkSampler::epoch`] calls.
//!
//! The random generator is `rand_chacha::ChaCha8Rng`, seeded per epoch from
//! `(seed, epoch)`, so results are reproducible but not bit-identical to
//! Python's `random`/NumPy streams.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::record::ImageRecord;

/// A PK sampler over a training split. Batches are vectors of indices into
/// the `&[ImageRecord]` it was built from, of length `P · K`, grouped by
/// identity (`K` consecutive indices share a pid).
#[derive(Debug, Clone)]
pub struct PkSampler {
    /// Identities in ascending pid order, with their record indices.
    groups: Vec<(i64, Vec<usize>)>,
    p: usize,
    k: usize,
    seed: u64,
    num_records: usize,
}

impl PkSampler {
    /// Builds a sampler with `p` identities per batch and `k` images per
    /// identity. Errors when `p` or `k` is 0 or when the split holds fewer
    /// than `p` distinct identities.
    pub fn new(records: &[ImageRecord], p: usize, k: usize, seed: u64) -> Result<Self> {
        if p == 0 || k == 0 {
            return Err(DataError::InvalidArgument(format!(
                "PK sampler needs P >= 1 and K >= 1 (got P={p}, K={k})"
            )));
        }
        let pids = records.iter().map(|r| r.pid);
        let groups = groups_of_at_least(pids, p, || format!("PK sampler needs at least P={p}"))?;
        Ok(Self {
            groups,
            p,
            k,
            seed,
            num_records: records.len(),
        })
    }

    /// Identities per batch (`P`).
    pub fn p(&self) -> usize {
        self.p
    }

    /// Images per identity (`K`).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Batch size `P · K`.
    pub fn batch_size(&self) -> usize {
        self.p * self.k
    }

    /// Number of distinct identities.
    pub fn num_identities(&self) -> usize {
        self.groups.len()
    }

    /// fast-reid's epoch length: `len(train_set) // (P · K)` iterations.
    pub fn iters_per_epoch_fastreid(&self) -> usize {
        self.num_records / self.batch_size()
    }

    /// The batches of epoch `epoch` (torchreid semantics, see the module
    /// docs). Deterministic given `(seed, epoch)`. Each batch has `P · K`
    /// indices: `P` distinct identities, `K` consecutive indices each.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Per-identity chunks of K indices.
        let mut chunks: Vec<Vec<Vec<usize>>> = Vec::with_capacity(self.groups.len());
        for (_, idxs) in &self.groups {
            let mut pool: Vec<usize> = if idxs.len() < self.k {
                (0..self.k)
                    .map(|_| idxs.choose(&mut rng).copied().unwrap_or(0))
                    .collect()
            } else {
                idxs.clone()
            };
            pool.shuffle(&mut rng);
            let mut c: Vec<Vec<usize>> = pool.chunks_exact(self.k).map(<[usize]>::to_vec).collect();
            // Pop from the end: reverse so chunks come out in shuffled order.
            c.reverse();
            chunks.push(c);
        }
        let mut available: Vec<usize> = (0..self.groups.len())
            .filter(|&g| chunks.get(g).is_some_and(|c| !c.is_empty()))
            .collect();
        let mut batches = Vec::new();
        while available.len() >= self.p {
            let picked: Vec<usize> = available
                .choose_multiple(&mut rng, self.p)
                .copied()
                .collect();
            let mut batch = Vec::with_capacity(self.batch_size());
            for &g in &picked {
                if let Some(chunk) = chunks.get_mut(g).and_then(Vec::pop) {
                    batch.extend(chunk);
                }
            }
            available.retain(|&g| chunks.get(g).is_some_and(|c| !c.is_empty()));
            batches.push(batch);
        }
        batches
    }
}

/// The positions of each identity in `pids`, as `(pid, indices)` in
/// ascending pid (indices ascending): the groups the samplers draw from.
pub(crate) fn group_by_pid(pids: impl IntoIterator<Item = i64>) -> Vec<(i64, Vec<usize>)> {
    let mut by_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, p) in pids.into_iter().enumerate() {
        by_pid.entry(p).or_default().push(i);
    }
    by_pid.into_iter().collect()
}

/// [`group_by_pid`], when there are at least `min_ids` identities; else an
/// error, `needs()` (`"… needs at least N"`) followed by the count.
pub(crate) fn groups_of_at_least(
    pids: impl IntoIterator<Item = i64>,
    min_ids: usize,
    needs: impl FnOnce() -> String,
) -> Result<Vec<(i64, Vec<usize>)>> {
    let groups = group_by_pid(pids);
    if groups.len() < min_ids {
        return Err(DataError::InvalidArgument(format!(
            "{} identities, the split has {}",
            needs(),
            groups.len()
        )));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters() {
        let recs: Vec<ImageRecord> = (0..4).map(|i| ImageRecord::new("x", i, 0)).collect();
        assert!(PkSampler::new(&recs, 0, 4, 0).is_err());
        assert!(PkSampler::new(&recs, 2, 0, 0).is_err());
        assert!(PkSampler::new(&recs, 5, 2, 0).is_err());
        assert!(PkSampler::new(&recs, 4, 2, 0).is_ok());
    }
}
