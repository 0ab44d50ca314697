//! Output folders and deterministic image encoding.

use std::fs;
use std::path::{Path, PathBuf};

use image::ImageEncoder;
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use super::invalid;
use super::truth::TRUTH_FILE;
use crate::error::{Result, SynthError};

/// The image file format of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// JPEG at the given quality.
    Jpeg(u8),
    /// PNG (lossless).
    Png,
}

/// Creates `<out>/<name>` and returns it. An existing non-empty folder is
/// refused unless `overwrite`, and even then it is only deleted when it holds
/// a `synth_truth.json` (i.e. this generator wrote it).
pub(crate) fn prepare_dataset_dir(out: &Path, name: &str, overwrite: bool) -> Result<PathBuf> {
    let dir = out.join(name);
    if dir.exists() {
        if !dir.is_dir() {
            return Err(invalid(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        let non_empty = fs::read_dir(&dir)
            .map_err(|e| SynthError::io(&dir, e))?
            .next()
            .is_some();
        if non_empty {
            if !overwrite {
                return Err(invalid(format!(
                    "output folder {} exists and is not empty; refusing to overwrite it (pass --force / WorldConfig::overwrite)",
                    dir.display()
                )));
            }
            if !dir.join(TRUTH_FILE).is_file() {
                return Err(invalid(format!(
                    "output folder {} is not empty and holds no {TRUTH_FILE}, so it was not written by this generator; refusing to delete it",
                    dir.display()
                )));
            }
            fs::remove_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
        }
    }
    fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
    Ok(dir)
}

/// Creates a directory and its parents.
pub(crate) fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))
}

/// Encodes `img` in `format` (deterministic: fixed quality, fixed PNG settings).
pub(crate) fn encode(img: &RgbImage, format: Format, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity((img.width() * img.height()) as usize);
    let res = match format {
        Format::Jpeg(q) => JpegEncoder::new_with_quality(&mut bytes, q).encode_image(img),
        Format::Png => {
            PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Sub)
                .write_image(
                    img.as_raw(),
                    img.width(),
                    img.height(),
                    image::ExtendedColorType::Rgb8,
                )
        }
    };
    res.map_err(|e| SynthError::image(path, e))?;
    Ok(bytes)
}

/// Encodes `img` and writes it to `path`.
pub(crate) fn write_image(img: &RgbImage, format: Format, path: &Path) -> Result<()> {
    let bytes = encode(img, format, path)?;
    fs::write(path, bytes).map_err(|e| SynthError::io(path, e))
}

/// Writes a text file.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| SynthError::io(path, e))
}

/// `rel` as a `/`-separated string (for sidecars and list files).
pub(crate) fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
