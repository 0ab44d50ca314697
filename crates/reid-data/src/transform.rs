//! Deterministic image transforms on `image` buffers: resizing and conversion
//! to a normalised `[3, height, width]` float array.
//!
//! The random training augmentations (flip, pad + crop, erasing, MoCo and
//! DINO views) build on these.

use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::normalize::Normalization;

/// Resampling filter of [`resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Interpolation {
    /// Bilinear (torchvision's default for `Resize`).
    #[default]
    Bilinear,
    /// Bicubic (Keys, a = -0.5, as PIL; fast-reid's `interpolation=3`).
    Bicubic,
    /// Nearest neighbour.
    Nearest,
}

impl Interpolation {
    fn filter(self) -> FilterType {
        match self {
            Interpolation::Bilinear => FilterType::Triangle,
            Interpolation::Bicubic => FilterType::CatmullRom,
            Interpolation::Nearest => FilterType::Nearest,
        }
    }
}

/// Resizes `img` to exactly `height × width` pixels (aspect ratio not kept,
/// as ReID's `Resize((256, 128))`). Bilinear and bicubic use the
/// PIL-compatible resampler [`resize_pil`] (what torchvision's `Resize` on
/// PIL images, and so users' checkpoints, used); nearest uses `image`'s. Returns the input unchanged (cloned) when
/// it already has that size.
pub fn resize(img: &RgbImage, height: u32, width: u32, interp: Interpolation) -> RgbImage {
    if img.height() == height && img.width() == width {
        return img.clone();
    }
    match interp {
        Interpolation::Bilinear | Interpolation::Bicubic => resize_pil(img, height, width, interp),
        Interpolation::Nearest => imageops::resize(img, width, height, interp.filter()),
    }
}

/// Resizes with the `image` crate's filters (`Triangle` / `CatmullRom` /
/// `Nearest`) instead of the PIL-compatible resampler; faster to write but
/// not PIL's antialiasing, so features differ slightly from
/// PIL-trained checkpoints.
pub fn resize_image_crate(
    img: &RgbImage,
    height: u32,
    width: u32,
    interp: Interpolation,
) -> RgbImage {
    if img.height() == height && img.width() == width {
        return img.clone();
    }
    imageops::resize(img, width, height, interp.filter())
}

/// PIL's resampling filter kernel and support radius (in source pixels at
/// scale 1), from Pillow's documented `Resample.c` algorithm.
fn pil_filter(interp: Interpolation) -> (fn(f64) -> f64, f64) {
    fn triangle(x: f64) -> f64 {
        let x = x.abs();
        if x < 1.0 { 1.0 - x } else { 0.0 }
    }
    fn bicubic(x: f64) -> f64 {
        // Keys cubic with a = -0.5, as PIL.
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    }
    match interp {
        Interpolation::Bicubic => (bicubic, 2.0),
        _ => (triangle, 1.0),
    }
}

/// Fixed-point precision of PIL's 8-bit resampling coefficients.
pub(crate) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's geometry of a 1-D resize of `in_size` samples to `out_size`: the
/// filter, with a support that widens with the downscale factor
/// (antialiasing), exactly as PIL does.
pub(crate) struct PilResample {
    /// The filter kernel.
    filter: fn(f64) -> f64,
    /// Source samples per output sample.
    scale: f64,
    /// The support radius in source samples.
    support: f64,
    /// Filter argument per source sample (`1 / max(scale, 1)`).
    ss: f64,
    /// Source length.
    in_size: usize,
}

impl PilResample {
    /// The resize of `in_size` samples to `out_size` with `interp`.
    pub(crate) fn new(in_size: usize, out_size: usize, interp: Interpolation) -> Self {
        let (filter, base_support) = pil_filter(interp);
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        Self {
            filter,
            scale,
            support: base_support * filterscale,
            ss: 1.0 / filterscale,
            in_size,
        }
    }

    /// Output sample `xx`'s source window `xmin..xmax` and its centre.
    pub(crate) fn window(&self, xx: usize) -> (usize, usize, f64) {
        let center = (xx as f64 + 0.5) * self.scale;
        // C's (int) cast truncates toward zero.
        let xmin = ((center - self.support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + self.support + 0.5) as i64)
            .min(self.in_size as i64)
            .max(xmin as i64) as usize;
        (xmin, xmax, center)
    }

    /// The raw filter weight of source sample `x` for a window centred at
    /// `center`.
    pub(crate) fn weight(&self, x: usize, center: f64) -> f64 {
        (self.filter)((x as f64 - center + 0.5) * self.ss)
    }
}

