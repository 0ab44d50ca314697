//! File-name helpers shared by the parsers: which files are images, sorted
//! directory listings, and the `([-\d]+)_c(\d)` pid/camera pattern of
//! Market-1501, DukeMTMC-reID and CUHK03-NP.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Extensions (lower-case, without the dot) treated as images.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// True when `path` has an image extension (case-insensitive) and its name
/// does not start with `.` (hidden files such as macOS `._x.jpg` forks are
/// not images of the dataset).
pub fn is_image_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let ext_ok = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
    !hidden && ext_ok
}

/// The entries of `dir`, sorted by path (byte order), so that every parser's
/// output is independent of the file system's listing order.
pub fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

/// The image files directly inside `dir` (see [`is_image_file`]), sorted.
///
/// Nothing named like an image is dropped silently: an entry whose name is
/// not UTF-8 but ends in an image extension is a [`DataError::Malformed`],
/// and a symbolic link with an image name that leads nowhere (dangling, or
/// a loop) is a [`DataError::Io`] naming it. Folders named like images are
/// not images and are passed over.
pub fn sorted_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in sorted_entries(dir)? {
        let Some(name) = p.file_name() else { continue };
        if name.to_str().is_none() {
            let lossy = name.to_string_lossy();
            if !lossy.starts_with('.') && is_image_file(Path::new(lossy.as_ref())) {
                return Err(DataError::Malformed {
                    path: p,
                    expected: "a UTF-8 file name (rename the file)".into(),
                });
            }
            continue;
        }
        if !is_image_file(&p) {
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => out.push(p),
            Ok(_) => {}
            Err(e) => return Err(DataError::io(&p, e)),
        }
    }
    Ok(out)
}

/// The sub-directories of `dir` whose names do not start with `.`, sorted.
pub fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect())
}

/// The file name of `path` as UTF-8, or a [`DataError::Malformed`] naming it.
pub fn basename<'a>(path: &'a Path, expected: &str) -> Result<&'a str> {
    utf8_name(path, path.file_name(), expected)
}

/// The file name of `path` without its extension.
pub fn stem<'a>(path: &'a Path, expected: &str) -> Result<&'a str> {
    utf8_name(path, path.file_stem(), expected)
}

/// `name` (a part of `path`'s file name) as UTF-8, or a
/// [`DataError::Malformed`] naming `path`.
fn utf8_name<'a>(path: &Path, name: Option<&'a OsStr>, expected: &str) -> Result<&'a str> {
    name.and_then(|n| n.to_str())
        .ok_or_else(|| DataError::Malformed {
            path: path.to_path_buf(),
            expected: format!("a UTF-8 file name ({expected})"),
        })
}

/// Finds the leftmost match of the regular expression `([-\d]+)_c(\d)` in
/// `name` (same semantics as Python's `re.search`) and returns the two groups
/// as text: the pid run (digits and `-`) and the single camera digit.
///
/// Upstream applies the pattern to the *full path*; we apply it to the
/// basename only, so a directory such as `run_1_c2/` cannot be misparsed.
pub fn find_pid_cam(name: &str) -> Option<(&str, u32)> {
    let bytes = name.as_bytes();
    let is_pid_char = |b: u8| b == b'-' || b.is_ascii_digit();
    for start in 0..bytes.len() {
        if !bytes.get(start).copied().is_some_and(is_pid_char) {
            continue;
        }
        let mut end = start;
        while bytes.get(end).copied().is_some_and(is_pid_char) {
            end += 1;
        }
        // `[-\d]+` is greedy and `_` is outside its class, so backtracking
        // cannot produce another match from this start.
        if bytes.get(end) == Some(&b'_')
            && bytes.get(end + 1) == Some(&b'c')
            && let Some(cam) = bytes.get(end + 2).filter(|b| b.is_ascii_digit())
        {
            let pid = name.get(start..end)?;
            return Some((pid, u32::from(cam - b'0')));
        }
    }
    None
}

/// Parses an integer the way Python's `int()` would parse a token (ASCII
/// digits with an optional leading `-`); `None` otherwise.
pub fn parse_int(token: &str) -> Option<i64> {
    let digits = token.strip_prefix('-').unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// Formats `n` with `,` as the thousands separator (`15913` → `"15,913"`).
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_cam_pattern_matches_like_python_re_search() {
        assert_eq!(find_pid_cam("0002_c1s1_000451_03.jpg"), Some(("0002", 1)));
        assert_eq!(find_pid_cam("-1_c3s2_000127_01.jpg"), Some(("-1", 3)));
        assert_eq!(find_pid_cam("0001_c2_f0046182.jpg"), Some(("0001", 2)));
        assert_eq!(find_pid_cam("img_0005_c7_01.png"), Some(("0005", 7)));
        // The first `[-\d]+` run is not followed by `_c\d`; the second is.
        assert_eq!(find_pid_cam("12_x_0003_c4.jpg"), Some(("0003", 4)));
        assert_eq!(find_pid_cam("0002_cX.jpg"), None);
        assert_eq!(find_pid_cam("person.jpg"), None);
        assert_eq!(find_pid_cam("0002c1.jpg"), None);
    }

    #[test]
    fn ints_parse_like_python() {
        assert_eq!(parse_int("0002"), Some(2));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("1-2"), None);
        assert_eq!(parse_int("--1"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("-"), None);
    }

    #[test]
    fn image_files_are_recognised_by_extension() {
        assert!(is_image_file(Path::new("a/0001_c1.jpg")));
        assert!(is_image_file(Path::new("a/0001_c1.PNG")));
        assert!(!is_image_file(Path::new("a/Thumbs.db")));
        assert!(!is_image_file(Path::new("a/._0001_c1.jpg")));
        assert!(!is_image_file(Path::new("a/synth_truth.json")));
    }

    #[test]
    fn thousands_separator() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(15913), "15,913");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
