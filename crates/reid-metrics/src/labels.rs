//! Person and camera ids of a query or gallery set.

use crate::{MetricsError, Result};

/// Person ids (`pids`) and camera ids (`camids`) of `n` samples, index-aligned
/// with the rows of a feature matrix `[n, dim]` or the rows/columns of a
/// distance matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pids: Vec<i64>,
    camids: Vec<i64>,
}

impl Labels {
    /// Builds labels; `pids` and `camids` must have the same length.
    pub fn new(pids: Vec<i64>, camids: Vec<i64>) -> Result<Self> {
        if pids.len() != camids.len() {
            return Err(MetricsError::ShapeMismatch {
                what: "pids vs camids length".into(),
                expected: pids.len(),
                got: camids.len(),
            });
        }
        Ok(Self { pids, camids })
    }

    /// Person ids, `[n]`.
    pub fn pids(&self) -> &[i64] {
        &self.pids
    }

    /// Camera ids, `[n]`.
    pub fn camids(&self) -> &[i64] {
        &self.camids
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.pids.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }
}
