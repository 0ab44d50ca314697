//! The ground-truth sidecar, `<dataset folder>/synth_truth.json`.
//!
//! It records the seed, the configs, the statistics a parser must find, and
//! one entry per image: for still-image datasets the identity, camera and
//! split of every file (junk and distractors included); for video corpora the
//! true person behind every crop (`-1` for a crop that shows no person), its
//! video, tracklet pid and frame, so that later denoising stages can be scored.
//! Parsers ignore it (it is not an image).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tracker::NoiseSummary;
use super::{Layout, WorldConfig};
use crate::error::{Result, SynthError};
use reid_data::record::{CorpusStats, DatasetStats};

/// The sidecar's file name.
pub const TRUTH_FILE: &str = "synth_truth.json";

/// Statistics of one dataset part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStats {
    /// A train/query/gallery dataset (junk `-1` dropped, distractor `0` counted as one id).
    Images(DatasetStats),
    /// A video corpus.
    Corpus(CorpusStats),
}

/// The statistics of one part of the dataset, as a parser must find them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthPart {
    /// Part name (`"market1501"`, `"labeled"`, `"detected"`, …).
    pub name: String,
    /// The part's folder relative to the dataset folder (`""` = the dataset folder itself).
    pub folder: String,
    /// The statistics.
    pub stats: PartStats,
}

/// One still image (Market, Duke, MSMT17, CUHK03-NP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillTruth {
    /// Path relative to the dataset folder, `/`-separated.
    pub path: String,
    /// The pid a parser reads (`-1` junk, `0` Market distractor, MSMT17: the list file's pid).
    pub pid: i64,
    /// The camera, 0-based.
    pub camid: u32,
    /// `"train"`, `"val"`, `"query"`, `"gallery"` or `"junk"`.
    pub split: String,
    /// The rendered person's world identity (`-1`: no person or an anonymous distractor).
    pub person: i64,
}

/// One crop of a video corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameTruth {
    /// Path relative to the dataset folder, `/`-separated.
    pub path: String,
    /// The true person (global across the corpus), `-1` for a false detection.
    pub person: i64,
    /// Video index in corpus order (sorted folder order), 0-based.
    pub video: u32,
    /// The tracker's tracklet pid (LUPerson-NL), `None` for unlabeled corpora.
    pub tracklet: Option<u64>,
    /// Frame index in the video, 0-based.
    pub frame: u64,
    /// Detection index within the frame.
    pub obj: u32,
}

/// The whole sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthTruth {
    /// Always `"reid-data synth"` plus the crate version.
    pub generator: String,
    /// The layout written.
    pub layout: Layout,
    /// The world seed.
    pub seed: u64,
    /// The world config.
    pub world: WorldConfig,
    /// The layout's own config, as JSON.
    pub config: serde_json::Value,
    /// Statistics per part.
    pub parts: Vec<TruthPart>,
    /// Extra statistics (e.g. MSMT17's `val` list), by name.
    pub extra: Vec<(String, reid_data::record::SplitStats)>,
    /// Label-noise figures (LUPerson-NL).
    pub noise: Option<NoiseSummary>,
    /// Every still image, in writing order (empty for video corpora).
    pub images: Vec<StillTruth>,
    /// Every video crop, in corpus order (empty for still-image datasets).
    pub frames: Vec<FrameTruth>,
}

impl SynthTruth {
    /// Reads `<dataset_dir>/synth_truth.json`.
    pub fn read(dataset_dir: &Path) -> Result<Self> {
        let path = dataset_dir.join(TRUTH_FILE);
        let bytes = std::fs::read(&path).map_err(|e| SynthError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| SynthError::json(path, e))
    }

    /// Writes `<dataset_dir>/synth_truth.json` (pretty-printed, deterministic).
    pub fn write(&self, dataset_dir: &Path) -> Result<()> {
        let path = dataset_dir.join(TRUTH_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| SynthError::json(&path, e))?;
        std::fs::write(&path, bytes).map_err(|e| SynthError::io(&path, e))
    }
}

pub(crate) fn generator_name() -> String {
    format!("reid-data synth {}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn config_json<T: Serialize>(cfg: &T) -> serde_json::Value {
    // Serialising plain config structs cannot fail; fall back to null rather than panic.
    serde_json::to_value(cfg).unwrap_or(serde_json::Value::Null)
}
