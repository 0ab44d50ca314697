//! Seeded BoT training augmentations on `image::RgbImage` and normalised
//! `[3, height, width]` float buffers: horizontal flip, pad + random crop,
//! random erasing (fast-reid/torchvision and torchreid/Zhong variants) and
//! [`TrainTransform`], which composes them.
//!
//! Every random draw takes the caller's `rand::Rng`, so a seeded
//! `rand_chacha::ChaCha8Rng` makes the pipeline reproducible.

use image::{Rgb, RgbImage, imageops};
use rand::Rng;

use crate::normalize::{IMAGENET, Normalization};
use crate::transform::{Interpolation, resize, write_chw_normalized};

/// Mirrors `img` left–right.
pub fn hflip(img: &RgbImage) -> RgbImage {
    imageops::flip_horizontal(img)
}

/// Flips `img` with probability `p` (torchvision `RandomHorizontalFlip`).
pub fn random_hflip<R: Rng + ?Sized>(img: RgbImage, p: f64, rng: &mut R) -> RgbImage {
    if rng.random::<f64>() < p {
        hflip(&img)
    } else {
        img
    }
}

/// Pads `img` by `pad` pixels on every side with the constant `fill`, then
/// crops an `img.height() × img.width()` window whose top-left corner is at
/// (`top`, `left`) in the padded image (`0 ..= 2·pad` each; larger offsets are
/// clamped). Equals torchvision `Pad(pad, fill)` + `crop(top, left, h, w)`.
pub fn pad_crop(img: &RgbImage, pad: u32, top: u32, left: u32, fill: [u8; 3]) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let top = top.min(2 * pad);
    let left = left.min(2 * pad);
    RgbImage::from_fn(w, h, |x, y| {
        // Position in the padded image, then in the source.
        let (px, py) = (x + left, y + top);
        if px < pad || py < pad || px >= pad + w || py >= pad + h {
            Rgb(fill)
        } else {
            *img.get_pixel(px - pad, py - pad)
        }
    })
}

/// Pads by `pad` with `fill` and crops back to the input size at a uniformly
/// random offset (fast-reid's `Pad(10, fill=0)` + `RandomCrop(size)`).
pub fn random_pad_crop<R: Rng + ?Sized>(
    img: &RgbImage,
    pad: u32,
    fill: [u8; 3],
    rng: &mut R,
) -> RgbImage {
    let top = rng.random_range(0..=2 * pad);
    let left = rng.random_range(0..=2 * pad);
    pad_crop(img, pad, top, left, fill)
}

/// A rectangle of a `[3, height, width]` buffer: rows `top..top+height`,
/// columns `left..left+width` (pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Fills `rect` of the channel-first buffer `chw` (layout `[3, height,
/// width]`) with `fill[c]` in channel `c`. Parts outside the image are
/// ignored; a buffer of the wrong length is left unchanged.
pub fn erase(chw: &mut [f32], height: usize, width: usize, rect: Rect, fill: [f32; 3]) {
    let plane = height * width;
    if chw.len() != 3 * plane {
        return;
    }
    let rows = rect.top.min(height)..(rect.top + rect.height).min(height);
    let cols = rect.left.min(width)..(rect.left + rect.width).min(width);
    for (c, plane_buf) in chw.chunks_exact_mut(plane).enumerate() {
        let v = fill.get(c).copied().unwrap_or(0.0);
        for y in rows.clone() {
            if let Some(row) = plane_buf.get_mut(y * width + cols.start..y * width + cols.end) {
                row.fill(v);
            }
        }
    }
}

/// How the erasing rectangle's aspect ratio is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AspectSampling {
    /// `exp(U(ln r0, ln r1))` (torchvision `RandomErasing`, used by fast-reid).
    LogUniform,
    /// `U(r0, r1)` (Zhong et al.'s original, used by torchreid).
    Uniform,
}

/// Random erasing on a normalised `[3, height, width]` buffer.
///
/// Two upstream variants ([`RandomErasing::fastreid`],
/// [`RandomErasing::torchreid`]); `fill` is in normalised space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomErasing {
    /// Probability of erasing one rectangle.
    pub p: f64,
    /// Erased area as a fraction of the image area, `[min, max]`.
    pub scale: (f64, f64),
    /// Aspect ratio `h / w` range.
    pub ratio: (f64, f64),
    /// How the aspect ratio is drawn.
    pub aspect: AspectSampling,
    /// Attempts at a rectangle that fits before giving up (image unchanged).
    pub attempts: u32,
    /// Per-channel fill value, in normalised space.
    pub fill: [f32; 3],
}

