//! Pillow's `ImageFilter.GaussianBlur(radius)`, reproduced exactly, and the
//! random blur of the MoCo v2 / DINO recipes.
//!
//! Pillow does not convolve with a sampled Gaussian. It runs three passes of
//! an *extended box filter* horizontally, then three vertically (Gwosdek et
//! al., "Theoretical foundations of Gaussian convolution by extended box
//! filtering", SSVM 2011): a box of integer half-width `r` plus a fractional
//! weight on the two pixels just outside it, chosen so that three passes have
//! variance `radius²`. Borders repeat the edge pixel. Each pass rounds to
//! 8 bits with 24-bit fixed-point weights. [`gaussian_blur`] follows that
//! arithmetic step by step.

use image::RgbImage;
use rand::Rng;

/// Passes of the extended box filter per direction (Pillow's default).
pub const PIL_BLUR_PASSES: u32 = 3;

/// The (fractional) box radius whose `passes`-fold extended box filter has
/// variance `sigma²` (Pillow's conversion, in single precision; the
/// intermediate square root and floor run in double as in C).
pub fn box_radius_for_sigma(sigma: f32, passes: u32) -> f32 {
    let passes = passes.max(1) as f32;
    let sigma2 = sigma * sigma / passes;
    // Box length L = sqrt(12 σ²/n + 1), integer half-width l, fraction a.
    let big_l = (12.0 * f64::from(sigma2) + 1.0).sqrt() as f32;
    let l = ((f64::from(big_l) - 1.0) / 2.0).floor() as f32;
    let mut a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2);
    a /= 6.0 * (sigma2 - (l + 1.0) * (l + 1.0));
    l + a
}

/// The largest box radius whose sums fit in 32 bits (with the weights of
/// [`box_weights`], `255 · 2²⁴`-bounded; checked in a test); wider boxes are
/// cut to it. Pillow's own sums are 32-bit and overflow long before, so no
/// Pillow output is lost (σ of that size is millions of pixels).
const MAX_BOX_RADIUS: f32 = 8_000_000.0;

/// The 24-bit fixed-point weights of one extended-box pass of fractional
/// `radius`: `(r, ww, fw)`, `r` the integer half-width (C's truncation),
/// `ww` the weight of each of the `2r + 1` samples in the box and `fw` that of
/// each of the two samples just outside it (Pillow's arithmetic).
fn box_weights(radius: f32) -> (usize, u32, u32) {
    let r = radius as usize; // C's (int) truncation; radius >= 0.
    let ww = (16_777_216.0f32 / (radius * 2.0 + 1.0)) as u32;
    let fw = (16_777_216u32.wrapping_sub((2 * r as u32 + 1).wrapping_mul(ww))) / 2;
    (r, ww, fw)
}

/// One extended-box pass along the *slow* axis of `src`, `[lines, row]`
/// bytes (`row` bytes per line), into `dst` of the same shape: output line
/// `y` is the box over lines `y - r ..= y + r` plus the fractional weight on
/// lines `y - r - 1` and `y + r + 1`, lines past either end repeating the
/// edge line, rounded to 8 bits. Every column of bytes is an independent
/// signal, so the inner loops run over whole lines (vectorised); `acc` holds
/// the running box sums.
///
/// The sums fit in 32 bits: the weights add up to at most 2²⁴, so
/// `acc·ww + far·fw + 2²³ ≤ 255·2²⁴ + 2²³ < 2³²` (Pillow's sums are 32-bit too).
#[inline(always)]
fn box_pass_lines(src: &[u8], dst: &mut [u8], row: usize, radius: f32, acc: &mut Vec<u32>) {
    if row == 0 || src.len() < row {
        return;
    }
    let lines = src.len() / row;
    let (r, ww, fw) = box_weights(radius.min(MAX_BOX_RADIUS));
    let r = r as isize;
    let line = |y: isize| -> &[u8] {
        let y = y.clamp(0, lines as isize - 1) as usize;
        &src[y * row..(y + 1) * row]
    };
    // The first box, lines -r..=r: line 0 counted r + 1 times (itself and
    // the r edge copies before it), the last line once per d >= lines - 1,
    // the lines between once each while within r: O(lines), whatever r.
    acc.clear();
    acc.resize(row, 0);
    let last = lines as isize - 1;
    for i in 0..=last.min(r) {
        let copies = if last == 0 {
            2 * r + 1
        } else if i == 0 {
            r + 1
        } else if i == last {
            r - last + 1
        } else {
            1
        };
        let copies = copies as u32;
        for (a, &v) in acc.iter_mut().zip(line(i)) {
            *a += u32::from(v) * copies;
        }
    }
    for (y, out) in dst.chunks_exact_mut(row).take(lines).enumerate() {
        let y = y as isize;
        let (before, after) = (line(y - r - 1), line(y + r + 1));
        for (((o, &a), &b), &c) in out.iter_mut().zip(acc.iter()).zip(before).zip(after) {
            let bulk = a * ww + (u32::from(b) + u32::from(c)) * fw;
            *o = ((bulk + (1 << 23)) >> 24) as u8;
        }
        // Slide the box one line on: add line y + r + 1, drop line y - r.
        let leaving = line(y - r);
        for ((a, &c), &l) in acc.iter_mut().zip(after).zip(leaving) {
            *a = *a + u32::from(c) - u32::from(l);
        }
    }
}

