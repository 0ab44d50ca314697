//! LUPerson-NL (Fu et al., CVPR 2022): person crops with noisy tracker labels.
//!
//! Routes, detected at the resolved folder in this order:
//! 1. **Folder tree** `LUPerson-NL/{country}/{city}/{video}/{pid:06}_{frame:07}_{obj:02}.jpg`:
//!    `pid` is the tracker's tracklet id (global and contiguous `0..N` in the
//!    release), `frame` 0-based, `obj` the detection index in the frame.
//!    Videos come in sorted folder order (= corpus order).
//! 2. **LMDB** (`keys.pkl` = `{"keys": [...], "pids": [...]}` next to
//!    `data.mdb`, or above an `lmdb/` folder; `lmdb` cargo feature): keys are
//!    `{video:05}_{pid:06}_{frame:07}_{obj:02}` with a global 1-based video
//!    counter; the label is the `pids` entry, which must equal the key's pid.
//!
//! A tracklet is one `(video, pid)`; its images are sorted by frame, then
//! detection. Every image record has `pid = tracklet = Some(pid)`,
//! `camid = 0`, `video = Some(index)`, `frame = Some(frame)`. A pid seen in
//! more than one video gives a warning (the release promises none).
//!
//! Accepted roots: the corpus folder itself, `<root>/LUPerson-NL`,
//! `<root>/luperson-nl`, `<root>/lupnl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::record::{ImageLocation, ImageRecord};

use super::corpus::{Corpus, Tracklet, Video, digit_tokens, looks_like_tree, walk_tree};
use super::luperson::lmdb_env;
use super::naming::stem;
use super::root::resolve;

/// The folder name written by the synthetic world and used in docs.
pub const FOLDER: &str = "LUPerson-NL";

/// Root candidates, relative to the user's root.
pub const CANDIDATES: [&str; 4] = ["", FOLDER, "luperson-nl", "lupnl"];

const EXAMPLE: &str = "{pid:06}_{frame:07}_{obj:02}.jpg such as 000017_0000420_01.jpg";

/// Parses a file stem `pid_frame_obj` into `[pid, frame, obj]`.
pub fn parse_name(stem: &str) -> Option<[u64; 3]> {
    digit_tokens::<3>(stem)
}

/// Parses an LMDB key `video_pid_frame_obj` into `[video (1-based), pid, frame, obj]`.
pub fn parse_key(key: &str) -> Option<[u64; 4]> {
    digit_tokens::<4>(key)
}

/// Where a LUPerson-NL corpus was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NlSource {
    /// `country/city/video/*.jpg` below this folder.
    Tree(PathBuf),
    /// `keys.pkl` and the LMDB environment folder.
    Lmdb {
        /// The `keys.pkl` file.
        keys: PathBuf,
        /// The LMDB environment directory (holding `data.mdb`).
        env: PathBuf,
    },
}

/// Finds the corpus under `root`.
pub fn locate(root: &Path) -> Result<NlSource> {
    let tree_ok = |d: &Path| looks_like_tree(d, &|s| parse_name(s).is_some());
    let dir = resolve(
        root,
        &CANDIDATES,
        &format!(
            "a LUPerson-NL folder: country/city/video/{EXAMPLE}, or keys.pkl with an LMDB (data.mdb)"
        ),
        |d| tree_ok(d) || lmdb_env(d).is_some(),
    )?;
    match lmdb_env(&dir) {
        Some(env) => Ok(NlSource::Lmdb {
            keys: dir.join("keys.pkl"),
            env,
        }),
        None => Ok(NlSource::Tree(dir)),
    }
}

/// Parses LUPerson-NL found at or under `root`.
pub fn parse(root: &Path) -> Result<Corpus> {
    match locate(root)? {
        NlSource::Tree(dir) => parse_tree(&dir),
        NlSource::Lmdb { keys, env } => parse_lmdb(&keys, &env),
    }
}

fn record(location: ImageLocation, video: u32, pid: u64, frame: u64) -> Result<ImageRecord> {
    let label = i64::try_from(pid)
        .map_err(|_| DataError::InvalidArgument(format!("pid {pid} does not fit in i64")))?;
    Ok(ImageRecord {
        location,
        pid: label,
        camid: 0,
        video: Some(video),
        tracklet: Some(pid),
        frame: Some(frame),
    })
}

fn into_tracklets(map: BTreeMap<u64, Vec<ImageRecord>>) -> Vec<Tracklet> {
    map.into_iter()
        .map(|(pid, images)| Tracklet { pid, images })
        .collect()
}

