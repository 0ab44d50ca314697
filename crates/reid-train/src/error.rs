//! The crate's error type.

/// Errors raised by feature extraction and the training recipes.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Reading or decoding the data failed.
    #[error(transparent)]
    Data(#[from] reid_data::DataError),
    /// A tensor could not be read back from the device.
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
}
