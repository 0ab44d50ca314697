//! # reid-denoise
//!
//! CION's progressive multi-level denoising of noisy tracklet labels
//! (videos → tracklets → identities), the first public implementation.
//!
//! Planned modules:
//! - `level1`: intra-tracklet consistency (drop samples far from the centroid);
//! - `level2`: intra-video re-assignment and tracklet merging;
//! - `level3`: cross-video linking with a sliding range and union-find;
//! - `report`: per-level quality (pairwise precision/recall, purity) against
//!   ground truth such as the synthetic world's sidecar;
//! - `annos`: writing CION-AL style `annos.json`.
//!
//! Nothing is implemented yet; see `docs/architecture.md` for the plan.

/// Errors raised by the denoising pipeline.
#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    /// A parameter is out of its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}
