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

/// One extended-box pass along rows of an interleaved buffer of `len`
/// samples per line, `stride` bytes between samples, `channels` channels;
/// `lines` lines starting every `line_step` bytes. In place.
fn box_pass(
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

/// Pillow's `BoxBlur`-style extended box filter with fractional `radius`,
/// `passes` times horizontally then `passes` times vertically.
/// `radius == 0` leaves that direction unchanged.
pub fn extended_box_blur(img: &RgbImage, radius: f32, passes: u32) -> RgbImage {
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
}
