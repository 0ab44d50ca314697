//! The Market-1501 layout:
//! `Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/{pid:04}_c{cam}s{seq}_{frame:06}_{bbox:02}.jpg`.
//!
//! Like the real set: train and test identities are disjoint, each identity
//! is seen by at least two cameras, the query holds one image per test
//! identity per camera and the gallery the rest; the gallery also holds junk
//! boxes (pid `-1`, dropped by parsers) and distractors (pid `0000`, kept).

use derive_setters::Setters;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use rand_chacha::ChaCha8Rng;

use super::stills::{
    StillJob, Subject, check_camera_spans, check_pid_groups, finish_single_part, plan_train_test,
    sample_pids, write_still_dataset,
};
use super::{Layout, Purpose, Span, SynthReport, WorldConfig, check_count, invalid, stream_rng};
use crate::error::Result;

/// The dataset folder's name.
pub const FOLDER: &str = "Market-1501-v15.09.15";
/// The layout's name in error messages.
const LAYOUT: &str = "Market-1501";
/// Cameras the `c{cam}` name field allows.
pub const MAX_CAMERAS: u32 = 6;
/// The largest frame number the 6-digit field holds.
const MAX_FRAME: u64 = 999_999;

/// Sizes of a Market-1501-style dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Market1501Config {
    /// Training identities (751 in the real set).
    pub train_ids: u32,
    /// Test identities (750 in the real set).
    pub test_ids: u32,
    /// Cameras, 2..=6.
    pub cameras: u32,
    /// Cameras each identity is seen by (at least 2).
    pub cams_per_id: Span,
    /// Training images per identity per camera; test identities get one
    /// query image plus this many gallery images per camera.
    pub images_per_cam: Span,
    /// Junk boxes (pid `-1`) in the gallery folder.
    pub junk: u32,
    /// Distractor boxes (pid `0000`) in the gallery.
    pub distractors: u32,
}

impl Default for Market1501Config {
    /// About 2,200 images: 100 + 100 identities, 6 cameras.
    fn default() -> Self {
        Self {
            train_ids: 100,
            test_ids: 100,
            cameras: 6,
            cams_per_id: Span::new(2, 5),
            images_per_cam: Span::new(1, 4),
            junk: 60,
            distractors: 60,
        }
    }
}

impl Market1501Config {
    /// A small clean set: `train_ids` + `test_ids` identities, 3 cameras,
    /// each identity seen by 2–3 of them with 2–3 images per camera, no junk
    /// boxes and no distractors.
    pub fn small(train_ids: u32, test_ids: u32) -> Self {
        Self {
            train_ids,
            test_ids,
            cameras: 3,
            cams_per_id: Span::new(2, 3),
            images_per_cam: Span::new(2, 3),
            junk: 0,
            distractors: 0,
        }
    }

    /// The smallest regular set: `train_ids` + `test_ids` identities, each
    /// seen by both of 2 cameras with 2 images per camera (4 training
    /// images per identity), no junk boxes and no distractors.
    pub fn two_camera(train_ids: u32, test_ids: u32) -> Self {
        Self {
            cameras: 2,
            cams_per_id: Span::new(2, 2),
            images_per_cam: Span::new(2, 2),
            ..Self::small(train_ids, test_ids)
        }
    }

    /// Checks identity, camera and image counts against the name format.
    pub fn validate(&self) -> Result<()> {
        check_pid_groups(
            LAYOUT,
            &[("train", self.train_ids, 1), ("test", self.test_ids, 1)],
        )?;
        check_camera_spans(
            LAYOUT,
            self.cameras,
            MAX_CAMERAS,
            self.cams_per_id,
            self.images_per_cam,
        )?;
        check_count("Market-1501 junk images", self.junk, 0, 100_000)?;
        check_count("Market-1501 distractors", self.distractors, 0, 100_000)?;
        Ok(())
    }
}

/// Writes a Market-1501-style dataset into `<out>/Market-1501-v15.09.15/`
/// with its `synth_truth.json`, and reports what a parser must find.
pub fn write_market1501(
    out: &Path,
    world: &WorldConfig,
    cfg: &Market1501Config,
) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let jobs = plan(world, cfg)?;
    let dir = write_still_dataset(out, FOLDER, Layout::Market1501, world, cfg.cameras, &jobs)?;
    finish_single_part(Layout::Market1501, world, cfg, dir, &jobs, &[])
}

