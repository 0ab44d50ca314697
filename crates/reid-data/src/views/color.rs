//! Pixel-exact colour operations of Pillow, as torchvision applies them to
//! PIL images: grayscale, brightness / contrast / saturation (Pillow's
//! `ImageEnhance` blends), hue shift (through Pillow's 8-bit HSV) and
//! solarisation — plus [`ColorJitter`], torchvision's random composition of the
//! first four.
//!
//! Every function takes and returns an 8-bit RGB image (`height × width × 3`)
//! and reproduces Pillow's integer / single-precision arithmetic, so outputs
//! equal Pillow's byte for byte (see `tests/integration/views_parity.rs`).

use image::{Rgb, RgbImage};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};

/// Pillow's `convert('L')` of one RGB pixel: ITU-R 601-2 luma
/// `(19595·R + 38470·G + 7471·B + 2^15) >> 16` (weights 0.299 / 0.587 /
/// 0.114 in 16-bit fixed point, rounded).
pub fn luma(px: [u8; 3]) -> u8 {
    let acc =
        u32::from(px[0]) * 19595 + u32::from(px[1]) * 38470 + u32::from(px[2]) * 7471 + 0x8000;
    (acc >> 16) as u8
}

/// The luma plane of `img` (row-major, `height · width` bytes), as Pillow's
/// `img.convert('L')`.
pub fn luma_plane(img: &RgbImage) -> Vec<u8> {
    img.pixels().map(|p| luma(p.0)).collect()
}

/// torchvision `rgb_to_grayscale(img, num_output_channels=3)` on a PIL image:
/// Pillow's luma replicated into the three channels.
pub fn grayscale(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let l = luma(p.0);
        *p = Rgb([l, l, l]);
    }
    out
}

/// One byte of Pillow's `Image.blend(degenerate, image, alpha)`:
/// `degenerate + alpha · (image − degenerate)` in single precision, truncated
/// to a byte; for `alpha` outside `[0, 1]` the result is clamped to `0..=255`
/// first (Pillow's extrapolation branch).
fn blend_byte(degenerate: u8, image: u8, alpha: f32) -> u8 {
    let a = f32::from(degenerate);
    let v = a + alpha * (f32::from(image) - a);
    if (0.0..=1.0).contains(&alpha) {
        v as u8
    } else if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        v as u8
    }
}

/// Pillow's `Image.blend(degenerate, img, alpha)` where the degenerate image
/// is given per pixel by `degenerate(x, y, pixel)`. `alpha == 0` returns the
/// degenerate image and `alpha == 1` the input, as Pillow's shortcuts do.
fn blend_with(img: &RgbImage, alpha: f64, degenerate: impl Fn([u8; 3]) -> [u8; 3]) -> RgbImage {
    // Pillow parses the factor as a C double and passes it on as a float.
    let alpha = alpha as f32;
    let mut out = img.clone();
    if alpha == 1.0 {
        return out;
    }
    for p in out.pixels_mut() {
        let d = degenerate(p.0);
        if alpha == 0.0 {
            *p = Rgb(d);
        } else {
            *p = Rgb(std::array::from_fn(|c| blend_byte(d[c], p.0[c], alpha)));
        }
    }
    out
}

/// torchvision `adjust_brightness` on PIL = `ImageEnhance.Brightness`: blend
/// with a black image, `factor` ≥ 0 (1 = unchanged).
pub fn adjust_brightness(img: &RgbImage, factor: f64) -> RgbImage {
    blend_with(img, factor, |_| [0; 3])
}

/// The rounded mean of the luma plane, as `ImageEnhance.Contrast` computes
/// it: `int(mean + 0.5)`.
pub fn mean_luma(img: &RgbImage) -> u8 {
    let n = (img.width() as u64) * (img.height() as u64);
    if n == 0 {
        return 0;
    }
    let sum: u64 = img.pixels().map(|p| u64::from(luma(p.0))).sum();
    (sum as f64 / n as f64 + 0.5) as u8
}

/// torchvision `adjust_contrast` on PIL = `ImageEnhance.Contrast`: blend with
/// a uniform grey image at the rounded mean luma, `factor` ≥ 0.
pub fn adjust_contrast(img: &RgbImage, factor: f64) -> RgbImage {
    let m = mean_luma(img);
    blend_with(img, factor, |_| [m; 3])
}

/// torchvision `adjust_saturation` on PIL = `ImageEnhance.Color`: blend with
/// the image's own grayscale, `factor` ≥ 0.
pub fn adjust_saturation(img: &RgbImage, factor: f64) -> RgbImage {
    blend_with(img, factor, |p| [luma(p); 3])
}

