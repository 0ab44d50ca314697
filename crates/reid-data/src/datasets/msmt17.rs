//! MSMT17 (Wei et al., CVPR 2018), versions V1 and V2.
//!
//! Layout: `MSMT17_V1/{train,test}/<pid>/<name>.jpg` (V2: `MSMT17_V2/` with
//! `mask_train_v2/` and `mask_test_v2/`, faces blurred) plus the list files
//! `list_train.txt`, `list_val.txt`, `list_query.txt`, `list_gallery.txt`
//! inside the version folder. One list line is
//! `<path relative to train/ or test/> <pid>`; names look like
//! `0000_000_01_0303morning_0015_0.jpg` and the camera is the third `_` token
//! of the basename (1..=15, made 0-based).
//!
//! The list pids are 0-based and contiguous per split (train and val share
//! the train numbering; query and gallery the test numbering). Train is
//! relabelled anyway (a no-op on the official lists). `list_val.txt` joins
//! train only with [`Msmt17Options::merge_val`] (upstream: `combineall`).
//! Every listed image must exist (checked with one `stat` per line); lines
//! are split on whitespace and must have exactly two fields.
//!
//! Accepted roots: the version folder itself, `<root>/MSMT17_Vx` (fast-reid)
//! and `<root>/msmt17/MSMT17_Vx` (torchreid); V1 is tried before V2 as
//! upstream does, unless [`Msmt17Options::version`] pins one.

use derive_setters::Setters;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::record::{ImageRecord, Splits};

use super::published::{MSMT17, MSMT17_TRAIN_VAL};
use super::relabel::relabel;
use super::root::{has_dirs, has_files, resolve};
use super::{ImageDatasetOptions, ParsedDataset};

/// The list files every version folder must hold.
pub const LIST_FILES: [&str; 4] = [
    "list_train.txt",
    "list_val.txt",
    "list_query.txt",
    "list_gallery.txt",
];

/// MSMT17 release version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msmt17Version {
    /// `MSMT17_V1` with `train/` and `test/`.
    V1,
    /// `MSMT17_V2` with `mask_train_v2/` and `mask_test_v2/`.
    V2,
}

impl Msmt17Version {
    /// The version folder's name.
    pub fn folder(self) -> &'static str {
        match self {
            Self::V1 => "MSMT17_V1",
            Self::V2 => "MSMT17_V2",
        }
    }

    /// The (train, test) image folder names.
    pub fn image_dirs(self) -> (&'static str, &'static str) {
        match self {
            Self::V1 => ("train", "test"),
            Self::V2 => ("mask_train_v2", "mask_test_v2"),
        }
    }

    fn candidates(self) -> [String; 3] {
        let f = self.folder();
        [String::new(), f.to_string(), format!("msmt17/{f}")]
    }

    fn matches(self, dir: &Path) -> bool {
        let (train, test) = self.image_dirs();
        has_files(dir, &LIST_FILES) && has_dirs(dir, &[train, test])
    }
}

/// Options of the MSMT17 parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Msmt17Options {
    /// Append `list_val.txt` to train (upstream keeps val out unless `combineall`).
    pub merge_val: bool,
    /// Accept only this version; `None` tries V1 then V2.
    pub version: Option<Msmt17Version>,
    /// Relabelling and count checks.
    pub common: ImageDatasetOptions,
}

/// Finds the MSMT17 version folder under `root`.
pub fn locate(root: &Path, version: Option<Msmt17Version>) -> Result<(PathBuf, Msmt17Version)> {
    let versions = match version {
        Some(v) => vec![v],
        None => vec![Msmt17Version::V1, Msmt17Version::V2],
    };
    let mut first_err = None;
    for v in &versions {
        let cands = v.candidates();
        let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
        let (train, test) = v.image_dirs();
        let expected = format!(
            "an {} folder with {}/, {}/ and {}",
            v.folder(),
            train,
            test,
            LIST_FILES.join(", ")
        );
        match resolve(root, &cands, &expected, |d| v.matches(d)) {
            Ok(dir) => return Ok((dir, *v)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| DataError::InvalidArgument("no MSMT17 version".into())))
}

/// Reads one list file: every line `<relative path> <pid>`, relative to `image_dir`.
pub fn read_list(list: &Path, image_dir: &Path) -> Result<Vec<ImageRecord>> {
    let text = std::fs::read_to_string(list).map_err(|e| DataError::io(list, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| DataError::Malformed {
            path: list.to_path_buf(),
            expected: format!(
                "line {line_no} {what}; expected `<path> <pid>` such as \
                 `0000/0000_000_01_0303morning_0015_0.jpg 0`, got `{line}`"
            ),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [rel, pid_text] = fields.as_slice() else {
            return Err(bad("does not have exactly two fields"));
        };
        let pid: i64 = pid_text
            .parse()
            .ok()
            .filter(|p: &i64| *p >= 0)
            .ok_or_else(|| bad("has a pid that is not a non-negative integer"))?;
        let rel_path = Path::new(rel);
        let name = rel_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("has no file name"))?;
        let cam: u32 = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("has a file name whose third `_` token is not a camera number"))?;
        if !(1..=15).contains(&cam) {
            return Err(bad(&format!("has camera {cam}, outside 1..=15")));
        }
        let path = image_dir.join(rel_path);
        if !path.is_file() {
            return Err(DataError::Layout {
                path,
                expected: format!("the image listed on line {line_no} of {}", list.display()),
            });
        }
        out.push(ImageRecord::new(path, pid, cam - 1));
    }
    Ok(out)
}

/// Parses MSMT17 found at or under `root`.
pub fn parse(root: &Path, options: &Msmt17Options) -> Result<ParsedDataset> {
    let (dir, version) = locate(root, options.version)?;
    let (train_dir, test_dir) = version.image_dirs();
    let (train_dir, test_dir) = (dir.join(train_dir), dir.join(test_dir));
    let mut train = read_list(&dir.join("list_train.txt"), &train_dir)?;
    if options.merge_val {
        train.extend(read_list(&dir.join("list_val.txt"), &train_dir)?);
    }
    let query = read_list(&dir.join("list_query.txt"), &test_dir)?;
    let gallery = read_list(&dir.join("list_gallery.txt"), &test_dir)?;
    let num_train_ids = relabel(&mut train, options.common.relabel);
    let splits = Splits {
        train,
        query,
        gallery,
    };
    let published = if options.merge_val {
        MSMT17_TRAIN_VAL
    } else {
        MSMT17
    };
    let warnings = published.check(&splits.stats(), options.common.expect_full);
    Ok(ParsedDataset {
        splits,
        num_train_ids,
        warnings,
        root: dir,
    })
}
