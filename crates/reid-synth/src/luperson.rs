//! The two video-corpus layouts:
//! - LUPerson-NL: `LUPerson-NL/{country}/{city}/{video}/{pid:06}_{frame:07}_{obj:02}.jpg`,
//!   `pid` = the simulated tracker's tracklet id, global and contiguous `0..N-1`
//!   in corpus order (video, then first frame, then first object);
//! - LUPerson (unlabeled): `LUPerson/{country}/{city}/{video}/{i:02}_{j:02}_{k:04}_{m:08}.jpg`,
//!   the LMDB key format of the upstream converter (`i`, `j`, `k` = country,
//!   city within country, video within city; `m` = index of the crop in the
//!   video sorted by frame then object).
//!
//! Folders are `country00`, `city00`, `vid00000` (videos numbered across the
//! corpus, so sorted order is corpus order). The sidecar lists the true
//! person of every crop.

use derive_setters::Setters;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::output::{Format, mkdirs, prepare_dataset_dir, slash_path, write_image};
use super::tracker::{LabeledCrop, NoiseSummary, TrackedDet, TrackerNoise, summarize, track_video};
use super::truth::{FrameTruth, PartStats, SynthTruth, TruthPart, config_json, generator_name};
use super::video::{Crop, VideoConfig, VideoWorld};
use super::{Layout, Purpose, ReportPart, SynthReport, WorldConfig, invalid, stream_rng};
use crate::error::Result;
use reid_data::record::CorpusStats;

/// LUPerson-NL's dataset folder.
pub const NL_FOLDER: &str = "LUPerson-NL";
/// LUPerson's dataset folder.
pub const LUP_FOLDER: &str = "LUPerson";

/// A LUPerson-NL-style corpus: videos plus the tracker's noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct LupersonNlConfig {
    /// The corpus shape.
    pub video: VideoConfig,
    /// The tracker's noise rates.
    pub noise: TrackerNoise,
}

impl LupersonNlConfig {
    /// Checks the corpus shape and the noise rates.
    pub fn validate(&self) -> Result<()> {
        self.video.validate()?;
        self.noise.validate()
    }
}

/// A LUPerson-style unlabeled corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct LupersonConfig {
    /// The corpus shape.
    pub video: VideoConfig,
    /// False detections (background crops) per true detection, `[0, 0.5]`.
    pub false_detections: f32,
}

impl Default for LupersonConfig {
    fn default() -> Self {
        Self {
            video: VideoConfig::default(),
            false_detections: 0.03,
        }
    }
}

impl LupersonConfig {
    /// Checks the corpus shape and the false-detection rate.
    pub fn validate(&self) -> Result<()> {
        self.video.validate()?;
        self.noise().validate()
    }

    fn noise(&self) -> TrackerNoise {
        TrackerNoise {
            false_detections: self.false_detections,
            ..TrackerNoise::none()
        }
    }
}

/// One crop to write.
struct Item {
    rel: PathBuf,
    crop: Crop,
    person: i64,
    tracklet: u64,
    obj: u32,
}

/// Appends the crop of detection `d` (object `obj`) of video `v`, named
/// `name` in the video's folder, with tracklet label `tracklet`; the crop's
/// random stream is keyed by its position.
fn push_item(
    items: &mut Vec<Item>,
    vw: &VideoWorld,
    v: usize,
    d: &TrackedDet,
    obj: u32,
    name: String,
    tracklet: u64,
) {
    let info = &vw.videos[v];
    let person = d
        .track
        .and_then(|t| vw.tracks.get(t))
        .map_or(-1, |t| t.person as i64);
    let key = items.len() as u64;
    items.push(Item {
        rel: info.dir.join(name),
        crop: Crop {
            video: info.index,
            track: d.track,
            frame: d.frame,
            key,
        },
        person,
        tracklet,
        obj,
    });
}

/// Tracks every video and sorts each video's detections by (frame, obj).
/// Returns per video the detections with their `obj` index.
fn tracked(
    world: &VideoWorld,
    cfg: &VideoConfig,
    noise: &TrackerNoise,
) -> Result<Vec<Vec<(TrackedDet, u32)>>> {
    let mut by_video: Vec<Vec<(usize, &super::video::TrueTrack)>> =
        vec![Vec::new(); world.videos.len()];
    for (i, t) in world.tracks.iter().enumerate() {
        if let Some(v) = by_video.get_mut(t.video as usize) {
            v.push((i, t));
        }
    }
    let mut out = Vec::with_capacity(by_video.len());
    for (v, tracks) in by_video.iter().enumerate() {
        let mut rng = stream_rng(world.world.seed, world.layout, Purpose::Video, v as u64);
        let mut dets = track_video(
            tracks,
            noise,
            u64::from(cfg.video_frames),
            u64::from(cfg.frame_step),
            &mut rng,
        );
        dets.sort_by(|a, b| {
            a.frame
                .cmp(&b.frame)
                .then(a.x.total_cmp(&b.x))
                .then(a.label.cmp(&b.label))
        });
        let mut with_obj = Vec::with_capacity(dets.len());
        let mut prev: Option<u64> = None;
        let mut obj = 0u32;
        for d in dets {
            obj = if prev == Some(d.frame) { obj + 1 } else { 0 };
            prev = Some(d.frame);
            if obj > 99 {
                return Err(invalid(format!(
                    "video {v} has more than 100 detections in frame {} (the 2-digit obj field); use fewer persons per video",
                    d.frame
                )));
            }
            with_obj.push((d, obj));
        }
        out.push(with_obj);
    }
    Ok(out)
}