fn finish(root: &Path, videos: Vec<Video>) -> Corpus {
    let mut corpus = Corpus {
        name: "LUPerson-NL".into(),
        root: root.to_path_buf(),
        videos,
        warnings: Vec::new(),
    };
    let dup = corpus.pids_in_several_videos();
    if !dup.is_empty() {
        let shown: Vec<String> = dup.iter().take(10).map(u64::to_string).collect();
        corpus.warnings.push(format!(
            "LUPerson-NL: {} tracklet pids occur in more than one video (e.g. {}); \
             each (video, pid) is kept as its own tracklet",
            dup.len(),
            shown.join(", ")
        ));
    }
    corpus
}

/// Parses the `country/city/video` tree below `dir`.
pub fn parse_tree(dir: &Path) -> Result<Corpus> {
    let mut videos = Vec::new();
    for (index, vd) in walk_tree(dir)?.into_iter().enumerate() {
        let index = u32::try_from(index)
            .map_err(|_| DataError::InvalidArgument("more than 2^32 videos".into()))?;
        let mut by_pid: BTreeMap<u64, Vec<ImageRecord>> = BTreeMap::new();
        for path in vd.images {
            let s = stem(&path, EXAMPLE)?;
            let Some([pid, frame, _obj]) = parse_name(s) else {
                return Err(DataError::Malformed {
                    path,
                    expected: EXAMPLE.into(),
                });
            };
            by_pid.entry(pid).or_default().push(record(
                ImageLocation::Path(path),
                index,
                pid,
                frame,
            )?);
        }
        videos.push(Video {
            index,
            name: vd.name,
            country: Some(vd.country),
            city: Some(vd.city),
            tracklets: into_tracklets(by_pid),
            untracked: Vec::new(),
        });
    }
    Ok(finish(dir, videos))
}

/// Groups LMDB keys and their `pids` labels into videos (by the key's video
/// counter, ascending) and tracklets. `source` is named in errors.
pub fn from_keys(source: &Path, keys: Vec<String>, pids: Vec<i64>) -> Result<Corpus> {
    if keys.len() != pids.len() {
        return Err(DataError::Malformed {
            path: source.to_path_buf(),
            expected: format!(
                "as many pids as keys (got {} keys and {} pids)",
                keys.len(),
                pids.len()
            ),
        });
    }
    type Entry = (String, u64, u64);
    let mut by_video: BTreeMap<u64, BTreeMap<u64, Vec<Entry>>> = BTreeMap::new();
    for (i, (key, label)) in keys.into_iter().zip(pids).enumerate() {
        let bad = |what: &str| DataError::Malformed {
            path: source.to_path_buf(),
            expected: format!(
                "entry {i} `{key}`: {what}; keys look like {{video:05}}_{{pid:06}}_{{frame:07}}_{{obj:02}}"
            ),
        };
        let Some([video, pid, frame, _obj]) = parse_key(&key) else {
            return Err(bad("malformed key"));
        };
        if u64::try_from(label).ok() != Some(pid) {
            return Err(bad(&format!(
                "label {label} differs from the key's pid {pid}"
            )));
        }
        by_video
            .entry(video)
            .or_default()
            .entry(pid)
            .or_default()
            .push((key, pid, frame));
    }
    let mut videos = Vec::with_capacity(by_video.len());
    for (index, (video, tracks)) in by_video.into_iter().enumerate() {
        let index = u32::try_from(index)
            .map_err(|_| DataError::InvalidArgument("more than 2^32 videos".into()))?;
        let mut tracklets = Vec::with_capacity(tracks.len());
        for (pid, mut entries) in tracks {
            entries.sort();
            let images = entries
                .into_iter()
                .map(|(key, pid, frame)| record(ImageLocation::LmdbKey(key), index, pid, frame))
                .collect::<Result<Vec<_>>>()?;
            tracklets.push(Tracklet { pid, images });
        }
        videos.push(Video {
            index,
            name: format!("{video:05}"),
            country: None,
            city: None,
            tracklets,
            untracked: Vec::new(),
        });
    }
    Ok(finish(source, videos))
}

#[cfg(feature = "lmdb")]
fn parse_lmdb(keys: &Path, env: &Path) -> Result<Corpus> {
    let file = super::lmdb::read_keys(keys)?;
    let pids = file.pids.ok_or_else(|| DataError::Malformed {
        path: keys.to_path_buf(),
        expected: "a dict {\"keys\": [...], \"pids\": [...]} (LUPerson-NL labels)".into(),
    })?;
    let mut corpus = from_keys(keys, file.keys, pids)?;
    corpus.root = env.to_path_buf();
    Ok(corpus)
}

#[cfg(not(feature = "lmdb"))]
fn parse_lmdb(keys: &Path, _env: &Path) -> Result<Corpus> {
    Err(DataError::InvalidArgument(format!(
        "{} belongs to an LMDB corpus; rebuild reid-data with the `lmdb` feature to read it",
        keys.display()
    )))
}
