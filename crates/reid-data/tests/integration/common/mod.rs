//! Helpers shared by the integration test modules: empty dataset files,
//! expected statistics, expected errors, sampler records and parity
//! fixtures.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use image::RgbImage;
use reid_data::DataError;
use reid_data::ImageRecord;
use reid_data::record::{CorpusStats, ImageLocation, SplitStats};

/// Creates `dir` (and its parents) holding an empty file per name (the
/// parsers read names only, they do not decode).
pub fn touch(dir: &Path, names: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for n in names {
        fs::write(dir.join(n), b"").unwrap();
    }
}

/// The file name (or LMDB key) a record points to.
pub fn name_of(r: &ImageRecord) -> String {
    match &r.location {
        ImageLocation::Path(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
        ImageLocation::LmdbKey(k) => k.clone(),
    }
}

/// The statistics of a split of `images` images of `ids` identities seen by
/// `cams` cameras.
pub fn split_stats(images: usize, ids: usize, cams: usize) -> SplitStats {
    SplitStats { images, ids, cams }
}

/// The statistics of a corpus of `videos` videos, `tracklets` tracklets and
/// `images` images.
pub fn corpus_stats(videos: usize, tracklets: usize, images: usize) -> CorpusStats {
    CorpusStats {
        videos,
        tracklets,
        images,
    }
}

/// Asserts that `res` failed with [`DataError::Malformed`] naming `file`;
/// returns the error.
pub fn assert_malformed<T: Debug>(res: reid_data::Result<T>, file: &Path) -> DataError {
    let err = res.unwrap_err();
    assert!(
        matches!(&err, DataError::Malformed { path, .. } if path == file),
        "{err}"
    );
    err
}

/// Asserts that `res` failed with [`DataError::Layout`] naming `dir`.
pub fn assert_layout<T: Debug>(res: reid_data::Result<T>, dir: &Path) {
    let err = res.unwrap_err();
    assert!(
        matches!(&err, DataError::Layout { path, .. } if path == dir),
        "{err}"
    );
}

/// Identities `0..n_ids` with `counts(pid)` images each (raw pids
/// scrambled as `pid * 10 + 3`), for the samplers.
pub fn records(n_ids: i64, counts: impl Fn(i64) -> usize) -> Vec<ImageRecord> {
    let mut v = Vec::new();
    for pid in 0..n_ids {
        for i in 0..counts(pid) {
            v.push(ImageRecord::new(format!("{pid}_{i}.jpg"), pid * 10 + 3, 0));
        }
    }
    v
}

/// Asserts that every batch holds `batch` indices into `recs` made of
/// `batch / k` groups of `k` images, each group one identity, no identity
/// twice in a batch.
pub fn check_batches(recs: &[ImageRecord], batches: &[Vec<usize>], batch: usize, k: usize) {
    for b in batches {
        assert_eq!(b.len(), batch);
        let pids: Vec<i64> = b.iter().map(|&i| recs[i].pid).collect();
        for chunk in pids.chunks(k) {
            assert!(chunk.iter().all(|&p| p == chunk[0]), "{pids:?}");
        }
        let distinct: BTreeSet<i64> = pids.chunks(k).map(|c| c[0]).collect();
        assert_eq!(distinct.len(), batch / k, "{pids:?}");
    }
}

/// Asserts that a sampler's epochs, `batches(seed, epoch)`, depend on the
/// seed and the epoch only: equal for equal arguments (epochs 0 and
/// `later_epoch`), different for another epoch or seed.
pub fn assert_seeded_by_epoch(batches: impl Fn(u64, u64) -> Vec<Vec<usize>>, later_epoch: u64) {
    assert_eq!(batches(42, 0), batches(42, 0));
    assert_eq!(batches(42, later_epoch), batches(42, later_epoch));
    assert_ne!(batches(42, 0), batches(42, 1));
    assert_ne!(batches(42, 0), batches(43, 0));
}

/// The parity fixture folder `tests/fixtures/<kind>`.
pub fn fixtures(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// The fixture image `name` of `tests/fixtures/<kind>`, as RGB.
pub fn load_fixture(kind: &str, name: &str) -> RgbImage {
    image::open(fixtures(kind).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .to_rgb8()
}

/// The `manifest.json` of `tests/fixtures/<kind>`.
pub fn fixture_manifest(kind: &str) -> serde_json::Value {
    let text = fs::read_to_string(fixtures(kind).join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}