/// Transposes interleaved RGB pixels: `src` is `[h, w, 3]` bytes, `dst`
/// becomes `[w, h, 3]`. Done in tiles so that both sides stay in cache.
#[inline(always)]
fn transpose_rgb(src: &[u8], dst: &mut [u8], h: usize, w: usize) {
    const TILE: usize = 32;
    for y0 in (0..h).step_by(TILE) {
        for x0 in (0..w).step_by(TILE) {
            for y in y0..(y0 + TILE).min(h) {
                for x in x0..(x0 + TILE).min(w) {
                    let s = (y * w + x) * 3;
                    let d = (x * h + y) * 3;
                    dst[d..d + 3].copy_from_slice(&src[s..s + 3]);
                }
            }
        }
    }
}

/// Pillow's `BoxBlur`-style extended box filter with fractional `radius`,
/// `passes` times horizontally then `passes` times vertically, on `[h, w, 3]`
/// RGB bytes. `radius == 0` (or negative / non-finite) returns a copy.
///
/// The horizontal passes run on the transposed image, `[w, h, 3]`, so that
/// both directions slide a box over whole lines at a time; the integer
/// arithmetic per sample is Pillow's, so the bytes are the same.
pub fn extended_box_blur(img: &RgbImage, radius: f32, passes: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if !(radius > 0.0 && radius.is_finite()) || passes == 0 || w == 0 || h == 0 {
        return img.clone();
    }
    #[cfg(target_arch = "x86_64")]
    let out = if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { blur_rgb_avx2(img.as_raw(), h, w, radius, passes) }
    } else {
        blur_rgb(img.as_raw(), h, w, radius, passes)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let out = blur_rgb(img.as_raw(), h, w, radius, passes);
    RgbImage::from_raw(img.width(), img.height(), out).unwrap_or_else(|| img.clone())
}

/// [`blur_rgb`] compiled with AVX2 (the same integer arithmetic, 8 lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blur_rgb_avx2(src: &[u8], h: usize, w: usize, radius: f32, passes: u32) -> Vec<u8> {
    blur_rgb(src, h, w, radius, passes)
}

/// The passes of [`extended_box_blur`] on `[h, w, 3]` bytes (`h, w > 0`).
#[inline(always)]
fn blur_rgb(src: &[u8], h: usize, w: usize, radius: f32, passes: u32) -> Vec<u8> {
    let mut acc = Vec::new();
    let mut a = vec![0u8; w * h * 3];
    let mut b = vec![0u8; w * h * 3];
    transpose_rgb(src, &mut a, h, w);
    for _ in 0..passes {
        box_pass_lines(&a, &mut b, h * 3, radius, &mut acc);
        std::mem::swap(&mut a, &mut b);
    }
    transpose_rgb(&a, &mut b, w, h);
    std::mem::swap(&mut a, &mut b);
    for _ in 0..passes {
        box_pass_lines(&a, &mut b, w * 3, radius, &mut acc);
        std::mem::swap(&mut a, &mut b);
    }
    a
}

