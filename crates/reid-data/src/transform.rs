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
    /// Bicubic.
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
/// as ReID's `Resize((256, 128))`). Returns the input unchanged (cloned) when
/// it already has that size.
pub fn resize(img: &RgbImage, height: u32, width: u32, interp: Interpolation) -> RgbImage {
    if img.height() == height && img.width() == width {
        return img.clone();
    }
    imageops::resize(img, width, height, interp.filter())
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
