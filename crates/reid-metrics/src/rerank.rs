//! k-reciprocal re-ranking (Zhong et al., CVPR 2017), reproducing torchreid's
//! `re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3)`
//! without its `(Q+G)²` dense matrices.
//!
//! With `N = Q + G` and `D = [[qq, qg], [qgᵀ, gg]]` the input distances, torchreid
//! works on `O = (D² / colmax(D²))ᵀ`, i.e. row `i` of `O` is column `i` of `D²`
//! divided by its maximum. This implementation:
//! 1. streams the columns of `D` in blocks (bounded memory), squares them, takes the
//!    column maximum, normalises, and keeps only the `max(k1+1, k2)` nearest
//!    neighbours of each row (a stable selection: ties by index, where numpy's
//!    `argsort` is unstable);
//! 2. builds the k-reciprocal expansion sets from those neighbour lists and the
//!    sparse rows of `V` (`exp(−O[i,S]) / Σ exp(−O[i,S])`, float32), looking the
//!    few needed entries of `O` up (dense input) or recomputing them (features);
//! 3. applies local query expansion (`V[i] = mean(V[nn(i, k2)])`, float32, same
//!    summation order) on sparse rows;
//! 4. computes the Jaccard distance of query rows only, through an inverted index,
//!    in the same float32 accumulation order as torchreid, and mixes it with `O`:
//!    `final = (1−λ)·jaccard + λ·O[:Q, Q:]`.
//!
//! Memory: the inputs, the neighbour lists (`N·(k1+1)` u32), sparse `V` (about
//! `N · 100` entries) and one block of about 4 M floats (16 MB) per worker thread.
//!
//! Note (as in torchreid): the input distances are squared again, so with
//! [`Distance::SquaredEuclidean`] (already squared) the "original distance" is the fourth
//! power of the Euclidean distance. With features, `D` is taken to be symmetric.

use derive_setters::Setters;
use std::ops::Range;

use ndarray::{Array2, ArrayView2, Axis, CowArray, Ix2, concatenate};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::{Distance, DistanceTiler, PreparedFeatures, TILE_ROWS, check_features};
use crate::rank::{EvalConfig, EvalResult, RowScorer, aggregate, check_labels};
use crate::scorer::Scratch;
use crate::topk::{np_sum_f32, smallest_k};
use crate::{Labels, MetricsError, Result};

/// Parameters of k-reciprocal re-ranking (the paper's defaults: 20, 6, 0.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct RerankConfig {
    /// k₁, the size of the k-reciprocal neighbourhood (20).
    pub k1: usize,
    /// k₂, the size of the local query expansion (6; 1 disables it).
    pub k2: usize,
    /// λ, the weight of the original distance in the final distance (0.3).
    pub lambda: f64,
}

impl Default for RerankConfig {
    fn default() -> Self {
        Self {
            k1: 20,
            k2: 6,
            lambda: 0.3,
        }
    }
}

impl RerankConfig {
    fn validate(&self) -> Result<()> {
        if self.k1 == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "k1",
                reason: "must be at least 1".into(),
            });
        }
        if self.k2 == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "k2",
                reason: "must be at least 1".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.lambda) {
            return Err(MetricsError::InvalidParameter {
                name: "lambda",
                reason: format!("must be in [0, 1], got {}", self.lambda),
            });
        }
        Ok(())
    }
}

/// Access to columns of the raw distance matrix `D` (`[N, N]`, before squaring).
trait ColumnSource: Sync {
    /// Number of queries Q.
    fn num_query(&self) -> usize;
    /// N = Q + G.
    fn num_all(&self) -> usize;
    /// Writes `D[r, c]` for `c` in `cols`, `r` in `rows` to `out[(c − cols.start)·rows.len() + r − rows.start]`.
    fn columns(&self, cols: Range<usize>, rows: Range<usize>, out: &mut [f32]);
    /// `D[r, c]`.
    fn value(&self, r: usize, c: usize) -> f32;
}