impl RandomErasing {
    /// fast-reid / BoT: torchvision `RandomErasing(p=0.5, scale=(0.02, 0.33),
    /// ratio=(0.3, 3.3), value=mean·255)` applied to the 0–255 tensor before
    /// the model normalises, i.e. "before normalisation with mean fill". In
    /// normalised space the fill is exactly 0. 10 attempts, log-uniform ratio.
    pub fn fastreid() -> Self {
        Self {
            p: 0.5,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            aspect: AspectSampling::LogUniform,
            attempts: 10,
            fill: [0.0; 3],
        }
    }

    /// torchreid (Zhong et al.): p = 0.5, area `U(0.02, 0.4)`, aspect
    /// `U(0.3, 1/0.3)`, 100 attempts, applied **after** `Normalize` with fill
    /// = the ImageNet mean values `norm.mean` written into normalised space.
    pub fn torchreid(norm: &Normalization) -> Self {
        Self::zhong(0.4, norm.mean)
    }

    /// Zhong et al.'s original: p = 0.5, area `U(0.02, max_area)`, aspect
    /// `U(0.3, 1/0.3)`, 100 attempts, `fill` in normalised space.
    pub(crate) fn zhong(max_area: f64, fill: [f32; 3]) -> Self {
        Self {
            p: 0.5,
            scale: (0.02, max_area),
            ratio: (0.3, 1.0 / 0.3),
            aspect: AspectSampling::Uniform,
            attempts: 100,
            fill,
        }
    }

    /// Draws the rectangle to erase in a `height × width` image, or `None`
    /// (no erasing this time: the coin said no or no attempt fitted).
    pub fn sample_rect<R: Rng + ?Sized>(
        &self,
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> Option<Rect> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        let area = (height * width) as f64;
        for _ in 0..self.attempts {
            let target = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = match self.aspect {
                AspectSampling::LogUniform => rng
                    .random_range(self.ratio.0.ln()..=self.ratio.1.ln())
                    .exp(),
                AspectSampling::Uniform => rng.random_range(self.ratio.0..=self.ratio.1),
            };
            let h = (target * aspect).sqrt().round() as usize;
            let w = (target / aspect).sqrt().round() as usize;
            if h == 0 || w == 0 || h >= height || w >= width {
                continue;
            }
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return Some(Rect {
                top,
                left,
                height: h,
                width: w,
            });
        }
        None
    }

    /// Erases one random rectangle of `chw` (`[3, height, width]`) with
    /// probability `p`; returns the rectangle erased, if any.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        chw: &mut [f32],
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> Option<Rect> {
        let rect = self.sample_rect(height, width, rng)?;
        erase(chw, height, width, rect, self.fill);
        Some(rect)
    }
}

/// The BoT training pipeline: resize → random flip → pad + random crop →
/// normalised `[3, height, width]` floats → random erasing.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTransform {
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
    /// Resize filter (fast-reid: bicubic; torchreid: bilinear).
    pub interpolation: Interpolation,
    /// Horizontal flip probability.
    pub flip_p: f64,
    /// Padding before the random crop, in pixels (0 disables pad + crop).
    pub padding: u32,
    /// Constant fill of the padding (RGB bytes).
    pub pad_fill: [u8; 3],
    /// Normalisation constants.
    pub norm: Normalization,
    /// Random erasing, if enabled.
    pub erasing: Option<RandomErasing>,
}

impl TrainTransform {
    /// fast-reid's BoT recipe at `height × width`: bicubic resize, flip 0.5,
    /// pad 10 (zero fill) + random crop, ImageNet normalisation, random
    /// erasing ([`RandomErasing::fastreid`]).
    pub fn bot(height: u32, width: u32) -> Self {
        Self {
            height,
            width,
            interpolation: Interpolation::Bicubic,
            flip_p: 0.5,
            padding: 10,
            pad_fill: [0; 3],
            norm: IMAGENET,
            erasing: Some(RandomErasing::fastreid()),
        }
    }

    /// Applies the pipeline to `img`; returns `3 · height · width` floats in
    /// layout `[3, height, width]`.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Vec<f32> {
        let mut out = vec![0.0; 3 * (self.height * self.width) as usize];
        self.write(img, rng, &mut out);
        out
    }

    /// [`TrainTransform::apply`] into `out` (length `3 · height · width`;
    /// a wrong length leaves `out` unchanged).
    pub fn write<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R, out: &mut [f32]) {
        if out.len() != 3 * (self.height * self.width) as usize {
            return;
        }
        let resized = resize(img, self.height, self.width, self.interpolation);
        let flipped = random_hflip(resized, self.flip_p, rng);
        let cropped = if self.padding > 0 {
            random_pad_crop(&flipped, self.padding, self.pad_fill, rng)
        } else {
            flipped
        };
        write_chw_normalized(&cropped, &self.norm, out);
        if let Some(e) = &self.erasing {
            e.apply(out, self.height as usize, self.width as usize, rng);
        }
    }
}
