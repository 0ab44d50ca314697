//! The common data model: one [`ImageRecord`] per image, grouped into
//! [`Splits`] (train / query / gallery), plus the statistics every parser and
//! the synthetic world report ([`SplitStats`], [`CorpusStats`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the bytes of an image live.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageLocation {
    /// A file on disk (absolute, or relative to the process' working directory).
    Path(PathBuf),
    /// A key inside an LMDB environment (LUPerson / LUPerson-NL), ASCII.
    LmdbKey(String),
}

/// One image of a ReID dataset.
///
/// `pid` keeps the dataset's own convention: `-1` marks junk (Market-1501
/// parsers drop it), `0` marks Market-1501 distractors (kept in the gallery).
/// Training splits are relabelled to `0..num_ids` by the parsers.
/// `camid` is 0-based (the number in the file name minus one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Where to read the image from.
    pub location: ImageLocation,
    /// Person identity (see the type's doc for the junk/distractor values).
    pub pid: i64,
    /// Camera index, 0-based.
    pub camid: u32,
    /// Video index inside a video corpus (LUPerson, LUPerson-NL), if any.
    pub video: Option<u32>,
    /// Tracklet identity inside the video (the tracker's noisy pid), if any.
    pub tracklet: Option<u64>,
    /// Frame index inside the video, if any.
    pub frame: Option<u64>,
}

impl ImageRecord {
    /// A still-image record at `path` with identity `pid` and 0-based camera `camid`.
    pub fn new(path: impl Into<PathBuf>, pid: i64, camid: u32) -> Self {
        Self {
            location: ImageLocation::Path(path.into()),
            pid,
            camid,
            video: None,
            tracklet: None,
            frame: None,
        }
    }
}

/// The three lists every image-based ReID benchmark is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splits {
    /// Training images, pids relabelled to `0..num_train_ids`.
    pub train: Vec<ImageRecord>,
    /// Query images (raw pids).
    pub query: Vec<ImageRecord>,
    /// Gallery images (raw pids; distractors included).
    pub gallery: Vec<ImageRecord>,
}

impl Splits {
    /// Statistics of each split, in the fast-reid table's terms.
    pub fn stats(&self) -> DatasetStats {
        DatasetStats {
            train: SplitStats::of(&self.train),
            query: SplitStats::of(&self.query),
            gallery: SplitStats::of(&self.gallery),
        }
    }
}

/// Images / identities / cameras of one split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitStats {
    /// Number of images.
    pub images: usize,
    /// Number of distinct pids (a distractor pid counts as one identity).
    pub ids: usize,
    /// Number of distinct cameras.
    pub cams: usize,
}

impl SplitStats {
    /// Counts the images, distinct pids and distinct cameras of `records`.
    pub fn of(records: &[ImageRecord]) -> Self {
        let ids: BTreeSet<i64> = records.iter().map(|r| r.pid).collect();
        let cams: BTreeSet<u32> = records.iter().map(|r| r.camid).collect();
        Self {
            images: records.len(),
            ids: ids.len(),
            cams: cams.len(),
        }
    }
}

/// Statistics of a train/query/gallery dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Training split.
    pub train: SplitStats,
    /// Query split.
    pub query: SplitStats,
    /// Gallery split.
    pub gallery: SplitStats,
}

/// Statistics of a video corpus (LUPerson, LUPerson-NL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusStats {
    /// Number of videos.
    pub videos: usize,
    /// Number of tracklets (distinct `(video, tracklet)` pairs; 0 for unlabeled corpora).
    pub tracklets: usize,
    /// Number of images.
    pub images: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_stats_count_distinct_ids_and_cams() {
        let recs = vec![
            ImageRecord::new("a.jpg", 3, 0),
            ImageRecord::new("b.jpg", 3, 1),
            ImageRecord::new("c.jpg", 0, 1),
        ];
        let s = SplitStats::of(&recs);
        assert_eq!(
            s,
            SplitStats {
                images: 3,
                ids: 2,
                cams: 2
            }
        );
    }
}
