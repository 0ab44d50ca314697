//! Parallel decode + multi-view augmentation of one pre-training batch.
//!
//! Every image of the batch is decoded and turned into `V` views by a
//! caller-given function (MoCo's two crops, PNL's weak/strong pair, CION's
//! multi-crop), on rayon's pool, with a random stream seeded by
//! `(seed, step, slot)` only ([`augment_seed`]): the batch is the same
//! whatever the thread schedule, and a resumed run draws the same views.

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::batch::TrainSet;
use crate::engine::seed::augment_seed;
use crate::error::TrainError;

/// Produces the views of one decoded image: one buffer per view, view `v`
/// holding `3 · h_v · w_v` normalised floats (`[3, h_v, w_v]`, channel-major).
pub type ViewFn<'a> =
    dyn Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>, reid_data::DataError> + Sync + 'a;

/// Decodes `set`'s images `indices` in parallel and renders `sizes.len()` views of
/// each with `views`; returns one `[batch, 3, h_v, w_v]` tensor per view on
/// `device` (view-major, rows in `indices` order). `step` and `seed` pick
/// the random streams. An unreadable image or a view of the wrong size is
/// an error naming the file.
pub fn load_view_batch(
    set: &TrainSet,
    indices: &[usize],
    sizes: &[(u32, u32)],
    views: &ViewFn<'_>,
    seed: u64,
    step: usize,
    device: &Device,
) -> Result<Vec<Tensor<4>>, TrainError> {
    load_view_shard(set, indices, 0, sizes, views, seed, step, device)
}

/// [`load_view_batch`] for a shard of a batch: `indices` are the batch's
/// slots `first_slot..first_slot + indices.len()`, whose random streams they
/// use, so a batch cut into shards draws the views of the whole batch.
#[allow(clippy::too_many_arguments)]
pub fn load_view_shard(
    set: &TrainSet,
    indices: &[usize],
    first_slot: usize,
    sizes: &[(u32, u32)],
    views: &ViewFn<'_>,
    seed: u64,
    step: usize,
    device: &Device,
) -> Result<Vec<Tensor<4>>, TrainError> {
    if let Some(&bad) = indices.iter().find(|&&i| i >= set.len()) {
        return Err(TrainError::InvalidConfig(format!(
            "batch index {bad} is out of range for {} images",
            set.len()
        )));
    }
    let per_image: Vec<Vec<Vec<f32>>> = indices
        .par_iter()
        .enumerate()
        .map(|(slot, &idx)| -> Result<Vec<Vec<f32>>, TrainError> {
            let img = set.load(idx)?;
            let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(seed, step, first_slot + slot));
            let out = views(&img, &mut rng)?;
            if out.len() != sizes.len()
                || out
                    .iter()
                    .zip(sizes)
                    .any(|(v, &(h, w))| v.len() != 3 * h as usize * w as usize)
            {
                return Err(TrainError::InvalidConfig(format!(
                    "the view function produced {} views of the wrong sizes for {} (expected {:?})",
                    out.len(),
                    set.name(idx).unwrap_or_default().display(),
                    sizes
                )));
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    let b = indices.len();
    let mut tensors = Vec::with_capacity(sizes.len());
    for (v, &(h, w)) in sizes.iter().enumerate() {
        let per = 3 * h as usize * w as usize;
        let mut data = Vec::with_capacity(per * b);
        for img in &per_image {
            data.extend_from_slice(&img[v]);
        }
        tensors.push(Tensor::from_data(
            TensorData::new(data, [b, 3, h as usize, w as usize]),
            device,
        ));
    }
    Ok(tensors)
}
