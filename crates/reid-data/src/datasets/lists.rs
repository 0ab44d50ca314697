//! Your own dataset, described by three list files: one line per image,
//! `path pid camid` (whitespace-separated), as torchreid's and fast-reid's
//! users write them for a custom dataset class.
//!
//! - `path`: relative to the dataset root (or absolute); the file must
//!   exist and have an image extension (`.jpg`, `.jpeg`, `.png`, `.bmp`).
//! - `pid`: the person, an integer ≥ 0 (any numbering; training pids are
//!   relabelled to `0..n` as the built-in parsers do). In query and gallery
//!   `-1` marks a junk image, dropped as Market-1501's are.
//! - `camid`: the camera, an integer ≥ 0 as the list writes it (0-based;
//!   evaluation removes same-person same-camera gallery entries).
//! - Blank lines and lines starting with `#` are skipped.
//!
//! [`parse`] reads `train.txt`, `query.txt` and `gallery.txt` under the root
//! (the `lists` entry of [`super::REGISTRY`]); [`parse_lists`] takes any
//! three list files. Every error names the list file, the line, the field
//! and what was expected; a path listed twice in one split is an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::record::{ImageRecord, Splits};

use super::naming::is_image_file;
use super::relabel::relabel;
use super::{ImageDatasetOptions, ParsedDataset};

/// The list files [`parse`] reads under the root, in train / query /
/// gallery order.
pub const LIST_FILES: [&str; 3] = ["train.txt", "query.txt", "gallery.txt"];

fn malformed(list: &Path, line: usize, expected: String) -> DataError {
    DataError::Malformed {
        path: PathBuf::from(format!("{}:{line}", list.display())),
        expected,
    }
}

/// Reads one list file; `allow_junk` lets pid `-1` through (dropped).
pub fn read_list(list: &Path, root: &Path, allow_junk: bool) -> Result<Vec<ImageRecord>> {
    let text = std::fs::read_to_string(list).map_err(|source| DataError::Io {
        path: list.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [path, pid, camid] = fields[..] else {
            return Err(malformed(
                list,
                line,
                format!(
                    "3 fields `path pid camid` separated by whitespace, got {} in {content:?}",
                    fields.len()
                ),
            ));
        };
        let pid: i64 = pid.parse().map_err(|_| {
            malformed(
                list,
                line,
                format!("field 2 (pid): an integer, got {pid:?}"),
            )
        })?;
        if pid < 0 && !(allow_junk && pid == -1) {
            let allowed = if allow_junk {
                "≥ 0, or -1 for junk"
            } else {
                "≥ 0"
            };
            return Err(malformed(
                list,
                line,
                format!("field 2 (pid): an integer {allowed}, got {pid}"),
            ));
        }
        let camid: u32 = camid.parse().map_err(|_| {
            malformed(
                list,
                line,
                format!("field 3 (camid): an integer ≥ 0, got {camid:?}"),
            )
        })?;
        let file = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            root.join(path)
        };
        if !is_image_file(&file) {
            return Err(malformed(
                list,
                line,
                format!("field 1 (path): an image file (.jpg, .png, …), got {path:?}"),
            ));
        }
        if !file.is_file() {
            return Err(malformed(
                list,
                line,
                format!(
                    "field 1 (path): an existing file, {} is not one",
                    file.display()
                ),
            ));
        }
        if !seen.insert(file.clone()) {
            return Err(malformed(
                list,
                line,
                format!("field 1 (path): each image once per list, {path:?} is listed again"),
            ));
        }
        if pid == -1 {
            continue;
        }
        out.push(ImageRecord::new(file, pid, camid));
    }
    if out.is_empty() {
        return Err(DataError::Malformed {
            path: list.to_path_buf(),
            expected: "at least one `path pid camid` line".into(),
        });
    }
    Ok(out)
}

/// The dataset whose `train.txt`, `query.txt` and `gallery.txt` lie in
/// `root` (paths in them relative to `root`).
pub fn parse(root: &Path, options: &ImageDatasetOptions) -> Result<ParsedDataset> {
    let [train, query, gallery] = LIST_FILES.map(|f| root.join(f));
    for list in [&train, &query, &gallery] {
        if !list.is_file() {
            return Err(DataError::Layout {
                path: root.to_path_buf(),
                expected: format!(
                    "the list files {} (lines `path pid camid`)",
                    LIST_FILES.join(", ")
                ),
            });
        }
    }
    parse_lists(root, &train, &query, &gallery, options)
}

