//! Renders a [`Scene`] to an RGB image: rectangles on whole pixels, bitmap
//! text, and poly-lines anti-aliased by exact coverage of a round-capped
//! stroke (each pixel takes `clamp(width/2 + 1/2 − d, 0, 1)` of the colour,
//! `d` the distance of its centre to the nearest segment; the maximum over the
//! segments of one poly-line, so joins are not painted twice). Plain `f64`
//! arithmetic in a fixed order: the same scene gives the same pixels.

use image::{Rgb, RgbImage};

use crate::font::draw_text;
use crate::scene::{Item, Scene};

/// Renders `scene` into a new image of its size.
pub fn rasterize(scene: &Scene) -> RgbImage {
    let mut img = RgbImage::from_pixel(scene.width, scene.height, scene.background);
    for item in &scene.items {
        draw_item(&mut img, item);
    }
    img
}

fn draw_item(img: &mut RgbImage, item: &Item) {
    match item {
        Item::Rect { x, y, w, h, color } => fill(img, *x, *y, *w, *h, *color),
        Item::Polyline {
            points,
            width,
            color,
        } => stroke(img, points, *width, *color),
        Item::Text {
            x,
            y,
            text,
            color,
            scale,
        } => draw_text(img, round_px(*x), round_px(*y), text, *color, *scale),
        Item::Group { items, .. } => items.iter().for_each(|i| draw_item(img, i)),
    }
}

/// A coordinate rounded to a whole pixel, far values clamped.
fn round_px(v: f64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    v.clamp(-1e9, 1e9).round() as i64
}

/// Fills `[round(x), round(x + w)) × [round(y), round(y + h))`, clipped.
fn fill(img: &mut RgbImage, x: f64, y: f64, w: f64, h: f64, c: Rgb<u8>) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (round_px(x).clamp(0, iw), round_px(x + w).clamp(0, iw));
    let (y0, y1) = (round_px(y).clamp(0, ih), round_px(y + h).clamp(0, ih));
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx as u32, yy as u32, c);
        }
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - qx).powi(2) + (p.1 - qy).powi(2)).sqrt()
}

/// Draws an anti-aliased poly-line of `width` pixels.
fn stroke(img: &mut RgbImage, points: &[(f64, f64)], width: f64, c: Rgb<u8>) {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.clamp(-1e6, 1e6), y.clamp(-1e6, 1e6)))
        .collect();
    if pts.len() < 2 || width.is_nan() || width <= 0.0 {
        return;
    }
    let r = width.min(1e3) / 2.0;
    let reach = r + 1.0;
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let bound = |lo: f64, hi: f64, n: i64| {
        let a = ((lo - reach).floor() as i64).clamp(0, n);
        let b = ((hi + reach).ceil() as i64).clamp(0, n);
        (a, b)
    };
    let xs = pts.iter().map(|p| p.0);
    let ys = pts.iter().map(|p| p.1);
    let (bx0, bx1) = bound(
        xs.clone().fold(f64::MAX, f64::min),
        xs.fold(f64::MIN, f64::max),
        iw,
    );
    let (by0, by1) = bound(
        ys.clone().fold(f64::MAX, f64::min),
        ys.fold(f64::MIN, f64::max),
        ih,
    );
    if bx0 >= bx1 || by0 >= by1 {
        return;
    }
    let bw = (bx1 - bx0) as usize;
    let mut cov = vec![0f32; bw * (by1 - by0) as usize];
    for seg in pts.windows(2) {
        let (a, b) = (seg[0], seg[1]);
        let (sy0, sy1) = bound(a.1.min(b.1), a.1.max(b.1), ih);
        for y in sy0.max(by0)..sy1.min(by1) {
            let yc = y as f64 + 0.5;
            // Points of the segment within `reach` of this row, in x.
            let dy = b.1 - a.1;
            let (t0, t1) = if dy.abs() < 1e-12 {
                (0.0, 1.0)
            } else {
                let u = (yc - reach - a.1) / dy;
                let v = (yc + reach - a.1) / dy;
                (u.min(v).clamp(0.0, 1.0), u.max(v).clamp(0.0, 1.0))
            };
            let (xa, xb) = (a.0 + t0 * (b.0 - a.0), a.0 + t1 * (b.0 - a.0));
            let (sx0, sx1) = bound(xa.min(xb), xa.max(xb), iw);
            let row = (y - by0) as usize * bw;
            for x in sx0.max(bx0)..sx1.min(bx1) {
                let d = seg_dist((x as f64 + 0.5, yc), a, b);
                let k = ((r + 0.5 - d).clamp(0.0, 1.0)) as f32;
                let cell = &mut cov[row + (x - bx0) as usize];
                if k > *cell {
                    *cell = k;
                }
            }
        }
    }
    for (i, &k) in cov.iter().enumerate() {
        if k <= 0.0 {
            continue;
        }
        let (x, y) = (
            (bx0 + (i % bw) as i64) as u32,
            (by0 + (i / bw) as i64) as u32,
        );
        let p = img.get_pixel_mut(x, y);
        for ch in 0..3 {
            let (bg, fg) = (f32::from(p.0[ch]), f32::from(c.0[ch]));
            p.0[ch] = (bg + (fg - bg) * k).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
    const BLUE: Rgb<u8> = Rgb([0, 0, 255]);

    fn one_line(a: (f64, f64), b: (f64, f64), width: f64) -> RgbImage {
        let mut s = Scene::new(40, 30, WHITE);
        s.line(a, b, width, BLUE);
        rasterize(&s)
    }

    #[test]
    fn axis_aligned_lines_through_pixel_centres_are_crisp() {
        let img = one_line((2.5, 10.5), (30.5, 10.5), 1.0);
        let shades: std::collections::BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert_eq!(shades.len(), 2, "only white and blue: {shades:?}");
        assert_eq!(*img.get_pixel(15, 10), BLUE);
        assert_eq!(*img.get_pixel(15, 9), WHITE);
    }

    #[test]
    fn diagonal_lines_are_anti_aliased_and_deterministic() {
        let img = one_line((2.0, 3.0), (35.0, 25.0), 2.0);
        let partial = img.pixels().filter(|p| **p != WHITE && **p != BLUE).count();
        assert!(partial > 20, "edge pixels blend: {partial}");
        assert!(img.pixels().any(|p| *p == BLUE), "the core is solid");
        assert_eq!(img, one_line((2.0, 3.0), (35.0, 25.0), 2.0));
        // Blended pixels are between white and blue: red and green fall together.
        for p in img.pixels() {
            assert_eq!(p.0[0], p.0[1]);
            assert_eq!(p.0[2], 255);
        }
    }

    #[test]
    fn degenerate_strokes_do_not_panic() {
        for (a, b, w) in [
            ((f64::NAN, 1.0), (3.0, 4.0), 1.0),
            ((1e300, -1e300), (-1e300, 1e300), 2.0),
            ((5.0, 5.0), (5.0, 5.0), 2.0),
            ((-50.0, -50.0), (-10.0, -20.0), 1.0),
            ((1.0, 1.0), (9.0, 9.0), f64::NAN),
            ((1.0, 1.0), (9.0, 9.0), 1e12),
        ] {
            one_line(a, b, w);
        }
    }
}
