//! The CUHK03 single-gallery-shot protocol (torchreid's `eval_cuhk03`).
//!
//! Per query, after removing same-pid same-camera gallery items and skipping
//! queries without a match, `num_repeats` times one gallery image is drawn at
//! random for every gallery identity (identities in order of first appearance in
//! the ranking), and the CMC of that single-shot list is averaged over the repeats.
//! AP (and INP) are computed on the full filtered ranking, as torchreid does.
//!
//! torchreid draws with numpy's unseeded global generator; here the draws come
//! from ChaCha8 seeded with [`Cuhk03Config::seed`], stream = query index, so the
//! result is deterministic and independent of the thread count. Ties in distance
//! are broken by gallery index.

use derive_setters::Setters;
use std::collections::HashMap;

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::query_score::{ApKind, QueryScore};
use crate::rank::{EvalResult, check_labels};
use crate::{Labels, MetricsError, Result};

/// Options of the single-gallery-shot protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Cuhk03Config {
    /// Length of the CMC curve (50); capped at the gallery size.
    pub max_rank: usize,
    /// Number of random single-shot draws averaged per query (10 in torchreid).
    pub num_repeats: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Which AP to compute on the full ranking.
    pub ap: ApKind,
}

impl Default for Cuhk03Config {
    fn default() -> Self {
        Self {
            max_rank: 50,
            num_repeats: 10,
            seed: 0,
            ap: ApKind::NonInterpolated,
        }
    }
}

struct QueryOutcome {
    score: QueryScore,
    cmc: Vec<f64>,
}

fn score_one(
    row: &[f32],
    qi: usize,
    q_pid: i64,
    q_cam: i64,
    gallery: &Labels,
    cfg: &Cuhk03Config,
    max_rank: usize,
) -> Result<Option<QueryOutcome>> {
    if let Some(j) = row.iter().position(|v| v.is_nan()) {
        return Err(MetricsError::NonFinite {
            what: format!("distance matrix, query row {qi}"),
            index: j,
        });
    }
    let (gp, gc) = (gallery.pids(), gallery.camids());
    let mut order: Vec<u32> = (0..row.len() as u32).collect();
    order.sort_by(|&a, &b| {
        row[a as usize]
            .partial_cmp(&row[b as usize])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let kept: Vec<u32> = order
        .into_iter()
        .filter(|&j| !(gp[j as usize] == q_pid && gc[j as usize] == q_cam))
        .collect();
    let ranks: Vec<usize> = kept
        .iter()
        .enumerate()
        .filter(|(_, j)| gp[**j as usize] == q_pid)
        .map(|(r, _)| r)
        .collect();
    if ranks.is_empty() {
        return Ok(None);
    }
    // Identities in order of first appearance; the positions of their items in `kept`.
    let mut group_of: HashMap<i64, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (r, &j) in kept.iter().enumerate() {
        let p = gp[j as usize];
        let gi = *group_of.entry(p).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[gi].push(r);
    }
    let match_group = group_of.get(&q_pid).copied().unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(qi as u64);
    let mut cmc = vec![0f64; max_rank];
    let mut picks = vec![0usize; groups.len()];
    for _ in 0..cfg.num_repeats {
        for (p, g) in picks.iter_mut().zip(&groups) {
            *p = g[rng.random_range(0..g.len())];
        }
        let hit = picks[match_group];
        let rank = picks.iter().filter(|&&p| p < hit).count();
        for c in cmc.iter_mut().skip(rank) {
            *c += 1.0;
        }
    }
    let reps = cfg.num_repeats.max(1) as f64;
    cmc.iter_mut().for_each(|c| *c /= reps);
    let n = ranks.len() as f64;
    let mut ap = 0.0;
    for (k, &r) in ranks.iter().enumerate() {
        ap += cfg.ap.term(k, r);
    }
    let last = ranks[ranks.len() - 1];
    Ok(Some(QueryOutcome {
        score: QueryScore {
            ap: ap / n,
            inp: n / (last + 1) as f64,
            first_match_rank: ranks[0],
            num_matches: ranks.len(),
        },
        cmc,
    }))
}

/// Evaluates a distance matrix `[n_query, n_gallery]` with the CUHK03
/// single-gallery-shot protocol. The CMC is the single-shot CMC averaged over
/// draws; mAP and mINP are computed on the full filtered ranking.
pub fn single_gallery_shot(
    distmat: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    cfg: &Cuhk03Config,
) -> Result<EvalResult> {
    let (nq, ng) = distmat.dim();
    check_labels(nq, ng, query, gallery)?;
    if cfg.max_rank == 0 || cfg.num_repeats == 0 {
        return Err(MetricsError::InvalidParameter {
            name: "max_rank / num_repeats",
            reason: "must be at least 1".into(),
        });
    }
    let max_rank = cfg.max_rank.min(ng);
    let outcomes = (0..nq)
        .into_par_iter()
        .map(|qi| {
            let row = distmat.row(qi).to_vec();
            score_one(
                &row,
                qi,
                query.pids()[qi],
                query.camids()[qi],
                gallery,
                cfg,
                max_rank,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut cmc = vec![0f64; max_rank];
    let (mut ap, mut inp, mut nv) = (0.0, 0.0, 0usize);
    for o in outcomes.iter().flatten() {
        nv += 1;
        ap += o.score.ap;
        inp += o.score.inp;
        cmc.iter_mut().zip(&o.cmc).for_each(|(a, b)| *a += b);
    }
    if nv == 0 {
        return Err(MetricsError::NoValidQuery);
    }
    cmc.iter_mut().for_each(|c| *c /= nv as f64);
    Ok(EvalResult {
        cmc,
        map: ap / nv as f64,
        minp: inp / nv as f64,
        num_valid_queries: nv,
        num_queries: nq,
        per_query: outcomes.into_iter().map(|o| o.map(|o| o.score)).collect(),
    })
}
