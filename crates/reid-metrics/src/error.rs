//! The error type of this crate.

use std::path::PathBuf;

use crate::npy::problem::NpyProblem;

/// Everything that can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which inputs disagree.
        what: String,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// An input that must not be empty is empty.
    #[error("empty input: {0}")]
    Empty(String),
    /// An input holds NaN (or infinity where it is not allowed).
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Flat index of the first bad value found.
        index: usize,
    },
    /// No query has a valid match in the gallery (every query would be skipped).
    #[error(
        "all query identities are absent from the gallery (after removing same-pid same-camera items)"
    )]
    NoValidQuery,
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// A `.npy` file could not be read or written, or is not what was expected.
    #[error("{}: {problem}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        problem: NpyProblem,
    },
}
