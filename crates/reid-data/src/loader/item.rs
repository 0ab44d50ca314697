//! The per-image transform a batch applies ([`ItemTransform`]): the BoT
//! training pipeline, a pre-training view, the test transform, or a closure.

use image::RgbImage;
use rand_chacha::ChaCha8Rng;

use crate::augment::TrainTransform;
use crate::batch::TestTransform;
use crate::error::{DataError, Result};
use crate::transform::{resize, write_chw_normalized};
use crate::views::ViewPipeline;

/// Turns one decoded image into `channels · height · width` floats (layout
/// `[channels, height, width]`), drawing its randomness from the per-item
/// generator the loader hands in (seeded from `(seed, epoch, position)`, so
/// results do not depend on thread scheduling).
pub trait ItemTransform: Send + Sync {
    /// Output shape of one image, `[channels, height, width]`.
    fn shape(&self) -> [usize; 3];

    /// Writes the transformed `img` into `out` (length
    /// `channels · height · width`, checked by the caller).
    fn write(&self, img: &RgbImage, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()>;
}

/// The BoT pipeline (resize, flip, pad + crop, normalise, erasing);
/// `[3, height, width]`.
impl ItemTransform for TrainTransform {
    fn shape(&self) -> [usize; 3] {
        [3, self.height as usize, self.width as usize]
    }

    /// Runs the fused path of `crate::fused` (bit-identical to
    /// [`TrainTransform::write`], several times faster), or
    /// [`TrainTransform::write`] itself for nearest-neighbour resizing.
    fn write(&self, img: &RgbImage, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()> {
        if crate::fused::bot_write(self, img, rng, out).is_none() {
            TrainTransform::write(self, img, rng, out);
        }
        Ok(())
    }
}

/// One pre-training view (LUPerson MoCo, PNL, one CION crop);
/// `[3, height, width]`.
impl ItemTransform for ViewPipeline {
    fn shape(&self) -> [usize; 3] {
        [3, self.height() as usize, self.width() as usize]
    }

    fn write(&self, img: &RgbImage, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()> {
        ViewPipeline::write(self, img, rng, out).map(|_| ())
    }
}

/// The deterministic test transform (resize + normalise; the generator is
/// unused); `[3, height, width]`.
impl ItemTransform for TestTransform {
    fn shape(&self) -> [usize; 3] {
        [3, self.height as usize, self.width as usize]
    }

    fn write(&self, img: &RgbImage, _rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()> {
        let resized = resize(img, self.height, self.width, self.interpolation);
        write_chw_normalized(&resized, &self.normalization, out);
        Ok(())
    }
}

/// A closure as an [`ItemTransform`] with a declared output shape.
#[derive(Clone)]
pub struct FnTransform<F> {
    shape: [usize; 3],
    f: F,
}

impl<F> std::fmt::Debug for FnTransform<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnTransform")
            .field("shape", &self.shape)
            .finish()
    }
}

impl<F> FnTransform<F>
where
    F: Fn(&RgbImage, &mut ChaCha8Rng, &mut [f32]) -> Result<()> + Send + Sync,
{
    /// Wraps `f`, which writes `shape = [channels, height, width]` floats.
    /// Errors when a dimension is 0.
    pub fn new(shape: [usize; 3], f: F) -> Result<Self> {
        if shape.contains(&0) {
            return Err(DataError::InvalidArgument(format!(
                "a transform's output shape [channels, height, width] must be positive, got {shape:?}"
            )));
        }
        Ok(Self { shape, f })
    }
}

impl<F> ItemTransform for FnTransform<F>
where
    F: Fn(&RgbImage, &mut ChaCha8Rng, &mut [f32]) -> Result<()> + Send + Sync,
{
    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn write(&self, img: &RgbImage, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()> {
        (self.f)(img, rng, out)
    }
}

impl<T: ItemTransform + ?Sized> ItemTransform for std::sync::Arc<T> {
    fn shape(&self) -> [usize; 3] {
        (**self).shape()
    }

    fn write(&self, img: &RgbImage, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<()> {
        (**self).write(img, rng, out)
    }
}
