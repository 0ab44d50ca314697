//! # reid-metrics
//!
//! Exact and fast evaluation for person re-identification, with no deep-learning
//! framework dependency (plain [`ndarray`] + [`rayon`]), so features produced by
//! any toolkit can be evaluated.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`distance`] | [`Distance`] (squared Euclidean or cosine), L2 normalisation, blocked tiles |
//! | [`rank`] | the Market-1501 / DukeMTMC / MSMT17 protocol: CMC, mAP (non-interpolated or trapezoid), mINP |
//! | [`cuhk03`] | the CUHK03 single-gallery-shot protocol (seeded repeated draws) |
//! | [`rerank`] | k-reciprocal re-ranking (Zhong et al. 2017) with sparse, bounded memory |
//! | [`qe`] | average query expansion (AQE) |
//! | [`flip`] | flip-averaged features |
//! | [`npy`] | `.npy` input/output helpers (f32/f64 features, i32/i64 ids) |
//! | [`labels`] | person and camera ids of a query or gallery set |
//!
//! Ranking ties are broken by gallery index (a stable order), see [`rank`].
//! The numbers follow torchreid's `evaluate_rank` and `re_ranking`; see
//! `docs/metrics.md` in the repository for the exact rules.

#![warn(missing_docs)]

pub mod cuhk03;
pub mod distance;
pub mod error;
pub mod flip;
pub mod labels;
pub mod npy;
pub mod qe;
mod query_score;
pub mod rank;
pub mod ranklist;
pub mod rerank;
mod scorer;
mod topk;

pub use distance::{Distance, Metric, normalize_rows, pairwise_distance};
pub use error::MetricsError;
pub use labels::Labels;
pub use rank::{ApKind, EvalConfig, EvalResult, QueryScore, evaluate, evaluate_features};
pub use ranklist::{RankedMatch, top_matches};
pub use rerank::{RerankConfig, re_ranking, re_ranking_features};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, MetricsError>;
