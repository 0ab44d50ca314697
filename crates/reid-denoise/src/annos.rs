//! The pipeline's output as CION-AL style annotations.

use std::path::Path;

use reid_data::datasets::cional::{Anno, write_annos};

use crate::error::{DenoiseError, Result};
use crate::quality::REMOVED;

/// One annotation per kept crop, `{"file_path", "id"}`, sorted by id, then by
/// path. `paths[i]` is crop `i`'s location relative to the image root.
pub fn to_annos(labels: &[u32], paths: &[String]) -> Result<Vec<Anno>> {
    if labels.len() != paths.len() {
        return Err(DenoiseError::Inconsistent(format!(
            "{} labels but {} image paths (expected one per crop)",
            labels.len(),
            paths.len()
        )));
    }
    let mut annos: Vec<Anno> = labels
        .iter()
        .zip(paths)
        .filter(|(l, _)| **l != REMOVED)
        .map(|(&l, p)| Anno {
            file_path: p.clone(),
            id: i64::from(l),
        })
        .collect();
    annos.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.file_path.cmp(&b.file_path)));
    Ok(annos)
}

/// Writes the annotations of [`to_annos`] to `path` (atomically, via `reid-data`).
pub fn write(path: &Path, labels: &[u32], paths: &[String]) -> Result<usize> {
    let annos = to_annos(labels, paths)?;
    write_annos(path, &annos)?;
    Ok(annos.len())
}
