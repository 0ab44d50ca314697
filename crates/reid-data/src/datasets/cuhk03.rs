//! CUHK03-NP (Zhong et al., CVPR 2017: the new 767/700 protocol of CUHK03),
//! labeled and detected boxes.
//!
//! Two routes, tried in this order at each candidate root:
//! 1. zhunzhong07's released layout:
//!    `cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/`
//!    with names `{pid:04}_c{view}_{idx:02}.png`; the "camera" is the view
//!    (1..=2, made 0-based). Accepted roots: the kind folder itself
//!    (`cuhk03-np/labeled`), `cuhk03-np/`, the folder above it, and
//!    `<root>/cuhk03/cuhk03-np`.
//! 2. torchreid's preprocessed output in `<root>/cuhk03/` (or that folder
//!    itself): `splits_new_{labeled,detected}.json`, a JSON list of splits
//!    `{"train": [[path, pid, camid], …], "query": …, "gallery": …}` (split 0
//!    is used), written with absolute paths into `images_{labeled,detected}/`.
//!    A listed path that does not exist (the folder moved) is looked up as
//!    `images_<kind>/<basename>` next to the JSON; if that is missing too the
//!    error names the entry. Train labels in that file are torchreid's own
//!    (set order); they are relabelled again in our order.
//!
//! The raw `cuhk-03.mat` (MATLAB v7.3 / HDF5) import is not provided.

use derive_setters::Setters;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::record::{ImageRecord, Splits};

use super::folder::{self, Scheme};
use super::published::{CUHK03_NP_DETECTED, CUHK03_NP_LABELED, Published};
use super::relabel::relabel;
use super::root::resolve;
use super::{ImageDatasetOptions, ParsedDataset};

/// Which bounding boxes of CUHK03.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cuhk03Kind {
    /// Hand-labelled boxes (fast-reid's choice).
    #[default]
    Labeled,
    /// DPM-detected boxes (torchreid's default).
    Detected,
}

impl Cuhk03Kind {
    /// `"labeled"` or `"detected"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Labeled => "labeled",
            Self::Detected => "detected",
        }
    }

    fn published(self) -> &'static Published {
        match self {
            Self::Labeled => &CUHK03_NP_LABELED,
            Self::Detected => &CUHK03_NP_DETECTED,
        }
    }

    /// torchreid's split file name for this kind.
    pub fn split_json(self) -> String {
        format!("splits_new_{}.json", self.as_str())
    }
}

/// Options of the CUHK03-NP parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Cuhk03Options {
    /// Labeled or detected boxes.
    pub kind: Cuhk03Kind,
    /// Relabelling and count checks.
    pub common: ImageDatasetOptions,
}

/// Where the data was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cuhk03Source {
    /// zhunzhong07's folder layout; the path is the kind folder.
    Folders(PathBuf),
    /// torchreid's split JSON; the path is the JSON file.
    TorchreidJson(PathBuf),
}

/// Finds the CUHK03-NP data of `kind` under `root`.
pub fn locate(root: &Path, kind: Cuhk03Kind) -> Result<Cuhk03Source> {
    let k = kind.as_str();
    let json = kind.split_json();
    let cands = [
        String::new(),
        k.to_string(),
        format!("cuhk03-np/{k}"),
        format!("cuhk03/cuhk03-np/{k}"),
        "cuhk03".to_string(),
    ];
    let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
    let dir = resolve(
        root,
        &cands,
        &format!(
            "a CUHK03-NP cuhk03-np/{k}/ folder with bounding_box_train/, query/ and \
             bounding_box_test/, or torchreid's cuhk03/{json}"
        ),
        |d| folder::is_layout(d) || d.join(&json).is_file(),
    )
    .map_err(|e| match e {
        // Name the canonical folder of the released layout.
        DataError::Layout { expected, .. } => DataError::Layout {
            path: root.join("cuhk03-np").join(k),
            expected,
        },
        other => other,
    })?;
    if folder::is_layout(&dir) {
        Ok(Cuhk03Source::Folders(dir))
    } else {
        Ok(Cuhk03Source::TorchreidJson(dir.join(json)))
    }
}

/// Parses CUHK03-NP found at or under `root`.
pub fn parse(root: &Path, options: &Cuhk03Options) -> Result<ParsedDataset> {
    match locate(root, options.kind)? {
        Cuhk03Source::Folders(dir) => {
            let scheme = Scheme {
                cams: 1..=2,
                drop_junk: false,
                example: "0001_c1_01.png",
            };
            folder::parse_dataset(&dir, &scheme, options.kind.published(), &options.common)
        }
        Cuhk03Source::TorchreidJson(json) => parse_torchreid_json(&json, options),
    }
}

#[derive(Deserialize)]
struct JsonSplit {
    train: Vec<(String, i64, i64)>,
    query: Vec<(String, i64, i64)>,
    gallery: Vec<(String, i64, i64)>,
}

fn parse_torchreid_json(json: &Path, options: &Cuhk03Options) -> Result<ParsedDataset> {
    let text = std::fs::read_to_string(json).map_err(|e| DataError::io(json, e))?;
    let splits: Vec<JsonSplit> = serde_json::from_str(&text).map_err(|e| DataError::Json {
        path: json.to_path_buf(),
        message: format!(
            "{e}; expected a list of {{\"train\",\"query\",\"gallery\"}} splits of [path, pid, camid]"
        ),
    })?;
    let Some(split) = splits.into_iter().next() else {
        return Err(DataError::Json {
            path: json.to_path_buf(),
            message: "empty list of splits".into(),
        });
    };
    let dir = json.parent().unwrap_or(Path::new("")).to_path_buf();
    let images = dir.join(format!("images_{}", options.kind.as_str()));
    let convert = |name: &str, items: Vec<(String, i64, i64)>| -> Result<Vec<ImageRecord>> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (path, pid, camid))| {
                let bad = |what: String| DataError::Malformed {
                    path: json.to_path_buf(),
                    expected: format!("{name} entry {i}: {what}"),
                };
                if pid < 0 {
                    return Err(bad(format!("pid {pid} must be >= 0")));
                }
                let camid = u32::try_from(camid)
                    .ok()
                    .filter(|c| *c <= 1)
                    .ok_or_else(|| bad(format!("camid {camid} must be 0 or 1 (the view)")))?;
                let listed = PathBuf::from(&path);
                let found = if listed.is_file() {
                    listed
                } else {
                    let moved = listed.file_name().map(|n| images.join(n));
                    match moved {
                        Some(p) if p.is_file() => p,
                        _ => {
                            return Err(bad(format!(
                                "image {path} not found (nor under {})",
                                images.display()
                            )));
                        }
                    }
                };
                Ok(ImageRecord::new(found, pid, camid))
            })
            .collect()
    };
    let mut train = convert("train", split.train)?;
    let query = convert("query", split.query)?;
    let gallery = convert("gallery", split.gallery)?;
    let num_train_ids = relabel(&mut train, options.common.relabel);
    let splits = Splits {
        train,
        query,
        gallery,
    };
    let warnings = options
        .kind
        .published()
        .check(&splits.stats(), options.common.expect_full);
    Ok(ParsedDataset {
        splits,
        num_train_ids,
        warnings,
        root: dir,
    })
}
