//! Picture files: the format (PNG or SVG) and atomic writing (a sibling
//! `.tmp` file, then a rename; the parent folder is created).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::raster::rasterize;
use crate::scene::Scene;
use crate::svg::to_svg;
use crate::{Result, VizError};

/// The largest picture side accepted by the charts, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Picture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// PNG, RGB8, drawn by our rasteriser (anti-aliased lines, bitmap font).
    #[default]
    Png,
    /// SVG 1.1 text: the same items as vectors, text in a monospace font.
    Svg,
}

impl Format {
    /// The file extension, without the dot: `"png"` or `"svg"`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }

    /// The format a path's extension names (`.png` or `.svg`, any case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = VizError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(Format::Png),
            "svg" => Ok(Format::Svg),
            other => Err(VizError::Invalid(format!(
                "picture format: expected \"png\" or \"svg\", got {other:?}"
            ))),
        }
    }
}

/// Writes `bytes` to `path` atomically, creating the parent folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |p: &Path, e: std::io::Error| VizError::Io {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    }
    // Unique to this process and call, so that concurrent writers of one
    // path never rename each other's half-written file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_added_extension(format!("{}.{n}.tmp", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(path, e)
    })
}

/// PNG bytes of an image.
pub(crate) fn png_bytes(img: &image::RgbImage, path: &Path) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| VizError::Io {
            path: path.to_path_buf(),
            message: format!("cannot encode the PNG: {e}"),
        })?;
    Ok(buf.into_inner())
}

/// Writes `scene` to `path` in `format`, atomically.
pub fn save_scene(scene: &Scene, path: &Path, format: Format) -> Result<()> {
    let bytes = match format {
        Format::Png => png_bytes(&rasterize(scene), path)?,
        Format::Svg => to_svg(scene).into_bytes(),
    };
    write_atomic(path, &bytes)
}

/// Adds the output methods shared by the charts (`render`, `render_svg`,
/// `save`) to a chart type that has `scene(&self, width, height) -> Scene`
/// and `check(&self) -> Result<()>`. The methods are inherent, so callers
/// need no trait in scope.
macro_rules! chart_outputs {
    ($chart:ty) => {
        impl $chart {
            /// Renders the chart into a `width × height` RGB image (at least
            /// [`crate::chart::MIN_SIZE`], at most [`crate::output::MAX_SIDE`]
            /// per side). Always draws: see the module documentation for
            /// degenerate data.
            pub fn render(&self, width: u32, height: u32) -> image::RgbImage {
                crate::raster::rasterize(&self.scene(width, height))
            }

            /// The chart as an SVG document (the same items as [`Self::render`]).
            pub fn render_svg(&self, width: u32, height: u32) -> String {
                crate::svg::to_svg(&self.scene(width, height))
            }

            /// Writes the chart to `path` as `format` (atomically), after
            /// [`Self::check`]: a chart with nothing to draw is an error, not
            /// an empty file.
            pub fn save(
                &self,
                path: &std::path::Path,
                format: crate::output::Format,
                width: u32,
                height: u32,
            ) -> crate::Result<()> {
                self.check().map_err(|e| e.for_file(path))?;
                crate::output::save_scene(&self.scene(width, height), path, format)
            }
        }
    };
}
pub(crate) use chart_outputs;

/// `width × height` clamped to what the charts draw: at least `min`, at most
/// [`MAX_SIDE`] per side.
pub(crate) fn clamp_size(width: u32, height: u32, min: (u32, u32)) -> (u32, u32) {
    (width.clamp(min.0, MAX_SIDE), height.clamp(min.1, MAX_SIDE))
}
