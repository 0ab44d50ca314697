//! LUPerson (Fu et al., CVPR 2021): unlabeled person crops from street-view
//! videos.
//!
//! Routes, detected at the resolved folder in this order:
//! 1. **Folder tree** `LUPerson/{country}/{city}/{video}/{i:02}_{j:02}_{k:04}_{m:08}.jpg`,
//!    where `i, j, k` are the 0-based country, city (within country) and video
//!    (within city) indices and `m` the image's index in its video — the key
//!    format of the upstream LMDB converter. Videos come in sorted folder
//!    order; the indices in the names are checked for shape (four `_`
//!    separated digit groups) but not against the folder positions, so a
//!    partial copy still parses.
//! 2. **Flat folder** of images named by key (`30_00_0292_00000238.jpg`, as
//!    some redistributed copies are): videos are the distinct `(i, j, k)`.
//! 3. **LMDB** (`keys.pkl` next to the LMDB files `data.mdb`/`lock.mdb`, or in
//!    the folder above an `lmdb/` sub-folder): needs the `lmdb` cargo feature;
//!    `keys.pkl` may be a plain list of keys (what the converter writes) or
//!    `{"keys": [...]}` (what the training loader reads).
//!
//! Images carry no identity: `pid = -1`, `camid = 0`, `video = Some(index)`,
//! no tracklet and no frame (`m` is not a frame number). [`Corpus::stats`]
//! reports 0 tracklets.
//!
//! Accepted roots: the corpus folder itself, `<root>/LUPerson`,
//! `<root>/luperson`, `<root>/lup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::record::{ImageLocation, ImageRecord};

use super::corpus::{Corpus, Video, digit_tokens, looks_like_tree, walk_tree};
use super::naming::{sorted_images, stem};
use super::root::resolve;

/// The folder name written by the synthetic world and used in docs.
pub const FOLDER: &str = "LUPerson";

/// Root candidates, relative to the user's root.
pub const CANDIDATES: [&str; 4] = ["", FOLDER, "luperson", "lup"];

const EXAMPLE: &str = "{i:02}_{j:02}_{k:04}_{m:08}.jpg such as 00_01_0002_00000003.jpg";

/// Parses an image key or file stem `i_j_k_m` into its four indices.
pub fn parse_key(key: &str) -> Option<[u64; 4]> {
    digit_tokens::<4>(key)
}

/// Where a LUPerson corpus was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LupSource {
    /// `country/city/video/*.jpg` below this folder.
    Tree(PathBuf),
    /// Key-named images directly in this folder.
    Flat(PathBuf),
    /// `keys.pkl` in this folder; the LMDB environment is the given folder.
    Lmdb {
        /// The `keys.pkl` file.
        keys: PathBuf,
        /// The LMDB environment directory (holding `data.mdb`).
        env: PathBuf,
    },
}

fn flat_ok(dir: &Path) -> bool {
    sorted_images(dir).is_ok_and(|imgs| {
        imgs.iter().any(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| parse_key(s).is_some())
        })
    })
}

/// The LMDB environment next to a `keys.pkl` in `dir`, if any.
pub(crate) fn lmdb_env(dir: &Path) -> Option<PathBuf> {
    if !dir.join("keys.pkl").is_file() {
        return None;
    }
    [dir.to_path_buf(), dir.join("lmdb")]
        .into_iter()
        .find(|d| d.join("data.mdb").is_file())
}

/// Finds the corpus under `root` and tells which route applies.
pub fn locate(root: &Path) -> Result<LupSource> {
    let tree_ok = |d: &Path| looks_like_tree(d, &|s| parse_key(s).is_some());
    let dir = resolve(
        root,
        &CANDIDATES,
        &format!(
            "a LUPerson folder: country/city/video/{EXAMPLE}, key-named images, \
             or keys.pkl with an LMDB (data.mdb)"
        ),
        |d| tree_ok(d) || flat_ok(d) || lmdb_env(d).is_some(),
    )?;
    if let Some(env) = lmdb_env(&dir) {
        return Ok(LupSource::Lmdb {
            keys: dir.join("keys.pkl"),
            env,
        });
    }
    if tree_ok(&dir) {
        Ok(LupSource::Tree(dir))
    } else {
        Ok(LupSource::Flat(dir))
    }
}

