//! Choosing a distance threshold for a target precision from known
//! negatives (a target–decoy estimate of the false discovery rate).
//!
//! The *candidates* are the pairs a stage may join (tracklets of one video
//! that never share a frame; identities of two videos); most are different
//! persons, a few are the same. The *known negatives* are pairs that cannot
//! be one person (two groups of one video seen in the same frame). Assuming a
//! different-person candidate pair is as far apart as a known negative pair,
//! the number of false pairs expected within a threshold `t` is
//! `candidates × F(t)`, with `F` the known negatives' distribution function,
//! and the precision of the candidate pairs within `t` is
//! `1 − candidates × F(t) / accepted(t)` — the estimate behind target–decoy
//! searches in proteomics (Elias & Gygi, Nature Methods 2007) and Storey's
//! false discovery rate (JRSS-B 2002). The threshold is the largest `t` whose
//! estimated precision reaches the target, unless the pairs it would add
//! are mostly false ([`choose_threshold`]).
//!
//! Known negatives need not sit exactly where the candidates' negatives do
//! (after a video's mean is subtracted, two persons of that video are a
//! little farther apart than two persons of two videos), so their
//! distribution is first moved and scaled onto the bulk of the candidates
//! ([`NegativeTail::matched_to`]).
//!
//! Linking needs `F` far in its lower tail (one false pair in 10⁴–10⁵),
//! below the smallest of a few thousand known negatives. Below the
//! [`TAIL_NEAR`]-th smallest negative, `F` is extrapolated exponentially
//! through the [`TAIL_NEAR`]-th and [`TAIL_FAR`]-th smallest (never below the
//! empirical count): a heavy tail (look-alike persons) gives a slow decay and
//! a cautious threshold.

/// Rank of the smallest known negative distance used as the start of the
/// extrapolated tail.
pub const TAIL_NEAR: usize = 5;
/// Rank of the second point that fixes the tail's decay.
pub const TAIL_FAR: usize = 25;

/// The lower tail of the known negatives' distance distribution.
#[derive(Debug, Clone)]
pub struct NegativeTail {
    /// Known negative distances, ascending.
    sorted: Vec<f32>,
    /// Distance of the [`TAIL_NEAR`]-th smallest negative.
    t_near: f32,
    /// Decay rate of `ln F` per distance unit below `t_near` (∞ = no extrapolation).
    rate: f64,
    /// Map of a candidate distance onto the known negatives' scale:
    /// `negatives_median + (t − candidates_median) × ratio` (identity by default).
    map: (f32, f32, f32),
}

impl NegativeTail {
    /// Fits the tail to known negative distances (NaN values are dropped).
    /// `None` with fewer than `2 × TAIL_NEAR` values.
    pub fn fit(mut negatives: Vec<f32>) -> Option<Self> {
        negatives.retain(|d| !d.is_nan());
        if negatives.len() < 2 * TAIL_NEAR {
            return None;
        }
        negatives.sort_by(f32::total_cmp);
        let n = negatives.len();
        let far = TAIL_FAR.min(n);
        let t_near = negatives[TAIL_NEAR - 1];
        let t_far = negatives[far - 1];
        let rate = if t_far > t_near {
            (far as f64 / TAIL_NEAR as f64).ln() / f64::from(t_far - t_near)
        } else {
            f64::INFINITY
        };
        Some(Self {
            sorted: negatives,
            t_near,
            rate,
            map: (0.0, 0.0, 1.0),
        })
    }

    /// Matches the known negatives to the bulk of the candidates (Efron's
    /// empirical null, JASA 2004): almost every candidate pair is two
    /// different persons, so the candidates' median and lower quartile
    /// locate and scale the different-person distances among them; the
    /// known negatives keep the tail's shape. This corrects a known
    /// negative pair being systematically nearer or farther than a
    /// candidate pair (e.g. two persons of one video after the video's mean
    /// was subtracted). `bulk` is a sample of all candidate distances; with
    /// fewer than `2 × TAIL_FAR` of them the tail is left as it is. The
    /// scale ratio is kept within `[0.5, 2]`.
    pub fn matched_to(mut self, bulk: &[f32]) -> Self {
        let mut b: Vec<f32> = bulk.iter().copied().filter(|d| !d.is_nan()).collect();
        if b.len() < 2 * TAIL_FAR {
            return self;
        }
        b.sort_by(f32::total_cmp);
        let q = |v: &[f32], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        let (cm, cq) = (q(&b, 0.5), q(&b, 0.25));
        let (nm, nq) = (q(&self.sorted, 0.5), q(&self.sorted, 0.25));
        let ratio = if cm > cq && nm > nq {
            ((nm - nq) / (cm - cq)).clamp(0.5, 2.0)
        } else {
            1.0
        };
        self.map = (nm, cm, ratio);
        self
    }

    /// Number of known negatives.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are none (never true for a fitted tail).
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The known negatives, ascending.
    pub fn sorted(&self) -> &[f32] {
        &self.sorted
    }

    /// The estimated share of negative pairs within distance `t`.
    pub fn cdf(&self, t: f32) -> f64 {
        let (nm, cm, ratio) = self.map;
        let t = nm + (t - cm) * ratio;
        let n = self.sorted.len() as f64;
        let k = self.sorted.partition_point(|&x| x <= t);
        let empirical = k as f64 / n;
        if k >= TAIL_NEAR || t >= self.t_near {
            return empirical;
        }
        let near = TAIL_NEAR as f64 / n;
        let extrapolated = if self.rate.is_finite() {
            near * (-self.rate * f64::from(self.t_near - t)).exp()
        } else {
            0.0
        };
        extrapolated.max(empirical)
    }
}