/// Dense `qg [Q, G]`, `qq [Q, Q]`, `gg [G, G]` matrices, all in standard layout.
struct DenseSource<'a> {
    qg: CowArray<'a, f32, Ix2>,
    qq: CowArray<'a, f32, Ix2>,
    gg: CowArray<'a, f32, Ix2>,
}

fn slice_of<'b>(m: &'b CowArray<'_, f32, Ix2>) -> &'b [f32] {
    // Standard layout is guaranteed by construction (see `standard`).
    m.as_slice().unwrap_or(&[])
}

/// Blocked transpose: `out[k·w + off + i] = src[(r0 + i)·stride + c0 + k]` for
/// `i < nr`, `k < nc`. Rows are taken 64 at a time so reads stay in cache and
/// writes are contiguous runs.
#[allow(clippy::too_many_arguments)]
fn transpose_into(
    src: &[f32],
    stride: usize,
    r0: usize,
    nr: usize,
    c0: usize,
    nc: usize,
    out: &mut [f32],
    w: usize,
    off: usize,
) {
    const RB: usize = 64;
    let mut ib = 0;
    while ib < nr {
        let ie = (ib + RB).min(nr);
        for k in 0..nc {
            let o = &mut out[k * w + off + ib..k * w + off + ie];
            let mut at = (r0 + ib) * stride + c0 + k;
            for v in o.iter_mut() {
                *v = src[at];
                at += stride;
            }
        }
        ib = ie;
    }
}

impl ColumnSource for DenseSource<'_> {
    fn num_query(&self) -> usize {
        self.qq.nrows()
    }
    fn num_all(&self) -> usize {
        self.qq.nrows() + self.gg.nrows()
    }
    fn columns(&self, cols: Range<usize>, rows: Range<usize>, out: &mut [f32]) {
        let q = self.num_query();
        let g = self.gg.nrows();
        let w = rows.len();
        let qc = cols.start.min(q)..cols.end.min(q);
        let gc = cols.start.max(q)..cols.end.max(q);
        let top = rows.start.min(q)..rows.end.min(q);
        let bottom = rows.start.max(q)..rows.end.max(q);
        let (qq, qg, gg) = (slice_of(&self.qq), slice_of(&self.qg), slice_of(&self.gg));
        let col_off = |c: usize| (c - cols.start) * w;
        if !top.is_empty() {
            let off = top.start - rows.start;
            if !qc.is_empty() {
                transpose_into(
                    qq,
                    q,
                    top.start,
                    top.len(),
                    qc.start,
                    qc.len(),
                    &mut out[col_off(qc.start)..],
                    w,
                    off,
                );
            }
            if !gc.is_empty() {
                transpose_into(
                    qg,
                    g,
                    top.start,
                    top.len(),
                    gc.start - q,
                    gc.len(),
                    &mut out[col_off(gc.start)..],
                    w,
                    off,
                );
            }
        }
        if !bottom.is_empty() {
            let off = bottom.start - rows.start;
            if !gc.is_empty() {
                transpose_into(
                    gg,
                    g,
                    bottom.start - q,
                    bottom.len(),
                    gc.start - q,
                    gc.len(),
                    &mut out[col_off(gc.start)..],
                    w,
                    off,
                );
            }
            // Bottom part of query columns: D[Q + j, c] = qg[c, j], a contiguous row.
            for c in qc {
                let src = &qg[c * g + bottom.start - q..c * g + bottom.end - q];
                let o = col_off(c) + off;
                out[o..o + src.len()].copy_from_slice(src);
            }
        }
    }
    fn value(&self, r: usize, c: usize) -> f32 {
        let q = self.num_query();
        match (r < q, c < q) {
            (true, true) => self.qq[[r, c]],
            (true, false) => self.qg[[r, c - q]],
            (false, true) => self.qg[[c, r - q]],
            (false, false) => self.gg[[r - q, c - q]],
        }
    }
}

/// Features of queries and gallery stacked, `[N, dim]`; `D` computed on demand.
struct FeatureSource<'p, 'a> {
    tiler: DistanceTiler<'p, 'a>,
    num_query: usize,
}