/// Hands out unique `(seq, frame, bbox)` triples per camera.
struct Namer {
    /// Last frame per (camera, sequence).
    frames: Vec<[u64; 6]>,
}

impl Namer {
    fn name<R: Rng + ?Sized>(&mut self, rng: &mut R, pid: i64, cam: u32) -> Result<String> {
        let seq = rng.random_range(0..6usize);
        let slot = &mut self.frames[cam as usize][seq];
        *slot += rng.random_range(1..=40);
        if *slot > MAX_FRAME {
            return Err(invalid(format!(
                "Market-1501: too many images for camera {} (the 6-digit frame field overflows); use fewer identities or images",
                cam + 1
            )));
        }
        let bbox = rng.random_range(1..=4);
        let pid_s = if pid < 0 {
            "-1".to_string()
        } else {
            format!("{pid:04}")
        };
        Ok(format!(
            "{pid_s}_c{}s{}_{:06}_{bbox:02}.jpg",
            cam + 1,
            seq + 1,
            *slot
        ))
    }
}

fn plan(world: &WorldConfig, cfg: &Market1501Config) -> Result<Vec<StillJob>> {
    let mut rng = stream_rng(world.seed, Layout::Market1501, Purpose::Plan, 0);
    let n = cfg.train_ids + cfg.test_ids;
    let pool = (n + n / 2).clamp(n, 9999);
    let pids = sample_pids(&mut rng, n, pool);
    let mut train: Vec<i64> = pids[..cfg.train_ids as usize].to_vec();
    let mut test: Vec<i64> = pids[cfg.train_ids as usize..].to_vec();
    train.sort_unstable();
    test.sort_unstable();

    let mut namer = Namer {
        frames: vec![[0; 6]; cfg.cameras as usize],
    };
    let mut jobs = Vec::new();
    let mut push = |jobs: &mut Vec<StillJob>,
                    rng: &mut ChaCha8Rng,
                    folder: &str,
                    split: &'static str,
                    subject: Subject,
                    pid: i64,
                    cam: u32|
     -> Result<()> {
        let name = namer.name(rng, pid, cam)?;
        let rel = PathBuf::from(folder).join(name);
        let key = jobs.len() as u64;
        jobs.push(StillJob::new(rel, subject, cam, split, pid, key));
        Ok(())
    };
    plan_train_test(
        &mut rng,
        cfg.cameras,
        cfg.cams_per_id,
        cfg.images_per_cam,
        &train,
        &test,
        |rng, folder, split, pid, cam| {
            let person = Subject::Person(pid as u64);
            push(&mut jobs, rng, folder, split, person, pid, cam)
        },
    )?;
    for (count, subject, pid, split) in [
        (cfg.distractors, Subject::Distractor, 0, "gallery"),
        (cfg.junk, Subject::Junk, -1, "junk"),
    ] {
        for _ in 0..count {
            let cam = rng.random_range(0..cfg.cameras);
            push(
                &mut jobs,
                &mut rng,
                "bounding_box_test",
                split,
                subject,
                pid,
                cam,
            )?;
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages() {
        let mut c = Market1501Config {
            cameras: 7,
            ..Market1501Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("cameras") && e.contains("7"), "{e}");
        c.cameras = 6;
        c.train_ids = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("train identities")
        );
        c.train_ids = 5;
        c.cams_per_id = Span::new(1, 3);
        assert!(c.validate().is_err());
    }

    #[test]
    fn plan_names_are_unique_and_well_formed() {
        let cfg = Market1501Config::default();
        let jobs = plan(&WorldConfig::default(), &cfg).unwrap();
        let names: std::collections::BTreeSet<_> = jobs.iter().map(|j| j.rel.clone()).collect();
        assert_eq!(names.len(), jobs.len());
        for j in &jobs {
            let base = j.rel.file_name().unwrap().to_str().unwrap();
            let (pid, rest) = base.split_once("_c").unwrap();
            assert_eq!(pid.parse::<i64>().unwrap(), j.pid);
            assert_eq!(rest[..1].parse::<u32>().unwrap(), j.camera + 1);
            if j.pid >= 0 {
                assert_eq!(pid.len(), 4);
            }
        }
    }
}
