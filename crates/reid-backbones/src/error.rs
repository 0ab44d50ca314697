//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// Errors raised when building, loading or saving a backbone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A checkpoint file could not be opened or parsed.
    #[error("cannot read checkpoint {path}: {message}")]
    Read {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint was read but its layout is not the one expected (or
    /// could not be recognised).
    #[error("checkpoint {path}: {message}")]
    Layout {
        /// The checkpoint file.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// The checkpoint's tensors do not match the model: missing, unexpected
    /// or mis-shaped keys (see [`KeyMismatch`]).
    #[error(transparent)]
    KeyMismatch(Box<KeyMismatch>),
    /// Writing an exported checkpoint failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// `Ok` when `ok`, else [`BackboneError::InvalidConfig`] with `message()`:
/// one check of a configuration's `validate`.
pub(crate) fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), BackboneError> {
    if ok {
        Ok(())
    } else {
        Err(BackboneError::InvalidConfig(message()))
    }
}

/// Checks a stochastic-depth rate: in `[0, 1)`.
pub(crate) fn check_drop_path_rate(rate: f64) -> Result<(), BackboneError> {
    ensure((0.0..1.0).contains(&rate), || {
        format!("drop_path_rate must be in [0, 1), got {rate}")
    })
}

/// Checks that the value of `name` (an epsilon, a ratio) is finite and
/// positive.
pub(crate) fn check_positive(name: &str, value: f64) -> Result<(), BackboneError> {
    ensure(value.is_finite() && value > 0.0, || {
        format!("{name} must be finite and positive, got {value}")
    })
}

/// Checks that the value of `name` (a layer-scale start) is finite and
/// not negative.
pub(crate) fn check_non_negative(name: &str, value: f64) -> Result<(), BackboneError> {
    ensure(value.is_finite() && value >= 0.0, || {
        format!("{name} must be finite and ≥ 0, got {value}")
    })
}

/// The name the import API documents for its errors.
pub type ImportError = BackboneError;

/// Keys of a checkpoint that do not fit the model, by PyTorch name (after
/// the layout's prefix handling, e.g. `layer1.0.bn1.weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The layout it was read as (`"torchvision"`, `"lup"`, …).
    pub layout: String,
    /// Model parameters with no tensor in the checkpoint.
    pub missing: Vec<String>,
    /// Checkpoint tensors that belong to no model parameter (and are not
    /// on the allow-list).
    pub unexpected: Vec<String>,
    /// `(key, expected shape, shape in the file)`.
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

/// How many keys of each kind the message lists before summarising.
const LIST_LIMIT: usize = 40;

fn write_list(f: &mut fmt::Formatter<'_>, title: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, "\n  {} {title}:", items.len())?;
    for item in items.iter().take(LIST_LIMIT) {
        write!(f, "\n    {item}")?;
    }
    if items.len() > LIST_LIMIT {
        write!(f, "\n    … and {} more", items.len() - LIST_LIMIT)?;
    }
    Ok(())
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checkpoint {} (read as {} layout) does not match the model",
            self.path.display(),
            self.layout
        )?;
        write_list(
            f,
            "missing keys (in the model, not in the file)",
            &self.missing,
        )?;
        write_list(
            f,
            "unexpected keys (in the file, not in the model; allow them explicitly to skip)",
            &self.unexpected,
        )?;
        let shaped: Vec<String> = self
            .mis_shaped
            .iter()
            .map(|(k, want, got)| format!("{k}: model {want:?}, file {got:?}"))
            .collect();
        write_list(f, "mis-shaped keys", &shaped)
    }
}

impl std::error::Error for KeyMismatch {}
