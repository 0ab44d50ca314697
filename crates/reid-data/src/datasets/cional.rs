//! CION-AL style identity annotations (`annos.json`): a JSON list of
//! `{"file_path": <path relative to the image root>, "id": <identity>}`.
//!
//! CION's loader reads `cional_annos.json` (its default path has the typo
//! `cinoal_annos.json`) and takes the last entry's id as the number of
//! identities, so files are written **sorted by id** (stable; ties by
//! `file_path`). Our denoising pipeline writes the same format with
//! [`write_annos`].
//!
//! As a train/query/gallery dataset ([`parse`]) every entry is a training
//! image (`camid = 0`, ids relabelled to `0..n`); query and gallery are
//! empty. [`CionAl::by_identity`] and [`CionAl::by_directory`] give the
//! identity and video (parent folder) views.
//!
//! Accepted roots: the JSON file itself, or a folder holding `annos.json`,
//! `cional_annos.json` or `cinoal_annos.json`, directly or in `CION_AL/`,
//! `dataset/CION_AL/` or `CION_Pretrain/dataset/CION_AL/`. Images are
//! relative to the JSON's folder.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::record::{ImageRecord, Splits};

use super::relabel::relabel;
use super::root::resolve;
use super::{ImageDatasetOptions, ParsedDataset};

/// Annotation file names looked for, in order.
pub const FILE_NAMES: [&str; 3] = ["annos.json", "cional_annos.json", "cinoal_annos.json"];

/// Folder candidates, relative to the user's root.
pub const CANDIDATES: [&str; 4] = [
    "",
    "CION_AL",
    "dataset/CION_AL",
    "CION_Pretrain/dataset/CION_AL",
];

/// One annotation: an image and its identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Anno {
    /// Image path relative to the image root (the JSON's folder), `/`-separated.
    pub file_path: String,
    /// Identity label.
    pub id: i64,
}

/// An annotation file and the folder its paths are relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CionAl {
    /// The JSON file.
    pub annos_path: PathBuf,
    /// The folder `file_path`s are relative to.
    pub image_root: PathBuf,
    /// The entries, in file order.
    pub annos: Vec<Anno>,
}

/// Reads an annotation list; an entry that is not
/// `{"file_path": string, "id": integer}` is an error naming its index.
pub fn read_annos(path: &Path) -> Result<Vec<Anno>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let values: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            message: format!("{e}; expected a list of {{\"file_path\", \"id\"}} objects"),
        })?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let file_path = v.get("file_path").and_then(|p| p.as_str());
            let id = v.get("id").and_then(|x| x.as_i64());
            match (file_path, id) {
                (Some(f), Some(id)) if !f.is_empty() => Ok(Anno {
                    file_path: f.to_string(),
                    id,
                }),
                _ => Err(DataError::Json {
                    path: path.to_path_buf(),
                    message: format!(
                        "entry {i} is {v}; expected {{\"file_path\": <non-empty string>, \"id\": <integer>}}"
                    ),
                }),
            }
        })
        .collect()
}

/// Writes `annos` to `path` sorted by id (stable, ties by `file_path`), one
/// entry per line. The file is written under a temporary name beside `path`
/// and renamed into place, so an interrupted write never leaves a truncated
/// annotation file.
pub fn write_annos(path: &Path, annos: &[Anno]) -> Result<()> {
    let mut sorted: Vec<&Anno> = annos.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.file_path.cmp(&b.file_path)));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let file = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| DataError::io(&tmp, e);
    w.write_all(b"[").map_err(io)?;
    for (i, a) in sorted.iter().enumerate() {
        let line = serde_json::to_string(a).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let sep: &[u8] = if i == 0 { b"\n" } else { b",\n" };
        w.write_all(sep).map_err(io)?;
        w.write_all(line.as_bytes()).map_err(io)?;
    }
    w.write_all(b"\n]\n").map_err(io)?;
    let file = w
        .into_inner()
        .map_err(|e| DataError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| DataError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

/// Finds the annotation file at or under `root`.
pub fn locate(root: &Path) -> Result<PathBuf> {
    if root.is_file() {
        return Ok(root.to_path_buf());
    }
    let dir = resolve(
        root,
        &CANDIDATES,
        &format!("a CION-AL folder holding one of {}", FILE_NAMES.join(", ")),
        |d| FILE_NAMES.iter().any(|f| d.join(f).is_file()),
    )?;
    FILE_NAMES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::Layout {
            path: dir.join(FILE_NAMES[0]),
            expected: "an annotation file".into(),
        })
}

impl CionAl {
    /// Reads the annotation file found at or under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let annos_path = locate(root)?;
        let annos = read_annos(&annos_path)?;
        let image_root = annos_path.parent().unwrap_or(Path::new("")).to_path_buf();
        Ok(Self {
            annos_path,
            image_root,
            annos,
        })
    }

    /// The absolute (root-joined) path of an entry.
    pub fn image_path(&self, anno: &Anno) -> PathBuf {
        self.image_root.join(&anno.file_path)
    }

    /// Entries grouped by identity (ascending id; file order inside).
    pub fn by_identity(&self) -> BTreeMap<i64, Vec<&Anno>> {
        let mut map: BTreeMap<i64, Vec<&Anno>> = BTreeMap::new();
        for a in &self.annos {
            map.entry(a.id).or_default().push(a);
        }
        map
    }

    /// Entries grouped by parent folder of `file_path` (the video in our
    /// pipeline's output; `""` for top-level files).
    pub fn by_directory(&self) -> BTreeMap<String, Vec<&Anno>> {
        let mut map: BTreeMap<String, Vec<&Anno>> = BTreeMap::new();
        for a in &self.annos {
            let dir = a.file_path.rsplit_once('/').map_or("", |(d, _)| d);
            map.entry(dir.to_string()).or_default().push(a);
        }
        map
    }

    /// Every entry as a training record (raw ids, `camid = 0`).
    pub fn records(&self) -> Vec<ImageRecord> {
        self.annos
            .iter()
            .map(|a| ImageRecord::new(self.image_path(a), a.id, 0))
            .collect()
    }
}

/// Parses a CION-AL annotation file as a train-only dataset (see the module doc).
pub fn parse(root: &Path, options: &ImageDatasetOptions) -> Result<ParsedDataset> {
    let set = CionAl::open(root)?;
    let mut train = set.records();
    let num_train_ids = relabel(&mut train, options.relabel);
    Ok(ParsedDataset {
        splits: Splits {
            train,
            query: Vec::new(),
            gallery: Vec::new(),
        },
        num_train_ids,
        warnings: Vec::new(),
        root: set.image_root,
    })
}