impl ColumnSource for FeatureSource<'_, '_> {
    fn num_query(&self) -> usize {
        self.num_query
    }
    fn num_all(&self) -> usize {
        self.tiler.num_gallery()
    }
    fn columns(&self, cols: Range<usize>, rows: Range<usize>, out: &mut [f32]) {
        // D is symmetric: column c is row c.
        self.tiler.tile(cols, rows, out);
    }
    fn value(&self, r: usize, c: usize) -> f32 {
        self.tiler.pair(c, r)
    }
}

/// Sparse rows (CSR) or columns (CSC).
#[derive(Debug, Default)]
struct Sparse {
    offsets: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<f32>,
}

impl Sparse {
    fn from_rows(rows: Vec<(Vec<u32>, Vec<f32>)>) -> Self {
        let nnz = rows.iter().map(|r| r.0.len()).sum();
        let mut s = Sparse {
            offsets: Vec::with_capacity(rows.len() + 1),
            idx: Vec::with_capacity(nnz),
            val: Vec::with_capacity(nnz),
        };
        s.offsets.push(0);
        for (i, v) in rows {
            s.idx.extend_from_slice(&i);
            s.val.extend_from_slice(&v);
            s.offsets.push(s.idx.len());
        }
        s
    }
    fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.offsets[i]..self.offsets[i + 1];
        (&self.idx[r.clone()], &self.val[r])
    }
    /// Transpose (`n` columns), keeping row indices ascending within each column.
    fn transpose(&self, n: usize) -> Self {
        let mut counts = vec![0usize; n + 1];
        for &c in &self.idx {
            counts[c as usize + 1] += 1;
        }
        for c in 0..n {
            counts[c + 1] += counts[c];
        }
        let mut fill = counts.clone();
        let mut idx = vec![0u32; self.idx.len()];
        let mut val = vec![0f32; self.idx.len()];
        for r in 0..self.offsets.len().saturating_sub(1) {
            let (cs, vs) = self.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                let at = &mut fill[c as usize];
                idx[*at] = r as u32;
                val[*at] = v;
                *at += 1;
            }
        }
        Sparse {
            offsets: counts,
            idx,
            val,
        }
    }
}

