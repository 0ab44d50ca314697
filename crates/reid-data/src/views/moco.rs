//! LUPerson MoCo v2 views ([`ViewPipeline::lup`], [`TwoCrops`]) and PNL's
//! weak / strong pair ([`PnlViews`]).

use image::RgbImage;
use rand::Rng;

use crate::augment::{RandomErasing, TrainTransform};
use crate::error::{DataError, Result};
use crate::normalize::{LUPERSON, LUPERSON_NL};
use crate::transform::Interpolation;
use crate::views::blur::RandomGaussianBlur;
use crate::views::pipeline::ViewPipeline;
use crate::views::resized_crop::RandomResizedCrop;

/// LUPerson's "strong" random erasing (`sre`): p = 0.5, area `U(0.02, 0.6)`,
/// aspect `U(0.3, 1/0.3)`, 100 attempts, fill 0 after normalisation (= the
/// dataset mean colour) — Zhong et al.'s variant.
pub fn lup_erasing() -> RandomErasing {
    RandomErasing::zhong(0.6, [0.0; 3])
}

impl ViewPipeline {
    /// LUPerson MoCo v2 view (`aug_type 'ori-cj+sre'`), output 256 × 128:
    /// `RandomResizedCrop(scale (0.2, 1), ratio (3/4, 4/3), bilinear)`, no
    /// colour jitter, grayscale p 0.2, Pillow Gaussian blur p 0.5 with
    /// σ ~ U(0.1, 2), flip p 0.5, LUPerson mean/std ([`LUPERSON`]),
    /// [`lup_erasing`].
    pub fn lup() -> Self {
        Self {
            crop: RandomResizedCrop {
                height: 256,
                width: 128,
                scale: (0.2, 1.0),
                ratio: (3.0 / 4.0, 4.0 / 3.0),
                interpolation: Interpolation::Bilinear,
            },
            flip_p: 0.5,
            jitter: None,
            jitter_p: 0.0,
            grayscale_p: 0.2,
            blur: Some(RandomGaussianBlur::new(0.5)),
            solarize_p: 0.0,
            norm: LUPERSON,
            erasing: Some(lup_erasing()),
        }
    }

    /// PNL's strong view: [`ViewPipeline::lup`] normalised with the
    /// LUPerson-NL statistics ([`LUPERSON_NL`]).
    pub fn pnl_strong() -> Self {
        Self {
            norm: LUPERSON_NL,
            ..Self::lup()
        }
    }
}

/// The LUPerson MoCo v2 view: a [`ViewPipeline`] built with
/// [`ViewPipeline::lup`] (`LupView::lup()`); PNL's strong view is
/// [`ViewPipeline::pnl_strong`].
pub type LupView = ViewPipeline;

/// MoCo's `TwoCropsTransform`: two independent draws of the same view
/// (query, key). Each is `[3, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoCrops {
    /// The view drawn twice.
    pub view: ViewPipeline,
}

impl TwoCrops {
    /// LUPerson MoCo v2: two draws of [`ViewPipeline::lup`].
    pub fn lup() -> Self {
        Self {
            view: ViewPipeline::lup(),
        }
    }

    /// Writes the query view into `q` and the key view into `k` (each of
    /// length `3 · height · width`).
    pub fn write<R: Rng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
        q: &mut [f32],
        k: &mut [f32],
    ) -> Result<()> {
        self.view.write(img, rng, q)?;
        self.view.write(img, rng, k)?;
        Ok(())
    }

    /// Draws `[query, key]`, each `3 · height · width` floats.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Result<[Vec<f32>; 2]> {
        let q = self.view.apply(img, rng)?;
        let k = self.view.apply(img, rng)?;
        Ok([q, k])
    }
}

/// PNL's two views of one LUPerson-NL image: the **weak** view feeds the
/// query (online) encoder, the **strong** view the momentum encoder.
///
/// Weak = resize 256 × 128 bicubic → pad 10 (zeros) + random crop → flip
/// p 0.5 → LUPerson-NL mean/std, no erasing. It is a [`TrainTransform`],
/// which flips *before* the pad + crop; with a symmetric pad and uniform
/// offsets the distribution of views is the same as upstream's crop-then-flip.
/// Strong = [`ViewPipeline::pnl_strong`].
#[derive(Debug, Clone, PartialEq)]
pub struct PnlViews {
    /// The weak (query) view.
    pub weak: TrainTransform,
    /// The strong (key) view.
    pub strong: ViewPipeline,
}

impl Default for PnlViews {
    fn default() -> Self {
        Self::new()
    }
}

impl PnlViews {
    /// PNL's recipe at 256 × 128.
    pub fn new() -> Self {
        let mut weak = TrainTransform::bot(256, 128);
        weak.norm = LUPERSON_NL;
        weak.erasing = None;
        Self {
            weak,
            strong: ViewPipeline::pnl_strong(),
        }
    }

    /// Writes the weak view into `weak` and the strong view into `strong`
    /// (each `3 · 256 · 128` floats for the default sizes). Errors when a
    /// buffer has the wrong length.
    pub fn write<R: Rng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
        weak: &mut [f32],
        strong: &mut [f32],
    ) -> Result<()> {
        let n = 3 * (self.weak.height * self.weak.width) as usize;
        if weak.len() != n {
            return Err(DataError::InvalidArgument(format!(
                "PNL weak view buffer must hold {n} floats, got {}",
                weak.len()
            )));
        }
        if img.width() == 0 || img.height() == 0 {
            return Err(DataError::InvalidArgument(
                "PNL views need a non-empty image".into(),
            ));
        }
        // The fused BoT path: the same floats and draws as
        // `TrainTransform::write`, several times faster (tested in `fused`).
        if crate::fused::bot_write(&self.weak, img, rng, weak).is_none() {
            self.weak.write(img, rng, weak);
        }
        self.strong.write(img, rng, strong)?;
        Ok(())
    }

    /// Draws `(weak, strong)`.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut weak = vec![0.0; 3 * (self.weak.height * self.weak.width) as usize];
        let mut strong = vec![0.0; self.strong.len()];
        self.write(img, rng, &mut weak, &mut strong)?;
        Ok((weak, strong))
    }
}