fn write_items(world: &VideoWorld, dir: &Path, items: &[Item], quality: u8) -> Result<()> {
    for v in &world.videos {
        mkdirs(&dir.join(&v.dir))?;
    }
    items.par_iter().try_for_each(|it| {
        let img = world.render_crop(&it.crop);
        write_image(&img, Format::Jpeg(quality), &dir.join(&it.rel))
    })
}

fn frame_truth(items: &[Item], labeled: bool) -> Vec<FrameTruth> {
    items
        .iter()
        .map(|it| FrameTruth {
            path: slash_path(&it.rel),
            person: it.person,
            video: it.crop.video,
            tracklet: labeled.then_some(it.tracklet),
            frame: it.crop.frame,
            obj: it.obj,
        })
        .collect()
}

/// Writes a LUPerson-NL-style corpus into `<out>/LUPerson-NL/` with its
/// `synth_truth.json` (true person per crop, noise summary), and reports the
/// corpus statistics a parser must find.
pub fn write_luperson_nl(
    out: &Path,
    world: &WorldConfig,
    cfg: &LupersonNlConfig,
) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let vw = VideoWorld::simulate(Layout::LupersonNl, world, &cfg.video);
    let per_video = tracked(&vw, &cfg.video, &cfg.noise)?;

    // Global tracklet pids in corpus order: video, then first (frame, obj).
    let mut items = Vec::new();
    let mut next_pid = 0u64;
    for (v, dets) in per_video.iter().enumerate() {
        let mut pid_of: BTreeMap<usize, u64> = BTreeMap::new();
        for (d, _) in dets {
            pid_of.entry(d.label).or_insert_with(|| {
                next_pid += 1;
                next_pid - 1
            });
        }
        if next_pid > 1_000_000 {
            return Err(invalid(format!(
                "{next_pid} tracklets do not fit the 6-digit pid field (at most 1,000,000); use fewer videos or persons"
            )));
        }
        for (d, obj) in dets {
            let pid = pid_of.get(&d.label).copied().unwrap_or(0);
            let name = format!("{pid:06}_{:07}_{obj:02}.jpg", d.frame);
            push_item(&mut items, &vw, v, d, *obj, name, pid);
        }
    }

    let dir = prepare_dataset_dir(out, NL_FOLDER, world.overwrite)?;
    write_items(&vw, &dir, &items, world.jpeg_quality)?;
    let crops: Vec<LabeledCrop> = items
        .iter()
        .map(|it| LabeledCrop {
            person: it.person,
            tracklet: it.tracklet,
            video: it.crop.video,
            track: it.crop.track,
        })
        .collect();
    let noise = summarize(&crops);
    let stats = CorpusStats {
        videos: vw.videos.len(),
        tracklets: next_pid as usize,
        images: items.len(),
    };
    finish_corpus(
        Layout::LupersonNl,
        world,
        config_json(cfg),
        dir,
        stats,
        frame_truth(&items, true),
        Some(noise),
        items.len(),
    )
}

/// Writes a LUPerson-style unlabeled corpus into `<out>/LUPerson/` with its
/// `synth_truth.json` (true person per crop), and reports the corpus
/// statistics (`tracklets` = 0: the corpus carries no labels).
pub fn write_luperson(
    out: &Path,
    world: &WorldConfig,
    cfg: &LupersonConfig,
) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let vw = VideoWorld::simulate(Layout::Luperson, world, &cfg.video);
    let per_video = tracked(&vw, &cfg.video, &cfg.noise())?;
    let mut items = Vec::new();
    for (v, dets) in per_video.iter().enumerate() {
        let info = &vw.videos[v];
        if dets.len() > 100_000_000 {
            return Err(invalid(format!(
                "video {v} has {} crops; the 8-digit image index holds at most 100,000,000",
                dets.len()
            )));
        }
        for (m, (d, obj)) in dets.iter().enumerate() {
            let name = format!(
                "{:02}_{:02}_{:04}_{m:08}.jpg",
                info.country, info.city, info.k
            );
            push_item(&mut items, &vw, v, d, *obj, name, 0);
        }
    }
    let dir = prepare_dataset_dir(out, LUP_FOLDER, world.overwrite)?;
    write_items(&vw, &dir, &items, world.jpeg_quality)?;
    let stats = CorpusStats {
        videos: vw.videos.len(),
        tracklets: 0,
        images: items.len(),
    };
    finish_corpus(
        Layout::Luperson,
        world,
        config_json(cfg),
        dir,
        stats,
        frame_truth(&items, false),
        None,
        items.len(),
    )
}
/// The common tail of the two corpus writers: writes `synth_truth.json` into
/// `dir` and returns the report of the single part.
#[allow(clippy::too_many_arguments)]
fn finish_corpus(
    layout: Layout,
    world: &WorldConfig,
    config: serde_json::Value,
    dir: PathBuf,
    stats: CorpusStats,
    frames: Vec<FrameTruth>,
    noise: Option<NoiseSummary>,
    images_written: usize,
) -> Result<SynthReport> {
    let truth = SynthTruth {
        generator: generator_name(),
        layout,
        seed: world.seed,
        world: world.clone(),
        config,
        parts: vec![TruthPart {
            name: layout.name().into(),
            folder: String::new(),
            stats: PartStats::Corpus(stats),
        }],
        extra: vec![],
        noise: noise.clone(),
        images: vec![],
        frames,
    };
    truth.write(&dir)?;
    Ok(SynthReport {
        layout,
        dataset_dir: dir.clone(),
        parts: vec![ReportPart {
            name: layout.name().into(),
            dir,
            stats: PartStats::Corpus(stats),
        }],
        images_written,
        noise,
    })
}
