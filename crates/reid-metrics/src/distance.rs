//! Distances between query and gallery features.
//!
//! Both toolkits' "euclidean" is the **squared** Euclidean distance
//! `‖q‖² + ‖g‖² − 2 q·g` (no square root, no clamping, so tiny negative values
//! from rounding are kept), and "cosine" is `1 − q̂·ĝ` with `x̂ = x / max(‖x‖, 1e-12)`.
//! Distances are computed in `f32` as blocked matrix products ([`DistanceTiler`]),
//! so callers that only need metrics never hold more than a bounded tile.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, CowArray, Ix2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{MetricsError, Result};

/// The ε of the L2 normalisation (`torch.nn.functional.normalize`'s default).
pub const NORM_EPS: f32 = 1e-12;

/// Query rows per tile in the blocked products (a tile is `[TILE_ROWS, n_gallery]` f32).
pub const TILE_ROWS: usize = 32;

/// Which distance between feature vectors is computed (smaller = more similar).
///
/// In configuration files and on the command line the names are `"euclidean"`
/// (squared Euclidean, what torchreid and fast-reid call "euclidean";
/// `"squared_euclidean"` is accepted too) and `"cosine"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Distance {
    /// Squared Euclidean distance `‖q − g‖² = ‖q‖² + ‖g‖² − 2 q·g`, no square
    /// root (what torchreid and fast-reid call "euclidean"); in squared feature units.
    #[default]
    #[serde(rename = "euclidean", alias = "squared_euclidean")]
    SquaredEuclidean,
    /// Cosine distance `1 − q̂·ĝ` of the L2-normalised features, in `[0, 2]`.
    #[serde(rename = "cosine")]
    Cosine,
}

/// The former name of [`Distance`], kept so that existing callers
/// (`Metric::Euclidean`, `Metric::Cosine`) keep compiling.
pub type Metric = Distance;

impl Distance {
    /// The former name of [`Distance::SquaredEuclidean`] (it was always the
    /// squared distance); usable in expressions and `match` patterns.
    #[allow(non_upper_case_globals)]
    pub const Euclidean: Distance = Distance::SquaredEuclidean;

    /// The name used in configuration files and on the command line:
    /// `"euclidean"` or `"cosine"`.
    pub fn name(self) -> &'static str {
        match self {
            Distance::SquaredEuclidean => "euclidean",
            Distance::Cosine => "cosine",
        }
    }
}

impl std::fmt::Display for Distance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Distance {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "euclidean" | "squared_euclidean" => Ok(Distance::SquaredEuclidean),
            "cosine" => Ok(Distance::Cosine),
            other => Err(MetricsError::InvalidParameter {
                name: "metric",
                reason: format!(
                    "expected \"euclidean\" (squared Euclidean), \"squared_euclidean\" or \"cosine\", got {other:?}"
                ),
            }),
        }
    }
}

/// Returns the rows of `x` (`[n, dim]`) divided by `max(‖row‖₂, 1e-12)`, `[n, dim]`.
pub fn normalize_rows(x: ArrayView2<f32>) -> Array2<f32> {
    let mut out = x.as_standard_layout().into_owned();
    let dim = out.ncols().max(1);
    if let Some(data) = out.as_slice_mut() {
        data.par_chunks_mut(dim).for_each(|row| {
            let norm = row
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt() as f32;
            let denom = norm.max(NORM_EPS);
            row.iter_mut().for_each(|v| *v /= denom);
        });
    }
    out
}

/// Checks that features `[n, dim]` can be compared: at least one row, a
/// feature dimension of at least 1, and no NaN or infinite value. `what` names
/// the input in the error ([`MetricsError::Empty`] or [`MetricsError::NonFinite`]).
///
/// Zero-dimensional features would make every distance 0 and every ranking a
/// tie, and NaN would silently order last: both are refused rather than
/// turned into metrics.
pub fn check_features(x: ArrayView2<f32>, what: &str) -> Result<()> {
    let (n, dim) = x.dim();
    if n == 0 {
        return Err(MetricsError::Empty(format!(
            "{what}: 0 rows (shape [0, {dim}])"
        )));
    }
    if dim == 0 {
        return Err(MetricsError::Empty(format!(
            "{what}: feature dimension 0 (shape [{n}, 0])"
        )));
    }
    check_finite(x, what)
}

/// Checks that every value of `x` is finite; `what` names the input in the error.
pub fn check_finite(x: ArrayView2<f32>, what: &str) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

/// Squared L2 norms of the rows of `x` (`[n, dim]`), `[n]`.
fn squared_norms(x: ArrayView2<f32>) -> Vec<f32> {
    x.outer_iter()
        .map(|row| row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() as f32)
        .collect()
}

/// One side (query or gallery) of a distance computation, prepared once:
/// normalised when the metric or the caller asks for it, with squared norms.
#[derive(Debug, Clone)]
pub struct PreparedFeatures<'a> {
    feats: CowArray<'a, f32, Ix2>,
    sq_norms: Vec<f32>,
}

