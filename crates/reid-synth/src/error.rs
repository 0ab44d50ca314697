//! The crate's error type.

use std::path::PathBuf;

use reid_data::DataError;

/// What can go wrong while generating or writing the synthetic world. Each
/// variant names the file or directory involved and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("{path}: image error: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
    /// A JSON document (the truth sidecar) could not be read or written.
    #[error("{path}: JSON error: {message}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A parameter is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Reading or checking a written dataset with `reid-data` failed.
    #[error(transparent)]
    Data(#[from] DataError),
}

impl SynthError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The synthetic world's errors as `reid-data` errors (same variants), for
/// callers that report data errors.
impl From<SynthError> for DataError {
    fn from(e: SynthError) -> Self {
        match e {
            SynthError::Io { path, source } => DataError::Io { path, source },
            SynthError::Image { path, message } => DataError::Image { path, message },
            SynthError::Json { path, message } => DataError::Json { path, message },
            SynthError::InvalidArgument(m) => DataError::InvalidArgument(m),
            SynthError::Data(e) => e,
        }
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, SynthError>;
