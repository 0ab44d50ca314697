//! The MSMT17 layout (V1 and V2 folder variants):
//! `MSMT17_V1/{train,test}/{pid:04}/{pid:04}_{idx:03}_{cam:02}_{date:04}{morning|noon|afternoon}_{frame:04}_{n}.jpg`
//! plus `list_train.txt`, `list_val.txt`, `list_query.txt`, `list_gallery.txt`
//! in `MSMT17_V1/` (`<path relative to train/ or test/> <pid>` per line).
//!
//! Pids are 0-based and contiguous per split: train and val share the train
//! numbering, query and gallery the test numbering (the same number in
//! `train/` and `test/` is two different people, as in the real set). The
//! time of day changes the brightness. Statistics report the train split as
//! `list_train.txt` alone (upstream parsers add `list_val.txt` only with
//! `combineall`); the val list's statistics are in the sidecar's `extra`.

use derive_setters::Setters;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::output::{slash_path, write_text};
use super::stills::{
    StillJob, Subject, check_camera_spans, finish_single_part, sample_cams, write_still_dataset,
};
use super::{Layout, Purpose, Span, SynthReport, WorldConfig, check_count, invalid, stream_rng};
use crate::error::Result;

/// Cameras the 2-digit camera field of the real set uses.
pub const MAX_CAMERAS: u32 = 15;

/// Which folder names to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsmtVersion {
    /// `MSMT17_V1/{train,test}`.
    V1,
    /// `MSMT17_V2/{mask_train_v2,mask_test_v2}`.
    V2,
}

impl MsmtVersion {
    /// `(dataset folder, train folder, test folder)`.
    pub fn folders(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::V1 => ("MSMT17_V1", "train", "test"),
            Self::V2 => ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
        }
    }
}

/// Sizes of an MSMT17-style dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Msmt17Config {
    /// Folder variant.
    pub version: MsmtVersion,
    /// Training identities (1,041 in the real set).
    pub train_ids: u32,
    /// Test identities (3,060 in the real set).
    pub test_ids: u32,
    /// Cameras, 2..=15.
    pub cameras: u32,
    /// Cameras each identity is seen by (at least 2).
    pub cams_per_id: Span,
    /// Images per identity per camera.
    pub images_per_cam: Span,
    /// Fraction of the training images listed in `list_val.txt` instead of
    /// `list_train.txt` (0.073 in the real set).
    pub val_fraction: f32,
    /// Fraction of a test identity's images put in the query (about 0.125 in
    /// the real set; every test identity gets at least one query image and at
    /// least one gallery image from another camera).
    pub query_fraction: f32,
}

impl Default for Msmt17Config {
    /// About 1,000 images: 60 + 60 identities, 15 cameras.
    fn default() -> Self {
        Self {
            version: MsmtVersion::V1,
            train_ids: 60,
            test_ids: 60,
            cameras: 15,
            cams_per_id: Span::new(2, 5),
            images_per_cam: Span::new(1, 3),
            val_fraction: 0.07,
            query_fraction: 0.15,
        }
    }
}

impl Msmt17Config {
    /// Checks identity, camera and image counts against the name format.
    pub fn validate(&self) -> Result<()> {
        check_count("MSMT17 train identities", self.train_ids, 1, 10_000)?;
        check_count("MSMT17 test identities", self.test_ids, 1, 10_000)?;
        check_camera_spans(
            "MSMT17",
            self.cameras,
            MAX_CAMERAS,
            self.cams_per_id,
            self.images_per_cam,
        )?;
        if self.cams_per_id.max * self.images_per_cam.max > 1000 {
            return Err(invalid(format!(
                "MSMT17: up to {} images per identity do not fit the 3-digit index field (at most 1000)",
                self.cams_per_id.max * self.images_per_cam.max
            )));
        }
        for (what, v) in [
            ("val fraction", self.val_fraction),
            ("query fraction", self.query_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(invalid(format!("MSMT17 {what} {v} is not in [0, 1)")));
            }
        }
        Ok(())
    }
}

const DATES: [&str; 4] = ["0113", "0114", "0302", "0303"];
const TIMES: [(&str, f32); 3] = [("morning", 0.85), ("noon", 1.15), ("afternoon", 0.95)];

