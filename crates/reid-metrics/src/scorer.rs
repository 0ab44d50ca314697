//! Exact per-query scoring without sorting the gallery.
//!
//! For one query, the positives (same pid, other camera) are few. Every gallery
//! item is placed into one of `n_pos + 1` buckets: the number of positives whose
//! key `(distance, gallery index)` is smaller than its own key. The 0-based rank of
//! the `k`-th positive in the filtered, stably sorted list is then
//! `prefix_sum(bucket[0..=k]) − 1` once junk items (same pid and same camera, and
//! optionally a junk pid) are taken out again. A uniform grid over
//! `[d_min, d_max]` of the positives makes the bucket search O(1) for almost all
//! items; only items falling into a grid cell that holds a positive are compared
//! exactly. The result equals a stable argsort (ties broken by gallery index).

use std::collections::HashMap;

use crate::query_score::{ApKind, QueryScore};

/// Gallery items grouped by person id, plus the camera of each item.
#[derive(Debug, Clone)]
pub(crate) struct GalleryIndex<'a> {
    by_pid: HashMap<i64, Vec<u32>>,
    camids: &'a [i64],
    junk: Vec<u32>,
}

impl<'a> GalleryIndex<'a> {
    /// Indexes gallery `pids`/`camids`; items whose pid equals `junk_pid` are junk for every query.
    pub(crate) fn new(pids: &[i64], camids: &'a [i64], junk_pid: Option<i64>) -> Self {
        let mut by_pid: HashMap<i64, Vec<u32>> = HashMap::new();
        for (j, &p) in pids.iter().enumerate() {
            by_pid.entry(p).or_default().push(j as u32);
        }
        let junk = junk_pid
            .and_then(|p| by_pid.get(&p).cloned())
            .unwrap_or_default();
        Self {
            by_pid,
            camids,
            junk,
        }
    }
}

/// Reusable buffers of one worker.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pos: Vec<(f32, u32)>,
    same_cam: Vec<u32>,
    first: Vec<u32>,
    has: Vec<u32>,
    exact: Vec<u32>,
    cellcnt: Vec<u32>,
    hist: Vec<i64>,
    pub(crate) row: Vec<f32>,
}

/// Number of positives whose key is smaller than `(d, j)`.
#[inline]
fn exact_bucket(pos: &[(f32, u32)], d: f32, j: u32) -> usize {
    pos.partition_point(|&(pd, pj)| pd < d || (pd == d && pj < j))
}

