//! What the loader does with an image that cannot be decoded, and the
//! counters it reports ([`CorruptPolicy`], [`LoaderStats`]).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many skipped images [`LoaderStats::skipped_paths`] names (the first
/// ones, in load order).
pub const MAX_SKIPPED_PATHS: usize = 32;

/// What to do with a corrupt or truncated image (bytes that are not a
/// complete image: [`DataError::Image`](crate::DataError::Image)).
///
/// Missing files, unreadable LMDB entries and bad arguments are always
/// errors, whatever the policy: they point at a wrong setup, not at one bad
/// image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CorruptPolicy {
    /// Stop: the batch is an error naming the file (the default).
    #[default]
    Error,
    /// Drop the image from its batch (the batch gets shorter), count it in
    /// [`LoaderStats::skipped`] and go on.
    Skip,
}

/// What a loader has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoaderStats {
    /// Images decoded and transformed.
    pub images: u64,
    /// Corrupt images skipped under [`CorruptPolicy::Skip`].
    pub skipped: u64,
    /// The first [`MAX_SKIPPED_PATHS`] skipped images (a file path, or
    /// `<lmdb folder>/<key>`), in load order.
    pub skipped_paths: Vec<PathBuf>,
}

/// Thread-safe counters behind [`LoaderStats`], shared by a loader's clones
/// and its prefetch thread.
#[derive(Debug, Default)]
pub struct StatsCounter {
    images: AtomicU64,
    skipped: AtomicU64,
    paths: Mutex<Vec<PathBuf>>,
}

impl StatsCounter {
    /// Adds `n` successfully loaded images.
    pub fn add_images(&self, n: u64) {
        self.images.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one skipped image at `path`.
    pub fn add_skipped(&self, path: PathBuf) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if paths.len() < MAX_SKIPPED_PATHS {
            paths.push(path);
        }
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> LoaderStats {
        LoaderStats {
            images: self.images.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            skipped_paths: self.paths.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        self.images.store(0, Ordering::Relaxed);
        self.skipped.store(0, Ordering::Relaxed);
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_caps_the_path_list() {
        let c = StatsCounter::default();
        c.add_images(3);
        for i in 0..(MAX_SKIPPED_PATHS + 5) {
            c.add_skipped(PathBuf::from(format!("{i}.jpg")));
        }
        let s = c.snapshot();
        assert_eq!(s.images, 3);
        assert_eq!(s.skipped, (MAX_SKIPPED_PATHS + 5) as u64);
        assert_eq!(s.skipped_paths.len(), MAX_SKIPPED_PATHS);
        assert_eq!(s.skipped_paths[0], PathBuf::from("0.jpg"));
        c.reset();
        assert_eq!(c.snapshot(), LoaderStats::default());
    }
}
