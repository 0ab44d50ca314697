//! The DukeMTMC-reID layout:
//! `DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/{pid:04}_c{cam}_f{frame:07}.jpg`.
//!
//! Train and test identities are disjoint; the query holds one image per test
//! identity per camera; the gallery holds the rest plus distractor
//! identities that appear only in the gallery. There is no junk.

use derive_setters::Setters;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::stills::{
    StillJob, check_camera_spans, check_pid_groups, finish_single_part, plan_train_test,
    sample_cams, sample_pids, write_still_dataset,
};
use super::{Layout, Purpose, Span, SynthReport, WorldConfig, invalid, stream_rng};
use crate::error::Result;

/// The dataset folder's name.
pub const FOLDER: &str = "DukeMTMC-reID";
/// The layout's name in error messages.
const LAYOUT: &str = "DukeMTMC-reID";
/// Cameras the `c{cam}` name field allows.
pub const MAX_CAMERAS: u32 = 8;
const MAX_FRAME: u64 = 9_999_999;

/// Sizes of a DukeMTMC-reID-style dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct DukeConfig {
    /// Training identities (702 in the real set).
    pub train_ids: u32,
    /// Test identities, in query and gallery (702 in the real set).
    pub test_ids: u32,
    /// Identities that appear only in the gallery (408 in the real set).
    pub distractor_ids: u32,
    /// Cameras, 2..=8.
    pub cameras: u32,
    /// Cameras each train/test identity is seen by (at least 2).
    pub cams_per_id: Span,
    /// Training images per identity per camera; test identities get one
    /// query image plus this many gallery images per camera.
    pub images_per_cam: Span,
}

impl Default for DukeConfig {
    /// About 1,500 images: 80 + 80 identities, 20 distractor identities, 8 cameras.
    fn default() -> Self {
        Self {
            train_ids: 80,
            test_ids: 80,
            distractor_ids: 20,
            cameras: 8,
            cams_per_id: Span::new(2, 4),
            images_per_cam: Span::new(1, 4),
        }
    }
}

impl DukeConfig {
    /// Checks identity, camera and image counts against the name format.
    pub fn validate(&self) -> Result<()> {
        check_pid_groups(
            LAYOUT,
            &[
                ("train", self.train_ids, 1),
                ("test", self.test_ids, 1),
                ("distractor", self.distractor_ids, 0),
            ],
        )?;
        check_camera_spans(
            LAYOUT,
            self.cameras,
            MAX_CAMERAS,
            self.cams_per_id,
            self.images_per_cam,
        )
    }
}

/// Writes a DukeMTMC-reID-style dataset into `<out>/DukeMTMC-reID/` with its
/// `synth_truth.json`, and reports what a parser must find.
pub fn write_dukemtmc(out: &Path, world: &WorldConfig, cfg: &DukeConfig) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let jobs = plan(world, cfg)?;
    let dir = write_still_dataset(out, FOLDER, Layout::DukeMtmc, world, cfg.cameras, &jobs)?;
    finish_single_part(Layout::DukeMtmc, world, cfg, dir, &jobs, &[])
}

fn plan(world: &WorldConfig, cfg: &DukeConfig) -> Result<Vec<StillJob>> {
    let mut rng = stream_rng(world.seed, Layout::DukeMtmc, Purpose::Plan, 0);
    let n = cfg.train_ids + cfg.test_ids + cfg.distractor_ids;
    let pool = (n * 2).clamp(n, 9999);
    let pids = sample_pids(&mut rng, n, pool);
    let (a, b) = (
        cfg.train_ids as usize,
        (cfg.train_ids + cfg.test_ids) as usize,
    );
    let mut groups = [pids[..a].to_vec(), pids[a..b].to_vec(), pids[b..].to_vec()];
    for g in &mut groups {
        g.sort_unstable();
    }
    let mut frames = vec![0u64; cfg.cameras as usize];
    let mut jobs: Vec<StillJob> = Vec::new();
    let mut push = |jobs: &mut Vec<StillJob>,
                    rng: &mut rand_chacha::ChaCha8Rng,
                    folder: &str,
                    split: &'static str,
                    pid: i64,
                    cam: u32|
     -> Result<()> {
        let f = &mut frames[cam as usize];
        *f += rng.random_range(1..=60);
        if *f > MAX_FRAME {
            return Err(invalid(format!(
                "DukeMTMC-reID: too many images for camera {} (the 7-digit frame field overflows)",
                cam + 1
            )));
        }
        let name = format!("{pid:04}_c{}_f{:07}.jpg", cam + 1, *f);
        StillJob::push_person(jobs, folder, name, split, pid, cam);
        Ok(())
    };
    plan_train_test(
        &mut rng,
        cfg.cameras,
        cfg.cams_per_id,
        cfg.images_per_cam,
        &groups[0],
        &groups[1],
        |rng, folder, split, pid, cam| push(&mut jobs, rng, folder, split, pid, cam),
    )?;
    for &pid in &groups[2] {
        for cam in sample_cams(&mut rng, cfg.cameras, 1, 2) {
            for _ in 0..rng.random_range(1..=3) {
                push(
                    &mut jobs,
                    &mut rng,
                    "bounding_box_test",
                    "gallery",
                    pid,
                    cam,
                )?;
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distractor_ids_are_gallery_only() {
        let cfg = DukeConfig::default();
        let jobs = plan(&WorldConfig::default(), &cfg).unwrap();
        let q: std::collections::BTreeSet<i64> = jobs
            .iter()
            .filter(|j| j.split == "query")
            .map(|j| j.pid)
            .collect();
        let g: std::collections::BTreeSet<i64> = jobs
            .iter()
            .filter(|j| j.split == "gallery")
            .map(|j| j.pid)
            .collect();
        assert_eq!(q.len(), cfg.test_ids as usize);
        assert_eq!(g.len(), (cfg.test_ids + cfg.distractor_ids) as usize);
        assert!(q.is_subset(&g));
    }
}
