//! CION identity sampler: identity-major batches, the K schedule,
//! determinism, coverage and argument errors.

use std::collections::{BTreeMap, BTreeSet};

use reid_data::sampler_identity::{IdentitySampler, KSchedule};

use crate::common::{assert_seeded_by_epoch, check_batches, records};

#[test]
fn default_schedule_is_cions() {
    let s = KSchedule::default();
    assert_eq!(s.k_for(0), 2);
    assert_eq!(s.k_for(39), 2);
    assert_eq!(s.k_for(40), 4);
    assert_eq!(s.k_for(59), 4);
    assert_eq!(s.k_for(60), 6);
    assert_eq!(s.k_for(80), 8);
    assert_eq!(s.k_for(99), 8);
    assert_eq!(s.k_for(150), 8);
    assert_eq!(s.switch_epochs(), vec![40, 60, 80]);
    assert_eq!(KSchedule::constant(4).k_for(1000), 4);
}

#[test]
fn batches_are_identity_major_and_k_follows_the_schedule() {
    // Some identities have fewer than K images (sampled with replacement).
    let recs = records(60, |pid| 1 + (pid as usize * 7) % 13);
    let s = IdentitySampler::new(&recs, 24, KSchedule::default(), 7).unwrap();
    for (epoch, k) in [
        (0u64, 2usize),
        (39, 2),
        (40, 4),
        (59, 4),
        (60, 6),
        (80, 8),
        (99, 8),
    ] {
        assert_eq!(s.k(epoch), k);
        assert_eq!(s.ids_per_batch(epoch), 24 / k);
        let batches = s.epoch(epoch);
        assert!(!batches.is_empty(), "epoch {epoch}");
        check_batches(&recs, &batches, 24, k);
    }
}

#[test]
fn deterministic_by_seed_and_epoch() {
    let recs = records(30, |pid| 2 + pid as usize % 6);
    assert_seeded_by_epoch(
        |seed, epoch| {
            IdentitySampler::new(&recs, 24, KSchedule::default(), seed)
                .unwrap()
                .epoch(epoch)
        },
        61,
    );
}

#[test]
fn an_epoch_covers_almost_every_image() {
    // 40 ids x 8 images, K = 4 (8 % 4 = 0: no padding): every id gives two
    // groups; rounds stop when fewer than N_id = 4 ids remain.
    let recs = records(40, |_| 8);
    let s = IdentitySampler::new(&recs, 16, KSchedule::constant(4), 1).unwrap();
    let batches = s.epoch(0);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for b in &batches {
        for &i in b {
            *seen.entry(i).or_default() += 1;
        }
    }
    // No image twice, at most (N_id - 1) ids x 2 groups left over.
    assert!(seen.values().all(|&c| c == 1));
    assert!(seen.len() >= 320 - 3 * 8, "{}", seen.len());
    assert_eq!(batches.len() * 16, seen.len());
}

#[test]
fn short_identities_are_sampled_with_replacement_and_padding_repeats() {
    // One image per identity, K = 2: each appearance repeats that image.
    let recs = records(10, |_| 1);
    let s = IdentitySampler::new(&recs, 4, KSchedule::constant(2), 3).unwrap();
    let batches = s.epoch(0);
    assert_eq!(batches.len(), 5);
    for b in &batches {
        for pair in b.chunks(2) {
            assert_eq!(pair[0], pair[1]);
        }
    }
    // 5 images, K = 2: padded by 5 % 2 = 1 repeat -> 6 indices = 3 groups,
    // so an identity appears at most 3 times, using its 5 images (one twice).
    let recs = records(6, |_| 5);
    let s = IdentitySampler::new(&recs, 4, KSchedule::constant(2), 3).unwrap();
    let mut per_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for b in s.epoch(0) {
        for &i in &b {
            per_pid.entry(recs[i].pid).or_default().push(i);
        }
    }
    for idxs in per_pid.values() {
        assert!(idxs.len() <= 6);
        let distinct: BTreeSet<usize> = idxs.iter().copied().collect();
        assert!(distinct.len() >= idxs.len() - 1, "{idxs:?}");
    }
}

#[test]
fn bad_arguments_are_errors() {
    let recs = records(20, |_| 4);
    // 10 is not a multiple of K = 4 (nor 6, 8).
    assert!(IdentitySampler::new(&recs, 10, KSchedule::default(), 0).is_err());
    assert!(IdentitySampler::new(&[], 24, KSchedule::default(), 0).is_err());
    assert!(IdentitySampler::new(&recs, 0, KSchedule::default(), 0).is_err());
    // Needs 48 / 2 = 24 identities.
    assert!(IdentitySampler::new(&recs, 48, KSchedule::default(), 0).is_err());
    let bad = KSchedule {
        epochs: vec![10, 5],
        instances: vec![2, 4],
    };
    assert!(IdentitySampler::new(&recs, 8, bad, 0).is_err());
    let bad = KSchedule {
        epochs: vec![10],
        instances: vec![0],
    };
    assert!(IdentitySampler::new(&recs, 8, bad, 0).is_err());
    assert!(IdentitySampler::new(&recs, 24, KSchedule::default(), 0).is_ok());
}
