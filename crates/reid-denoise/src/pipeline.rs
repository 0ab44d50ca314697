//! The three levels composed into one streaming pass over a corpus.
//!
//! Videos are read in chunks of [`DenoiseConfig::chunk_videos`]; levels 1 and 2
//! run on the chunk's videos in parallel (rayon), then each video's identities
//! enter level 3's Sliding Range in corpus order. Memory is bounded by one
//! chunk of features plus the window, plus 4 bytes per crop for the output
//! labels (and 12 more per crop when `record_levels` is on).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::distance::Metric;
use crate::error::{DenoiseError, Result};
use crate::level1::{Level1Config, Level1Stats, denoise_tracklets};
use crate::level2::{Level2Config, Level2Stats, denoise_video};
use crate::level3::{Level3Config, Level3Stats, Linker};
use crate::quality::REMOVED;

/// How the distance thresholds are read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdScale {
    /// Thresholds are distances in the metric's units.
    Absolute,
    /// Thresholds are multiples of a scale measured on the data: the median,
    /// over the tracklets of the first chunk with at least 3 crops, of the
    /// median distance of a crop to its tracklet's centroid. This makes the
    /// defaults independent of the feature extractor (most tracklets are
    /// clean, so the scale is the typical spread of one person's crops).
    Calibrated,
}

/// All parameters of the pipeline. The defaults are the ones tuned on the
/// synthetic world (`docs/denoise.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenoiseConfig {
    /// Distance used by every level.
    pub metric: Metric,
    /// How thresholds are interpreted.
    pub scale: ThresholdScale,
    /// Level 1 (tracklets).
    pub level1: Level1Config,
    /// Level 2 (one video).
    pub level2: Level2Config,
    /// Level 3 (across videos).
    pub level3: Level3Config,
    /// Videos per parallel chunk (≥ 1).
    pub chunk_videos: usize,
    /// Keep the labelling after each level (for scoring; 12 bytes per crop).
    pub record_levels: bool,
}

impl Default for DenoiseConfig {
    fn default() -> Self {
        Self {
            metric: Metric::Cosine,
            scale: ThresholdScale::Calibrated,
            level1: Level1Config::default(),
            level2: Level2Config::default(),
            level3: Level3Config::default(),
            chunk_videos: 64,
            record_levels: false,
        }
    }
}

