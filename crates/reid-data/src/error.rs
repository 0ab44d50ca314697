//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, generating or loading data.
/// Each variant names the file or directory involved and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset folder does not have the expected layout.
    #[error("wrong dataset layout: expected {expected} at {path}")]
    Layout {
        /// The path that was looked for.
        path: PathBuf,
        /// What should be there.
        expected: String,
    },
    /// A file name or list line does not follow the dataset's naming scheme.
    #[error("{path}: malformed name or entry ({expected})")]
    Malformed {
        /// The offending file (or list file).
        path: PathBuf,
        /// What the name should look like.
        expected: String,
    },
    /// An image could not be decoded or encoded.
    #[error("{path}: image error: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's or encoder's message.
        message: String,
    },
    /// A JSON document could not be read or written.
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
    /// An LMDB environment could not be opened or read (feature `lmdb`).
    #[error("{path}: LMDB error: {message}")]
    Lmdb {
        /// The environment folder.
        path: PathBuf,
        /// What went wrong (the key, or LMDB's message).
        message: String,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
