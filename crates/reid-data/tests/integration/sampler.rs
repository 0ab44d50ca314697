//! PK sampler behaviour: batch structure, determinism, epoch coverage.

use std::collections::{BTreeMap, BTreeSet};

use reid_data::sampler::PkSampler;

use crate::common::{assert_seeded_by_epoch, check_batches, records};

#[test]
fn every_batch_has_p_distinct_ids_times_k() {
    // Some identities have fewer than K images (sampled with replacement).
    let recs = records(20, |pid| 1 + (pid as usize * 7) % 11);
    let s = PkSampler::new(&recs, 4, 4, 7).unwrap();
    for epoch in 0..3 {
        let batches = s.epoch(epoch);
        assert!(!batches.is_empty());
        check_batches(&recs, &batches, 16, 4);
    }
}

#[test]
fn deterministic_by_seed_and_epoch() {
    let recs = records(12, |pid| 3 + pid as usize % 5);
    assert_seeded_by_epoch(
        |seed, epoch| PkSampler::new(&recs, 3, 2, seed).unwrap().epoch(epoch),
        5,
    );
}

#[test]
fn an_epoch_covers_almost_every_image_once() {
    // 30 ids × 8 images, K = 4: every id has exactly 2 chunks; batches stop
    // when fewer than P ids remain, so at most (P-1)·2 chunks are left over.
    let recs = records(30, |_| 8);
    let s = PkSampler::new(&recs, 4, 4, 1).unwrap();
    let batches = s.epoch(0);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for b in &batches {
        for &i in b {
            *seen.entry(i).or_default() += 1;
        }
    }
    assert!(seen.values().all(|&n| n == 1), "an image repeated");
    let covered = seen.len();
    assert!(
        covered >= recs.len() - 3 * 2 * 4,
        "{covered} of {}",
        recs.len()
    );
    // Only identities stranded in the last < P available can be missed.
    let ids: BTreeSet<i64> = seen.keys().map(|&i| recs[i].pid).collect();
    assert!(ids.len() >= 30 - 3, "{}", ids.len());
    // Over several epochs every identity is visited.
    let all: BTreeSet<i64> = (0..4)
        .flat_map(|e| s.epoch(e))
        .flatten()
        .map(|i| recs[i].pid)
        .collect();
    assert_eq!(all.len(), 30);
    assert_eq!(s.iters_per_epoch_fastreid(), 240 / 16);
}

#[test]
fn short_identities_are_sampled_with_replacement() {
    let recs = records(4, |_| 1);
    let s = PkSampler::new(&recs, 4, 3, 0).unwrap();
    let batches = s.epoch(0);
    assert_eq!(batches.len(), 1);
    let mut b = batches[0].clone();
    b.sort_unstable();
    assert_eq!(b, vec![0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
}

#[test]
fn errors_instead_of_panics() {
    let recs = records(3, |_| 4);
    assert!(PkSampler::new(&recs, 0, 4, 0).is_err());
    assert!(PkSampler::new(&recs, 3, 0, 0).is_err());
    let e = PkSampler::new(&recs, 4, 4, 0).unwrap_err().to_string();
    assert!(e.contains("at least P=4"), "{e}");
    assert!(PkSampler::new(&[], 1, 1, 0).is_err());
}