/// Everything the final (per-query) stage needs.
struct Prepared {
    /// Column maxima of `D²`, `[N]`.
    colmax: Vec<f32>,
    /// Inverted index of the final `V` (columns → rows).
    v_cols: Sparse,
    /// Rows of the final `V`.
    v_rows: Sparse,
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

fn prepare<S: ColumnSource>(src: &S, cfg: &RerankConfig) -> Result<Prepared> {
    cfg.validate()?;
    let n = src.num_all();
    let kk = (cfg.k1 + 1).max(cfg.k2).min(n);

    // Pass 1: column maxima and stable top-k of each normalised column, streamed in
    // blocks of `width` columns (about 4 M floats per block and worker).
    let width = ((4 << 20) / n.max(1)).clamp(TILE_ROWS, 256);
    let nblocks = n.div_ceil(width);
    let blocks: Vec<Vec<(f32, Vec<u32>)>> = (0..nblocks)
        .into_par_iter()
        .map_init(
            || (Vec::<f32>::new(), Vec::<(f32, u32)>::new()),
            |(buf, sel), b| -> Result<Vec<(f32, Vec<u32>)>> {
                let cs = b * width;
                let ce = (cs + width).min(n);
                buf.resize((ce - cs) * n, 0.0);
                src.columns(cs..ce, 0..n, buf);
                let mut out = Vec::with_capacity(ce - cs);
                for (k, col) in buf.chunks_mut(n).enumerate() {
                    let mut m = f32::NEG_INFINITY;
                    let mut bad = false;
                    for x in col.iter_mut() {
                        bad |= !x.is_finite();
                        *x *= *x;
                        m = m.max(*x);
                    }
                    if bad {
                        let r = col.iter().position(|x| !x.is_finite()).unwrap_or(0);
                        return Err(MetricsError::NonFinite { what: format!("distance matrix column {}", cs + k), index: r });
                    }
                    if m <= 0.0 || !m.is_finite() {
                        return Err(MetricsError::InvalidParameter {
                            name: "distances",
                            reason: format!("column {} of the squared distances has maximum {m}; re-ranking divides by it", cs + k),
                        });
                    }
                    for x in col.iter_mut() {
                        *x /= m;
                    }
                    smallest_k(col, kk, sel);
                    out.push((m, sel.iter().map(|e| e.1).collect()));
                }
                Ok(out)
            },
        )
        .collect::<Result<Vec<_>>>()?;
    let mut colmax = Vec::with_capacity(n);
    let mut nn = Vec::with_capacity(n * kk);
    for (m, list) in blocks.into_iter().flatten() {
        colmax.push(m);
        nn.extend_from_slice(&list);
    }
    let nn_row = |x: usize| &nn[x * kk..(x + 1) * kk];

    // Pass 2: k-reciprocal expansion sets and V.
    let k1n = (cfg.k1 + 1).min(kk);
    let half = (round_half_even(cfg.k1 as f64 / 2.0) as usize + 1).min(kk);
    let colmax_ref = &colmax;
    let v_rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
        .into_par_iter()
        .map_init(Vec::<f32>::new, |wbuf, i| {
            let ii = i as u32;
            let forward = &nn_row(i)[..k1n];
            let recip: Vec<u32> = forward
                .iter()
                .copied()
                .filter(|&f| nn_row(f as usize)[..k1n].contains(&ii))
                .collect();
            let mut expansion = recip.clone();
            for &cand in &recip {
                let cf = &nn_row(cand as usize)[..half];
                let cand_recip: Vec<u32> = cf
                    .iter()
                    .copied()
                    .filter(|&x| nn_row(x as usize)[..half].contains(&cand))
                    .collect();
                let inter = cand_recip.iter().filter(|x| recip.contains(x)).count();
                if inter as f64 > 2.0 / 3.0 * cand_recip.len() as f64 {
                    expansion.extend_from_slice(&cand_recip);
                }
            }
            expansion.sort_unstable();
            expansion.dedup();
            let m = colmax_ref[i];
            wbuf.clear();
            wbuf.extend(expansion.iter().map(|&s| {
                let d = src.value(s as usize, i);
                let o = (d * d) / m;
                (-o).exp()
            }));
            let total = np_sum_f32(wbuf);
            let vals: Vec<f32> = wbuf.iter().map(|&w| w / total).collect();
            (expansion, vals)
        })
        .collect();
    let mut v = Sparse::from_rows(v_rows);

    // Pass 3: local query expansion over the k2 nearest neighbours.
    if cfg.k2 != 1 {
        let k2n = cfg.k2.min(kk);
        let div = k2n as f32;
        let v_ref = &v;
        let qe_rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n], Vec::<u32>::new()),
                |(acc, touched), i| {
                    touched.clear();
                    for &t in &nn_row(i)[..k2n] {
                        let (cs, vs) = v_ref.row(t as usize);
                        for (&c, &w) in cs.iter().zip(vs) {
                            let a = &mut acc[c as usize];
                            if *a == 0.0 {
                                touched.push(c);
                            }
                            *a += w;
                        }
                    }
                    touched.sort_unstable();
                    let vals: Vec<f32> = touched
                        .iter()
                        .map(|&c| {
                            let a = &mut acc[c as usize];
                            let out = *a / div;
                            *a = 0.0;
                            out
                        })
                        .collect();
                    (touched.clone(), vals)
                },
            )
            .collect();
        v = Sparse::from_rows(qe_rows);
    }
    let v_cols = v.transpose(n);
    Ok(Prepared {
        colmax,
        v_cols,
        v_rows: v,
    })
}

