//! The crate's error type.

/// Errors raised when building or loading a backbone.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// The architecture name is not in the registry.
    #[error("unknown architecture {name:?}; known: {known}")]
    UnknownArch {
        /// The name that was asked for.
        name: String,
        /// The names the registry knows, comma separated.
        known: String,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