/// Pillow's 8-bit RGB → HSV of one pixel (`img.convert('HSV')`): hue and
/// saturation scaled to `0..=255` and truncated, value = max channel.
pub fn rgb_to_hsv(px: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = px;
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if maxc == minc {
        return [0, 0, maxc];
    }
    // Pillow mixes float variables with double constants; each assignment
    // rounds to float, the expressions with double literals run in double.
    let cr = f32::from(maxc - minc);
    let s = cr / f32::from(maxc);
    let rc = f32::from(maxc - r) / cr;
    let gc = f32::from(maxc - g) / cr;
    let bc = f32::from(maxc - b) / cr;
    let h: f32 = if r == maxc {
        bc - gc
    } else if g == maxc {
        ((2.0 + f64::from(rc)) - f64::from(bc)) as f32
    } else {
        ((4.0 + f64::from(gc)) - f64::from(rc)) as f32
    };
    let h = ((f64::from(h) / 6.0 + 1.0) % 1.0) as f32;
    let uh = ((f64::from(h) * 255.0) as i32).clamp(0, 255) as u8;
    let us = ((f64::from(s) * 255.0) as i32).clamp(0, 255) as u8;
    [uh, us, maxc]
}

/// Pillow's 8-bit HSV → RGB of one pixel (`Image.merge('HSV', …)
/// .convert('RGB')`), sector by sector with round-half-away-from-zero.
pub fn hsv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let [h, s, v] = hsv;
    if s == 0 {
        return [v, v, v];
    }
    let hf = f64::from(f32::from(h)) * 6.0 / 255.0;
    let i = hf.floor() as i32;
    let f = (hf - f64::from(i as f32)) as f32;
    let fs = (f64::from(f32::from(s)) / 255.0) as f32;
    let vd = f64::from(f32::from(v));
    let clip = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
    let p = clip(vd * (1.0 - f64::from(fs)));
    let q = clip(vd * (1.0 - f64::from(fs * f)));
    let t = clip(vd * (1.0 - f64::from(fs) * (1.0 - f64::from(f))));
    match i % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// torchvision `adjust_hue` on PIL: convert to Pillow's 8-bit HSV, add
/// `trunc(factor · 255)` to the hue byte with wrap-around, convert back.
/// `factor` must lie in `[-0.5, 0.5]`.
pub fn adjust_hue(img: &RgbImage, factor: f64) -> Result<RgbImage> {
    if !(-0.5..=0.5).contains(&factor) {
        return Err(DataError::InvalidArgument(format!(
            "hue factor must lie in [-0.5, 0.5], got {factor}"
        )));
    }
    // numpy: np.int32(factor * 255).astype(np.uint8) — truncation, then wrap.
    let shift = ((factor * 255.0) as i32).rem_euclid(256) as u8;
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let [h, s, v] = rgb_to_hsv(p.0);
        *p = Rgb(hsv_to_rgb([h.wrapping_add(shift), s, v]));
    }
    Ok(out)
}

/// Pillow `ImageOps.solarize(img, threshold)`: every channel value
/// `≥ threshold` becomes `255 − value` (DINO / CION use 128).
pub fn solarize(img: &RgbImage, threshold: u8) -> RgbImage {
    let mut out = img.clone();
    for v in out.iter_mut() {
        if *v >= threshold {
            *v = 255 - *v;
        }
    }
    out
}

/// One of the four colour-jitter operations, in torchvision's numbering
/// (`fn_idx` values 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterOp {
    /// 0: brightness.
    Brightness,
    /// 1: contrast.
    Contrast,
    /// 2: saturation.
    Saturation,
    /// 3: hue.
    Hue,
}

impl JitterOp {
    /// The op with torchvision's index `i` (0–3; larger values map to hue).
    pub fn from_index(i: usize) -> Self {
        match i {
            0 => JitterOp::Brightness,
            1 => JitterOp::Contrast,
            2 => JitterOp::Saturation,
            _ => JitterOp::Hue,
        }
    }
}

/// The parameters of one colour-jitter draw: the order of the four ops and
/// each factor (`None` = that op is disabled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterParams {
    /// Application order (a permutation of the four ops).
    pub order: [JitterOp; 4],
    /// Brightness factor.
    pub brightness: Option<f64>,
    /// Contrast factor.
    pub contrast: Option<f64>,
    /// Saturation factor.
    pub saturation: Option<f64>,
    /// Hue shift in `[-0.5, 0.5]`.
    pub hue: Option<f64>,
}

