//! What evaluation reads from a split's records: their image files and
//! their `(pid, camid)` labels.

use std::path::PathBuf;

use reid_data::{ImageLocation, ImageRecord};
use reid_metrics::Labels;

use crate::error::TrainError;

/// The image file of every record of `records`, in order; `split` names
/// the records in the error (`"query"`, `"evaluation"`, …).
///
/// # Errors
/// [`TrainError::InvalidConfig`] naming the first record that is an LMDB
/// key rather than a file.
pub fn image_paths(records: &[ImageRecord], split: &str) -> Result<Vec<PathBuf>, TrainError> {
    records
        .iter()
        .map(|r| match &r.location {
            ImageLocation::Path(p) => Ok(p.clone()),
            ImageLocation::LmdbKey(k) => Err(TrainError::InvalidConfig(format!(
                "{split} record {k:?} is an LMDB key, not an image file"
            ))),
        })
        .collect()
}

/// The pids and camera ids of `records`, in order, for the evaluation
/// protocols.
///
/// # Errors
/// [`TrainError::Metrics`] when the labels are unusable (none).
pub fn eval_labels(records: &[ImageRecord]) -> Result<Labels, TrainError> {
    Ok(Labels::new(
        records.iter().map(|r| r.pid).collect(),
        records.iter().map(|r| i64::from(r.camid)).collect(),
    )?)
}