/// Computes the final re-ranked distances of queries `qs` (`[qs.len(), G]`) into `out`.
fn final_rows<S: ColumnSource>(
    src: &S,
    p: &Prepared,
    cfg: &RerankConfig,
    qs: Range<usize>,
    orig: &mut Vec<f32>,
    temp: &mut Vec<f32>,
    out: &mut [f32],
) {
    let q = src.num_query();
    let n = src.num_all();
    let g = n - q;
    orig.resize(qs.len() * g, 0.0);
    src.columns(qs.clone(), q..n, orig);
    let w_j = (1.0 - cfg.lambda) as f32;
    let w_o = cfg.lambda as f32;
    temp.resize(n, 0.0);
    for i in qs.clone() {
        let k = i - qs.start;
        temp.fill(0.0);
        let (cs, vs) = p.v_rows.row(i);
        for (&c, &vi) in cs.iter().zip(vs) {
            let (rs, rv) = p.v_cols.row(c as usize);
            for (&j, &vj) in rs.iter().zip(rv) {
                temp[j as usize] += vi.min(vj);
            }
        }
        let m = p.colmax[i];
        let orow = &orig[k * g..(k + 1) * g];
        let dst = &mut out[k * g..(k + 1) * g];
        for ((d, &t), &o) in dst.iter_mut().zip(&temp[q..]).zip(orow) {
            let jac = 1.0 - t / (2.0 - t);
            let on = (o * o) / m;
            *d = jac * w_j + on * w_o;
        }
    }
}

fn rerank_dense_output<S: ColumnSource>(src: &S, cfg: &RerankConfig) -> Result<Array2<f32>> {
    let p = prepare(src, cfg)?;
    let q = src.num_query();
    let g = src.num_all() - q;
    let mut data = vec![0f32; q * g];
    if g > 0 {
        data.par_chunks_mut(TILE_ROWS * g)
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(orig, temp), (b, chunk)| {
                    let s = b * TILE_ROWS;
                    let e = s + chunk.len() / g;
                    final_rows(src, &p, cfg, s..e, orig, temp, chunk);
                },
            );
    }
    Array2::from_shape_vec((q, g), data).map_err(|e| MetricsError::InvalidParameter {
        name: "re-ranked shape",
        reason: e.to_string(),
    })
}

fn rerank_evaluate<S: ColumnSource>(
    src: &S,
    cfg: &RerankConfig,
    query: &Labels,
    gallery: &Labels,
    ecfg: &EvalConfig,
) -> Result<EvalResult> {
    let q = src.num_query();
    let g = src.num_all() - q;
    check_labels(q, g, query, gallery)?;
    let scorer = RowScorer::new(query, gallery, ecfg)?;
    let p = prepare(src, cfg)?;
    let nblocks = q.div_ceil(TILE_ROWS);
    let blocks = (0..nblocks)
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new(), Vec::new(), Scratch::default()),
            |(orig, temp, out, s), b| {
                let st = b * TILE_ROWS;
                let en = (st + TILE_ROWS).min(q);
                out.resize((en - st) * g, 0.0);
                final_rows(src, &p, cfg, st..en, orig, temp, out);
                (st..en)
                    .map(|qi| {
                        scorer.score(
                            qi,
                            &out[(qi - st) * g..(qi - st + 1) * g],
                            s,
                            "re-ranked distances",
                        )
                    })
                    .collect::<Result<Vec<_>>>()
            },
        )
        .collect::<Result<Vec<_>>>()?;
    aggregate(blocks.into_iter().flatten().collect(), g, ecfg)
}

/// Checks that the distance matrix `name` is `[n, n]`.
fn check_square(m: ArrayView2<f32>, n: usize, name: &str) -> Result<()> {
    if m.dim() != (n, n) {
        return Err(MetricsError::ShapeMismatch {
            what: format!(
                "{name} distance matrix must be [{n}, {n}], got {:?}; rows",
                m.dim()
            ),
            expected: n,
            got: m.nrows(),
        });
    }
    Ok(())
}

fn dense_source<'a>(
    q_g: ArrayView2<'a, f32>,
    q_q: ArrayView2<'a, f32>,
    g_g: ArrayView2<'a, f32>,
) -> Result<DenseSource<'a>> {
    let (nq, ng) = q_g.dim();
    check_square(q_q, nq, "q_q")?;
    check_square(g_g, ng, "g_g")?;
    if ng == 0 {
        return Err(MetricsError::Empty("gallery".into()));
    }
    if nq + ng > u32::MAX as usize {
        return Err(MetricsError::InvalidParameter {
            name: "problem size",
            reason: "more than 2^32 samples".into(),
        });
    }
    Ok(DenseSource {
        qg: standard(q_g),
        qq: standard(q_q),
        gg: standard(g_g),
    })
}

