//! Where the encoded bytes of an [`ImageRecord`] come from, and their
//! decoding into 8-bit RGB ([`ImageSource`], [`decode_rgb`]).

use std::path::{Path, PathBuf};
#[cfg(feature = "lmdb")]
use std::sync::Arc;

use image::RgbImage;

#[cfg(feature = "lmdb")]
use crate::datasets::lmdb::LmdbReader;
use crate::error::{DataError, Result};
use crate::record::{ImageLocation, ImageRecord};

/// Reads the encoded bytes of records: [`ImageLocation::Path`] from the file
/// system, [`ImageLocation::LmdbKey`] from an LMDB environment (cargo
/// feature `lmdb`; one value is copied out per read, the database itself is
/// only memory-mapped). Cloning is cheap (the reader is shared).
#[derive(Clone, Default)]
pub struct ImageSource {
    #[cfg(feature = "lmdb")]
    lmdb: Option<Arc<LmdbReader>>,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ImageSource");
        #[cfg(feature = "lmdb")]
        d.field("lmdb", &self.lmdb.as_ref().map(|r| r.path().to_path_buf()));
        d.finish()
    }
}

impl ImageSource {
    /// A source of file paths only; an LMDB key is an error.
    pub fn files() -> Self {
        Self::default()
    }

    /// A source that reads LMDB keys from `reader` (and paths from disk).
    #[cfg(feature = "lmdb")]
    pub fn lmdb(reader: Arc<LmdbReader>) -> Self {
        Self { lmdb: Some(reader) }
    }

    /// Whether LMDB keys can be read (an LMDB reader is attached).
    pub fn reads_lmdb(&self) -> bool {
        #[cfg(feature = "lmdb")]
        {
            self.lmdb.is_some()
        }
        #[cfg(not(feature = "lmdb"))]
        {
            false
        }
    }

    /// How errors and statistics name `location`: the file path, or
    /// `<lmdb folder>/<key>` (`<key>` alone without a reader).
    pub fn name(&self, location: &ImageLocation) -> PathBuf {
        match location {
            ImageLocation::Path(p) => p.clone(),
            ImageLocation::LmdbKey(key) => {
                #[cfg(feature = "lmdb")]
                if let Some(r) = &self.lmdb {
                    return r.path().join(key);
                }
                PathBuf::from(key)
            }
        }
    }

    /// The encoded bytes at `location`. A missing file is a
    /// [`DataError::Io`]; a missing key, or a key without an LMDB reader, a
    /// [`DataError::Lmdb`].
    pub fn read(&self, location: &ImageLocation) -> Result<Vec<u8>> {
        match location {
            ImageLocation::Path(p) => std::fs::read(p).map_err(|e| DataError::io(p, e)),
            ImageLocation::LmdbKey(key) => self.read_key(key),
        }
    }

    #[cfg(feature = "lmdb")]
    fn read_key(&self, key: &str) -> Result<Vec<u8>> {
        match &self.lmdb {
            Some(r) => r.get(key),
            None => Err(no_reader(key)),
        }
    }

    #[cfg(not(feature = "lmdb"))]
    fn read_key(&self, key: &str) -> Result<Vec<u8>> {
        Err(no_reader(key))
    }

    /// Reads and decodes the image of `record` (see [`decode_rgb`]).
    pub fn load(&self, record: &ImageRecord) -> Result<RgbImage> {
        let bytes = self.read(&record.location)?;
        decode_rgb(&bytes, &self.name(&record.location))
    }
}

fn no_reader(key: &str) -> DataError {
    DataError::Lmdb {
        path: PathBuf::from(key),
        message: format!(
            "the record's image is the LMDB key `{key}`, but the loader has no LMDB reader \
             (build with the `lmdb` feature and use ImageSource::lmdb)"
        ),
    }
}

/// Decodes encoded image bytes (JPEG, PNG) into 8-bit RGB; `name` is the
/// file the errors name.
///
/// Like Pillow (which refuses truncated files unless
/// `ImageFile.LOAD_TRUNCATED_IMAGES` is set), a JPEG whose data stops before
/// its end-of-image marker is a [`DataError::Image`], although the `image`
/// crate's lenient decoder would return a partly grey picture.
pub fn decode_rgb(bytes: &[u8], name: &Path) -> Result<RgbImage> {
    let bad = |message: String| DataError::Image {
        path: name.to_path_buf(),
        message,
    };
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_complete(bytes).map_err(|m| bad(m.to_string()))?;
    }
    image::load_from_memory(bytes)
        .map(image::DynamicImage::into_rgb8)
        .map_err(|e| bad(e.to_string()))
}

/// Checks that a JPEG has its header segments, a start of scan and an
/// end-of-image marker after it.
fn jpeg_complete(b: &[u8]) -> std::result::Result<(), &'static str> {
    let mut pos = 2;
    let scan = loop {
        // Skip to the next marker (tolerating stray bytes, as libjpeg does).
        while b.get(pos).is_some_and(|&x| x != 0xFF) {
            pos += 1;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = b.get(pos) else {
            return Err("truncated JPEG: the file ends before the image data");
        };
        pos += 1;
        match marker {
            0xDA => break pos,
            0xD9 => return Err("corrupt JPEG: end-of-image marker before the image data"),
            0x01 | 0xD0..=0xD8 => {}
            _ => {
                let (Some(&hi), Some(&lo)) = (b.get(pos), b.get(pos + 1)) else {
                    return Err("truncated JPEG: the file ends inside a header segment");
                };
                pos += usize::from(u16::from_be_bytes([hi, lo]));
            }
        }
    };
    let tail = b.get(scan..).unwrap_or_default();
    if tail.windows(2).rev().any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        Err("truncated JPEG: no end-of-image marker after the image data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(24, 48, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 5) as u8, 99])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_a_complete_jpeg() {
        let img = decode_rgb(&jpeg(), Path::new("a.jpg")).unwrap();
        assert_eq!(img.dimensions(), (24, 48));
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors_naming_the_file() {
        let full = jpeg();
        for cut in [3, 40, full.len() / 2, full.len() - 2] {
            let err = decode_rgb(&full[..cut], Path::new("cut.jpg")).unwrap_err();
            assert!(matches!(err, DataError::Image { .. }), "{cut}: {err}");
            assert!(err.to_string().contains("cut.jpg"), "{err}");
        }
        let err = decode_rgb(b"not an image at all", Path::new("g.jpg")).unwrap_err();
        assert!(err.to_string().contains("g.jpg"), "{err}");
        assert!(decode_rgb(&[], Path::new("e.jpg")).is_err());
    }

    #[test]
    fn an_lmdb_key_without_reader_is_an_error_naming_it() {
        let loc = ImageLocation::LmdbKey("vid1/000_01.jpg".into());
        let err = ImageSource::files().read(&loc).unwrap_err().to_string();
        assert!(err.contains("vid1/000_01.jpg"), "{err}");
    }
}
