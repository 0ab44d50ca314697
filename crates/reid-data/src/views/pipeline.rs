//! [`ViewPipeline`]: one random pre-training view of an image.

use image::RgbImage;
use rand::Rng;

use crate::augment::{RandomErasing, Rect, erase, hflip};
use crate::error::{DataError, Result};
use crate::normalize::Normalization;
use crate::transform::write_chw_normalized;
use crate::views::blur::{RandomGaussianBlur, gaussian_blur};
use crate::views::color::{ColorJitter, JitterParams, grayscale, solarize};
use crate::views::resized_crop::{CropBox, RandomResizedCrop, resized_crop};

/// Everything one draw of a [`ViewPipeline`] decided; replaying it with
/// [`ViewPipeline::render`] gives the same view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewParams {
    /// The crop box in the source image (resized to the output size).
    pub crop: CropBox,
    /// Horizontal flip.
    pub flip: bool,
    /// Colour jitter, when applied.
    pub jitter: Option<JitterParams>,
    /// Grayscale (3 equal channels).
    pub grayscale: bool,
    /// Gaussian blur σ in pixels, when applied.
    pub blur_sigma: Option<f64>,
    /// Solarisation at threshold 128.
    pub solarize: bool,
    /// Random-erasing rectangle in the output, when applied.
    pub erase: Option<Rect>,
}

/// One random view: `RandomResizedCrop` → horizontal flip → colour jitter
/// (with probability `jitter_p`) → grayscale (`grayscale_p`) → Gaussian blur
/// → solarize (`solarize_p`) → `(x/255 − mean)/std` into `[3, height,
/// width]` floats → random erasing (in normalised space).
///
/// The flip commutes exactly with every pixel-wise op and with Pillow's
/// (mirror-symmetric) blur, so recipes that flip later (LUPerson MoCo: after
/// the blur) give the same pixels for the same parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewPipeline {
    /// The random resized crop (output size, scale, ratio, filter).
    pub crop: RandomResizedCrop,
    /// Horizontal flip probability.
    pub flip_p: f64,
    /// Colour jitter strengths, if used.
    pub jitter: Option<ColorJitter>,
    /// Probability of applying the colour jitter (torchvision `RandomApply`).
    pub jitter_p: f64,
    /// Grayscale probability.
    pub grayscale_p: f64,
    /// Random Gaussian blur, if used.
    pub blur: Option<RandomGaussianBlur>,
    /// Solarisation probability (threshold 128).
    pub solarize_p: f64,
    /// Normalisation constants.
    pub norm: Normalization,
    /// Random erasing after normalisation, if used.
    pub erasing: Option<RandomErasing>,
}

impl ViewPipeline {
    /// Output height in pixels.
    pub fn height(&self) -> u32 {
        self.crop.height
    }

    /// Output width in pixels.
    pub fn width(&self) -> u32 {
        self.crop.width
    }

    /// Floats per view: `3 · height · width`.
    pub fn len(&self) -> usize {
        3 * self.crop.height as usize * self.crop.width as usize
    }

    /// True when the output size is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Errors when a parameter is out of range.
    pub fn validate(&self) -> Result<()> {
        self.crop.validate()?;
        if let Some(j) = &self.jitter {
            j.validate()?;
        }
        for (name, p) in [
            ("flip_p", self.flip_p),
            ("jitter_p", self.jitter_p),
            ("grayscale_p", self.grayscale_p),
            ("solarize_p", self.solarize_p),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::InvalidArgument(format!(
                    "view {name} must be a probability in [0, 1], got {p}"
                )));
            }
        }
        if let Some(b) = &self.blur
            && !((0.0..=1.0).contains(&b.p) && b.sigma.0 >= 0.0 && b.sigma.0 <= b.sigma.1)
        {
            return Err(DataError::InvalidArgument(format!(
                "view blur needs p in [0, 1] and 0 <= sigma.0 <= sigma.1, got {b:?}"
            )));
        }
        if let Some(e) = &self.erasing {
            let ok = (0.0..=1.0).contains(&e.p)
                && e.scale.0.is_finite()
                && e.scale.1.is_finite()
                && 0.0 <= e.scale.0
                && e.scale.0 <= e.scale.1
                && e.ratio.0.is_finite()
                && e.ratio.1.is_finite()
                && 0.0 < e.ratio.0
                && e.ratio.0 <= e.ratio.1;
            if !ok {
                return Err(DataError::InvalidArgument(format!(
                    "view erasing needs p in [0, 1], 0 <= scale.0 <= scale.1 and 0 < ratio.0 <= ratio.1, got {e:?}"
                )));
            }
        }
        Ok(())
    }

    /// Draws the parameters of one view of an `img_h × img_w` image, in
    /// pipeline order.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        img_h: u32,
        img_w: u32,
        rng: &mut R,
    ) -> Result<ViewParams> {
        self.validate()?;
        let crop = self.crop.sample(img_h, img_w, rng)?;
        let flip = rng.random::<f64>() < self.flip_p;
        let jitter = match &self.jitter {
            Some(j) if rng.random::<f64>() < self.jitter_p => Some(j.sample(rng)),
            _ => None,
        };
        let grayscale = rng.random::<f64>() < self.grayscale_p;
        let blur_sigma = self.blur.and_then(|b| b.sample(rng));
        let solarize = rng.random::<f64>() < self.solarize_p;
        let erase = self
            .erasing
            .and_then(|e| e.sample_rect(self.height() as usize, self.width() as usize, rng));
        Ok(ViewParams {
            crop,
            flip,
            jitter,
            grayscale,
            blur_sigma,
            solarize,
            erase,
        })
    }

    /// The 8-bit view (`height × width`) for `params`, before normalisation
    /// and erasing.
    pub fn render_image(&self, img: &RgbImage, params: &ViewParams) -> Result<RgbImage> {
        let mut v = resized_crop(
            img,
            params.crop,
            self.height(),
            self.width(),
            self.crop.interpolation,
        )?;
        if params.flip {
            v = hflip(&v);
        }
        if let Some(j) = &params.jitter {
            v = j.apply(&v)?;
        }
        if params.grayscale {
            v = grayscale(&v);
        }
        if let Some(s) = params.blur_sigma {
            v = gaussian_blur(&v, s as f32);
        }
        if params.solarize {
            v = solarize(&v, 128);
        }
        Ok(v)
    }

    /// Writes the normalised view for `params` into `out` (`[3, height,
    /// width]`, length [`ViewPipeline::len`]; another length is an error).
    pub fn render(&self, img: &RgbImage, params: &ViewParams, out: &mut [f32]) -> Result<()> {
        if out.len() != self.len() {
            return Err(DataError::InvalidArgument(format!(
                "view output buffer must hold 3*{}*{} = {} floats, got {}",
                self.height(),
                self.width(),
                self.len(),
                out.len()
            )));
        }
        let v = self.render_image(img, params)?;
        write_chw_normalized(&v, &self.norm, out);
        if let (Some(rect), Some(e)) = (params.erase, &self.erasing) {
            erase(
                out,
                self.height() as usize,
                self.width() as usize,
                rect,
                e.fill,
            );
        }
        Ok(())
    }

    /// Draws and writes one view into `out` (`[3, height, width]`).
    pub fn write<R: Rng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
        out: &mut [f32],
    ) -> Result<ViewParams> {
        let params = self.sample(img.height(), img.width(), rng)?;
        self.render(img, &params, out)?;
        Ok(params)
    }

    /// Draws one view: `3 · height · width` floats, layout `[3, height, width]`.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.len()];
        self.write(img, rng, &mut out)?;
        Ok(out)
    }
}