fn standard(v: ArrayView2<'_, f32>) -> CowArray<'_, f32, Ix2> {
    if v.is_standard_layout() {
        v.into()
    } else {
        v.as_standard_layout().into_owned().into()
    }
}

fn stack(q: ArrayView2<f32>, g: ArrayView2<f32>) -> Result<Array2<f32>> {
    concatenate(Axis(0), &[q, g]).map_err(|_| MetricsError::ShapeMismatch {
        what: "feature dimension of query vs gallery".into(),
        expected: q.ncols(),
        got: g.ncols(),
    })
}

/// Re-ranks from distance matrices, as torchreid's `re_ranking(q_g_dist, q_q_dist, g_g_dist)`.
///
/// `q_g` is `[Q, G]`, `q_q` is `[Q, Q]`, `g_g` is `[G, G]`; returns the re-ranked
/// query-gallery distances `[Q, G]`.
pub fn re_ranking(
    q_g: ArrayView2<f32>,
    q_q: ArrayView2<f32>,
    g_g: ArrayView2<f32>,
    cfg: &RerankConfig,
) -> Result<Array2<f32>> {
    let src = dense_source(q_g, q_q, g_g)?;
    rerank_dense_output(&src, cfg)
}

/// Re-ranks from features: distances `D` between all `Q + G` features (`metric`,
/// optional L2 normalisation) are computed tile by tile, never stored whole.
/// Empty sets, a feature dimension of 0 and NaN or infinite values are errors.
///
/// `q` is `[Q, dim]`, `g` is `[G, dim]`; returns `[Q, G]`.
pub fn re_ranking_features(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    metric: Distance,
    normalize: bool,
    cfg: &RerankConfig,
) -> Result<Array2<f32>> {
    with_feature_source(q, g, metric, normalize, |src| rerank_dense_output(src, cfg))
}

/// Re-ranks from distance matrices (see [`re_ranking`]) and evaluates the result
/// with the ranking protocol, one tile of queries at a time (the `[Q, G]` re-ranked
/// matrix is never stored).
pub fn evaluate_reranked(
    q_g: ArrayView2<f32>,
    q_q: ArrayView2<f32>,
    g_g: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    cfg: &RerankConfig,
    ecfg: &EvalConfig,
) -> Result<EvalResult> {
    let src = dense_source(q_g, q_q, g_g)?;
    rerank_evaluate(&src, cfg, query, gallery, ecfg)
}

/// Re-ranks from features (see [`re_ranking_features`]) and evaluates, with memory
/// bounded by the features, sparse neighbour structures and per-thread tiles.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_reranked_features(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    metric: Distance,
    normalize: bool,
    cfg: &RerankConfig,
    ecfg: &EvalConfig,
) -> Result<EvalResult> {
    check_labels(q.nrows(), g.nrows(), query, gallery)?;
    with_feature_source(q, g, metric, normalize, |src| {
        rerank_evaluate(src, cfg, query, gallery, ecfg)
    })
}

/// Runs `f` on the column source of the stacked features `[q; g]`
/// (`[Q + G, dim]`, checked for emptiness and non-finite values), whose
/// distances (`metric`, optional L2 normalisation) are computed tile by tile.
fn with_feature_source<T>(
    q: ArrayView2<f32>,
    g: ArrayView2<f32>,
    metric: Distance,
    normalize: bool,
    f: impl FnOnce(&FeatureSource<'_, '_>) -> Result<T>,
) -> Result<T> {
    check_features(q, "query features")?;
    check_features(g, "gallery features")?;
    let all = stack(q, g)?;
    let pa = PreparedFeatures::new(all.view(), metric, normalize, "features")?;
    let src = FeatureSource {
        tiler: DistanceTiler::new(&pa, &pa, metric)?,
        num_query: q.nrows(),
    };
    f(&src)
}

#[cfg(test)]
mod tests {
    use super::round_half_even;

    #[test]
    fn rounding_is_half_to_even_like_numpy() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(10.0), 10.0);
        assert_eq!(round_half_even(1.2), 1.0);
    }
}
