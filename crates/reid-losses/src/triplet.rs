//! Triplet loss with in-batch mining (Hermans et al.), as in torchreid and fast-reid.
//!
//! Features `x` (`[N, D]`), labels `y` (`[N]`):
//!
//! 1. optional L2 normalisation `x ← x / max(‖x‖, 1e-12)`;
//! 2. distances `[N, N]`: Euclidean `d = sqrt(clamp(‖x_i‖² + ‖x_j‖² − 2 x_i·x_j, 1e-12))`
//!    or cosine `d = 2 − 2·x̂_i·x̂_j` (no square root, as fast-reid's `cosine_dist`);
//! 3. mining with `P_ij = [y_i = y_j]` (self included) and `N_ij = 1 − P_ij`:
//!    - hard: `d_ap = max_j d_ij·P_ij`, `d_an = min_j (d_ij·N_ij + 1e9·P_ij)`;
//!    - softmax-weighted (fast-reid, `HARD_MINING=False`): with
//!      `W(v, M)_ij = exp(v_ij − max_j v_ij·M_ij)·M_ij / (Σ_j exp(v_ij − max_j v_ij·M_ij)·M_ij + 1e-6)`,
//!      `d_ap = Σ_j d_ij·P_ij·W(d·P, P)_ij` and `d_an = Σ_j d_ij·N_ij·W(−d·N, N)_ij`;
//! 4. margin `m > 0`: `mean(max(0, d_ap − d_an + m))`; soft margin:
//!    `mean(log(1 + exp(d_ap − d_an)))`.
//!
//! An anchor with no negative in the batch gets `d_an = 1e9` under hard mining
//! (so a zero loss), as upstream; use a PK sampler with `P ≥ 2`.

use burn::tensor::activation::softplus;
use burn::tensor::{Int, Tensor};
use derive_setters::Setters;

use crate::LossError;
use crate::validate::{batch_matches, host_labels, param_in};

const NAME: &str = "triplet_loss";

/// The pairwise distance used for mining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TripletDistance {
    /// `sqrt(clamp(d², 1e-12))` (torchreid, fast-reid default).
    #[default]
    Euclidean,
    /// `2 − 2·cos` on L2-normalised features (fast-reid with `NORM_FEAT=True`).
    Cosine,
}

/// How the positive and negative distances of each anchor are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mining {
    /// Farthest positive and closest negative (batch-hard).
    #[default]
    Hard,
    /// Softmax-weighted average over positives (weights `e^{+d}`) and
    /// negatives (weights `e^{−d}`), fast-reid's `weighted_example_mining`.
    SoftmaxWeighted,
}

/// Settings of [`triplet_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct TripletConfig {
    /// Margin `m` (default 0.3); `None` selects the soft margin
    /// `log(1 + exp(d_ap − d_an))` (fast-reid with `MARGIN <= 0`).
    pub margin: Option<f64>,
    /// Distance (default Euclidean).
    pub distance: TripletDistance,
    /// L2-normalise the features before the distance (default `false`).
    pub normalize_features: bool,
    /// Mining rule (default batch-hard).
    pub mining: Mining,
}

impl Default for TripletConfig {
    fn default() -> Self {
        Self {
            margin: Some(0.3),
            distance: TripletDistance::Euclidean,
            normalize_features: false,
            mining: Mining::Hard,
        }
    }
}

/// Row-wise L2 normalisation of `x` (`[N, D]`), `x / max(‖x‖, 1e-12)`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x.div(norm)
}

/// Euclidean distance matrix `[N, N]` of `x` (`[N, D]`):
/// `sqrt(clamp(‖x_i‖² + ‖x_j‖² − 2 x_i·x_j, 1e-12))`.
pub fn euclidean_dist(x: Tensor<2>) -> Tensor<2> {
    let sq = x.clone().square().sum_dim(1); // [N, 1]
    let gram = x.clone().matmul(x.transpose());
    sq.clone()
        .add(sq.transpose())
        .sub(gram.mul_scalar(2.0))
        .clamp_min(1e-12)
        .sqrt()
}

/// Cosine distance matrix `[N, N]` of `x` (`[N, D]`): `2 − 2·x̂_i·x̂_j`.
pub fn cosine_dist(x: Tensor<2>) -> Tensor<2> {
    let xn = l2_normalize(x);
    xn.clone()
        .matmul(xn.transpose())
        .mul_scalar(-2.0)
        .add_scalar(2.0)
}

/// fast-reid's `softmax_weights`: row-wise softmax of `v` (`[N, N]`) over the
/// entries where `mask` is 1, with `1e-6` added to the normaliser.
fn softmax_weights(v: Tensor<2>, mask: Tensor<2>) -> Tensor<2> {
    let max_v = v.clone().mul(mask.clone()).max_dim(1);
    let e = v.sub(max_v).exp().mul(mask);
    let z = e.clone().sum_dim(1).add_scalar(1e-6);
    e.div(z)
}

/// Triplet loss of `features` (`[batch, dim]`) with identity `labels`
/// (`[batch]`, any non-negative or negative integers; only equality
/// matters); returns a scalar tensor of shape `[1]`, in units of the chosen
/// distance. See the module docs for the formula.
///
/// # Errors
/// [`LossError`] when the batch sizes differ, the input is empty, or the
/// margin is not finite and positive.
pub fn triplet_loss(
    features: Tensor<2>,
    labels: Tensor<1, Int>,
    config: &TripletConfig,
) -> Result<Tensor<1>, LossError> {
    let [n, d] = features.dims();
    batch_matches(NAME, "features", [n, d], &labels)?;
    if let Some(m) = config.margin {
        param_in(
            NAME,
            "margin",
            m,
            f64::MIN_POSITIVE,
            f64::MAX,
            "a finite margin > 0",
        )?;
    }
    let host = host_labels(&labels);
    let device = features.device();

    let mut pos = Vec::with_capacity(n * n);
    for a in &host {
        for b in &host {
            pos.push(if a == b { 1.0f32 } else { 0.0 });
        }
    }
    let is_pos = Tensor::<1>::from_floats(pos.as_slice(), &device).reshape([n, n]);
    let is_neg = is_pos.clone().neg().add_scalar(1.0);

    let x = if config.normalize_features {
        l2_normalize(features)
    } else {
        features
    };
    let dist = match config.distance {
        TripletDistance::Euclidean => euclidean_dist(x),
        TripletDistance::Cosine => cosine_dist(x),
    };

    let (d_ap, d_an) = match config.mining {
        Mining::Hard => {
            let ap = dist.clone().mul(is_pos.clone()).max_dim(1);
            let an = dist.mul(is_neg).add(is_pos.mul_scalar(1e9)).min_dim(1);
            (ap, an)
        }
        Mining::SoftmaxWeighted => {
            let dp = dist.clone().mul(is_pos.clone());
            let dn = dist.mul(is_neg.clone());
            let wp = softmax_weights(dp.clone(), is_pos);
            let wn = softmax_weights(dn.clone().neg(), is_neg);
            (dp.mul(wp).sum_dim(1), dn.mul(wn).sum_dim(1))
        }
    };
    let diff = d_ap.sub(d_an); // [N, 1]
    let per_anchor = match config.margin {
        Some(m) => diff.add_scalar(m).clamp_min(0.0),
        None => softplus(diff, 1.0),
    };
    Ok(per_anchor.mean())
}
