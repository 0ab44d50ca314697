//! What every program that reads images shares: `--on-corrupt error|skip`
//! ([`OnCorrupt`]), the record of what was skipped ([`Skipped`], printed in
//! the run's summary), folder listings that refuse what they cannot read
//! instead of dropping it ([`image_files`]), and a decode check of a list
//! of images ([`check_images`]).
//!
//! The policy follows the library's loader
//! (`reid_data::loader::CorruptPolicy`): only an image that cannot be
//! decoded (a truncated or damaged file, a file that is not an image) is
//! skipped under `skip`; a missing or unreadable file (a dangling symbolic
//! link, no permission) is always an error, since it points at a wrong
//! setup rather than at one bad image.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use reid_data::DataError;

use super::exit::{classify_data, usage};

/// What to do with an image that cannot be decoded.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Stop with an error naming the file (exit code 2).
    #[default]
    Error,
    /// Leave the image out, count it and name it in the summary.
    Skip,
}

impl From<OnCorrupt> for reid_data::loader::CorruptPolicy {
    fn from(o: OnCorrupt) -> Self {
        match o {
            OnCorrupt::Error => Self::Error,
            OnCorrupt::Skip => Self::Skip,
        }
    }
}

/// How many names of skipped images a summary lists.
pub const LISTED: usize = 10;

/// Images left out under `--on-corrupt skip`, with the decoder's reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// `(file, reason)`, in the order met.
    pub files: Vec<(PathBuf, String)>,
}

impl Skipped {
    /// Number of images left out.
    pub fn count(&self) -> usize {
        self.files.len()
    }

    /// The summary line(s): how many were skipped and the first
    /// [`LISTED`] names; empty when none was.
    pub fn summary(&self, what: &str) -> String {
        if self.files.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "skipped {} corrupt image{} of {what} (--on-corrupt skip):",
            self.count(),
            if self.count() == 1 { "" } else { "s" }
        );
        for (p, why) in self.files.iter().take(LISTED) {
            s.push_str(&format!("\n  {}: {why}", p.display()));
        }
        if self.count() > LISTED {
            s.push_str(&format!("\n  … and {} more", self.count() - LISTED));
        }
        s
    }
}

/// Whether `name` (lossy) ends in one of `extensions` (lower-case, no dot).
fn has_extension(name: &str, extensions: &[&str]) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, e)| extensions.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files directly in `dir` whose extension is one of
/// `extensions`, sorted by name. Nothing that looks like an image is
/// dropped without a word: a name that is not UTF-8 (it could not be
/// listed faithfully in the outputs) and a symbolic link that leads
/// nowhere (dangling, or a loop) are errors naming the entry. `flag` names
/// the argument in messages (`--images`).
///
/// # Errors
/// A usage error when `dir` cannot be listed, holds no image, or holds one
/// of the entries above.
pub fn image_files(dir: &Path, extensions: &[&str], flag: &str) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        usage(format!(
            "{flag} {}: cannot list the folder: {e}",
            dir.display()
        ))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| classify_data(DataError::io(dir, e)))?;
        let path = entry.path();
        let raw = entry.file_name();
        let lossy = raw.to_string_lossy();
        if !has_extension(&lossy, extensions) || lossy.starts_with('.') {
            continue;
        }
        if raw.to_str().is_none() {
            return Err(usage(format!(
                "{flag} {}: the file name {:?} is not valid UTF-8; rename it (its name could not be written to the outputs)",
                dir.display(),
                lossy
            )));
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) => {} // a folder named like an image
            Err(e) => {
                return Err(usage(format!(
                    "{}: cannot read this image ({e}); a symbolic link that leads nowhere, or no permission",
                    path.display()
                )));
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(usage(format!(
            "{flag} {}: no {} files",
            dir.display(),
            extensions
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join("/")
        )));
    }
    Ok(files)
}

/// Decodes every image of `paths` (in parallel, with the loader's strict
/// decoder: a truncated JPEG is corrupt) and applies `policy`: returns the
/// indices of the images that decode and what was skipped.
///
/// # Errors
/// Under [`OnCorrupt::Error`], the first corrupt image (a usage error
/// naming it); under either policy, a file that cannot be read.
pub fn check_images(paths: &[PathBuf], policy: OnCorrupt) -> anyhow::Result<(Vec<usize>, Skipped)> {
    let decode = |p: &PathBuf| -> Result<(), DataError> {
        let bytes = std::fs::read(p).map_err(|e| DataError::io(p, e))?;
        // A decoder that fails on a damaged file by panicking is a corrupt
        // image like any other.
        std::panic::catch_unwind(|| reid_data::loader::decode_rgb(&bytes, p).map(|_| ()))
            .unwrap_or_else(|_| {
                Err(DataError::Image {
                    path: p.clone(),
                    message: "the decoder failed on this file".into(),
                })
            })
    };
    let decode = &decode;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = paths.len().div_ceil(threads).max(1);
    let results: Vec<Result<(), DataError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(decode).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .zip(paths.chunks(chunk))
            .flat_map(|(w, part)| {
                w.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|p| {
                            Err(DataError::Image {
                                path: p.clone(),
                                message: "the decoder failed on this file".into(),
                            })
                        })
                        .collect()
                })
            })
            .collect()
    });
    let mut kept = Vec::with_capacity(paths.len());
    let mut skipped = Skipped::default();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(()) => kept.push(i),
            Err(DataError::Image { path, message }) if policy == OnCorrupt::Skip => {
                skipped.files.push((path, message));
            }
            Err(e) => return Err(classify_data(e)),
        }
    }
    Ok((kept, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_names_the_first_files() {
        let mut s = Skipped::default();
        assert_eq!(s.summary("the query"), "");
        for i in 0..12 {
            s.files
                .push((PathBuf::from(format!("/d/{i}.jpg")), "truncated".into()));
        }
        let text = s.summary("the query");
        assert!(text.starts_with("skipped 12 corrupt images of the query"));
        assert!(text.contains("/d/0.jpg: truncated"));
        assert!(text.ends_with("… and 2 more"));
    }

    #[test]
    fn extensions_are_matched_without_case() {
        assert!(has_extension("a.JPG", &["jpg"]));
        assert!(!has_extension("a.jpg.txt", &["jpg"]));
        assert!(!has_extension("jpg", &["jpg"]));
    }
}
