//! The crate's error type.

/// What can go wrong when building or running an inference engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The model has a layer the engine does not run (named in the message).
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The input does not have the shape or length the engine expects.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
