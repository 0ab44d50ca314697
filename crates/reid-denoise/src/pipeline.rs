//! The three levels composed into one streaming pass over a corpus.
//!
//! Videos are read in chunks of [`DenoiseConfig::chunk_videos`]; each video
//! is normalised ([`crate::normalize`]) as it enters, levels 1 and 2 run on
//! the chunk's videos in parallel (rayon), then each video's identities
//! enter level 3's Sliding Range in corpus order. The first chunk holds the
//! calibration videos ([`CalibrationConfig::videos`], when a target precision
//! is set; [`DenoiseConfig::chunk_videos`] otherwise): the threshold scale and
//! the merge and link thresholds ([`crate::calibrate`]) are measured on it,
//! between its levels. Memory is bounded by one chunk of features plus the
//! window, plus 4 bytes per crop for the output labels (and 12 more per crop
//! when `record_levels` is on).

use derive_setters::Setters;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::block::VideoBlock;
use crate::calibrate::{
    CalibrationConfig, CalibrationReport, CalibrationStatus, PairSample, VideoIdentities,
    link_sample, merge_sample, reassign_sample,
};
use crate::distance::FeatureDistance;
use crate::error::{DenoiseError, Result};
use crate::level1::{Level1Config, Level1Output, Level1Stats, denoise_tracklets};
use crate::level2::{Level2Config, Level2Stats, denoise_video};
use crate::level3::{Level3Config, Level3Stats, Linker};
use crate::normalize::{NormalizationConfig, normalize_video};
use crate::quality::REMOVED;

/// How the distance thresholds are read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdScale {
    /// Thresholds are distances in the metric's units.
    Absolute,
    /// Thresholds are multiples of a scale measured on the data: the median,
    /// over the tracklets of the first chunk (see
    /// [`DenoiseConfig::first_chunk_videos`]) with at least 3 crops, of the
    /// median distance of a crop to its tracklet's centroid. This makes the
    /// defaults independent of the feature extractor (most tracklets are
    /// clean, so the scale is the typical spread of one person's crops).
    Calibrated,
}

/// All parameters of the pipeline. The defaults are the ones tuned on the
/// synthetic corpora (`docs/denoise.md`). Configuration files may leave out
/// `normalization` and `calibration` (their defaults apply); unknown keys
/// are errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(deny_unknown_fields)]
pub struct DenoiseConfig {
    /// Distance used by every level.
    pub metric: FeatureDistance,
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
    /// Per-video feature normalisation, applied as each video enters.
    #[serde(default)]
    pub normalization: NormalizationConfig,
    /// Merge and link thresholds for a target precision.
    #[serde(default)]
    pub calibration: CalibrationConfig,
}

impl Default for DenoiseConfig {
    fn default() -> Self {
        Self {
            metric: FeatureDistance::Cosine,
            scale: ThresholdScale::Calibrated,
            level1: Level1Config::default(),
            level2: Level2Config::default(),
            level3: Level3Config::default(),
            chunk_videos: 64,
            record_levels: false,
            normalization: NormalizationConfig::default(),
            calibration: CalibrationConfig::default(),
        }
    }
}

