//! What can be wrong with a `.npy` file, in our words (the file's path is added
//! by [`crate::MetricsError::Npy`]).

use super::dtype::{Dtype, format_shape};

/// One problem found while reading or writing a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyProblem {
    /// The operating system refused to open, read, write or rename the file.
    #[error("cannot {action} the file: {message}")]
    Io {
        /// `"open"`, `"read"`, `"write"` or `"rename"`.
        action: &'static str,
        /// The operating system's message.
        message: String,
    },
    /// The file is shorter than the fixed part of a `.npy` header.
    #[error(
        "the file holds {held} bytes, fewer than the {needed} bytes of a .npy preamble (magic, version, header length)"
    )]
    TooShort {
        /// Bytes the file holds.
        held: u64,
        /// Bytes the preamble needs.
        needed: u64,
    },
    /// The file does not start with the `.npy` magic bytes.
    #[error("not a .npy file: expected the magic bytes \\x93NUMPY at the start, found {found}")]
    NotNpy {
        /// The first bytes found, escaped.
        found: String,
    },
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)")]
    Version {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header length field is larger than the file or than our limit.
    #[error(
        "the header length field says {len} bytes, but {}",
        if *len > *limit { format!("headers are limited to {limit} bytes") } else { format!("only {available} bytes follow the preamble") }
    )]
    HeaderLength {
        /// The header length the file claims.
        len: u64,
        /// Bytes the file holds after the preamble.
        available: u64,
        /// The largest header accepted ([`super::MAX_HEADER_LEN`]).
        limit: u64,
    },
    /// The header is not the Python dictionary literal numpy writes.
    #[error("the header is not a .npy header dictionary: {reason} (header text: {text})")]
    HeaderSyntax {
        /// What is wrong.
        reason: String,
        /// The header text (shortened, escaped).
        text: String,
    },
    /// A header key is missing, repeated or unknown.
    #[error("header key {key:?}: {reason} (expected exactly 'descr', 'fortran_order' and 'shape')")]
    HeaderKey {
        /// The key.
        key: String,
        /// `"missing"`, `"repeated"` or `"unknown"`.
        reason: &'static str,
    },
    /// A header field has a value of the wrong kind.
    #[error("header field '{field}': expected {expected}, got {got}")]
    HeaderField {
        /// `descr`, `fortran_order` or `shape`.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
        /// What it holds.
        got: String,
    },
    /// The data type is not one this reader accepts.
    #[error("header field 'descr' is {descr:?}: expected {expected}")]
    Dtype {
        /// The header's `descr`.
        descr: String,
        /// What is accepted, e.g. `"float32 or float64 data ('<f4', '<f8')"`.
        expected: &'static str,
    },
    /// The array has the wrong number of dimensions.
    #[error(
        "header field 'shape' is {}: expected a {expected}-dimensional array {layout}",
        format_shape(shape)
    )]
    Ndim {
        /// The header's shape.
        shape: Vec<u64>,
        /// Dimensions expected.
        expected: usize,
        /// The expected layout, e.g. `"[rows, columns]"`.
        layout: &'static str,
    },
    /// The array has no elements (a dimension is 0).
    #[error(
        "header field 'shape' is {}: expected at least one element along every axis (an empty array cannot be evaluated)",
        format_shape(shape)
    )]
    Empty {
        /// The header's shape.
        shape: Vec<u64>,
    },
    /// The data bytes after the header are not what the header's shape and dtype need.
    #[error(
        "header field 'shape' is {} of {dtype} ({} bytes of data), but the file holds {held} bytes of data after its {header_bytes}-byte header",
        format_shape(shape),
        needed.map_or_else(|| "more than 2^128".to_string(), |n| n.to_string())
    )]
    Size {
        /// The header's shape.
        shape: Vec<u64>,
        /// The header's data type.
        dtype: Dtype,
        /// Bytes of data the shape needs (`None`: more than `u128` can count).
        needed: Option<u128>,
        /// Bytes of data the file holds after the header.
        held: u64,
        /// Bytes of the preamble and header.
        header_bytes: u64,
    },
    /// A value is NaN or infinite (or a float64 beyond the float32 range).
    #[error("value at {index} is {value} (NaN and infinite values are not accepted)")]
    NonFinite {
        /// Where, e.g. `"[3, 17]"`.
        index: String,
        /// The value as read (`NaN`, `inf`, `-inf`, or the float64 value that overflows float32).
        value: String,
    },
}
