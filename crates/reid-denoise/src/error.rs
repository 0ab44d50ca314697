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