/// The threshold chosen for a target precision, and the estimates behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdChoice {
    /// The largest candidate distance whose estimated precision reaches the
    /// target; `None` when no distance does.
    pub threshold: Option<f32>,
    /// Candidate pairs within the threshold (0 without one).
    pub accepted: usize,
    /// Expected different-person pairs among them.
    pub expected_false: f64,
    /// Estimated precision of the accepted pairs (1 without any).
    pub expected_precision: f64,
    /// The highest estimated precision over all thresholds accepting at
    /// least [`MARGINAL_PAIRS`] pairs (what the data can certify; 0 when
    /// there are fewer candidates).
    pub best_precision: f64,
}

/// Smallest number of accepted pairs over which the marginal precision is
/// estimated.
pub const MARGINAL_PAIRS: usize = 20;
/// Below this estimated precision of the last accepted pairs the threshold
/// stops growing: they would add more false pairs than true ones (and lower
/// F, which gains from a pair only when its precision exceeds about F / 2).
pub const MARGINAL_PRECISION: f64 = 0.5;

/// Chooses the threshold for `target` precision (in `(0, 1]`).
///
/// Candidate distances are scanned in ascending order. The threshold is the
/// largest one whose accepted pairs reach the target precision, taken
/// before the first point where the marginal pairs (the last tenth of the
/// accepted ones, at least [`MARGINAL_PAIRS`]) fall below
/// [`MARGINAL_PRECISION`]: past the true pairs' distances the threshold
/// would only spend the precision budget on false pairs.
///
/// `candidates` are the candidate distances that may be accepted (those
/// beyond the negatives' median may be left out: they never are),
/// `total_candidates` the number of candidate pairs compared (≥ the length
/// of `candidates`), `tail` the known negatives.
pub fn choose_threshold(
    mut candidates: Vec<f32>,
    total_candidates: u64,
    tail: &NegativeTail,
    target: f64,
) -> ThresholdChoice {
    candidates.retain(|d| !d.is_nan());
    candidates.sort_by(f32::total_cmp);
    let total = total_candidates.max(candidates.len() as u64) as f64;
    let mut best = ThresholdChoice {
        threshold: None,
        accepted: 0,
        expected_false: 0.0,
        expected_precision: 1.0,
        best_precision: 0.0,
    };
    let mut best_precision: f64 = 0.0;
    // (accepted, expected false) after each distinct distance.
    let mut history: Vec<(usize, f64)> = vec![(0, 0.0)];
    let mut i = 0;
    while i < candidates.len() {
        // Ties are accepted together.
        let t = candidates[i];
        let mut j = i + 1;
        while j < candidates.len() && candidates[j] == t {
            j += 1;
        }
        let expected_false = (total * tail.cdf(t)).min(j as f64);
        let window = MARGINAL_PAIRS.max(j / 10);
        if best.threshold.is_some() && j >= window {
            let k = history.partition_point(|&(n, _)| n <= j - window) - 1;
            let (n0, f0) = history[k];
            let marginal = 1.0 - (expected_false - f0) / (j - n0) as f64;
            if marginal < MARGINAL_PRECISION {
                break;
            }
        }
        history.push((j, expected_false));
        let precision = 1.0 - expected_false / j as f64;
        if j >= MARGINAL_PAIRS {
            best_precision = best_precision.max(precision);
        }
        if precision >= target {
            best = ThresholdChoice {
                threshold: Some(t),
                accepted: j,
                expected_false,
                expected_precision: precision,
                best_precision: 0.0,
            };
        }
        i = j;
    }
    ThresholdChoice {
        best_precision,
        ..best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    }

    #[test]
    fn the_tail_is_empirical_above_and_extrapolated_below() {
        let tail = NegativeTail::fit(spread(1.0, 2.0, 1001)).unwrap();
        assert_eq!(tail.len(), 1001);
        assert!((tail.cdf(1.5) - 501.0 / 1001.0).abs() < 1e-9);
        // Below the 10th smallest (1.009): decays, stays positive, is monotone.
        let (a, b, c) = (tail.cdf(1.0), tail.cdf(0.9), tail.cdf(0.5));
        assert!(
            a >= 1.0 / 1001.0 && b < a && c < b && c > 0.0,
            "{a} {b} {c}"
        );
        assert!(NegativeTail::fit(vec![1.0; 5]).is_none());
        assert!(NegativeTail::fit(vec![f32::NAN; 50]).is_none());
    }

    #[test]
    fn separated_distributions_accept_the_positives() {
        // 100 positives in [0, 0.2], 10,000 negatives in [0.6, 1.4] among the
        // candidates; the known negatives follow the same law.
        let tail = NegativeTail::fit(spread(0.6, 1.4, 2000)).unwrap();
        let mut cands = spread(0.0, 0.2, 100);
        cands.extend(spread(0.6, 1.4, 10_000));
        let c = choose_threshold(cands, 10_100, &tail, 0.95);
        let t = c.threshold.unwrap();
        assert!((0.2..0.62).contains(&t), "{t}");
        assert!(c.accepted >= 100 && c.expected_precision >= 0.95);
    }

    #[test]
    fn overlapping_distributions_accept_nothing() {
        // Candidates distributed exactly like the known negatives.
        let tail = NegativeTail::fit(spread(0.0, 1.0, 1000)).unwrap();
        let c = choose_threshold(spread(0.0, 1.0, 5000), 5000, &tail, 0.95);
        assert_eq!(c.threshold, None);
        assert_eq!(c.accepted, 0);
    }
}
