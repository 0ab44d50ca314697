//! The crate's error type.

use std::path::PathBuf;

/// Errors of reading logs and writing pictures; each names the file or chart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A chart or log has nothing to draw (no series, no bars, only NaN or
    /// infinite values, a log without metrics); no file is written.
    #[error("{what}: nothing to draw: {reason}")]
    NoData {
        /// The chart (and file) or log concerned.
        what: String,
        /// Why there is nothing to draw.
        reason: String,
    },
}

impl VizError {
    /// The same error, naming the file it was about to be written to.
    pub fn for_file(self, path: &std::path::Path) -> Self {
        match self {
            VizError::NoData { what, reason } => VizError::NoData {
                what: format!("{} ({what})", path.display()),
                reason,
            },
            VizError::Invalid(m) => VizError::Invalid(format!("{}: {m}", path.display())),
            other => other,
        }
    }
}
