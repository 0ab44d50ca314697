//! Pixel primitives (clipped) and atomic PNG writing.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use crate::{Result, VizError};

/// Sets one pixel; coordinates outside the image are ignored.
pub fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0
        && y >= 0
        && (x as u64) < u64::from(img.width())
        && (y as u64) < u64::from(img.height())
    {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// Fills the rectangle `[x, x + w) × [y, y + h)` (clipped).
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, c: Rgb<u8>) {
    for yy in y..y + i64::from(h) {
        for xx in x..x + i64::from(w) {
            put(img, xx, yy, c);
        }
    }
}

/// Draws a rectangle outline `thickness` pixels wide, inside the box.
pub fn frame(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, thickness: u32, c: Rgb<u8>) {
    let t = thickness.min(w / 2).min(h / 2);
    fill_rect(img, x, y, w, t, c);
    fill_rect(img, x, y + i64::from(h) - i64::from(t), w, t, c);
    fill_rect(img, x, y, t, h, c);
    fill_rect(img, x + i64::from(w) - i64::from(t), y, t, h, c);
}

/// Draws a line from `(x0, y0)` to `(x1, y1)` (Bresenham) with a square pen
/// of `width` pixels.
pub fn line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    width: u32,
    c: Rgb<u8>,
) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    let w = i64::from(width.max(1));
    let off = (w - 1) / 2;
    loop {
        for a in 0..w {
            for b in 0..w {
                put(img, x - off + a, y - off + b, c);
            }
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Writes `img` as a PNG at `path` atomically (a sibling `.tmp` file is
/// written, then renamed). Creates the parent folder.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let err = |p: &Path, e: String| VizError::Io {
        path: p.to_path_buf(),
        message: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| err(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e.to_string()))
}
