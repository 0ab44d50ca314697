//! Pixel primitives (clipped, not anti-aliased: frames and cells of rank
//! lists) and atomic PNG writing. Charts draw through the `scene` and
//! `raster` modules, whose lines are anti-aliased.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::Result;
use crate::output::{png_bytes, write_atomic};

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
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x.clamp(0, iw), x.saturating_add(i64::from(w)).clamp(0, iw));
    let (y0, y1) = (y.clamp(0, ih), y.saturating_add(i64::from(h)).clamp(0, ih));
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx as u32, yy as u32, c);
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

/// Draws an aliased line from `(x0, y0)` to `(x1, y1)` (Bresenham) with a
/// square pen of `width` pixels. For anti-aliased lines, draw a `Scene`
/// (module `scene`) with `raster::rasterize`.
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
    let w = i64::from(width.clamp(1, 64));
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
    write_atomic(path, &png_bytes(img, path)?)
}
