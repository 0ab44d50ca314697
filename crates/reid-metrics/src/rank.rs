//! The Market-1501 / DukeMTMC-reID / MSMT17 evaluation protocol (torchreid's
//! `evaluate_rank` with fast-reid's mINP).
//!
//! Per query:
//! 1. gallery items with the **same pid and the same camera** are removed (junk);
//!    with [`EvalConfig::junk_pid`] set, items of that pid are removed too;
//! 2. the rest is ranked by distance, **ties broken by gallery index** (a stable
//!    sort; numpy's default quicksort orders ties arbitrarily, so on data with
//!    ties numbers may differ from torchreid, on tie-free data they are equal);
//! 3. a query with no remaining true match is skipped and counted in
//!    [`EvalResult::num_queries`] but not in [`EvalResult::num_valid_queries`];
//! 4. CMC(k) = 1 if the first match is within the top k; AP is the
//!    non-interpolated average precision (or the official Market-1501 trapezoid
//!    variant, [`ApKind::Trapezoid`]); INP = `num_matches / (rank of the last match + 1)`.
//!
//! CMC, mAP and mINP are means over valid queries. The CMC has
//! `min(max_rank, n_gallery)` entries. No full sort is done: see the `scorer` module.

use derive_setters::Setters;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::{Distance, DistanceTiler, PreparedFeatures, TILE_ROWS};
pub use crate::query_score::{ApKind, QueryScore};
use crate::scorer::{GalleryIndex, Scratch, score_query};
use crate::{Labels, MetricsError, Result};

/// Options of the ranking protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct EvalConfig {
    /// Length of the CMC curve (50 in torchreid/fast-reid); capped at the gallery size.
    pub max_rank: usize,
    /// Which AP to compute.
    pub ap: ApKind,
    /// Gallery items with this pid are junk for every query (the official Market-1501
    /// script uses `-1`); `None` (default, as torchreid) keeps them as negatives.
    pub junk_pid: Option<i64>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            max_rank: 50,
            ap: ApKind::NonInterpolated,
            junk_pid: None,
        }
    }
}

/// Result of an evaluation. All figures are fractions in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// CMC curve: `cmc[k]` is the rank-(k+1) accuracy, `[min(max_rank, n_gallery)]`.
    pub cmc: Vec<f64>,
    /// Mean average precision over valid queries.
    pub map: f64,
    /// Mean inverse negative penalty over valid queries.
    pub minp: f64,
    /// Queries with at least one true match after filtering.
    pub num_valid_queries: usize,
    /// All queries.
    pub num_queries: usize,
    /// Per-query scores in query order (`None` for skipped queries).
    pub per_query: Vec<Option<QueryScore>>,
}

impl EvalResult {
    /// Rank-k accuracy (`k` is 1-based); `None` if `k` is 0 or beyond the CMC length.
    pub fn rank(&self, k: usize) -> Option<f64> {
        k.checked_sub(1).and_then(|i| self.cmc.get(i).copied())
    }
}

pub(crate) fn check_labels(nq: usize, ng: usize, query: &Labels, gallery: &Labels) -> Result<()> {
    if query.len() != nq {
        return Err(MetricsError::ShapeMismatch {
            what: "number of query labels vs query rows".into(),
            expected: nq,
            got: query.len(),
        });
    }
    if gallery.len() != ng {
        return Err(MetricsError::ShapeMismatch {
            what: "number of gallery labels vs gallery columns".into(),
            expected: ng,
            got: gallery.len(),
        });
    }
    if ng == 0 {
        return Err(MetricsError::Empty("gallery".into()));
    }
    if nq == 0 {
        return Err(MetricsError::Empty("query set".into()));
    }
    if ng > u32::MAX as usize {
        return Err(MetricsError::InvalidParameter {
            name: "gallery size",
            reason: "more than 2^32 items".into(),
        });
    }
    Ok(())
}

/// Per-query scorer shared by every evaluation entry point.
pub(crate) struct RowScorer<'a> {
    index: GalleryIndex<'a>,
    query: &'a Labels,
    cfg: &'a EvalConfig,
}

impl<'a> RowScorer<'a> {
    pub(crate) fn new(query: &'a Labels, gallery: &'a Labels, cfg: &'a EvalConfig) -> Result<Self> {
        if cfg.max_rank == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "max_rank",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            index: GalleryIndex::new(gallery.pids(), gallery.camids(), cfg.junk_pid),
            query,
            cfg,
        })
    }

    /// Scores query `qi` from its distance row `[n_gallery]`.
    pub(crate) fn score(
        &self,
        qi: usize,
        row: &[f32],
        s: &mut Scratch,
        what: &str,
    ) -> Result<Option<QueryScore>> {
        score_query(
            row,
            self.query.pids()[qi],
            self.query.camids()[qi],
            &self.index,
            self.cfg.junk_pid,
            self.cfg.ap,
            s,
        )
        .map_err(|j| MetricsError::NonFinite {
            what: format!("{what}, query row {qi}"),
            index: j,
        })
    }
}

