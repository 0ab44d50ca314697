//! Shared machinery of the still-image layouts (Market, Duke, MSMT17,
//! CUHK03-NP): a job list (one entry per file), parallel rendering, and the
//! statistics / sidecar entries derived from the jobs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::Rng;
use rayon::prelude::*;

use super::camera::Camera;
use super::identity::Identity;
use super::output::{Format, mkdirs, prepare_dataset_dir, slash_path, write_image};
use super::render::{Shot, render};
use super::truth::StillTruth;
use super::{Layout, Purpose, Span, WorldConfig, check_count, invalid, stream_rng};
use crate::error::Result;
use reid_data::record::{ImageRecord, SplitStats};

/// Checks a layout's identity groups against its 4-digit pid field: each
/// `(what, count, min)` must be in `min..=9999`, and together they must fit
/// in 9999 pids. Errors name `layout` ("Market-1501", ...) and the group.
pub(crate) fn check_pid_groups(layout: &str, groups: &[(&str, u32, u32)]) -> Result<()> {
    for &(what, n, min) in groups {
        check_count(&format!("{layout} {what} identities"), n, min, 9999)?;
    }
    let total: u32 = groups.iter().map(|g| g.1).sum();
    if total > 9999 {
        return Err(invalid(format!(
            "{layout}: {total} identities do not fit the 4-digit pid field (at most 9999)"
        )));
    }
    Ok(())
}

/// Checks a layout's camera parameters: `cameras` in `2..=max_cameras`,
/// each identity seen by 2 to `cameras` of them, with 1 to 100 images per
/// identity per camera. Errors name `layout` and the parameter.
pub(crate) fn check_camera_spans(
    layout: &str,
    cameras: u32,
    max_cameras: u32,
    cams_per_id: Span,
    images_per_cam: Span,
) -> Result<()> {
    check_count(&format!("{layout} cameras"), cameras, 2, max_cameras)?;
    cams_per_id.check(&format!("{layout} cameras per identity"), 2, cameras)?;
    images_per_cam.check(&format!("{layout} images per identity per camera"), 1, 100)
}

/// What an image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// World identity `i` (stable attributes).
    Person(u64),
    /// A junk box: background only or a small fragment of an anonymous person.
    Junk,
    /// A distractor box: an anonymous person, badly off-centre.
    Distractor,
}

/// One file to write.
#[derive(Debug, Clone)]
pub(crate) struct StillJob {
    /// Path relative to the dataset folder.
    pub rel: PathBuf,
    pub subject: Subject,
    /// Camera index, 0-based.
    pub camera: u32,
    /// `"train"`, `"val"`, `"query"`, `"gallery"` or `"junk"`.
    pub split: &'static str,
    /// The pid a parser reads.
    pub pid: i64,
    /// Key of the image's random streams (shot, noise, detector jitter).
    pub key: u64,
    /// Apply a detector's loose, jittered box.
    pub detector: bool,
    /// Extra brightness multiplier (MSMT17 time of day).
    pub gain: f32,
}

impl StillJob {
    /// A job numbered `key` with no detector jitter and unit gain.
    pub fn new(
        rel: PathBuf,
        subject: Subject,
        camera: u32,
        split: &'static str,
        pid: i64,
        key: u64,
    ) -> Self {
        Self {
            rel,
            subject,
            camera,
            split,
            pid,
            key,
            detector: false,
            gain: 1.0,
        }
    }

    /// Appends a plain job of `pid` (a person) under `folder/name` to `jobs`,
    /// keyed by its position.
    pub fn push_person(
        jobs: &mut Vec<Self>,
        folder: &str,
        name: String,
        split: &'static str,
        pid: i64,
        camera: u32,
    ) {
        let key = jobs.len() as u64;
        let rel = PathBuf::from(folder).join(name);
        jobs.push(Self::new(
            rel,
            Subject::Person(pid as u64),
            camera,
            split,
            pid,
            key,
        ));
    }
}

/// The cameras and identities of one still-image layout.
pub(crate) struct StillWorld {
    pub layout: Layout,
    pub cfg: WorldConfig,
    pub cameras: Vec<Camera>,
}

