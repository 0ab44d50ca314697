//! The crate's error type.

use std::path::PathBuf;

use reid_data::DataError;

/// What can go wrong while generating or writing the synthetic world.
///
/// File failures (I/O, image encoding, JSON) are the data errors they are:
/// [`SynthError::Data`] holding a [`DataError`] that names the file involved,
/// so the two crates describe them once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A parameter is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writing a file (I/O, image encoding, JSON), or reading or checking a
    /// written dataset with `reid-data`, failed.
    #[error(transparent)]
    Data(#[from] DataError),
}

impl SynthError {
    /// Wraps an I/O error with the path it concerns ([`DataError::Io`]).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Data(DataError::io(path, source))
    }

    /// An image that could not be encoded ([`DataError::Image`]).
    pub(crate) fn image(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Self::Data(DataError::Image {
            path: path.into(),
            message: message.to_string(),
        })
    }

    /// A JSON document that could not be read or written ([`DataError::Json`]).
    pub(crate) fn json(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Self::Data(DataError::Json {
            path: path.into(),
            message: message.to_string(),
        })
    }
}

/// The synthetic world's errors as `reid-data` errors, for callers that
/// report data errors.
impl From<SynthError> for DataError {
    fn from(e: SynthError) -> Self {
        match e {
            SynthError::InvalidArgument(m) => DataError::InvalidArgument(m),
            SynthError::Data(e) => e,
        }
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, SynthError>;
