//! From image files to a burn tensor `[batch, 3, height, width]`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::normalize::Normalization;
use crate::transform::{Interpolation, resize, write_chw_normalized};

/// Decodes the image at `path` into 8-bit RGB (greyscale and RGBA are
/// converted). A missing, corrupt or truncated file is a
/// [`DataError::Image`] naming the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let reader = image::ImageReader::open(path).map_err(|e| DataError::io(path, e))?;
    let reader = reader
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let img = reader.decode().map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// The standard ReID test transform: resize to `height × width`, scale to
/// `[0, 1]`, normalise per channel, stack into `[batch, 3, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestTransform {
    /// Output height in pixels (256 in the published recipes).
    pub height: u32,
    /// Output width in pixels (128 in the published recipes).
    pub width: u32,
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// Channel statistics.
    pub normalization: Normalization,
}

impl TestTransform {
    /// Bilinear resize to `height × width` and ImageNet normalisation.
    pub fn new(height: u32, width: u32) -> Self {
        Self {
            height,
            width,
            interpolation: Interpolation::Bilinear,
            normalization: Normalization::default(),
        }
    }

    /// Floats of one image, layout `[3, height, width]`.
    fn write(&self, img: &RgbImage, out: &mut [f32]) {
        let resized = resize(img, self.height, self.width, self.interpolation);
        write_chw_normalized(&resized, &self.normalization, out);
    }

    /// Transforms and stacks `images` (in parallel) into a tensor
    /// `[images.len(), 3, height, width]` on `device`.
    pub fn batch(&self, images: &[RgbImage], device: &Device) -> Tensor<4> {
        let per = 3 * (self.height * self.width) as usize;
        let mut data = vec![0f32; per * images.len()];
        data.par_chunks_mut(per.max(1))
            .zip(images.par_iter())
            .for_each(|(out, img)| self.write(img, out));
        let shape = [images.len(), 3, self.height as usize, self.width as usize];
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    /// Decodes the files (in parallel), transforms and stacks them into
    /// `[paths.len(), 3, height, width]`. The first unreadable file is an
    /// error naming it.
    pub fn load_batch<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        device: &Device,
    ) -> Result<Tensor<4>> {
        let images = paths
            .par_iter()
            .map(|p| load_rgb(p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.batch(&images, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn batch_has_the_documented_shape_and_values() {
        let device = Device::flex();
        let imgs = vec![
            RgbImage::from_pixel(8, 16, Rgb([255, 255, 255])),
            RgbImage::from_pixel(5, 9, Rgb([0, 0, 0])),
        ];
        let t = TestTransform::new(16, 8).batch(&imgs, &device);
        assert_eq!(t.dims(), [2, 3, 16, 8]);
        let v: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap();
        let white_r = (1.0 - 0.485) / 0.229;
        assert!((v[0] - white_r).abs() < 1e-5);
        let black_b = -0.406 / 0.225;
        assert!((v[v.len() - 1] - black_b).abs() < 1e-5);
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("reid-batch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("0001_c1s1_000001_00.jpg");
        std::fs::write(&bad, b"\xFF\xD8\xFF\xE0 definitely not a jpeg").unwrap();
        let err = TestTransform::new(16, 8)
            .load_batch(&[&bad], &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(err.contains("0001_c1s1_000001_00.jpg"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
