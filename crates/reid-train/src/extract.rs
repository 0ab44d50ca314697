//! Embeddings of a list of images: decode → test transform → backbone →
//! global pooling → (optional) L2 normalisation, batch by batch.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use ndarray::Array2;
use reid_backbones::{Backbone, GlobalPool};
use reid_data::batch::TestTransform;

use crate::error::TrainError;

/// How [`extract_features`] turns images into embeddings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExtractOptions {
    /// Resize + normalisation applied to every image.
    pub transform: TestTransform,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Pooling of the feature map.
    pub pool: GlobalPool,
    /// Whether to L2-normalise each embedding.
    pub normalize: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            transform: TestTransform::new(256, 128),
            batch_size: 64,
            pool: GlobalPool::Avg,
            normalize: false,
        }
    }
}

/// Embeds the images at `paths` with `model` on `device` (use a device
/// without autodiff so BatchNorm runs in inference mode).
///
/// Returns `[paths.len(), model.out_channels()]`, row `i` for `paths[i]`.
/// An unreadable image is an error naming the file.
pub fn extract_features<P: AsRef<Path> + Sync>(
    model: &impl Backbone,
    paths: &[P],
    options: &ExtractOptions,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    if options.batch_size == 0 {
        return Err(TrainError::InvalidConfig(
            "batch_size must be positive".into(),
        ));
    }
    let dim = model.out_channels();
    let mut out = Array2::<f32>::zeros((paths.len(), dim));
    for (chunk_idx, chunk) in paths.chunks(options.batch_size).enumerate() {
        let images = options.transform.load_batch(chunk, device)?;
        let mut emb: Tensor<2> = options.pool.forward(model.forward_features(images));
        if options.normalize {
            let norm = emb
                .clone()
                .powi_scalar(2)
                .sum_dim(1)
                .sqrt()
                .clamp_min(1e-12);
            emb = emb / norm;
        }
        let values: Vec<f32> = emb
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
        let start = chunk_idx * options.batch_size;
        for (row, feats) in values.chunks(dim).enumerate() {
            out.row_mut(start + row)
                .iter_mut()
                .zip(feats)
                .for_each(|(o, &v)| *o = v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use reid_backbones::{ResNetConfig, ResNetDepth};

    #[test]
    fn rows_follow_paths_and_match_single_image_batches() {
        let device = Device::flex();
        device.seed(7);
        let dir = std::env::temp_dir().join(format!("reid-extract-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<_> = (0..5u8)
            .map(|i| {
                let p = dir.join(format!("{i}.png"));
                RgbImage::from_fn(16, 32, |x, y| Rgb([i * 40, (x * 8) as u8, (y * 4) as u8]))
                    .save(&p)
                    .unwrap();
                p
            })
            .collect();
        let model = ResNetConfig::new()
            .with_depth(ResNetDepth::R18)
            .with_base_width(4)
            .init(&device)
            .unwrap();
        let mut opts = ExtractOptions {
            transform: TestTransform::new(32, 16),
            batch_size: 2,
            normalize: true,
            ..Default::default()
        };
        let batched = extract_features(&model, &paths, &opts, &device).unwrap();
        assert_eq!(batched.dim(), (5, 32));
        opts.batch_size = 1;
        let single = extract_features(&model, &paths, &opts, &device).unwrap();
        for (a, b) in batched.iter().zip(single.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for row in batched.rows() {
            let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-4, "norm {n}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
