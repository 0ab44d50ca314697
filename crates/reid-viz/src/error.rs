//! The crate's error type.

use std::path::PathBuf;

/// Errors of reading logs and writing pictures; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A metrics log line is not what was expected.
    #[error("{path}, line {line}: {message}")]
    BadLine {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
}
