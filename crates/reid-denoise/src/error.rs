//! The crate's error type.

use std::path::PathBuf;

/// Errors raised by the denoising pipeline. Every variant says what was
/// expected; file errors name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DenoiseError {
    /// A parameter is out of its valid range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Input data that does not fit together (feature rows vs images, dimensions, ordering).
    #[error("inconsistent input: {0}")]
    Inconsistent(String),
    /// A feature value is NaN or infinite.
    #[error("non-finite feature value in row {row} (column {col})")]
    NonFinite {
        /// Global row index.
        row: u64,
        /// Column index.
        col: usize,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A malformed `.npy` file.
    #[error("{path}: {message}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What was expected.
        message: String,
    },
    /// An error from `reid-data` (corpus parsing, annotation writing).
    #[error(transparent)]
    Data(#[from] reid_data::DataError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DenoiseError>;

impl DenoiseError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn npy(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Npy {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks that the parameter `what` is a finite number above zero (or at
/// least zero when `zero_ok`).
pub(crate) fn check_number(what: &str, v: f32, zero_ok: bool) -> Result<()> {
    if v.is_finite() && (v > 0.0 || (zero_ok && v >= 0.0)) {
        return Ok(());
    }
    let kind = if zero_ok { "non-negative" } else { "positive" };
    Err(DenoiseError::InvalidParameter(format!(
        "{what} must be a {kind} number, got {v}"
    )))
}

/// Checks that the count parameter `what` is at least 1.
pub(crate) fn check_at_least_one(what: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(DenoiseError::InvalidParameter(format!(
            "{what} must be at least 1"
        )));
    }
    Ok(())
}
