//! The crate's error type.

/// Errors raised by the losses for bad shapes, labels or hyper-parameters.
///
/// Every loss validates its inputs on the host before any tensor math, so a
/// bad input gives one of these instead of a panic or a silent broadcast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// Two inputs disagree on the batch size (first dimension).
    #[error("{loss}: batch size mismatch: {what_a} has {a} rows but {what_b} has {b}")]
    BatchMismatch {
        /// Name of the loss that rejected the input.
        loss: &'static str,
        /// The first input's name.
        what_a: &'static str,
        /// Its batch size.
        a: usize,
        /// The second input's name.
        what_b: &'static str,
        /// Its batch size.
        b: usize,
    },
    /// A tensor has a zero-sized dimension where at least one element is needed.
    #[error("{loss}: {what} must be non-empty, got shape {shape:?}")]
    Empty {
        /// Name of the loss that rejected the input.
        loss: &'static str,
        /// The input's name.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A label is negative or not below the number of classes.
    #[error(
        "{loss}: label {label} at batch index {index} is out of range: expected 0 <= label < {num_classes}"
    )]
    LabelOutOfRange {
        /// Name of the loss that rejected the input.
        loss: &'static str,
        /// Position of the bad label in the batch.
        index: usize,
        /// The bad label.
        label: i64,
        /// Number of classes (columns of the logits).
        num_classes: usize,
    },
    /// A hyper-parameter is outside its valid range.
    #[error("{loss}: invalid parameter {name} = {value}: expected {expected}")]
    InvalidParameter {
        /// Name of the loss that rejected the parameter.
        loss: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },
    /// A tensor's shape does not fit the layout the function needs.
    #[error("{loss}: {what} has shape {shape:?}: expected {expected}")]
    InvalidShape {
        /// Name of the function that rejected the input.
        loss: &'static str,
        /// The input's name.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// Two modules (e.g. an EMA teacher and its student) do not have the same
    /// parameters in the same order with the same shapes.
    #[error("{op}: modules differ: {detail}")]
    ModuleMismatch {
        /// Name of the operation that compared the modules.
        op: &'static str,
        /// The first difference found.
        detail: String,
    },
}