/// A raw weight normalised by its window's `total` and rounded half away
/// from zero to PIL's fixed point (`2^PRECISION_BITS`).
pub(crate) fn pil_fixed_weight(w: f64, total: f64) -> i32 {
    let unit = f64::from(1u32 << PRECISION_BITS);
    let w = if total != 0.0 { w / total } else { w };
    if w < 0.0 {
        (-0.5 + w * unit) as i32
    } else {
        (0.5 + w * unit) as i32
    }
}

/// One output position's source window: first source index and integer
/// weights (scaled by `2^PRECISION_BITS`).
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for a 1-D resize of
/// `in_size` samples to `out_size`. The support widens with the downscale
/// factor (antialiasing), exactly as PIL does.
fn pil_taps(in_size: usize, out_size: usize, interp: Interpolation) -> Vec<Taps> {
    let geometry = PilResample::new(in_size, out_size, interp);
    (0..out_size)
        .map(|xx| {
            let (xmin, xmax, center) = geometry.window(xx);
            let raw: Vec<f64> = (xmin..xmax).map(|x| geometry.weight(x, center)).collect();
            let total: f64 = raw.iter().sum();
            let weights = raw.iter().map(|&w| pil_fixed_weight(w, total)).collect();
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

/// Rounds PIL's fixed-point accumulator back to a byte (`clip8`).
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes like Pillow's `Image.resize(size, BILINEAR | BICUBIC)` on an RGB
/// image: separable, horizontal pass first into an 8-bit intermediate, then
/// vertical; filter support scaled by the downscale factor; 22-bit integer
/// coefficients. Output is `height × width`.
pub fn resize_pil(img: &RgbImage, height: u32, width: u32, interp: Interpolation) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    let src = img.as_raw();
    let round = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass: in_h × out_w.
    let horizontal = if in_w != out_w {
        let taps = pil_taps(in_w, out_w, interp);
        let mut tmp = vec![0u8; in_h * out_w * 3];
        for y in 0..in_h {
            let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
            for (x, t) in taps.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = round;
                    for (i, &w) in t.weights.iter().enumerate() {
                        acc += i64::from(row[(t.start + i) * 3 + c]) * i64::from(w);
                    }
                    tmp[(y * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        tmp
    } else {
        src.to_vec()
    };
    // Vertical pass: out_h × out_w.
    let out = if in_h != out_h {
        let taps = pil_taps(in_h, out_h, interp);
        let mut out = vec![0u8; out_h * out_w * 3];
        for (y, t) in taps.iter().enumerate() {
            for x in 0..out_w {
                for c in 0..3 {
                    let mut acc = round;
                    for (i, &w) in t.weights.iter().enumerate() {
                        acc += i64::from(horizontal[((t.start + i) * out_w + x) * 3 + c])
                            * i64::from(w);
                    }
                    out[(y * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        out
    } else {
        horizontal
    };
    // The buffer has exactly out_w · out_h · 3 bytes by construction.
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Writes `img` as channel-first floats `(x / 255 - mean) / std` into `out`,
/// which must have length `3 · height · width` (layout `[3, height, width]`).
///
/// # Panics
/// Never on valid input; `out` of the wrong length is a programming error and
/// is checked with a debug assertion only.
pub fn write_chw_normalized(img: &RgbImage, norm: &Normalization, out: &mut [f32]) {
    let plane = (img.width() * img.height()) as usize;
    debug_assert_eq!(out.len(), 3 * plane);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.pixels().enumerate() {
        r[i] = px.0[0] as f32 * scale[0] - shift[0];
        g[i] = px.0[1] as f32 * scale[1] - shift[1];
        b[i] = px.0[2] as f32 * scale[2] - shift[2];
    }
}

/// [`write_chw_normalized`] into a new vector of length `3 · height · width`.
pub fn to_chw_normalized(img: &RgbImage, norm: &Normalization) -> Vec<f32> {
    let mut out = vec![0.0; 3 * (img.width() * img.height()) as usize];
    write_chw_normalized(img, norm, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::IMAGENET;
    use image::Rgb;

    #[test]
    fn chw_layout_and_normalisation() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([255, 0, 0]));
        img.put_pixel(1, 0, Rgb([0, 255, 51]));
        let v = to_chw_normalized(&img, &IMAGENET);
        let f = |x: f32, c: usize| (x / 255.0 - IMAGENET.mean[c]) / IMAGENET.std[c];
        let expected = [
            f(255.0, 0),
            f(0.0, 0),
            f(0.0, 1),
            f(255.0, 1),
            f(0.0, 2),
            f(51.0, 2),
        ];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
    }

    #[test]
    fn resize_gives_the_requested_size() {
        let img = RgbImage::from_pixel(10, 20, Rgb([7, 8, 9]));
        let out = resize(&img, 8, 4, Interpolation::Bilinear);
        assert_eq!((out.height(), out.width()), (8, 4));
        assert!(out.pixels().all(|p| p.0 == [7, 8, 9]));
    }
}