/// Scores one query: `row` holds its distances to every gallery item `[n_gallery]`.
///
/// Returns `Ok(None)` when the query has no valid match, `Err(j)` when `row[j]` is NaN.
pub(crate) fn score_query(
    row: &[f32],
    q_pid: i64,
    q_cam: i64,
    index: &GalleryIndex<'_>,
    junk_pid: Option<i64>,
    ap_kind: ApKind,
    s: &mut Scratch,
) -> Result<Option<QueryScore>, usize> {
    s.pos.clear();
    s.same_cam.clear();
    let is_junk_pid = junk_pid == Some(q_pid);
    if let Some(items) = index.by_pid.get(&q_pid) {
        for &j in items {
            let d = row[j as usize];
            if d.is_nan() {
                return Err(j as usize);
            }
            if is_junk_pid || index.camids[j as usize] == q_cam {
                s.same_cam.push(j);
            } else {
                s.pos.push((d, j));
            }
        }
    }
    if s.pos.is_empty() {
        // Still report NaNs in rows of skipped queries.
        return match row.iter().position(|v| v.is_nan()) {
            Some(j) => Err(j),
            None => Ok(None),
        };
    }
    // Items are pushed in index order, so a stable sort by distance gives (d, j) order.
    // IEEE comparison (not total_cmp): -0.0 and 0.0 tie, as in numpy.
    s.pos
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let pos = &s.pos[..];
    let n = pos.len();
    let dmin = pos[0].0;
    let dmax = pos[n - 1].0;

    // Grid: slot 0 = below d_min, slots 1..=ncell = cells, slot ncell+1 = far above d_max.
    // slot(d) = round(clamp((d − d_min)·scale, −1, ncell)) + 1 with scale = (ncell−1)/span,
    // rounding done by adding 1.5·2²³ (exact integer arithmetic in the mantissa).
    // The map is monotone in d, so a cell without positives lies strictly between the
    // positives of the cells before and after it; cell 0 holds d_min and cell ncell−1
    // holds d_max, so items that round into them are resolved exactly.
    let ncell = (n * 16).next_power_of_two().clamp(64, 1 << 20);
    let span = dmax - dmin;
    let scale = if span > 0.0 && ((ncell - 1) as f32 / span).is_finite() {
        (ncell - 1) as f32 / span
    } else {
        1.0
    };
    let top = ncell as f32;
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let magic_bits = MAGIC.to_bits();
    let mask = (2 * ncell) - 1; // slots live in [0, ncell + 1] ⊂ [0, mask]
    let slot_of = move |d: f32| -> usize {
        let x = (d - dmin) * scale;
        let x = if x >= -1.0 { x } else { -1.0 }; // NaN → −1
        let x = if x <= top { x } else { top };
        ((x + MAGIC)
            .to_bits()
            .wrapping_sub(magic_bits)
            .wrapping_add(1) as usize)
            & mask
    };

    // first[c]: positives in cells < c (c = 0..=ncell).
    s.first.clear();
    s.first.resize(ncell + 1, 0);
    for &(d, _) in pos {
        s.first[slot_of(d)] += 1;
    }
    for c in 0..ncell {
        s.first[c + 1] += s.first[c];
    }
    // has[slot]: 1 when the cell holds a positive (its items are resolved exactly).
    s.has.clear();
    s.has.resize(mask + 1, 0);
    for c in 0..ncell {
        s.has[c + 1] = (s.first[c + 1] > s.first[c]) as u32;
    }
    s.cellcnt.clear();
    s.cellcnt.resize(mask + 1, 0);
    if s.exact.len() < row.len() + 1 {
        s.exact.resize(row.len() + 1, 0);
    }
    s.hist.clear();
    s.hist.resize(n + 1, 0);

    // Branch-free pass: count items per slot, and list the items of cells with positives.
    let (has, cellcnt, exact) = (&s.has[..=mask], &mut s.cellcnt[..=mask], &mut s.exact[..]);
    let mut nexact = 0usize;
    let mut any_nan = false;
    for (j, &d) in row.iter().enumerate() {
        any_nan |= d.is_nan();
        if d > dmax {
            // Beyond the hardest positive: ranks nothing (most items, in practice).
            continue;
        }
        let slot = slot_of(d) & mask;
        cellcnt[slot] += 1;
        exact[nexact] = j as u32;
        nexact += has[slot] as usize;
    }
    if any_nan {
        return Err(row.iter().position(|v| v.is_nan()).unwrap_or(0));
    }
    let first = &s.first[..];
    let hist = &mut s.hist[..];
    hist[0] += cellcnt[0] as i64;
    for c in 0..ncell {
        if has[c + 1] == 0 {
            hist[first[c] as usize] += cellcnt[c + 1] as i64;
        }
    }
    for &j in &exact[..nexact] {
        let d = row[j as usize];
        let c = slot_of(d) - 1;
        let (a, b) = (first[c] as usize, first[c + 1] as usize);
        hist[a + exact_bucket(&pos[a..b], d, j)] += 1;
    }
    // Take junk items out again (same-camera items and junk-pid items are disjoint
    // here: a query whose pid is the junk pid has no positives and returned above).
    for &j in s.same_cam.iter().chain(index.junk.iter()) {
        let d = row[j as usize];
        if d < dmin {
            hist[0] -= 1;
        } else if d <= dmax {
            hist[exact_bucket(pos, d, j)] -= 1;
        }
    }

    let nf = n as f64;
    let mut cum: i64 = 0;
    let mut ap = 0.0f64;
    let mut first_rank = 0usize;
    let mut last_rank = 0usize;
    for (k, &h) in hist.iter().take(n).enumerate() {
        cum += h;
        let r = (cum - 1).max(0) as usize; // 0-based rank of positive k
        ap += ap_kind.term(k, r);
        if k == 0 {
            first_rank = r;
        }
        last_rank = r;
    }
    Ok(Some(QueryScore {
        ap: ap / nf,
        inp: nf / (last_rank + 1) as f64,
        first_match_rank: first_rank,
        num_matches: n,
    }))
}
