//! Embeddings of a list of images: decode → test transform → backbone →
//! global pooling → (optional) L2 normalisation, batch by batch.

use derive_setters::Setters;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array2, ArrayView2, ArrayView4, s};
use reid_backbones::{Backbone, Embed, GlobalPool};
use reid_data::batch::TestTransform;

use crate::error::TrainError;

/// How [`extract_features`] turns images into embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
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
/// Images that cannot be read are an error naming the file.
pub fn extract_features<P: AsRef<Path> + Sync>(
    model: &impl Backbone,
    paths: &[P],
    options: &ExtractOptions,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    let embed = |x: Tensor<4>| Ok(pool_features(model, x, options.pool));
    images_rows(&embed, model.out_channels(), paths, options, device)
}

/// Embeds already-transformed images `input` `[n, 3, height, width]`
/// (normalised floats) in batches of `batch_size`, with `pool` and optional
/// L2 normalisation. Returns `[n, model.out_channels()]`.
pub fn extract_features_from_array(
    model: &impl Backbone,
    input: ArrayView4<f32>,
    batch_size: usize,
    pool: GlobalPool,
    normalize: bool,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    let embed = |x: Tensor<4>| Ok(pool_features(model, x, pool));
    array_rows(
        &embed,
        model.out_channels(),
        input,
        batch_size,
        normalize,
        device,
    )
}

/// [`extract_features`] with the model's own pooled feature
/// ([`Embed::embed`], e.g. a ViT's class token or ConvNeXt's
/// `LayerNorm(GAP)`) instead of `options.pool`, which is not used.
/// Returns `[paths.len(), model.embedding_dim()]`.
pub fn extract_embeddings<P: AsRef<Path> + Sync>(
    model: &impl Embed,
    paths: &[P],
    options: &ExtractOptions,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    let embed = |x: Tensor<4>| Ok(model.embed(x)?);
    images_rows(&embed, model.embedding_dim(), paths, options, device)
}

/// [`extract_features_from_array`] with the model's own pooled feature
/// ([`Embed::embed`]). Returns `[n, model.embedding_dim()]`.
pub fn extract_embeddings_from_array(
    model: &impl Embed,
    input: ArrayView4<f32>,
    batch_size: usize,
    normalize: bool,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    let embed = |x: Tensor<4>| Ok(model.embed(x)?);
    array_rows(
        &embed,
        model.embedding_dim(),
        input,
        batch_size,
        normalize,
        device,
    )
}

/// One batch of images `[b, 3, H, W]` → embeddings `[b, dim]`.
type EmbedFn<'a> = dyn Fn(Tensor<4>) -> Result<Tensor<2>, TrainError> + 'a;

fn images_rows<P: AsRef<Path> + Sync>(
    embed: &EmbedFn<'_>,
    dim: usize,
    paths: &[P],
    options: &ExtractOptions,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    check_batch_size(options.batch_size)?;
    let mut out = Array2::<f32>::zeros((paths.len(), dim));
    for (i, chunk) in paths.chunks(options.batch_size).enumerate() {
        let images = options.transform.load_batch(chunk, device)?;
        let emb = maybe_normalize(embed(images)?, options.normalize);
        write_rows(&mut out, i * options.batch_size, emb)?;
    }
    Ok(out)
}

fn array_rows(
    embed: &EmbedFn<'_>,
    dim: usize,
    input: ArrayView4<f32>,
    batch_size: usize,
    normalize: bool,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    check_batch_size(batch_size)?;
    let (n, c, h, w) = input.dim();
    let mut out = Array2::<f32>::zeros((n, dim));
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let chunk = input.slice(s![start..end, .., .., ..]);
        let data: Vec<f32> = chunk.iter().copied().collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [end - start, c, h, w]), device);
        write_rows(&mut out, start, maybe_normalize(embed(x)?, normalize))?;
    }
    Ok(out)
}

fn check_batch_size(batch_size: usize) -> Result<(), TrainError> {
    if batch_size == 0 {
        return Err(TrainError::InvalidConfig(
            "batch_size must be positive".into(),
        ));
    }
    Ok(())
}

/// Backbone → pooling: `[b, 3, H, W]` → `[b, C]`.
fn pool_features(model: &impl Backbone, images: Tensor<4>, pool: GlobalPool) -> Tensor<2> {
    pool.forward(model.forward_features(images))
}

/// Optional L2 normalisation of each row of `emb` `[b, C]` (norm clamped at 1e-12).
fn maybe_normalize(emb: Tensor<2>, normalize: bool) -> Tensor<2> {
    if normalize {
        let norm = emb
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        emb / norm
    } else {
        emb
    }
}

/// Reads `emb` `[b, C]` back from the device into rows `start..start + b` of `out`.
fn write_rows(out: &mut Array2<f32>, start: usize, emb: Tensor<2>) -> Result<(), TrainError> {
    let [b, dim] = emb.dims();
    let values: Vec<f32> = emb
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
    let block = ArrayView2::from_shape((b, dim), &values)
        .map_err(|e| TrainError::Readback(e.to_string()))?;
    out.slice_mut(s![start..start + b, ..]).assign(&block);
    Ok(())
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
        let input = ndarray::Array4::from_shape_fn((3, 3, 32, 16), |(n, c, y, x)| {
            ((n * 7 + c * 3 + y + 2 * x) % 11) as f32 / 11.0 - 0.5
        });
        let whole =
            extract_features_from_array(&model, input.view(), 3, GlobalPool::Avg, false, &device)
                .unwrap();
        let split =
            extract_features_from_array(&model, input.view(), 2, GlobalPool::Avg, false, &device)
                .unwrap();
        assert_eq!(whole.dim(), (3, 32));
        for (a, b) in whole.iter().zip(split.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for row in batched.rows() {
            let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-4, "norm {n}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
