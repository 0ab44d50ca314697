//! Average query expansion (AQE, fast-reid's `TEST.AQE`: `QE_K = 5`, `ALPHA = 3`).
//!
//! Over all `N = Q + G` features: cosine similarities of the L2-normalised
//! features, the top-`k` most similar rows (including the row itself; ties by
//! index), weights `sim^α`, and the new feature is `mean_k(raw_feat[top_k] · w)`
//! of the **raw** (not normalised) features, in f32. Repeated `times` times, each
//! round starting from the previous round's features. Similarities are computed in
//! tiles, never as a full `N × N` matrix.

use derive_setters::Setters;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, concatenate, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::{TILE_ROWS, check_features, normalize_rows};
use crate::topk::smallest_k;
use crate::{MetricsError, Result};

/// Parameters of average query expansion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct AqeConfig {
    /// Number of neighbours averaged, the row itself included (fast-reid `QE_K`, 5).
    pub k: usize,
    /// Exponent of the similarity weights (fast-reid `ALPHA`, 3.0).
    pub alpha: f32,
    /// Number of rounds (fast-reid `QE_TIME`, 1).
    pub times: usize,
}

impl Default for AqeConfig {
    fn default() -> Self {
        Self {
            k: 5,
            alpha: 3.0,
            times: 1,
        }
    }
}

/// Expands query features `[Q, dim]` and gallery features `[G, dim]`; returns the new
/// `([Q, dim], [G, dim])` (not normalised, as fast-reid returns them). Empty
/// sets, a feature dimension of 0 and NaN or infinite values are errors.
pub fn average_query_expansion(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    cfg: &AqeConfig,
) -> Result<(Array2<f32>, Array2<f32>)> {
    if cfg.k == 0 {
        return Err(MetricsError::InvalidParameter {
            name: "k",
            reason: "must be at least 1".into(),
        });
    }
    check_features(q, "query features")?;
    check_features(g, "gallery features")?;
    let mut all = concatenate(Axis(0), &[q, g]).map_err(|_| MetricsError::ShapeMismatch {
        what: "feature dimension of query vs gallery".into(),
        expected: q.ncols(),
        got: g.ncols(),
    })?;
    let (n, dim) = all.dim();
    let k = cfg.k.min(n);
    for _ in 0..cfg.times {
        let norm = normalize_rows(all.view());
        let mut next = vec![0f32; n * dim];
        let raw = all.view();
        if dim > 0 {
            next.par_chunks_mut(TILE_ROWS * dim)
                .enumerate()
                .for_each_init(
                    || (Vec::<f32>::new(), Vec::<(f32, u32)>::new()),
                    |(tile, sel), (b, out)| {
                        let start = b * TILE_ROWS;
                        let rows = out.len() / dim;
                        tile.resize(rows * n, 0.0);
                        if let Ok(mut c) = ArrayViewMut2::from_shape((rows, n), &mut tile[..]) {
                            general_mat_mul(
                                1.0,
                                &norm.slice(s![start..start + rows, ..]),
                                &norm.t(),
                                0.0,
                                &mut c,
                            );
                        }
                        for (r, orow) in out.chunks_mut(dim).enumerate() {
                            let sims = &mut tile[r * n..(r + 1) * n];
                            sims.iter_mut().for_each(|v| *v = -*v);
                            smallest_k(sims, k, sel);
                            for &(negsim, j) in sel.iter() {
                                let w = (-negsim).powf(cfg.alpha);
                                for (o, &x) in orow.iter_mut().zip(raw.row(j as usize).iter()) {
                                    *o += x * w;
                                }
                            }
                            let kf = k as f32;
                            orow.iter_mut().for_each(|o| *o /= kf);
                        }
                    },
                );
        }
        all =
            Array2::from_shape_vec((n, dim), next).map_err(|e| MetricsError::InvalidParameter {
                name: "aqe shape",
                reason: e.to_string(),
            })?;
    }
    let nq = q.nrows();
    Ok((
        all.slice(s![..nq, ..]).to_owned(),
        all.slice(s![nq.., ..]).to_owned(),
    ))
}
