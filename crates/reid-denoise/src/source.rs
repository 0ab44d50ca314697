//! Video sources: a parsed corpus with its features, in memory or streamed
//! from a `.npy` file.
//!
//! Row order is the corpus order of `reid_data`'s [`Corpus::images`]: videos
//! in order, in each video its tracklets by ascending pid (crops by frame),
//! then its untracked crops. Feature files must follow it (the `extract`
//! example and [`corpus_paths`] do).

use std::path::Path;

use ndarray::{Array2, ArrayView2, s};
use reid_data::datasets::corpus::{Corpus, Video};
use reid_data::{ImageLocation, ImageRecord};

use crate::block::VideoBlock;
use crate::error::{DenoiseError, Result};
use crate::npy::NpyRows;

/// Each crop's location relative to the corpus root (`/`-separated; an LMDB
/// key as it is), in row order.
pub fn corpus_paths(corpus: &Corpus) -> Vec<String> {
    corpus
        .images()
        .map(|r| relative_location(&corpus.root, r))
        .collect()
}

fn relative_location(root: &Path, r: &ImageRecord) -> String {
    match &r.location {
        ImageLocation::Path(p) => {
            let rel = p.strip_prefix(root).unwrap_or(p);
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        }
        ImageLocation::LmdbKey(key) => key.clone(),
    }
}

fn block_meta(video: &Video, first_row: u64, features: Array2<f32>) -> VideoBlock {
    let imgs: Vec<&ImageRecord> = video.images().collect();
    VideoBlock {
        video: video.index,
        first_row,
        tracklets: imgs.iter().map(|r| r.tracklet).collect(),
        // Unknown frames get distinct values so the frame rule never fires on them.
        frames: imgs
            .iter()
            .enumerate()
            .map(|(i, r)| r.frame.unwrap_or(u64::MAX - i as u64))
            .collect(),
        features,
    }
}

/// Blocks of a corpus whose features `[images, dim]` are in memory.
pub fn corpus_blocks<'a>(
    corpus: &'a Corpus,
    features: ArrayView2<'a, f32>,
) -> Result<impl Iterator<Item = Result<VideoBlock>> + 'a> {
    let total = corpus.stats().images;
    if features.nrows() != total {
        return Err(DenoiseError::Inconsistent(row_count_mismatch(
            features.nrows() as u64,
            corpus,
        )));
    }
    let mut row = 0usize;
    Ok(corpus.videos.iter().map(move |v| {
        let n = v.num_images();
        let f = features.slice(s![row..row + n, ..]).to_owned();
        let b = block_meta(v, row as u64, f);
        row += n;
        Ok(b)
    }))
}

/// The message for `rows` feature rows that do not match `corpus`.
fn row_count_mismatch(rows: u64, corpus: &Corpus) -> String {
    format!(
        "{rows} feature rows for a corpus of {} images at {} (expected one row per image, in corpus order)",
        corpus.stats().images,
        corpus.root.display()
    )
}

/// Blocks of a corpus whose features are streamed from a `.npy` file.
pub fn corpus_npy_blocks<'a>(
    corpus: &'a Corpus,
    npy: &'a Path,
) -> Result<impl Iterator<Item = Result<VideoBlock>> + 'a> {
    let mut rows = NpyRows::open(npy)?;
    let total = corpus.stats().images as u64;
    if rows.rows() != total {
        return Err(DenoiseError::npy(
            npy,
            row_count_mismatch(rows.rows(), corpus),
        ));
    }
    let mut row = 0u64;
    Ok(corpus.videos.iter().map(move |v| {
        let n = v.num_images();
        let f = rows.next_rows(n)?;
        let b = block_meta(v, row, f);
        row += n as u64;
        Ok(b)
    }))
}

/// The true person of every crop (row order) when the corpus was written by
/// `reid_synth` (a `synth_truth.json` in the corpus folder or its
/// parent); `None` otherwise. `-1` marks a false detection.
pub fn synthetic_truth(corpus: &Corpus) -> Result<Option<Vec<i64>>> {
    use reid_synth::truth::{SynthTruth, TRUTH_FILE};
    let dir = [corpus.root.clone(), corpus.root.join("..")]
        .into_iter()
        .find(|d| d.join(TRUTH_FILE).is_file());
    let Some(dir) = dir else {
        return Ok(None);
    };
    let truth = SynthTruth::read(&dir).map_err(reid_data::DataError::from)?;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let by_path: std::collections::HashMap<std::path::PathBuf, i64> = truth
        .frames
        .iter()
        .map(|f| (canon(&dir.join(&f.path)), f.person))
        .collect();
    let mut out = Vec::with_capacity(by_path.len());
    for r in corpus.images() {
        let ImageLocation::Path(p) = &r.location else {
            return Ok(None);
        };
        match by_path.get(&canon(p)) {
            Some(&person) => out.push(person),
            None => {
                return Err(DenoiseError::Inconsistent(format!(
                    "{} is not listed in {}",
                    p.display(),
                    dir.join(TRUTH_FILE).display()
                )));
            }
        }
    }
    Ok(Some(out))
}

/// The corpus's crops relabelled with their true persons
/// ([`synthetic_truth`]), false detections dropped, in row order: an
/// oracle for perfect denoising (for diagnostics such as the demo's
/// `--pretrain oracle`). `None` when the corpus has no truth file.
pub fn truth_records(corpus: &Corpus) -> Result<Option<Vec<ImageRecord>>> {
    let Some(truth) = synthetic_truth(corpus)? else {
        return Ok(None);
    };
    Ok(Some(
        corpus
            .images()
            .zip(truth)
            .filter(|(_, person)| *person >= 0)
            .map(|(r, person)| ImageRecord {
                pid: person,
                ..r.clone()
            })
            .collect(),
    ))
}

#[cfg(test)]
mod truth_tests {
    use std::collections::BTreeSet;

    use reid_data::datasets::luperson_nl;
    use reid_synth::{LupersonNlConfig, WorldConfig, write_luperson_nl};

    use super::*;

    #[test]
    fn truth_records_carry_the_true_persons_and_drop_false_detections() {
        let dir = std::env::temp_dir().join(format!("reid-truth-records-{}", std::process::id()));
        let world = WorldConfig::sized(3, 32, 16).with_overwrite(true);
        let mut cfg = LupersonNlConfig::default();
        cfg.video.videos = 4;
        let report = write_luperson_nl(&dir, &world, &cfg).unwrap();
        let corpus = luperson_nl::parse(&report.dataset_dir).unwrap();
        let truth = synthetic_truth(&corpus).unwrap().unwrap();
        let records = truth_records(&corpus).unwrap().unwrap();
        let real: Vec<i64> = truth.iter().copied().filter(|&p| p >= 0).collect();
        assert!(
            real.len() < truth.len(),
            "the default tracker writes false detections"
        );
        assert_eq!(records.iter().map(|r| r.pid).collect::<Vec<_>>(), real);
        // Same crops, in row order, with only the label changed.
        let kept: Vec<&ImageRecord> = corpus
            .images()
            .zip(&truth)
            .filter(|(_, p)| **p >= 0)
            .map(|(r, _)| r)
            .collect();
        for (a, b) in records.iter().zip(kept) {
            assert_eq!(a.location, b.location);
            assert_eq!(a.camid, b.camid);
        }
        let persons: BTreeSet<i64> = real.iter().copied().collect();
        let tracklets: BTreeSet<i64> = corpus.images().map(|r| r.pid).collect();
        assert!(persons.len() < tracklets.len(), "tracklets split persons");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