impl<'a> PreparedFeatures<'a> {
    /// Prepares features `[n, dim]` for `metric`; `normalize` L2-normalises them first
    /// (always done for [`Distance::Cosine`]). Fails on NaN or infinite values, on
    /// zero rows and on a feature dimension of 0 ([`check_features`]).
    pub fn new(
        feats: ArrayView2<'a, f32>,
        metric: Distance,
        normalize: bool,
        what: &str,
    ) -> Result<Self> {
        check_features(feats, what)?;
        let feats: CowArray<'a, f32, Ix2> = if normalize || metric == Distance::Cosine {
            normalize_rows(feats).into()
        } else {
            feats.into()
        };
        let sq_norms = squared_norms(feats.view());
        Ok(Self { feats, sq_norms })
    }

    /// The (possibly normalised) features, `[n, dim]`.
    pub fn feats(&self) -> ArrayView2<'_, f32> {
        self.feats.view()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.feats.nrows()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.feats.nrows() == 0
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.feats.ncols()
    }
}

/// Computes distance tiles between prepared queries and a prepared gallery.
#[derive(Debug, Clone, Copy)]
pub struct DistanceTiler<'p, 'a> {
    query: &'p PreparedFeatures<'a>,
    gallery: &'p PreparedFeatures<'a>,
    metric: Distance,
}

impl<'p, 'a> DistanceTiler<'p, 'a> {
    /// Pairs prepared queries `[nq, dim]` and gallery `[ng, dim]`; the dimensions must agree.
    pub fn new(
        query: &'p PreparedFeatures<'a>,
        gallery: &'p PreparedFeatures<'a>,
        metric: Distance,
    ) -> Result<Self> {
        if query.dim() != gallery.dim() {
            return Err(MetricsError::ShapeMismatch {
                what: "feature dimension of query vs gallery".into(),
                expected: query.dim(),
                got: gallery.dim(),
            });
        }
        Ok(Self {
            query,
            gallery,
            metric,
        })
    }

    /// Number of gallery rows (the width of a tile).
    pub fn num_gallery(&self) -> usize {
        self.gallery.len()
    }

    /// Writes the distances of queries `rows` to gallery items `cols` into `out`,
    /// row-major `[rows.len(), cols.len()]`.
    pub fn tile(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let (nr, nc) = (rows.len(), cols.len());
        let out = &mut out[..nr * nc];
        let q = self.query.feats.slice(ndarray::s![rows.clone(), ..]);
        let g = self.gallery.feats.slice(ndarray::s![cols.clone(), ..]);
        // `from_shape` cannot fail: the slice has exactly nr * nc elements.
        let Ok(mut c) = ArrayViewMut2::from_shape((nr, nc), out) else {
            return;
        };
        match self.metric {
            Distance::SquaredEuclidean => {
                general_mat_mul(-2.0, &q, &g.t(), 0.0, &mut c);
                let qn = &self.query.sq_norms[rows];
                let gn = &self.gallery.sq_norms[cols];
                for (mut row, &a) in c.outer_iter_mut().zip(qn) {
                    for (v, &b) in row.iter_mut().zip(gn) {
                        *v += a + b;
                    }
                }
            }
            Distance::Cosine => {
                general_mat_mul(-1.0, &q, &g.t(), 0.0, &mut c);
                c.mapv_inplace(|v| 1.0 + v);
            }
        }
    }

    /// Distance of one query to one gallery item, computed with a plain dot product
    /// (may differ from [`Self::tile`] in the last bits).
    pub fn pair(&self, qi: usize, gi: usize) -> f32 {
        let q = self.query.feats.row(qi);
        let g = self.gallery.feats.row(gi);
        let dot = q.dot(&g);
        match self.metric {
            Distance::SquaredEuclidean => {
                (self.query.sq_norms[qi] + self.gallery.sq_norms[gi]) + (-2.0 * dot)
            }
            Distance::Cosine => 1.0 + (-dot),
        }
    }
}

/// Full distance matrix between queries `[nq, dim]` and gallery `[ng, dim]`, `[nq, ng]`.
///
/// `normalize` L2-normalises both sides first (implied by [`Distance::Cosine`]).
/// Computed in parallel tiles of [`TILE_ROWS`] query rows. Empty inputs, a
/// feature dimension of 0 and NaN or infinite values are errors
/// ([`check_features`]).
pub fn pairwise_distance(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    metric: Distance,
    normalize: bool,
) -> Result<Array2<f32>> {
    let pq = PreparedFeatures::new(q, metric, normalize, "query features")?;
    let pg = PreparedFeatures::new(g, metric, normalize, "gallery features")?;
    let tiler = DistanceTiler::new(&pq, &pg, metric)?;
    let (nq, ng) = (pq.len(), pg.len());
    let mut data = vec![0f32; nq * ng];
    if ng > 0 {
        data.par_chunks_mut(TILE_ROWS * ng)
            .enumerate()
            .for_each(|(b, chunk)| {
                let start = b * TILE_ROWS;
                let rows = chunk.len() / ng;
                tiler.tile(start..start + rows, 0..ng, chunk);
            });
    }
    Array2::from_shape_vec((nq, ng), data).map_err(|e| MetricsError::InvalidParameter {
        name: "distance shape",
        reason: e.to_string(),
    })
}
