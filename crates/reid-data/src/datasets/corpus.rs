//! Video corpora (LUPerson, LUPerson-NL): videos → tracklets → images.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::record::{CorpusStats, ImageRecord};

use super::naming::{sorted_images, sorted_subdirs};
use super::relabel::{RelabelOrder, relabel};

/// A video corpus in corpus order (sorted country, city, video).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    /// Display name ("LUPerson", "LUPerson-NL").
    pub name: String,
    /// The folder (or LMDB folder) the corpus was read from.
    pub root: PathBuf,
    /// Videos in corpus order; `Video::index` is the position here.
    pub videos: Vec<Video>,
    /// Non-fatal observations (the library never prints).
    pub warnings: Vec<String>,
}

/// One source video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Video {
    /// 0-based position in the corpus (also `ImageRecord::video` of its images).
    pub index: u32,
    /// The video's folder name, or the key prefix when read from keys.
    pub name: String,
    /// Country folder, when known.
    pub country: Option<String>,
    /// City folder, when known.
    pub city: Option<String>,
    /// Tracklets (LUPerson-NL), ascending pid.
    pub tracklets: Vec<Tracklet>,
    /// Images without a tracklet label (LUPerson), in corpus order.
    pub untracked: Vec<ImageRecord>,
}

/// The crops of one tracker identity inside one video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracklet {
    /// The tracker's (noisy) identity, global across the corpus in LUPerson-NL.
    pub pid: u64,
    /// Crops sorted by frame, then detection index.
    pub images: Vec<ImageRecord>,
}

impl Corpus {
    /// Where this corpus's images are read from: an LMDB reader on
    /// [`Corpus::root`] when its records are LMDB keys (cargo feature
    /// `lmdb`), the file system otherwise.
    ///
    /// # Errors
    /// The LMDB environment cannot be opened, or the records are LMDB keys
    /// and the crate was built without the `lmdb` feature.
    ///
    /// Needs the cargo feature `burn` (the loader's module).
    #[cfg(feature = "burn")]
    pub fn image_source(&self) -> Result<crate::loader::ImageSource> {
        let lmdb = self
            .videos
            .iter()
            .flat_map(Video::images)
            .any(|r| matches!(r.location, crate::record::ImageLocation::LmdbKey(_)));
        if !lmdb {
            return Ok(crate::loader::ImageSource::files());
        }
        #[cfg(feature = "lmdb")]
        {
            let reader = super::lmdb::LmdbReader::open(&self.root)?;
            Ok(crate::loader::ImageSource::lmdb(std::sync::Arc::new(
                reader,
            )))
        }
        #[cfg(not(feature = "lmdb"))]
        {
            Err(crate::error::DataError::InvalidArgument(format!(
                "{}: the corpus is an LMDB; rebuild with the `lmdb` feature to read its images",
                self.root.display()
            )))
        }
    }
}

impl Video {
    /// Number of images (tracked and untracked).
    pub fn num_images(&self) -> usize {
        self.untracked.len() + self.tracklets.iter().map(|t| t.images.len()).sum::<usize>()
    }

    /// All images of the video: tracklets in order, then untracked ones.
    pub fn images(&self) -> impl Iterator<Item = &ImageRecord> {
        self.tracklets
            .iter()
            .flat_map(|t| t.images.iter())
            .chain(self.untracked.iter())
    }
}

impl Corpus {
    /// Videos, tracklets (distinct `(video, pid)` pairs) and images.
    pub fn stats(&self) -> CorpusStats {
        CorpusStats {
            videos: self.videos.len(),
            tracklets: self.videos.iter().map(|v| v.tracklets.len()).sum(),
            images: self.videos.iter().map(Video::num_images).sum(),
        }
    }

    /// Every image in corpus order.
    pub fn images(&self) -> impl Iterator<Item = &ImageRecord> {
        self.videos.iter().flat_map(Video::images)
    }