/// The dataset described by three list files; relative paths in them are
/// relative to `root`. Training pids are relabelled to `0..n`; a query
/// person missing from the gallery is reported as a warning (its queries
/// are skipped by the evaluation protocol).
pub fn parse_lists(
    root: &Path,
    train: &Path,
    query: &Path,
    gallery: &Path,
    options: &ImageDatasetOptions,
) -> Result<ParsedDataset> {
    let mut train = read_list(train, root, false)?;
    let query_records = read_list(query, root, true)?;
    let gallery_records = read_list(gallery, root, true)?;
    let num_train_ids = relabel(&mut train, options.relabel);
    let in_gallery: BTreeSet<i64> = gallery_records.iter().map(|r| r.pid).collect();
    let missing = query_records
        .iter()
        .map(|r| r.pid)
        .filter(|p| !in_gallery.contains(p))
        .collect::<BTreeSet<_>>();
    let mut warnings = Vec::new();
    if !missing.is_empty() {
        warnings.push(format!(
            "{} query person(s) have no gallery image (e.g. pid {}); their queries cannot be evaluated",
            missing.len(),
            missing.first().copied().unwrap_or_default()
        ));
    }
    Ok(ParsedDataset {
        splits: Splits {
            train,
            query: query_records,
            gallery: gallery_records,
        },
        num_train_ids,
        warnings,
        root: root.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> tempdir::Dir {
        tempdir::Dir::new()
    }

    /// A scratch folder removed on drop (no extra dependency).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "reid-lists-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(p.join("img")).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn write(d: &Path, name: &str, text: &str) -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn images(d: &Path, n: usize) {
        for i in 0..n {
            std::fs::write(d.join(format!("img/{i}.jpg")), b"not decoded here").unwrap();
        }
    }

    #[test]
    fn lists_parse_relabel_and_drop_junk() {
        let w = world();
        let d = &w.0;
        images(d, 6);
        write(
            d,
            "train.txt",
            "# my set\nimg/0.jpg 17 0\nimg/1.jpg 17 1\n\nimg/2.jpg 5 0\n",
        );
        write(d, "query.txt", "img/3.jpg 40 0\nimg/4.jpg -1 1\n");
        write(d, "gallery.txt", "img/5.jpg 40 1\n");
        let p = parse(d, &ImageDatasetOptions::default()).unwrap();
        assert_eq!(p.num_train_ids, 2);
        let pids: Vec<i64> = p.splits.train.iter().map(|r| r.pid).collect();
        assert_eq!(pids, [1, 1, 0]);
        assert_eq!(p.splits.query.len(), 1, "the junk query is dropped");
        assert_eq!(p.splits.gallery[0].camid, 1);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn every_error_names_the_list_the_line_and_the_field() {
        let w = world();
        let d = &w.0;
        images(d, 2);
        write(d, "query.txt", "img/0.jpg 1 0\n");
        write(d, "gallery.txt", "img/1.jpg 1 1\n");
        for (train, says) in [
            ("img/0.jpg 1\n", "3 fields"),
            ("img/0.jpg one 0\n", "field 2 (pid)"),
            ("img/0.jpg -1 0\n", "field 2 (pid): an integer ≥ 0"),
            ("img/0.jpg 1 -2\n", "field 3 (camid)"),
            ("img/9.jpg 1 0\n", "an existing file"),
            ("train.txt 1 0\n", "an image file"),
            ("img/0.jpg 1 0\nimg/0.jpg 2 0\n", "listed again"),
            ("# nothing\n", "at least one"),
        ] {
            write(d, "train.txt", &format!("# header\n{train}"));
            let e = parse(d, &ImageDatasetOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("train.txt"), "{e}");
            assert!(e.contains(says), "{train:?}: {e}");
        }
        write(d, "train.txt", "# header\nimg/0.jpg 1 0\nimg/1.jpg 1 x\n");
        let e = parse(d, &ImageDatasetOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.txt:3"), "{e}");
        std::fs::remove_file(d.join("gallery.txt")).unwrap();
        let e = parse(d, &ImageDatasetOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("gallery.txt"), "{e}");
    }
}