/// Parses LUPerson found at or under `root`.
pub fn parse(root: &Path) -> Result<Corpus> {
    match locate(root)? {
        LupSource::Tree(dir) => parse_tree(&dir),
        LupSource::Flat(dir) => {
            let mut items = Vec::new();
            for path in sorted_images(&dir)? {
                let s = stem(&path, EXAMPLE)?;
                let key = s.to_string();
                items.push((key, ImageLocation::Path(path)));
            }
            from_keys(&dir, items)
        }
        LupSource::Lmdb { keys, env } => parse_lmdb(&keys, &env),
    }
}

#[cfg(feature = "lmdb")]
fn parse_lmdb(keys: &Path, env: &Path) -> Result<Corpus> {
    let keys = super::lmdb::read_keys(keys)?.keys;
    let items = keys
        .into_iter()
        .map(|k| (k.clone(), ImageLocation::LmdbKey(k)))
        .collect();
    from_keys(env, items)
}

#[cfg(not(feature = "lmdb"))]
fn parse_lmdb(keys: &Path, _env: &Path) -> Result<Corpus> {
    Err(DataError::InvalidArgument(format!(
        "{} belongs to an LMDB corpus; rebuild reid-data with the `lmdb` feature to read it",
        keys.display()
    )))
}

/// Parses the `country/city/video` tree below `dir`.
pub fn parse_tree(dir: &Path) -> Result<Corpus> {
    let mut videos = Vec::new();
    for (index, vd) in walk_tree(dir)?.into_iter().enumerate() {
        let index = u32::try_from(index)
            .map_err(|_| DataError::InvalidArgument("more than 2^32 videos".into()))?;
        let mut untracked = Vec::with_capacity(vd.images.len());
        for path in vd.images {
            let s = stem(&path, EXAMPLE)?;
            if parse_key(s).is_none() {
                return Err(DataError::Malformed {
                    path,
                    expected: EXAMPLE.into(),
                });
            }
            untracked.push(unlabeled(ImageLocation::Path(path), index));
        }
        videos.push(Video {
            index,
            name: vd.name,
            country: Some(vd.country),
            city: Some(vd.city),
            tracklets: Vec::new(),
            untracked,
        });
    }
    Ok(Corpus {
        name: "LUPerson".into(),
        root: dir.to_path_buf(),
        videos,
        warnings: Vec::new(),
    })
}

fn unlabeled(location: ImageLocation, video: u32) -> ImageRecord {
    ImageRecord {
        location,
        pid: -1,
        camid: 0,
        video: Some(video),
        tracklet: None,
        frame: None,
    }
}

/// Groups `(key, location)` pairs into videos by the key's `(i, j, k)`;
/// videos and images come in ascending key order. `source` is named in errors.
pub fn from_keys(source: &Path, items: Vec<(String, ImageLocation)>) -> Result<Corpus> {
    let mut by_video: BTreeMap<[u64; 3], Vec<(String, ImageLocation)>> = BTreeMap::new();
    for (i, (key, loc)) in items.into_iter().enumerate() {
        let Some([a, b, c, _]) = parse_key(&key) else {
            let path = match &loc {
                ImageLocation::Path(p) => p.clone(),
                ImageLocation::LmdbKey(_) => source.to_path_buf(),
            };
            return Err(DataError::Malformed {
                path,
                expected: format!("key {i} `{key}`: expected {EXAMPLE}"),
            });
        };
        by_video.entry([a, b, c]).or_default().push((key, loc));
    }
    let mut videos = Vec::with_capacity(by_video.len());
    for (index, ([a, b, c], mut imgs)) in by_video.into_iter().enumerate() {
        let index = u32::try_from(index)
            .map_err(|_| DataError::InvalidArgument("more than 2^32 videos".into()))?;
        imgs.sort_by(|x, y| x.0.cmp(&y.0));
        videos.push(Video {
            index,
            name: format!("{a:02}_{b:02}_{c:04}"),
            country: None,
            city: None,
            tracklets: Vec::new(),
            untracked: imgs
                .into_iter()
                .map(|(_, loc)| unlabeled(loc, index))
                .collect(),
        });
    }
    Ok(Corpus {
        name: "LUPerson".into(),
        root: source.to_path_buf(),
        videos,
        warnings: Vec::new(),
    })
}