impl StillWorld {
    pub fn new(layout: Layout, cfg: &WorldConfig, cameras: u32) -> Self {
        let cameras = (0..u64::from(cameras))
            .map(|c| {
                Camera::random(
                    &mut stream_rng(cfg.seed, layout, Purpose::Camera, c),
                    cfg.occlusion,
                )
            })
            .collect();
        Self {
            layout,
            cfg: cfg.clone(),
            cameras,
        }
    }

    /// World identity `i` of this layout.
    pub fn identity(&self, i: u64) -> Identity {
        Identity::random(&mut stream_rng(
            self.cfg.seed,
            self.layout,
            Purpose::Identity,
            i,
        ))
    }

    /// Renders one job (pure function of the job and the world).
    pub fn render_job(&self, job: &StillJob) -> RgbImage {
        let seed = self.cfg.seed;
        let mut rng = stream_rng(seed, self.layout, Purpose::Image, job.key);
        let cam = &self.cameras[(job.camera as usize).min(self.cameras.len().saturating_sub(1))];
        let mut shot = Shot::random(cam, &mut rng);
        shot.gain *= job.gain;
        let identity = match job.subject {
            Subject::Person(i) => Some(self.identity(i)),
            Subject::Junk => {
                let mut xr = stream_rng(seed, self.layout, Purpose::Extra, job.key);
                if xr.random_bool(0.5) {
                    None
                } else {
                    shot.zoom *= xr.random_range(1.5..2.3);
                    let sign = if xr.random_bool(0.5) { 1.0 } else { -1.0 };
                    shot.dx += sign * xr.random_range(0.2..0.4);
                    shot.dy += xr.random_range(-0.3..0.3);
                    Some(Identity::random(&mut xr))
                }
            }
            Subject::Distractor => {
                let mut xr = stream_rng(seed, self.layout, Purpose::Extra, job.key);
                let sign = if xr.random_bool(0.5) { 1.0 } else { -1.0 };
                shot.dx += sign * xr.random_range(0.25..0.45);
                shot.zoom *= xr.random_range(0.7..1.3);
                Some(Identity::random(&mut xr))
            }
        };
        if job.detector {
            let mut dr = stream_rng(seed, self.layout, Purpose::Detector, job.key);
            shot.detector_jitter(&mut dr);
        }
        render(
            identity.as_ref(),
            cam,
            &shot,
            self.cfg.height,
            self.cfg.width,
            &mut rng,
        )
    }

    /// Creates every folder, then renders and writes all jobs in parallel under `root`.
    pub fn write_all(&self, root: &Path, jobs: &[StillJob], format: Format) -> Result<()> {
        let dirs: BTreeSet<PathBuf> = jobs
            .iter()
            .filter_map(|j| root.join(&j.rel).parent().map(Path::to_path_buf))
            .collect();
        for d in &dirs {
            mkdirs(d)?;
        }
        jobs.par_iter().try_for_each(|job| {
            let img = self.render_job(job);
            write_image(&img, format, &root.join(&job.rel))
        })
    }
}

/// Statistics of split `split` as a parser sees it: junk (`pid == -1`) dropped.
pub(crate) fn split_stats(jobs: &[StillJob], split: &str) -> SplitStats {
    let recs: Vec<ImageRecord> = jobs
        .iter()
        .filter(|j| j.split == split && j.pid != -1)
        .map(|j| ImageRecord::new(&j.rel, j.pid, j.camera))
        .collect();
    SplitStats::of(&recs)
}

/// Sidecar entries of `jobs`, with `prefix` prepended to each path.
pub(crate) fn truth_entries(jobs: &[StillJob], prefix: &Path) -> Vec<StillTruth> {
    jobs.iter()
        .map(|j| StillTruth {
            path: slash_path(&prefix.join(&j.rel)),
            pid: j.pid,
            camid: j.camera,
            split: j.split.to_string(),
            person: match j.subject {
                Subject::Person(i) => i64::try_from(i).unwrap_or(-1),
                Subject::Junk | Subject::Distractor => -1,
            },
        })
        .collect()
}

/// A sorted random subset of `0..cameras` whose size is drawn from
/// `min..=max` (clamped to `cameras`).
pub(crate) fn sample_cams<R: Rng + ?Sized>(
    rng: &mut R,
    cameras: u32,
    min: u32,
    max: u32,
) -> Vec<u32> {
    let max = max.min(cameras);
    let k = rng.random_range(min.min(max)..=max);
    let mut cams: Vec<u32> = rand::seq::index::sample(rng, cameras as usize, k as usize)
        .into_iter()
        .map(|c| c as u32)
        .collect();
    cams.sort_unstable();
    cams
}

