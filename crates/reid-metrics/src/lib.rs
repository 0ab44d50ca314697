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
//!
//! # Example
//!
//! Three queries against a gallery of five, seen by another camera: each
//! query's nearest gallery feature is its own identity, so Rank-1 and mAP
//! are 1.
//!
//! ```
//! use ndarray::array;
//! use reid_metrics::{Distance, EvalConfig, Labels, evaluate_features};
//!
//! fn main() -> Result<(), reid_metrics::MetricsError> {
//!     let query = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
//!     let gallery = array![[0.9f32, 0.1], [0.1, 0.9], [1.0, 0.9], [-1.0, 0.0], [0.0, -1.0]];
//!     // Person and camera ids of each row.
//!     let query_ids = Labels::new(vec![1, 2, 3], vec![0, 0, 0])?;
//!     let gallery_ids = Labels::new(vec![1, 2, 3, 4, 5], vec![1, 1, 1, 1, 1])?;
//!
//!     let result = evaluate_features(
//!         query.view(),
//!         gallery.view(),
//!         &query_ids,
//!         &gallery_ids,
//!         Distance::SquaredEuclidean,
//!         false, // no L2 normalisation
//!         &EvalConfig::default(),
//!     )?;
//!     assert_eq!(result.num_valid_queries, 3);
//!     assert_eq!(result.rank(1), Some(1.0));
//!     assert!((result.map - 1.0).abs() < 1e-12);
//!     assert_eq!(result.cmc.len(), 5); // capped at the gallery size
//!     Ok(())
//! }
//! ```

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