/// Pillow `img.filter(ImageFilter.GaussianBlur(radius))` on an RGB image:
/// `radius` is the Gaussian's standard deviation in pixels (Pillow converts it
/// to single precision); 0 (or a negative / non-finite value) returns a copy.
pub fn gaussian_blur(img: &RgbImage, radius: f32) -> RgbImage {
    if !(radius > 0.0 && radius.is_finite()) {
        return img.clone();
    }
    let r = box_radius_for_sigma(radius, PIL_BLUR_PASSES);
    extended_box_blur(img, r, PIL_BLUR_PASSES)
}

/// A random Gaussian blur: with probability `p`, Pillow's
/// [`gaussian_blur`] with `σ ~ U(sigma.0, sigma.1)` (MoCo v2 / LUPerson and
/// DINO / CION: σ ∈ [0.1, 2.0]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomGaussianBlur {
    /// Probability of blurring.
    pub p: f64,
    /// Range of the standard deviation σ in pixels.
    pub sigma: (f64, f64),
}

impl RandomGaussianBlur {
    /// Blur with probability `p`, σ ∈ [0.1, 2.0].
    pub fn new(p: f64) -> Self {
        Self {
            p,
            sigma: (0.1, 2.0),
        }
    }

    /// Draws σ, or `None` when this draw does not blur.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<f64> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        Some(self.sigma.0 + (self.sigma.1 - self.sigma.0) * rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(9, 5, Rgb([10, 200, 255]));
        for r in [0.1, 0.7, 2.0, 30.0] {
            assert_eq!(gaussian_blur(&img, r), img);
        }
    }

    #[test]
    fn three_passes_have_the_requested_variance() {
        // Variance of one extended box of radius l + a: ((2l+1)^3 - (2l+1) + 6a(l+1)^2 ... )
        // checked numerically: the impulse response's variance after 3 passes ≈ σ².
        for sigma in [0.5f32, 1.0, 2.0, 3.3] {
            let r = f64::from(box_radius_for_sigma(sigma, 3));
            let l = r.floor();
            let a = r - l;
            let width = 2.0 * r + 1.0;
            let var_one = (2.0 * (1..=(l as i64)).map(|i| (i * i) as f64).sum::<f64>()
                + 2.0 * a * (l + 1.0) * (l + 1.0))
                / width;
            assert!(
                (3.0 * var_one - f64::from(sigma * sigma)).abs() < 1e-3,
                "{sigma}"
            );
        }
    }

    /// The pass as first written (one channel at a time along each line,
    /// 64-bit sums): the bytes the fast path must reproduce.
    mod reference {
        use image::RgbImage;

        // One extended-box pass along rows of an interleaved buffer of `len`
        // samples per line, `stride` bytes between samples, `channels` channels;
        // `lines` lines starting every `line_step` bytes. In place.
        pub(super) fn box_pass(
            buf: &mut [u8],
            lines: usize,
            line_step: usize,
            len: usize,
            stride: usize,
            radius: f32,
        ) {
            if len == 0 {
                return;
            }
            let r = radius as usize; // C's (int) truncation; radius >= 0.
            // Weight of each in-box sample and of the two far samples, 24-bit fixed point.
            let ww = (16_777_216.0f32 / (radius * 2.0 + 1.0)) as u32;
            let fw = (16_777_216u32.wrapping_sub((2 * r as u32 + 1).wrapping_mul(ww))) / 2;
            // The line with `pad` copies of its edge samples on each side (borders
            // repeat the edge pixel), so that sample `x + d` for |d| <= r + 1 is
            // `line[pad + x + d]` without clamping.
            let pad = r + 1;
            let mut line = vec![0u32; len + 2 * pad];
            let (ww, fw) = (u64::from(ww), u64::from(fw));
            for l in 0..lines {
                let base = l * line_step;
                for c in 0..3 {
                    for (x, v) in line[pad..pad + len].iter_mut().enumerate() {
                        *v = u32::from(buf[base + x * stride + c]);
                    }
                    let (first, end) = (line[pad], line[pad + len - 1]);
                    line[..pad].fill(first);
                    line[pad + len..].fill(end);
                    // Running sum over [x - r, x + r].
                    let mut acc: u64 = line[pad - r..=pad + r].iter().map(|&v| u64::from(v)).sum();
                    for x in 0..len {
                        let i = pad + x;
                        if x > 0 {
                            acc = acc + u64::from(line[i + r]) - u64::from(line[i - r - 1]);
                        }
                        let far = u64::from(line[i - r - 1]) + u64::from(line[i + r + 1]);
                        let bulk = acc * ww + far * fw;
                        buf[base + x * stride + c] = ((bulk + (1 << 23)) >> 24) as u8;
                    }
                }
            }
        }

        // Pillow's `BoxBlur`-style extended box filter with fractional `radius`,
        // `passes` times horizontally then `passes` times vertically.
        // `radius == 0` leaves that direction unchanged.
        pub(super) fn extended_box_blur(img: &RgbImage, radius: f32, passes: u32) -> RgbImage {
            let (w, h) = (img.width() as usize, img.height() as usize);
            let mut buf = img.as_raw().clone();
            if radius > 0.0 && radius.is_finite() {
                for _ in 0..passes {
                    box_pass(&mut buf, h, w * 3, w, 3, radius);
                }
                for _ in 0..passes {
                    box_pass(&mut buf, w, 3, h, w * 3, radius);
                }
            }
            RgbImage::from_raw(img.width(), img.height(), buf).unwrap_or_else(|| img.clone())
        }
    }

    #[test]
    fn the_widest_box_cannot_overflow_and_absurd_radii_finish() {
        let (r, ww, fw) = box_weights(MAX_BOX_RADIUS);
        let worst = 255u64 * (2 * r as u64 + 1) * u64::from(ww) + 510 * u64::from(fw) + (1 << 23);
        assert!(worst < 1 << 32, "{worst}");
        let white = RgbImage::from_pixel(5, 7, Rgb([255, 255, 255]));
        for radius in [1e7f32, 1e12, f32::MAX] {
            assert_eq!(extended_box_blur(&white, radius, 3), white, "{radius}");
        }
    }

    #[test]
    fn fast_passes_match_the_reference_byte_for_byte() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sizes = [
            (1, 1),
            (1, 9),
            (9, 1),
            (2, 3),
            (7, 5),
            (33, 17),
            (64, 32),
            (128, 256),
        ];
        for &(w, h) in &sizes {
            let raw: Vec<u8> = (0..w * h * 3).map(|_| rng.random()).collect();
            let img = RgbImage::from_raw(w, h, raw).unwrap();
            for radius in [0.05f32, 0.4, 0.999, 1.0, 1.37, 2.5, 4.2, 11.0, 40.0] {
                for passes in [1, 3] {
                    let want = reference::extended_box_blur(&img, radius, passes);
                    assert_eq!(
                        extended_box_blur(&img, radius, passes),
                        want,
                        "{w}x{h}, radius {radius}, {passes} passes"
                    );
                    // The plain build too (the AVX2 one runs where it can).
                    let (wu, hu) = (w as usize, h as usize);
                    assert_eq!(
                        blur_rgb(img.as_raw(), hu, wu, radius, passes),
                        want.into_raw(),
                        "plain build, {w}x{h}, radius {radius}, {passes} passes"
                    );
                }
            }
            // A box far wider than the image: the same bytes as the
            // reference (which pads every line), in O(lines) per pass.
            assert_eq!(
                extended_box_blur(&img, 3000.5, 3),
                reference::extended_box_blur(&img, 3000.5, 3),
                "{w}x{h}, radius 3000.5"
            );
            // Extremes of the byte range: every sample 255 (largest sums).
            let white = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
            assert_eq!(gaussian_blur(&white, 2.0), white);
        }
    }
}