impl JitterParams {
    /// Applies the ops in `order`, skipping disabled ones (torchvision
    /// `ColorJitter.forward`). Errors when the hue factor is out of range.
    pub fn apply(&self, img: &RgbImage) -> Result<RgbImage> {
        let mut out = img.clone();
        for op in self.order {
            out = match op {
                JitterOp::Brightness => match self.brightness {
                    Some(f) => adjust_brightness(&out, f),
                    None => out,
                },
                JitterOp::Contrast => match self.contrast {
                    Some(f) => adjust_contrast(&out, f),
                    None => out,
                },
                JitterOp::Saturation => match self.saturation {
                    Some(f) => adjust_saturation(&out, f),
                    None => out,
                },
                JitterOp::Hue => match self.hue {
                    Some(f) => adjust_hue(&out, f)?,
                    None => out,
                },
            };
        }
        Ok(out)
    }
}

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: factors
/// drawn uniformly from `[max(0, 1 − b), 1 + b]` (likewise contrast and
/// saturation) and `[−hue, hue]`, applied in a uniformly random order. A
/// strength of 0 disables that op. Defaults of the DINO / CION recipe:
/// `(0.4, 0.4, 0.2, 0.1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness strength `b` (≥ 0).
    pub brightness: f64,
    /// Contrast strength (≥ 0).
    pub contrast: f64,
    /// Saturation strength (≥ 0).
    pub saturation: f64,
    /// Hue strength, `0 ..= 0.5`.
    pub hue: f64,
}

impl Default for ColorJitter {
    fn default() -> Self {
        Self {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.2,
            hue: 0.1,
        }
    }
}

impl ColorJitter {
    /// Errors when a strength is negative / not finite or `hue > 0.5`.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("hue", self.hue),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(DataError::InvalidArgument(format!(
                    "ColorJitter {name} must be a finite value >= 0, got {v}"
                )));
            }
        }
        if self.hue > 0.5 {
            return Err(DataError::InvalidArgument(format!(
                "ColorJitter hue must be <= 0.5, got {}",
                self.hue
            )));
        }
        Ok(())
    }

    /// Draws one set of parameters (torchvision `ColorJitter.get_params`:
    /// a random permutation of the four ops, then the enabled factors).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> JitterParams {
        let mut idx = [0usize, 1, 2, 3];
        idx.shuffle(rng);
        let factor = |s: f64, rng: &mut R| {
            (s > 0.0).then(|| {
                let lo = (1.0 - s).max(0.0);
                let hi = 1.0 + s;
                lo + (hi - lo) * rng.random::<f64>()
            })
        };
        let brightness = factor(self.brightness, rng);
        let contrast = factor(self.contrast, rng);
        let saturation = factor(self.saturation, rng);
        let hue = (self.hue > 0.0).then(|| self.hue * (2.0 * rng.random::<f64>() - 1.0));
        JitterParams {
            order: idx.map(JitterOp::from_index),
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_of_primaries() {
        assert_eq!(luma([255, 255, 255]), 255);
        assert_eq!(luma([0, 0, 0]), 0);
        assert_eq!(luma([255, 0, 0]), 76);
        assert_eq!(luma([0, 255, 0]), 150);
        assert_eq!(luma([0, 0, 255]), 29);
    }

    #[test]
    fn hsv_round_trip_of_grey_and_primaries() {
        for px in [[7, 7, 7], [255, 0, 0], [0, 255, 0], [0, 0, 255]] {
            assert_eq!(hsv_to_rgb(rgb_to_hsv(px)), px);
        }
    }

    #[test]
    fn hue_out_of_range_is_an_error() {
        let img = RgbImage::new(2, 2);
        assert!(adjust_hue(&img, 0.6).is_err());
        assert!(adjust_hue(&img, -0.5).is_ok());
    }

    #[test]
    fn jitter_factors_stay_in_range() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cj = ColorJitter::default();
        for _ in 0..200 {
            let p = cj.sample(&mut rng);
            let b = p.brightness.unwrap();
            assert!((0.6..=1.4).contains(&b));
            let s = p.saturation.unwrap();
            assert!((0.8..=1.2).contains(&s));
            let h = p.hue.unwrap();
            assert!((-0.1..=0.1).contains(&h));
            let mut ids: Vec<u8> = p.order.iter().map(|o| *o as u8).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![0, 1, 2, 3]);
        }
    }
}
