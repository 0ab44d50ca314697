//! The CUHK03-NP layout (zhunzhong07's release):
//! `cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/{pid:04}_c{view}_{idx:02}.png`.
//!
//! Every identity is seen from two views (the "cameras"); train and test
//! identities are disjoint; the query holds one image per test identity per
//! view and the gallery the rest. `detected` shows the same people in the
//! same shots as `labeled`, but with a detector's looser, jittered box, and a
//! few boxes the detector missed.

use derive_setters::Setters;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::output::{Format, prepare_dataset_dir};
use super::stills::{
    StillJob, StillWorld, check_pid_groups, sample_pids, split_stats, truth_entries,
};
use super::truth::{PartStats, SynthTruth, TruthPart, config_json, generator_name};
use super::{Layout, Purpose, ReportPart, Span, SynthReport, WorldConfig, invalid, stream_rng};
use crate::error::Result;
use reid_data::record::DatasetStats;

/// The dataset folder's name.
pub const FOLDER: &str = "cuhk03-np";
/// Views ("cameras") of CUHK03.
pub const MAX_CAMERAS: u32 = 2;

/// Sizes of a CUHK03-NP-style dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct Cuhk03Config {
    /// Training identities (767 in the real set).
    pub train_ids: u32,
    /// Test identities (700 in the real set).
    pub test_ids: u32,
    /// Views; must be 2 (the layout's `c1` / `c2`).
    pub cameras: u32,
    /// Images per identity per view (at least 2: a test identity needs a
    /// query and a gallery image per view; at most 5 in the real set).
    pub images_per_view: Span,
    /// Probability that the detector missed one box of an identity's view
    /// (those images are absent from `detected` only).
    pub detection_miss: f32,
}

impl Default for Cuhk03Config {
    /// About 700 images per variant: 60 + 50 identities.
    fn default() -> Self {
        Self {
            train_ids: 60,
            test_ids: 50,
            cameras: 2,
            images_per_view: Span::new(2, 5),
            detection_miss: 0.02,
        }
    }
}

impl Cuhk03Config {
    /// Checks identity, view and image counts against the name format.
    pub fn validate(&self) -> Result<()> {
        check_pid_groups(
            "CUHK03-NP",
            &[("train", self.train_ids, 1), ("test", self.test_ids, 1)],
        )?;
        if self.cameras != MAX_CAMERAS {
            return Err(invalid(format!(
                "CUHK03-NP cameras is {}; the layout has exactly {MAX_CAMERAS} views (c1, c2)",
                self.cameras
            )));
        }
        self.images_per_view
            .check("CUHK03-NP images per identity per view", 2, 49)?;
        if !(0.0..=1.0).contains(&self.detection_miss) {
            return Err(invalid(format!(
                "CUHK03-NP detection miss probability {} is not in [0, 1]",
                self.detection_miss
            )));
        }
        Ok(())
    }
}

/// Writes a CUHK03-NP-style dataset (both `labeled` and `detected`) into
/// `<out>/cuhk03-np/` with one `synth_truth.json`. The report has two parts,
/// `labeled` and `detected`, each pointing at its folder.
pub fn write_cuhk03_np(out: &Path, world: &WorldConfig, cfg: &Cuhk03Config) -> Result<SynthReport> {
    world.validate()?;
    cfg.validate()?;
    let labeled = plan(world, cfg);
    let mut rng = stream_rng(world.seed, Layout::Cuhk03Np, Purpose::Detector, u64::MAX);
    let detected = detected_jobs(&labeled, cfg.detection_miss, &mut rng);
    let dir = prepare_dataset_dir(out, FOLDER, world.overwrite)?;
    let sw = StillWorld::new(Layout::Cuhk03Np, world, cfg.cameras);
    let mut parts = Vec::new();
    let mut truth_parts = Vec::new();
    let mut images = Vec::new();
    for (name, jobs) in [("labeled", &labeled), ("detected", &detected)] {
        let part_dir = dir.join(name);
        sw.write_all(&part_dir, jobs, Format::Png)?;
        let stats = PartStats::Images(DatasetStats {
            train: split_stats(jobs, "train"),
            query: split_stats(jobs, "query"),
            gallery: split_stats(jobs, "gallery"),
        });
        parts.push(ReportPart {
            name: name.into(),
            dir: part_dir,
            stats,
        });
        truth_parts.push(TruthPart {
            name: name.into(),
            folder: name.into(),
            stats,
        });
        images.extend(truth_entries(jobs, Path::new(name)));
    }
    let truth = SynthTruth {
        generator: generator_name(),
        layout: Layout::Cuhk03Np,
        seed: world.seed,
        world: world.clone(),
        config: config_json(cfg),
        parts: truth_parts,
        extra: vec![],
        noise: None,
        images,
        frames: vec![],
    };
    truth.write(&dir)?;
    Ok(SynthReport {
        layout: Layout::Cuhk03Np,
        dataset_dir: dir,
        parts,
        images_written: labeled.len() + detected.len(),
        noise: None,
    })
}

