//! Scoring a labelling against ground truth (e.g. the synthetic world's
//! `synth_truth.json`).
//!
//! Pairwise scores treat "same identity" as a binary relation over pairs of
//! crops. Over the **kept** crops: precision = pairs with the same predicted
//! and the same true identity / pairs with the same predicted identity;
//! recall = the same / pairs with the same true identity (both among kept
//! crops). `recall_all` divides by the true pairs of the **whole** corpus, so
//! it also charges removed crops. A crop whose truth is negative (a false
//! detection, no person) is its own true identity.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DenoiseError, Result};

/// Label of a removed crop.
pub const REMOVED: u32 = u32::MAX;

/// Scores of one labelling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Crops kept (label ≠ [`REMOVED`]).
    pub images_kept: usize,
    /// Crops in the corpus.
    pub images_total: usize,
    /// Predicted identities among kept crops.
    pub identities: usize,
    /// True persons among kept crops (false detections count one each).
    pub true_identities: usize,
    /// Pairwise precision of "same identity" among kept crops.
    pub precision: f64,
    /// Pairwise recall among kept crops.
    pub recall: f64,
    /// Harmonic mean of `precision` and `recall`.
    pub f_score: f64,
    /// Pairwise recall against the true pairs of the whole corpus.
    pub recall_all: f64,
    /// Identity purity: share of kept crops that belong to their predicted
    /// identity's majority person.
    pub purity: f64,
}

fn pairs(n: u64) -> f64 {
    (n as f64) * (n.saturating_sub(1) as f64) / 2.0
}

/// Scores `labels` (one per crop, [`REMOVED`] for removed crops) against
/// `truth` (the true person per crop, negative for no person).
pub fn score(labels: &[u32], truth: &[i64]) -> Result<Quality> {
    if labels.len() != truth.len() {
        return Err(DenoiseError::Inconsistent(format!(
            "{} labels but {} truth entries (expected one per crop)",
            labels.len(),
            truth.len()
        )));
    }
    // False detections become unique negative ids.
    let truth_of = |i: usize| -> i64 {
        if truth[i] < 0 {
            -(i as i64) - 1
        } else {
            truth[i]
        }
    };
    let mut joint: HashMap<(u32, i64), u64> = HashMap::new();
    let mut pred: HashMap<u32, u64> = HashMap::new();
    let mut true_kept: HashMap<i64, u64> = HashMap::new();
    let mut true_all: HashMap<i64, u64> = HashMap::new();
    for (i, &l) in labels.iter().enumerate() {
        let t = truth_of(i);
        *true_all.entry(t).or_default() += 1;
        if l == REMOVED {
            continue;
        }
        *joint.entry((l, t)).or_default() += 1;
        *pred.entry(l).or_default() += 1;
        *true_kept.entry(t).or_default() += 1;
    }
    let tp: f64 = joint.values().map(|&n| pairs(n)).sum();
    let pp: f64 = pred.values().map(|&n| pairs(n)).sum();
    let tk: f64 = true_kept.values().map(|&n| pairs(n)).sum();
    let ta: f64 = true_all.values().map(|&n| pairs(n)).sum();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
    let precision = ratio(tp, pp);
    let recall = ratio(tp, tk);
    let f_score = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let mut majority: HashMap<u32, u64> = HashMap::new();
    for (&(l, _), &n) in &joint {
        let m = majority.entry(l).or_default();
        *m = (*m).max(n);
    }
    let kept: u64 = pred.values().sum();
    Ok(Quality {
        images_kept: kept as usize,
        images_total: labels.len(),
        identities: pred.len(),
        true_identities: true_kept.len(),
        precision,
        recall,
        f_score,
        recall_all: ratio(tp, ta),
        purity: ratio(majority.values().sum::<u64>() as f64, kept as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_split_and_merged_labellings() {
        let truth = [0, 0, 1, 1, -1];
        let q = score(&[5, 5, 7, 7, 9], &truth).unwrap();
        assert_eq!((q.precision, q.recall, q.purity), (1.0, 1.0, 1.0));
        assert_eq!(q.identities, 3);
        assert_eq!(q.true_identities, 3);
        // Everything in one identity: precision 2/10, recall 1.
        let q = score(&[1, 1, 1, 1, 1], &truth).unwrap();
        assert!((q.precision - 0.2).abs() < 1e-12);
        assert_eq!(q.recall, 1.0);
        assert!((q.purity - 0.4).abs() < 1e-12);
        // Removing one crop of person 0 loses its pair in recall_all only.
        let q = score(&[5, REMOVED, 7, 7, 9], &truth).unwrap();
        assert_eq!(q.recall, 1.0);
        assert!((q.recall_all - 0.5).abs() < 1e-12);
        assert_eq!(q.images_kept, 4);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        assert!(score(&[0, 1], &[0]).is_err());
    }
}