/// Averages per-query scores into CMC / mAP / mINP.
pub(crate) fn aggregate(
    per_query: Vec<Option<QueryScore>>,
    ng: usize,
    cfg: &EvalConfig,
) -> Result<EvalResult> {
    let max_rank = cfg.max_rank.min(ng);
    let mut hits = vec![0u64; max_rank];
    let (mut ap, mut inp, mut nv) = (0.0f64, 0.0f64, 0usize);
    for s in per_query.iter().flatten() {
        nv += 1;
        ap += s.ap;
        inp += s.inp;
        if s.first_match_rank < max_rank {
            hits[s.first_match_rank] += 1;
        }
    }
    if nv == 0 {
        return Err(MetricsError::NoValidQuery);
    }
    let mut cum = 0u64;
    let cmc = hits
        .iter()
        .map(|&h| {
            cum += h;
            cum as f64 / nv as f64
        })
        .collect();
    Ok(EvalResult {
        cmc,
        map: ap / nv as f64,
        minp: inp / nv as f64,
        num_valid_queries: nv,
        num_queries: per_query.len(),
        per_query,
    })
}

/// Evaluates a distance matrix `[n_query, n_gallery]` (smaller = more similar).
///
/// `query` and `gallery` hold the ids of the rows and columns. Fails on size
/// mismatches, an empty gallery, NaN distances, or when no query is valid.
pub fn evaluate(
    distmat: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    cfg: &EvalConfig,
) -> Result<EvalResult> {
    let (nq, ng) = distmat.dim();
    check_labels(nq, ng, query, gallery)?;
    let scorer = RowScorer::new(query, gallery, cfg)?;
    let per_query = (0..nq)
        .into_par_iter()
        .map_init(Scratch::default, |s, qi| {
            let row = distmat.row(qi);
            match row.as_slice() {
                Some(r) => scorer.score(qi, r, s, "distance matrix"),
                None => {
                    let mut buf = std::mem::take(&mut s.row);
                    buf.clear();
                    buf.extend(row.iter().copied());
                    let out = scorer.score(qi, &buf, s, "distance matrix");
                    s.row = buf;
                    out
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    aggregate(per_query, ng, cfg)
}

/// Evaluates query features `[n_query, dim]` against gallery features `[n_gallery, dim]`
/// without building the full distance matrix: distances are computed in tiles of
/// [`TILE_ROWS`] queries (one tile per worker thread at a time) and scored at once.
///
/// Equivalent to [`evaluate`] on [`crate::pairwise_distance`]`(q, g, metric, normalize)`.
pub fn evaluate_features(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    metric: Distance,
    normalize: bool,
    cfg: &EvalConfig,
) -> Result<EvalResult> {
    let (nq, ng) = (q.nrows(), g.nrows());
    check_labels(nq, ng, query, gallery)?;
    let pq = PreparedFeatures::new(q, metric, normalize, "query features")?;
    let pg = PreparedFeatures::new(g, metric, normalize, "gallery features")?;
    let tiler = DistanceTiler::new(&pq, &pg, metric)?;
    let scorer = RowScorer::new(query, gallery, cfg)?;
    let per_query = score_tiles(
        nq,
        ng,
        |rows, out| tiler.tile(rows, 0..ng, out),
        &scorer,
        "computed distances",
    )?;
    aggregate(per_query, ng, cfg)
}

/// Scores `nq` queries whose distance rows are produced tile by tile by `fill(rows, out)`
/// (`out` is `[rows.len(), ng]` row-major).
pub(crate) fn score_tiles<F>(
    nq: usize,
    ng: usize,
    fill: F,
    scorer: &RowScorer<'_>,
    what: &str,
) -> Result<Vec<Option<QueryScore>>>
where
    F: Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
{
    let nblocks = nq.div_ceil(TILE_ROWS);
    let blocks = (0..nblocks)
        .into_par_iter()
        .map_init(
            || (Scratch::default(), Vec::<f32>::new()),
            |(s, tile), b| {
                let start = b * TILE_ROWS;
                let end = (start + TILE_ROWS).min(nq);
                tile.resize((end - start) * ng, 0.0);
                fill(start..end, tile);
                (start..end)
                    .map(|qi| {
                        let off = (qi - start) * ng;
                        scorer.score(qi, &tile[off..off + ng], s, what)
                    })
                    .collect::<Result<Vec<_>>>()
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(blocks.into_iter().flatten().collect())
}
