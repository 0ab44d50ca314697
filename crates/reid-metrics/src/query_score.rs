//! What scoring one query produces, and which average precision it uses: the
//! types shared by the protocol (modules `rank`, `cuhk03`) and the per-query
//! scorer, so that imports go one way (`rank` → `scorer` → here).

use serde::{Deserialize, Serialize};

/// Which average precision to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ApKind {
    /// `AP = (1/n) Σ_k P@rank_k`, as torchreid and fast-reid compute it.
    #[default]
    NonInterpolated,
    /// The official Market-1501 script's trapezoid rule:
    /// `AP = (1/n) Σ_k (P_{k−1} + P_k)/2` with `P_{k−1} = k / rank_k` (1 at rank 0).
    Trapezoid,
}

impl ApKind {
    /// The AP term of the `k`-th match (0-based) when it sits at the 0-based
    /// rank `r` of the filtered ranking.
    pub(crate) fn term(self, k: usize, r: usize) -> f64 {
        let prec = (k + 1) as f64 / (r + 1) as f64;
        match self {
            ApKind::NonInterpolated => prec,
            ApKind::Trapezoid => {
                let old = if r != 0 { k as f64 / r as f64 } else { 1.0 };
                (old + prec) / 2.0
            }
        }
    }
}

/// Score of one valid query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueryScore {
    /// Average precision, in `[0, 1]`.
    pub ap: f64,
    /// Inverse negative penalty `num_matches / (rank of the hardest match + 1)`, in `(0, 1]`.
    pub inp: f64,
    /// 0-based rank of the first true match in the filtered ranking.
    pub first_match_rank: usize,
    /// Number of true matches after filtering.
    pub num_matches: usize,
}