impl DenoiseConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        self.level1.validate()?;
        self.level2.validate()?;
        self.level3.validate()?;
        if self.chunk_videos == 0 {
            return Err(DenoiseError::InvalidParameter(
                "chunk_videos must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The configuration with every threshold multiplied by `scale`.
    pub fn scaled(&self, scale: f32) -> Self {
        let mut c = *self;
        c.level1.radius *= scale;
        c.level2.reassign_radius *= scale;
        c.level2.merge_threshold *= scale;
        c.level3.link_threshold *= scale;
        c
    }
}

/// Per-level figures of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DenoiseReport {
    /// Videos read.
    pub videos: usize,
    /// Crops read.
    pub images: u64,
    /// The distance scale used (1 for absolute thresholds).
    pub scale: f32,
    /// Level 1.
    pub level1: Level1Stats,
    /// Level 2.
    pub level2: Level2Stats,
    /// Identities after level 2 (summed over videos).
    pub video_identities: usize,
    /// Level 3.
    pub level3: Level3Stats,
    /// Final identities.
    pub identities: usize,
    /// Final crops kept.
    pub images_kept: u64,
}

/// The labelling of every crop after each level ([`REMOVED`] = not kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelLabels {
    /// The tracker's labels (a distinct number per `(video, tracklet)`; untracked crops removed).
    pub raw: Vec<u32>,
    /// After level 1 (surviving tracklets).
    pub level1: Vec<u32>,
    /// After level 2 (per-video identities).
    pub level2: Vec<u32>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct DenoiseOutput {
    /// Final identity per crop (global row order), [`REMOVED`] for removed crops.
    pub labels: Vec<u32>,
    /// Number of final identities (labels are `0..identities`, numbered by first appearance).
    pub identities: usize,
    /// Figures per level.
    pub report: DenoiseReport,
    /// Labellings after each level, when `record_levels` was on.
    pub levels: Option<LevelLabels>,
}

/// Estimates the calibrated scale from prepared blocks (see [`ThresholdScale::Calibrated`]).
pub fn estimate_scale(blocks: &[VideoBlock], metric: Metric) -> Option<f32> {
    let mut medians = Vec::new();
    for b in blocks {
        let mut by: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
        for (i, t) in b.tracklets.iter().enumerate() {
            if let Some(t) = t {
                by.entry(*t).or_default().push(i);
            }
        }
        for rows in by.values().filter(|r| r.len() >= 3) {
            let mut sum = vec![0.0; b.dim()];
            for &i in rows {
                crate::distance::add_into(&mut sum, b.row(i));
            }
            let mut c = vec![0.0; b.dim()];
            metric.centroid_from_sum(&sum, rows.len(), &mut c);
            let mut d: Vec<f32> = rows
                .iter()
                .map(|&i| metric.distance(b.row(i), &c))
                .collect();
            d.sort_by(f32::total_cmp);
            medians.push(d[d.len() / 2]);
        }
    }
    if medians.is_empty() {
        return None;
    }
    medians.sort_by(f32::total_cmp);
    let m = medians[medians.len() / 2];
    (m > 0.0).then_some(m)
}

struct VideoResult {
    first_row: u64,
    len: usize,
    video: u32,
    raw: Vec<u32>,
    l1: Vec<u32>,
    l1_stats: Level1Stats,
    l2_stats: Level2Stats,
    identities: Vec<crate::group::Group>,
}

fn run_levels_1_2(b: &VideoBlock, cfg: &DenoiseConfig, record: bool) -> VideoResult {
    let l1 = denoise_tracklets(b, &cfg.level1, cfg.metric);
    let (mut raw, mut l1_labels) = (Vec::new(), Vec::new());
    if record {
        // Local numbers; made global by the caller.
        let mut ids: std::collections::BTreeMap<u64, u32> = Default::default();
        raw = b
            .tracklets
            .iter()
            .map(|t| match t {
                Some(t) => {
                    let n = ids.len() as u32;
                    *ids.entry(*t).or_insert(n)
                }
                None => REMOVED,
            })
            .collect();
        l1_labels = vec![REMOVED; b.len()];
        for (k, g) in l1.tracklets.iter().enumerate() {
            for &m in &g.members {
                l1_labels[m as usize] = k as u32;
            }
        }
    }
    let l1_stats = l1.stats;
    let l2 = denoise_video(b, l1, &cfg.level2, cfg.metric);
    VideoResult {
        first_row: b.first_row,
        len: b.len(),
        video: b.video,
        raw,
        l1: l1_labels,
        l1_stats,
        l2_stats: l2.stats,
        identities: l2.identities,
    }
}

/// Runs levels 1–3 over `source` (videos in corpus order, rows contiguous
/// from 0). `progress` is called after every chunk with the report so far.
pub fn run<I>(
    config: &DenoiseConfig,
    source: I,
    mut progress: impl FnMut(&DenoiseReport),
) -> Result<DenoiseOutput>
where
    I: IntoIterator<Item = Result<VideoBlock>>,
{
    config.validate()?;
    let record = config.record_levels;
    let mut source = source.into_iter();
    let mut report = DenoiseReport {
        scale: 1.0,
        ..Default::default()
    };
    let mut cfg = *config;
    let mut linker: Option<Linker> = None;
    let mut dim = None;
    let mut labels: Vec<u32> = Vec::new();
    let mut levels = LevelLabels::default();
    let (mut raw_next, mut l1_next) = (0u32, 0u32);
    let mut first_chunk = true;
    loop {
        let mut chunk = Vec::with_capacity(config.chunk_videos);
        for block in source.by_ref() {
            let mut block = block?;
            if block.first_row != report.images {
                return Err(DenoiseError::Inconsistent(format!(
                    "video {} starts at row {} but {} rows were read before it (videos must come in row order)",
                    block.video, block.first_row, report.images
                )));
            }
            match dim {
                None => dim = Some(block.dim()),
                Some(d) if d != block.dim() && !block.is_empty() => {
                    return Err(DenoiseError::Inconsistent(format!(
                        "video {}: features of dimension {} (expected {d})",
                        block.video,
                        block.dim()
                    )));
                }
                _ => {}
            }
            block.prepare(config.metric)?;
            report.images += block.len() as u64;
            report.videos += 1;
            chunk.push(block);
            if chunk.len() == config.chunk_videos {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        if first_chunk {
            first_chunk = false;
            if config.scale == ThresholdScale::Calibrated {
                let s = estimate_scale(&chunk, config.metric).ok_or_else(|| {
                    DenoiseError::Inconsistent(
                        "cannot calibrate thresholds: the first chunk has no tracklet with 3 or more crops (use absolute thresholds)".into(),
                    )
                })?;
                report.scale = s;
                cfg = config.scaled(s);
            }
        }
        let results: Vec<VideoResult> = chunk
            .par_iter()
            .map(|b| run_levels_1_2(b, &cfg, record))
            .collect();
        drop(chunk);
        let linker = match linker.as_mut() {
            Some(l) => l,
            None => linker.insert(Linker::new(cfg.level3, cfg.metric, dim.unwrap_or(0))?),
        };
        for r in results {
            report.level1.add(&r.l1_stats);
            report.level2.add(&r.l2_stats);
            report.video_identities += r.identities.len();
            let elements = linker.add_video(r.video, &r.identities)?;
            labels.resize(labels.len() + r.len, REMOVED);
            let mut rows_elem = vec![REMOVED; r.len];
            for (g, &e) in r.identities.iter().zip(&elements) {
                for &m in &g.members {
                    rows_elem[m as usize] = e;
                }
            }
            if record {
                let (mut rmax, mut lmax) = (0u32, 0u32);
                for &x in &r.raw {
                    levels.raw.push(if x == REMOVED {
                        x
                    } else {
                        rmax = rmax.max(x + 1);
                        raw_next + x
                    });
                }
                for &x in &r.l1 {
                    levels.level1.push(if x == REMOVED {
                        x
                    } else {
                        lmax = lmax.max(x + 1);
                        l1_next + x
                    });
                }
                raw_next += rmax;
                l1_next += lmax;
                levels.level2.extend(rows_elem.iter().copied());
            }
            let first = r.first_row as usize;
            labels[first..first + r.len].copy_from_slice(&rows_elem);
        }
        progress(&report);
    }
    let (elem_id, identities, l3) = match linker {
        Some(l) => l.finish(),
        None => (Vec::new(), 0, Level3Stats::default()),
    };
    report.level3 = l3;
    report.identities = identities;
    // Labels hold element numbers until here.
    for l in labels.iter_mut() {
        if *l != REMOVED {
            *l = elem_id[*l as usize];
        }
    }
    report.images_kept = labels.iter().filter(|&&l| l != REMOVED).count() as u64;
    Ok(DenoiseOutput {
        labels,
        identities,
        report,
        levels: record.then_some(levels),
    })
}