fn plan(world: &WorldConfig, cfg: &Cuhk03Config) -> Vec<StillJob> {
    let mut rng = stream_rng(world.seed, Layout::Cuhk03Np, Purpose::Plan, 0);
    let n = cfg.train_ids + cfg.test_ids;
    let mut pids = sample_pids(&mut rng, n, n);
    let mut test = pids.split_off(cfg.train_ids as usize);
    pids.sort_unstable();
    test.sort_unstable();
    let mut jobs: Vec<StillJob> = Vec::new();
    for (ids, is_train) in [(&pids, true), (&test, false)] {
        for &pid in ids {
            let mut idx = 0;
            for view in 0..cfg.cameras {
                for k in 0..cfg.images_per_view.sample(&mut rng) {
                    idx += 1;
                    let (folder, split) = match (is_train, k) {
                        (true, _) => ("bounding_box_train", "train"),
                        (false, 0) => ("query", "query"),
                        (false, _) => ("bounding_box_test", "gallery"),
                    };
                    let name = format!("{pid:04}_c{}_{idx:02}.png", view + 1);
                    StillJob::push_person(&mut jobs, folder, name, split, pid, view);
                }
            }
        }
    }
    jobs
}

/// The `detected` variant: the same jobs (same keys, so the same shots) with
/// detector jitter; in each (identity, view) group with at least two
/// non-query images, the last one is dropped with probability `miss`.
fn detected_jobs<R: Rng + ?Sized>(labeled: &[StillJob], miss: f32, rng: &mut R) -> Vec<StillJob> {
    let mut out = Vec::with_capacity(labeled.len());
    let mut i = 0;
    while i < labeled.len() {
        let (pid, cam) = (labeled[i].pid, labeled[i].camera);
        let end = labeled[i..]
            .iter()
            .position(|j| j.pid != pid || j.camera != cam)
            .map_or(labeled.len(), |p| i + p);
        let group = &labeled[i..end];
        let non_query = group.iter().filter(|j| j.split != "query").count();
        let drop_last = non_query >= 2 && rng.random_bool(f64::from(miss));
        let keep = if drop_last {
            group.len() - 1
        } else {
            group.len()
        };
        out.extend(group[..keep].iter().cloned().map(|mut j| {
            j.detector = true;
            j
        }));
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_must_be_two() {
        for cams in [0, 1, 3] {
            let cfg = Cuhk03Config {
                cameras: cams,
                ..Cuhk03Config::default()
            };
            assert!(cfg.validate().unwrap_err().to_string().contains("2 views"));
        }
    }

    #[test]
    fn detected_keeps_every_query_and_identity_view() {
        let cfg = Cuhk03Config {
            detection_miss: 1.0,
            ..Cuhk03Config::default()
        };
        let labeled = plan(&WorldConfig::default(), &cfg);
        let mut rng = stream_rng(0, Layout::Cuhk03Np, Purpose::Detector, 0);
        let detected = detected_jobs(&labeled, 1.0, &mut rng);
        assert!(detected.len() < labeled.len());
        let groups = |jobs: &[StillJob]| {
            jobs.iter()
                .map(|j| (j.pid, j.camera, j.split == "query"))
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(groups(&labeled), groups(&detected));
        assert!(detected.iter().all(|j| j.detector));
    }
}
