//! Crop boxes, `resized_crop` (crop, then Pillow-exact resize) and
//! torchvision's `RandomResizedCrop` parameter sampler.

use image::{RgbImage, imageops};
use rand::Rng;

use crate::error::{DataError, Result};
use crate::transform::{Interpolation, resize};

/// A crop window in pixels: rows `top..top + height`, columns
/// `left..left + width` (torchvision's `(i, j, h, w)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CropBox {
    /// First row.
    pub top: u32,
    /// First column.
    pub left: u32,
    /// Rows (≥ 1).
    pub height: u32,
    /// Columns (≥ 1).
    pub width: u32,
}

/// Python's `round()`: nearest integer, ties to even.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// Crops `img` to `bx`. Errors when the box is empty or leaves the image.
pub fn crop(img: &RgbImage, bx: CropBox) -> Result<RgbImage> {
    let fits = bx.height > 0
        && bx.width > 0
        && u64::from(bx.top) + u64::from(bx.height) <= u64::from(img.height())
        && u64::from(bx.left) + u64::from(bx.width) <= u64::from(img.width());
    if !fits {
        return Err(DataError::InvalidArgument(format!(
            "crop box {bx:?} must be non-empty and inside the {}x{} (h x w) image",
            img.height(),
            img.width()
        )));
    }
    Ok(imageops::crop_imm(img, bx.left, bx.top, bx.width, bx.height).to_image())
}

/// torchvision `F.resized_crop(img, top, left, h, w, [height, width],
/// interpolation)` on a PIL image: [`crop`] then the Pillow-compatible
/// [`resize`] to `height × width`. Errors as [`crop`], or when the output
/// size is 0.
pub fn resized_crop(
    img: &RgbImage,
    bx: CropBox,
    height: u32,
    width: u32,
    interpolation: Interpolation,
) -> Result<RgbImage> {
    if height == 0 || width == 0 {
        return Err(DataError::InvalidArgument(format!(
            "resized_crop output size must be >= 1x1, got {height}x{width}"
        )));
    }
    let c = crop(img, bx)?;
    // The fused resampler is bit-identical to `resize_pil` (tested in
    // `fused`) and several times faster.
    if matches!(
        interpolation,
        Interpolation::Bilinear | Interpolation::Bicubic
    ) {
        return Ok(crate::fused::resize_pil_fast(
            &c,
            height,
            width,
            interpolation,
        ));
    }
    Ok(resize(&c, height, width, interpolation))
}

/// torchvision `RandomResizedCrop(size, scale, ratio, interpolation)`:
/// up to 10 tries of area `U(scale)·H·W` and aspect ratio `w / h` drawn
/// log-uniformly in `ratio`, `w = round(√(area·ratio))`, `h =
/// round(√(area / ratio))` (Python rounding), accepted when the box fits;
/// otherwise a central crop clamped to the ratio range. The crop is resized
/// to `height × width` with `interpolation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCrop {
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
    /// Range of the crop area as a fraction of the image area.
    pub scale: (f64, f64),
    /// Range of the crop aspect ratio `width / height`.
    pub ratio: (f64, f64),
    /// Resize filter.
    pub interpolation: Interpolation,
}

impl RandomResizedCrop {
    /// Tries before the central-crop fallback (torchvision: 10).
    pub const TRIES: usize = 10;

    /// torchvision's defaults at `height × width`: scale (0.08, 1), ratio
    /// (3/4, 4/3), bilinear.
    pub fn new(height: u32, width: u32) -> Self {
        Self {
            height,
            width,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            interpolation: Interpolation::Bilinear,
        }
    }

    /// Errors when the output size is 0 or a range is empty, negative or
    /// not finite.
    pub fn validate(&self) -> Result<()> {
        let (s0, s1) = self.scale;
        let (r0, r1) = self.ratio;
        if self.height == 0 || self.width == 0 {
            return Err(DataError::InvalidArgument(format!(
                "RandomResizedCrop size must be >= 1x1, got {}x{}",
                self.height, self.width
            )));
        }
        if !(s0.is_finite() && s1.is_finite() && 0.0 <= s0 && s0 <= s1) {
            return Err(DataError::InvalidArgument(format!(
                "RandomResizedCrop scale must be 0 <= min <= max, got ({s0}, {s1})"
            )));
        }
        if !(r0.is_finite() && r1.is_finite() && 0.0 < r0 && r0 <= r1) {
            return Err(DataError::InvalidArgument(format!(
                "RandomResizedCrop ratio must be 0 < min <= max, got ({r0}, {r1})"
            )));
        }
        Ok(())
    }

    /// The central-crop fallback for an `img_h × img_w` image: the whole
    /// image when its ratio lies in `ratio`, else the largest centred box
    /// at the nearest bound.
    pub fn fallback(&self, img_h: u32, img_w: u32) -> CropBox {
        let (r0, r1) = (
            self.ratio.0.min(self.ratio.1),
            self.ratio.0.max(self.ratio.1),
        );
        let in_ratio = f64::from(img_w) / f64::from(img_h);
        let (h, w) = if in_ratio < r0 {
            (round_half_even(f64::from(img_w) / r0) as u32, img_w)
        } else if in_ratio > r1 {
            (img_h, round_half_even(f64::from(img_h) * r1) as u32)
        } else {
            (img_h, img_w)
        };
        let (h, w) = (h.clamp(1, img_h.max(1)), w.clamp(1, img_w.max(1)));
        CropBox {
            top: (img_h - h) / 2,
            left: (img_w - w) / 2,
            height: h,
            width: w,
        }
    }

    /// Draws the crop box for an `img_h × img_w` image
    /// (`RandomResizedCrop.get_params`). Errors on an empty image or invalid
    /// parameters.
    pub fn sample<R: Rng + ?Sized>(&self, img_h: u32, img_w: u32, rng: &mut R) -> Result<CropBox> {
        self.validate()?;
        if img_h == 0 || img_w == 0 {
            return Err(DataError::InvalidArgument(format!(
                "RandomResizedCrop needs a non-empty image, got {img_h}x{img_w}"
            )));
        }
        let area = f64::from(img_h) * f64::from(img_w);
        let (l0, l1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..Self::TRIES {
            let target =
                area * (self.scale.0 + (self.scale.1 - self.scale.0) * rng.random::<f64>());
            let aspect = (l0 + (l1 - l0) * rng.random::<f64>()).exp();
            let w = round_half_even((target * aspect).sqrt());
            let h = round_half_even((target / aspect).sqrt());
            if w > 0.0 && w <= f64::from(img_w) && h > 0.0 && h <= f64::from(img_h) {
                let (h, w) = (h as u32, w as u32);
                let top = rng.random_range(0..=img_h - h);
                let left = rng.random_range(0..=img_w - w);
                return Ok(CropBox {
                    top,
                    left,
                    height: h,
                    width: w,
                });
            }
        }
        Ok(self.fallback(img_h, img_w))
    }

    /// Draws a box and returns the resized crop (`height × width`).
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Result<RgbImage> {
        let bx = self.sample(img.height(), img.width(), rng)?;
        resized_crop(img, bx, self.height, self.width, self.interpolation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4999), 2.0);
        assert_eq!(round_half_even(2.51), 3.0);
    }

    #[test]
    fn crop_outside_is_an_error() {
        let img = RgbImage::new(4, 6);
        let bx = CropBox {
            top: 2,
            left: 1,
            height: 5,
            width: 2,
        };
        assert!(crop(&img, bx).is_err());
        assert!(crop(&img, CropBox { height: 4, ..bx }).is_ok());
    }
}