    /// Tracked images as one training list with the tracklet pids relabelled
    /// to `0..n` under `order`; returns the list and `n`. On LUPerson-NL,
    /// whose pids are already contiguous, ascending order keeps them.
    pub fn tracked_train(&self, order: RelabelOrder) -> (Vec<ImageRecord>, usize) {
        let mut recs: Vec<ImageRecord> = self
            .videos
            .iter()
            .flat_map(|v| v.tracklets.iter().flat_map(|t| t.images.iter().cloned()))
            .collect();
        let n = relabel(&mut recs, order);
        (recs, n)
    }

    /// Pids that occur in more than one video (LUPerson-NL promises none).
    pub fn pids_in_several_videos(&self) -> Vec<u64> {
        let mut seen = BTreeSet::new();
        let mut dup = BTreeSet::new();
        for v in &self.videos {
            for t in &v.tracklets {
                if !seen.insert(t.pid) {
                    dup.insert(t.pid);
                }
            }
        }
        dup.into_iter().collect()
    }
}

/// One video folder found by [`walk_tree`].
pub(crate) struct VideoDir {
    pub country: String,
    pub city: String,
    pub name: String,
    pub images: Vec<PathBuf>,
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Walks `root/<country>/<city>/<video>/*.{jpg,…}` in sorted order.
pub(crate) fn walk_tree(root: &Path) -> Result<Vec<VideoDir>> {
    let mut out = Vec::new();
    for country in sorted_subdirs(root)? {
        for city in sorted_subdirs(&country)? {
            for video in sorted_subdirs(&city)? {
                out.push(VideoDir {
                    country: dir_name(&country),
                    city: dir_name(&city),
                    name: dir_name(&video),
                    images: sorted_images(&video)?,
                });
            }
        }
    }
    Ok(out)
}

/// True when some `root/<a>/<b>/<c>/` holds an image whose stem satisfies
/// `name_ok` (stops at the first one found).
pub(crate) fn looks_like_tree(root: &Path, name_ok: &dyn Fn(&str) -> bool) -> bool {
    fn walk(dir: &Path, depth: usize, name_ok: &dyn Fn(&str) -> bool) -> bool {
        if depth == 3 {
            return sorted_images(dir).is_ok_and(|imgs| {
                imgs.iter()
                    .any(|p| p.file_stem().and_then(|s| s.to_str()).is_some_and(name_ok))
            });
        }
        sorted_subdirs(dir).is_ok_and(|subs| subs.iter().any(|s| walk(s, depth + 1, name_ok)))
    }
    root.is_dir() && walk(root, 0, name_ok)
}

/// Splits `stem` at `_` into exactly `N` all-digit tokens and parses them.
pub(crate) fn digit_tokens<const N: usize>(stem: &str) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    let mut it = stem.split('_');
    for slot in out.iter_mut() {
        let t = it.next()?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = t.parse().ok()?;
    }
    if it.next().is_some() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_tokens_need_the_exact_count() {
        assert_eq!(digit_tokens::<3>("000012_0000034_01"), Some([12, 34, 1]));
        assert_eq!(digit_tokens::<3>("000012_0000034"), None);
        assert_eq!(digit_tokens::<3>("000012_0000034_01_2"), None);
        assert_eq!(digit_tokens::<3>("00a012_0000034_01"), None);
        assert_eq!(
            digit_tokens::<4>("30_00_0292_00000238"),
            Some([30, 0, 292, 238])
        );
    }

    #[test]
    fn stats_count_tracklets_and_untracked_images() {
        let rec = |p: &str| ImageRecord::new(p, 0, 0);
        let corpus = Corpus {
            videos: vec![
                Video {
                    tracklets: vec![
                        Tracklet {
                            pid: 0,
                            images: vec![rec("a"), rec("b")],
                        },
                        Tracklet {
                            pid: 1,
                            images: vec![rec("c")],
                        },
                    ],
                    ..Video::default()
                },
                Video {
                    index: 1,
                    untracked: vec![rec("d")],
                    ..Video::default()
                },
            ],
            ..Corpus::default()
        };
        assert_eq!(
            corpus.stats(),
            CorpusStats {
                videos: 2,
                tracklets: 2,
                images: 4
            }
        );
        assert_eq!(corpus.images().count(), 4);
    }
}
