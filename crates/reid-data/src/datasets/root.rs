//! Root resolution: the user may point at the dataset's own folder or at a
//! folder above it (fast-reid's `datasets/` or torchreid's `<root>/`).
//!
//! Each parser lists the relative locations it accepts, most specific first
//! is not required: the first candidate whose layout matches wins, in the
//! order given. On failure the error names the canonical path (the first
//! candidate below `root` that is not `root` itself) and lists every path
//! that was tried.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Returns `root.join(c)` for the first candidate `c` (relative path; `""` is
/// `root` itself) for which `matches` holds.
///
/// `expected` describes what a matching folder holds (e.g. "a folder with
/// bounding_box_train/, query/ and bounding_box_test/"); it goes into the
/// [`DataError::Layout`] returned when nothing matches.
pub fn resolve(
    root: &Path,
    candidates: &[&str],
    expected: &str,
    matches: impl Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let tried: Vec<PathBuf> = candidates
        .iter()
        .map(|c| {
            if c.is_empty() {
                root.to_path_buf()
            } else {
                root.join(c)
            }
        })
        .collect();
    if let Some(found) = tried.iter().find(|p| matches(p)) {
        return Ok(found.clone());
    }
    let canonical = candidates
        .iter()
        .zip(&tried)
        .find(|(c, _)| !c.is_empty())
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| root.to_path_buf());
    let list = tried
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(DataError::Layout {
        path: canonical,
        expected: format!("{expected} (tried: {list})"),
    })
}

/// True when every name in `subdirs` is a directory inside `dir`.
pub fn has_dirs(dir: &Path, subdirs: &[&str]) -> bool {
    subdirs.iter().all(|s| dir.join(s).is_dir())
}

/// True when every name in `files` is a regular file inside `dir`.
pub fn has_files(dir: &Path, files: &[&str]) -> bool {
    files.iter().all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_candidate_wins_and_errors_list_all_tried() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/X/inner")).unwrap();
        let got = resolve(tmp.path(), &["", "X", "a/X"], "inner/", |p| {
            has_dirs(p, &["inner"])
        })
        .unwrap();
        assert_eq!(got, tmp.path().join("a/X"));
        let err = resolve(tmp.path(), &["", "Y", "b/Y"], "a folder with inner/", |p| {
            has_dirs(p, &["inner"])
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&tmp.path().join("Y").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains(&tmp.path().join("b/Y").display().to_string()),
            "{msg}"
        );
        assert!(matches!(err, DataError::Layout { ref path, .. } if *path == tmp.path().join("Y")));
    }
}
