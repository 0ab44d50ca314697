//! The `bounding_box_train/`, `query/`, `bounding_box_test/` folder layout
//! shared by Market-1501, DukeMTMC-reID and CUHK03-NP: one image per file,
//! pid and camera in the basename (`([-\d]+)_c(\d)`).

use std::ops::RangeInclusive;
use std::path::Path;

use crate::error::{DataError, Result};
use crate::record::{ImageRecord, Splits};

use super::naming::{basename, find_pid_cam, parse_int, sorted_images};
use super::published::Published;
use super::relabel::relabel;
use super::{ImageDatasetOptions, ParsedDataset};

/// Sub-folders of the layout, in train / query / gallery order.
pub const SPLIT_DIRS: [&str; 3] = ["bounding_box_train", "query", "bounding_box_test"];

/// What a dataset's file names look like.
#[derive(Debug, Clone)]
pub(crate) struct Scheme {
    /// Valid camera numbers as written in the name (1-based).
    pub cams: RangeInclusive<u32>,
    /// Whether pid `-1` marks junk to drop (Market-1501).
    pub drop_junk: bool,
    /// An example name, quoted in errors.
    pub example: &'static str,
}

/// True when `dir` holds the three split folders.
pub(crate) fn is_layout(dir: &Path) -> bool {
    super::root::has_dirs(dir, &SPLIT_DIRS)
}

/// Parses one split folder: every image file must match the scheme.
pub(crate) fn parse_split(dir: &Path, scheme: &Scheme) -> Result<Vec<ImageRecord>> {
    let mut out = Vec::new();
    let expected = || {
        format!(
            "a name matching ([-\\d]+)_c(\\d) such as {}",
            scheme.example
        )
    };
    for path in sorted_images(dir)? {
        let name = basename(&path, scheme.example)?;
        let Some((pid_text, cam)) = find_pid_cam(name) else {
            return Err(DataError::Malformed {
                path,
                expected: expected(),
            });
        };
        let Some(pid) = parse_int(pid_text) else {
            return Err(DataError::Malformed {
                path,
                expected: expected(),
            });
        };
        if pid == -1 && scheme.drop_junk {
            continue;
        }
        if pid < 0 {
            let allowed = if scheme.drop_junk {
                "a pid >= 0, or -1 for junk"
            } else {
                "a pid >= 0"
            };
            return Err(DataError::Malformed {
                path,
                expected: allowed.to_string(),
            });
        }
        if !scheme.cams.contains(&cam) {
            return Err(DataError::Malformed {
                path,
                expected: format!(
                    "a camera number in {}..={}",
                    scheme.cams.start(),
                    scheme.cams.end()
                ),
            });
        }
        out.push(ImageRecord::new(path, pid, cam - 1));
    }
    Ok(out)
}

/// Parses the three split folders of `dataset_dir`, relabels train and
/// checks the counts against `published`.
pub(crate) fn parse_dataset(
    dataset_dir: &Path,
    scheme: &Scheme,
    published: &Published,
    options: &ImageDatasetOptions,
) -> Result<ParsedDataset> {
    let [train_dir, query_dir, gallery_dir] = SPLIT_DIRS.map(|d| dataset_dir.join(d));
    let mut train = parse_split(&train_dir, scheme)?;
    let query = parse_split(&query_dir, scheme)?;
    let gallery = parse_split(&gallery_dir, scheme)?;
    let num_train_ids = relabel(&mut train, options.relabel);
    let splits = Splits {
        train,
        query,
        gallery,
    };
    let warnings = published.check(&splits.stats(), options.expect_full);
    Ok(ParsedDataset {
        splits,
        num_train_ids,
        warnings,
        root: dataset_dir.to_path_buf(),
    })
}
