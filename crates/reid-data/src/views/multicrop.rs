//! CION's (DINO-style) multi-crop views: 2 global crops + N local crops.

use image::RgbImage;
use rand::Rng;

use crate::error::{DataError, Result};
use crate::normalize::IMAGENET;
use crate::transform::Interpolation;
use crate::views::blur::RandomGaussianBlur;
use crate::views::color::ColorJitter;
use crate::views::pipeline::ViewPipeline;
use crate::views::resized_crop::RandomResizedCrop;

/// Multi-crop augmentation: crops in the order `[global 1, global 2,
/// local 1 .. local N]`, each `[3, h, w]` with the global or local size.
///
/// CION defaults ([`MultiCrop::cion`]): globals 256 × 128 with scale
/// (0.8, 1.0), locals 128 × 64 with scale (0.05, 0.8), ratio `w/h` (0.4,
/// 0.6), bicubic; shared flip p 0.5, `ColorJitter(0.4, 0.4, 0.2, 0.1)` p 0.8,
/// grayscale p 0.2; blur p 1.0 on global 1, blur p 0.1 + solarize p 0.2 on
/// global 2, blur p 0.5 on locals; ImageNet mean/std.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiCrop {
    /// First global crop (teacher and student).
    pub global1: ViewPipeline,
    /// Second global crop (teacher and student).
    pub global2: ViewPipeline,
    /// Local crop pipeline (student only).
    pub local: ViewPipeline,
    /// Number of local crops `N` (CION default 8).
    pub n_local: usize,
}

impl MultiCrop {
    /// CION's recipe for 256 × 128 inputs with `n_local` local crops (8 in
    /// CION's ResNet50-IBN run). For 384 × 128 inputs CION uses ratio (0.25,
    /// 0.4): change `crop.ratio` and the sizes of the three pipelines.
    pub fn cion(n_local: usize) -> Self {
        let ratio = (0.4, 0.6);
        let base = |h, w, scale: (f64, f64), blur_p| ViewPipeline {
            crop: RandomResizedCrop {
                height: h,
                width: w,
                scale,
                ratio,
                interpolation: Interpolation::Bicubic,
            },
            flip_p: 0.5,
            jitter: Some(ColorJitter::default()),
            jitter_p: 0.8,
            grayscale_p: 0.2,
            blur: Some(RandomGaussianBlur::new(blur_p)),
            solarize_p: 0.0,
            norm: IMAGENET,
            erasing: None,
        };
        let global1 = base(256, 128, (0.8, 1.0), 1.0);
        let global2 = ViewPipeline {
            solarize_p: 0.2,
            ..base(256, 128, (0.8, 1.0), 0.1)
        };
        let local = base(128, 64, (0.05, 0.8), 0.5);
        Self {
            global1,
            global2,
            local,
            n_local,
        }
    }

    /// Number of crops `2 + N`.
    pub fn num_crops(&self) -> usize {
        2 + self.n_local
    }

    /// `(height, width)` of each crop, in output order.
    pub fn crop_sizes(&self) -> Vec<(u32, u32)> {
        let g1 = (self.global1.height(), self.global1.width());
        let g2 = (self.global2.height(), self.global2.width());
        let l = (self.local.height(), self.local.width());
        let mut v = vec![g1, g2];
        v.extend(std::iter::repeat_n(l, self.n_local));
        v
    }

    /// The pipeline of crop `i` (0, 1 = globals; 2.. = locals).
    fn pipeline(&self, i: usize) -> &ViewPipeline {
        match i {
            0 => &self.global1,
            1 => &self.global2,
            _ => &self.local,
        }
    }

    /// Writes the crops into `outs` (one buffer per crop, in output order,
    /// each `3 · h · w` floats). Errors when the number of buffers is not
    /// `2 + N` or a buffer has the wrong length.
    pub fn write<R: Rng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
        outs: &mut [&mut [f32]],
    ) -> Result<()> {
        if outs.len() != self.num_crops() {
            return Err(DataError::InvalidArgument(format!(
                "multi-crop needs {} output buffers (2 global + {} local), got {}",
                self.num_crops(),
                self.n_local,
                outs.len()
            )));
        }
        for (i, out) in outs.iter_mut().enumerate() {
            self.pipeline(i).write(img, rng, out)?;
        }
        Ok(())
    }

    /// Draws all crops: `[g1, g2, l1 .. lN]`, each `3 · h · w` floats.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Result<Vec<Vec<f32>>> {
        (0..self.num_crops())
            .map(|i| self.pipeline(i).apply(img, rng))
            .collect()
    }
}