impl DenoiseConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        self.normalization.validate()?;
        self.calibration.validate()?;
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

    /// Videos of the first chunk: the calibration videos when a target
    /// precision is set, [`DenoiseConfig::chunk_videos`] otherwise.
    pub fn first_chunk_videos(&self) -> usize {
        match self.calibration.target_precision {
            Some(_) => self.calibration.videos,
            None => self.chunk_videos,
        }
    }

    /// The configuration with every threshold multiplied by `scale`.
    pub fn scaled(&self, scale: f32) -> Self {
        let mut c = *self;
        c.level1.radius *= scale;
        c.level2.reassign_radius *= scale;
        c.level2.merge_threshold *= scale;
        c.level2.stitch_threshold *= scale;
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
    /// The merge and link thresholds' calibration.
    #[serde(default)]
    pub calibration: CalibrationReport,
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
pub fn estimate_scale(blocks: &[VideoBlock], metric: FeatureDistance) -> Option<f32> {
    let mut medians = Vec::new();
    let (mut norms, mut counted) = (0.0f64, 0usize);
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
            for &i in rows {
                norms += crate::distance::dot(b.row(i), b.row(i)).sqrt() as f64;
                counted += 1;
            }
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
    // A spread this small against the features' own size is rounding of
    // identical features, not a scale (rows are unit vectors under cosine).
    let mean_norm = match metric {
        FeatureDistance::Cosine => 1.0,
        FeatureDistance::Euclidean => (norms / counted.max(1) as f64) as f32,
    };
    (m > SPREAD_FLOOR * mean_norm).then_some(m)
}

/// The smallest typical tracklet spread, relative to the mean length of the
/// feature rows, that [`estimate_scale`] takes as a scale (under cosine an
/// angle of about 0.26° between a crop and its centroid); below it the
/// features of a tracklet's crops are identical up to rounding.
pub const SPREAD_FLOOR: f32 = 1e-5;

/// Whether some block has a tracklet of at least `n` crops.
fn has_tracklet_of(blocks: &[VideoBlock], n: usize) -> bool {
    blocks.iter().any(|b| {
        let mut count: std::collections::BTreeMap<u64, usize> = Default::default();
        b.tracklets.iter().flatten().any(|t| {
            let c = count.entry(*t).or_default();
            *c += 1;
            *c >= n
        })
    })
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

/// The tracker's labels and level 1's, numbered locally (when recording).
fn local_labels(b: &VideoBlock, l1: &Level1Output) -> (Vec<u32>, Vec<u32>) {
    let mut ids: std::collections::BTreeMap<u64, u32> = Default::default();
    let raw = b
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
    let mut l1_labels = vec![REMOVED; b.len()];
    for (k, g) in l1.tracklets.iter().enumerate() {
        for &m in &g.members {
            l1_labels[m as usize] = k as u32;
        }
    }
    (raw, l1_labels)
}

fn run_level_2(b: &VideoBlock, l1: Level1Output, cfg: &DenoiseConfig, record: bool) -> VideoResult {
    let (raw, l1_labels) = if record {
        local_labels(b, &l1)
    } else {
        Default::default()
    };
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

fn run_levels_1_2(b: &VideoBlock, cfg: &DenoiseConfig, record: bool) -> VideoResult {
    let l1 = denoise_tracklets(b, &cfg.level1, cfg.metric);
    run_level_2(b, l1, cfg, record)
}

/// Everything a run accumulates between chunks.
struct Stream {
    record: bool,
    report: DenoiseReport,
    linker: Option<Linker>,
    dim: Option<usize>,
    labels: Vec<u32>,
    levels: LevelLabels,
    raw_next: u32,
    l1_next: u32,
}

impl Stream {
    /// Reads up to `n` videos, checking their order and dimension, and
    /// prepares and normalises them.
    fn read<I>(
        &mut self,
        source: &mut I,
        n: usize,
        config: &DenoiseConfig,
    ) -> Result<Vec<VideoBlock>>
    where
        I: Iterator<Item = Result<VideoBlock>>,
    {
        let mut chunk = Vec::with_capacity(n.min(1024));
        for block in source.by_ref() {
            let mut block = block?;
            if block.first_row != self.report.images {
                return Err(DenoiseError::Inconsistent(format!(
                    "video {} starts at row {} but {} rows were read before it (videos must come in row order)",
                    block.video, block.first_row, self.report.images
                )));
            }
            match self.dim {
                None => self.dim = Some(block.dim()),
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
            normalize_video(&mut block, &config.normalization, config.metric);
            self.report.images += block.len() as u64;
            self.report.videos += 1;
            chunk.push(block);
            if chunk.len() == n {
                break;
            }
        }
        Ok(chunk)
    }

    /// Feeds a chunk's level-2 results to level 3 and records the labels.
    fn absorb(&mut self, results: Vec<VideoResult>, cfg: &DenoiseConfig) -> Result<()> {
        let linker = match self.linker.as_mut() {
            Some(l) => l,
            None => self
                .linker
                .insert(Linker::new(cfg.level3, cfg.metric, self.dim.unwrap_or(0))?),
        };
        for r in results {
            self.report.level1.add(&r.l1_stats);
            self.report.level2.add(&r.l2_stats);
            self.report.video_identities += r.identities.len();
            let elements = linker.add_video(r.video, &r.identities)?;
            self.labels.resize(self.labels.len() + r.len, REMOVED);
            let mut rows_elem = vec![REMOVED; r.len];
            for (g, &e) in r.identities.iter().zip(&elements) {
                for &m in &g.members {
                    rows_elem[m as usize] = e;
                }
            }
            if self.record {
                let (mut rmax, mut lmax) = (0u32, 0u32);
                for &x in &r.raw {
                    self.levels.raw.push(if x == REMOVED {
                        x
                    } else {
                        rmax = rmax.max(x + 1);
                        self.raw_next + x
                    });
                }
                for &x in &r.l1 {
                    self.levels.level1.push(if x == REMOVED {
                        x
                    } else {
                        lmax = lmax.max(x + 1);
                        self.l1_next + x
                    });
                }
                self.raw_next += rmax;
                self.l1_next += lmax;
                self.levels.level2.extend(rows_elem.iter().copied());
            }
            let first = r.first_row as usize;
            self.labels[first..first + r.len].copy_from_slice(&rows_elem);
        }
        Ok(())
    }
}

/// Runs levels 1 and 2 on the first chunk, calibrating the merge threshold
/// after level 1 and the link threshold after level 2 (when a target
/// precision is set). Returns the results and the configuration to use from
/// then on.
fn first_chunk(
    chunk: &[VideoBlock],
    mut cfg: DenoiseConfig,
    record: bool,
    report: &mut CalibrationReport,
) -> (Vec<VideoResult>, DenoiseConfig) {
    let Some(target) = cfg.calibration.target_precision else {
        let results = chunk
            .par_iter()
            .map(|b| run_levels_1_2(b, &cfg, record))
            .collect();
        return (results, cfg);
    };
    report.target_precision = Some(target);
    report.videos = chunk.len();
    let l1: Vec<Level1Output> = chunk
        .par_iter()
        .map(|b| denoise_tracklets(b, &cfg.level1, cfg.metric))
        .collect();
    let (mut reassign, mut merge) = (PairSample::default(), PairSample::default());
    for (b, o) in chunk.iter().zip(&l1) {
        reassign.extend(reassign_sample(b, &o.tracklets, &o.outliers, cfg.metric));
        merge.extend(merge_sample(b, &o.tracklets, cfg.metric));
    }
    report.reassign = reassign.calibrate(target, cfg.level2.reassign_radius);
    // The calibrated distance narrows the radius, never widens it: a crop
    // farther than the level-1 radius from a centroid is not one of its
    // tracklet's crops however the candidates are spread.
    if report.reassign.status == CalibrationStatus::Calibrated {
        report.reassign.threshold = report.reassign.threshold.min(cfg.level2.reassign_radius);
    }
    report.merge = merge.calibrate(target, cfg.level2.merge_threshold);
    if report.merge.status == CalibrationStatus::TargetUnreachable {
        report.reassign.status = CalibrationStatus::MergeUnreachable;
        report.reassign.threshold = 0.0;
    }
    cfg.level2.reassign_radius = report.reassign.threshold;
    cfg.level2.merge_threshold = report.merge.threshold;
    let results: Vec<VideoResult> = chunk
        .par_iter()
        .zip(l1)
        .map(|(b, o)| run_level_2(b, o, &cfg, record))
        .collect();
    let videos: Vec<VideoIdentities<'_>> = chunk
        .iter()
        .zip(&results)
        .enumerate()
        .map(|(pos, (block, r))| VideoIdentities {
            pos,
            block,
            identities: &r.identities,
        })
        .collect();
    let link = link_sample(&videos, cfg.metric, cfg.level3.window, cfg.level3.stride);
    report.link = link.calibrate(target, cfg.level3.link_threshold);
    cfg.level3.link_threshold = report.link.threshold;
    (results, cfg)
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
    let mut st = Stream {
        record,
        report: DenoiseReport {
            scale: 1.0,
            ..Default::default()
        },
        linker: None,
        dim: None,
        labels: Vec::new(),
        levels: LevelLabels::default(),
        raw_next: 0,
        l1_next: 0,
    };
    let mut cfg = *config;
    let first = st.read(&mut source, config.first_chunk_videos(), config)?;
    if !first.is_empty() {
        if config.scale == ThresholdScale::Calibrated {
            let s = estimate_scale(&first, config.metric).ok_or_else(|| {
                DenoiseError::Inconsistent(if has_tracklet_of(&first, 3) {
                    "cannot calibrate thresholds: the crops of every tracklet in the first chunk have identical features (no spread beyond rounding); the features do not tell images apart (constant or degenerate features?)".into()
                } else {
                    "cannot calibrate thresholds: the first chunk has no tracklet with 3 or more crops (use absolute thresholds)".into()
                })
            })?;
            st.report.scale = s;
            cfg = config.scaled(s);
        }
        let mut calibration = CalibrationReport::default();
        let (results, calibrated) = first_chunk(&first, cfg, record, &mut calibration);
        cfg = calibrated;
        if calibration.target_precision.is_none() {
            calibration.reassign.threshold = cfg.level2.reassign_radius;
            calibration.merge.threshold = cfg.level2.merge_threshold;
            calibration.link.threshold = cfg.level3.link_threshold;
        }
        st.report.calibration = calibration;
        drop(first);
        st.absorb(results, &cfg)?;
        progress(&st.report);
    }
    loop {
        let chunk = st.read(&mut source, config.chunk_videos, config)?;
        if chunk.is_empty() {
            break;
        }
        let results: Vec<VideoResult> = chunk
            .par_iter()
            .map(|b| run_levels_1_2(b, &cfg, record))
            .collect();
        drop(chunk);
        st.absorb(results, &cfg)?;
        progress(&st.report);
    }
    let mut report = st.report;
    let (elem_id, identities, l3) = match st.linker {
        Some(l) => l.finish(),
        None => (Vec::new(), 0, Level3Stats::default()),
    };
    report.level3 = l3;
    report.identities = identities;
    let mut labels = st.labels;
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
        levels: record.then_some(st.levels),
    })
}