/// Writes an MSMT17-style dataset into `<out>/MSMT17_V1/` (or `MSMT17_V2/`)
/// with its list files and `synth_truth.json`, and reports what a parser must find.
pub fn write_msmt17(out: &Path, world: &WorldConfig, cfg: &Msmt17Config) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let (folder, train_dir, test_dir) = cfg.version.folders();
    let jobs = plan(world, cfg, train_dir, test_dir);
    let dir = write_still_dataset(out, folder, Layout::Msmt17, world, cfg.cameras, &jobs)?;

    for split in ["train", "val", "query", "gallery"] {
        let mut text = String::new();
        for j in jobs.iter().filter(|j| j.split == split) {
            // The list path is relative to the train/ or test/ folder: drop the first component.
            let rel: PathBuf = j.rel.components().skip(1).collect();
            let _ = writeln!(text, "{} {}", slash_path(&rel), j.pid);
        }
        write_text(&dir.join(format!("list_{split}.txt")), &text)?;
    }

    finish_single_part(Layout::Msmt17, world, cfg, dir, &jobs, &["val"])
}

fn plan(world: &WorldConfig, cfg: &Msmt17Config, train_dir: &str, test_dir: &str) -> Vec<StillJob> {
    let mut rng = stream_rng(world.seed, Layout::Msmt17, Purpose::Plan, 0);
    let mut jobs: Vec<StillJob> = Vec::new();
    for (split_dir, ids, person_offset) in [
        (train_dir, cfg.train_ids, 0u64),
        (test_dir, cfg.test_ids, u64::from(cfg.train_ids)),
    ] {
        let is_train = split_dir == train_dir;
        for pid in 0..ids {
            // (camera, time-of-day index) for every image of this identity.
            let mut shots: Vec<u32> = Vec::new();
            for cam in sample_cams(
                &mut rng,
                cfg.cameras,
                cfg.cams_per_id.min,
                cfg.cams_per_id.max,
            ) {
                for _ in 0..cfg.images_per_cam.sample(&mut rng) {
                    shots.push(cam);
                }
            }
            let splits: Vec<&'static str> = if is_train {
                shots
                    .iter()
                    .map(|_| {
                        if rng.random_bool(f64::from(cfg.val_fraction)) {
                            "val"
                        } else {
                            "train"
                        }
                    })
                    .collect()
            } else {
                test_splits(&mut rng, &shots, cfg.query_fraction)
            };
            for (idx, (&cam, split)) in shots.iter().zip(splits).enumerate() {
                let date = DATES[rng.random_range(0..DATES.len())];
                let (tod, gain) = TIMES[rng.random_range(0..TIMES.len())];
                let frame = rng.random_range(0..10_000u32);
                let n = rng.random_range(0..4u32);
                let name = format!(
                    "{pid:04}_{idx:03}_{:02}_{date}{tod}_{frame:04}_{n}.jpg",
                    cam + 1
                );
                let rel = PathBuf::from(split_dir)
                    .join(format!("{pid:04}"))
                    .join(name);
                let person = Subject::Person(person_offset + u64::from(pid));
                let key = jobs.len() as u64;
                let job = StillJob::new(rel, person, cam, split, i64::from(pid), key);
                jobs.push(StillJob { gain, ..job });
            }
        }
    }
    jobs
}

/// Query/gallery assignment of one test identity's images (cameras `cams`):
/// one random query, one gallery image from another camera, the rest query
/// with probability `frac`.
fn test_splits<R: Rng + ?Sized>(rng: &mut R, cams: &[u32], frac: f32) -> Vec<&'static str> {
    let n = cams.len();
    let mut out = vec![""; n];
    if n == 0 {
        return out;
    }
    let q = rng.random_range(0..n);
    out[q] = "query";
    let others: Vec<usize> = (0..n).filter(|&i| cams[i] != cams[q]).collect();
    if !others.is_empty() {
        out[others[rng.random_range(0..others.len())]] = "gallery";
    }
    for s in out.iter_mut().filter(|s| s.is_empty()) {
        *s = if rng.random_bool(f64::from(frac)) {
            "query"
        } else {
            "gallery"
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_id_has_query_and_cross_camera_gallery() {
        let cfg = Msmt17Config::default();
        let jobs = plan(&WorldConfig::default(), &cfg, "test_a", "test");
        for pid in 0..i64::from(cfg.test_ids) {
            let mine: Vec<_> = jobs
                .iter()
                .filter(|j| j.rel.starts_with("test") && j.pid == pid)
                .collect();
            let qcams: Vec<u32> = mine
                .iter()
                .filter(|j| j.split == "query")
                .map(|j| j.camera)
                .collect();
            assert!(!qcams.is_empty());
            assert!(
                mine.iter()
                    .any(|j| j.split == "gallery" && j.camera != qcams[0])
            );
        }
    }
}