/// The Market/Duke identity plan: every train identity gets
/// `images_per_cam` images in `bounding_box_train` on each of its sampled
/// cameras; every test identity gets, per camera, one `query` image and then
/// `images_per_cam` images in `bounding_box_test`. `emit(rng, folder, split,
/// pid, cam)` names and records one image.
pub(crate) fn plan_train_test<R: Rng + ?Sized>(
    rng: &mut R,
    cameras: u32,
    cams_per_id: Span,
    images_per_cam: Span,
    train: &[i64],
    test: &[i64],
    mut emit: impl FnMut(&mut R, &str, &'static str, i64, u32) -> Result<()>,
) -> Result<()> {
    for &pid in train {
        for cam in sample_cams(rng, cameras, cams_per_id.min, cams_per_id.max) {
            for _ in 0..images_per_cam.sample(rng) {
                emit(rng, "bounding_box_train", "train", pid, cam)?;
            }
        }
    }
    for &pid in test {
        for cam in sample_cams(rng, cameras, cams_per_id.min, cams_per_id.max) {
            emit(rng, "query", "query", pid, cam)?;
            for _ in 0..images_per_cam.sample(rng) {
                emit(rng, "bounding_box_test", "gallery", pid, cam)?;
            }
        }
    }
    Ok(())
}

/// Creates `<out>/<folder>/` and renders `jobs` into it with the cameras of
/// `layout`; returns the dataset folder.
pub(crate) fn write_still_dataset(
    out: &Path,
    folder: &str,
    layout: Layout,
    world: &WorldConfig,
    cameras: u32,
    jobs: &[StillJob],
) -> Result<PathBuf> {
    let dir = prepare_dataset_dir(out, folder, world.overwrite)?;
    let sw = StillWorld::new(layout, world, cameras);
    sw.write_all(&dir, jobs, Format::Jpeg(world.jpeg_quality))?;
    Ok(dir)
}

/// `n` distinct raw pids drawn from `1..=pool`, in random order.
pub(crate) fn sample_pids<R: Rng + ?Sized>(rng: &mut R, n: u32, pool: u32) -> Vec<i64> {
    rand::seq::index::sample(rng, pool as usize, n as usize)
        .into_iter()
        .map(|p| p as i64 + 1)
        .collect()
}

/// The common tail of the single-part still-image writers (Market-1501,
/// DukeMTMC-reID, MSMT17): counts the train/query/gallery splits of `jobs`,
/// writes `synth_truth.json` into `dir` (with the statistics of the splits
/// named in `extra_splits`, e.g. MSMT17's `val`) and returns the report.
pub(crate) fn finish_single_part<C: serde::Serialize>(
    layout: super::Layout,
    world: &super::WorldConfig,
    cfg: &C,
    dir: PathBuf,
    jobs: &[StillJob],
    extra_splits: &[&str],
) -> Result<super::SynthReport> {
    use super::truth::{PartStats, SynthTruth, TruthPart, config_json, generator_name};
    let stats = reid_data::record::DatasetStats {
        train: split_stats(jobs, "train"),
        query: split_stats(jobs, "query"),
        gallery: split_stats(jobs, "gallery"),
    };
    let truth = SynthTruth {
        generator: generator_name(),
        layout,
        seed: world.seed,
        world: world.clone(),
        config: config_json(cfg),
        parts: vec![TruthPart {
            name: layout.name().into(),
            folder: String::new(),
            stats: PartStats::Images(stats),
        }],
        extra: extra_splits
            .iter()
            .map(|s| ((*s).to_string(), split_stats(jobs, s)))
            .collect(),
        noise: None,
        images: truth_entries(jobs, Path::new("")),
        frames: vec![],
    };
    truth.write(&dir)?;
    Ok(super::SynthReport {
        layout,
        dataset_dir: dir.clone(),
        parts: vec![super::ReportPart {
            name: layout.name().into(),
            dir,
            stats: PartStats::Images(stats),
        }],
        images_written: jobs.len(),
        noise: None,
    })
}
