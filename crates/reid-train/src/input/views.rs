//! Parallel decode + multi-view augmentation of one pre-training batch,
//! through reid-data's loader ([`TrainSet::loader`] with a
//! [`FnViews`]).
//!
//! Every image of the batch is decoded and turned into `V` views by a
//! caller-given function (MoCo's two crops, PNL's weak/strong pair, CION's
//! multi-crop), on rayon's pool, with a random stream seeded by
//! `(seed, step, slot)` only: the batch is the same whatever the thread
//! schedule, and a resumed run draws the same views.

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use reid_data::loader::FnViews;

use super::batch::TrainSet;
use crate::error::TrainError;

/// Produces the views of one decoded image: one buffer per view, view `v`
/// holding `3 · h_v · w_v` normalised floats (`[3, h_v, w_v]`, channel-major).
pub type ViewFn<'a> =
    dyn Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>, reid_data::DataError> + Sync + 'a;

/// Decodes `set`'s images `indices` in parallel and renders `sizes.len()`
/// views (`(height, width)` each) of each with `views`, as batch `step`;
/// returns one `[batch, 3, h_v, w_v]` tensor per view on `device`
/// (view-major, rows in `indices` order). An unreadable image or a view of
/// the wrong size is an error naming the file.
pub fn load_view_batch(
    set: &TrainSet,
    indices: &[usize],
    sizes: &[(u32, u32)],
    views: &ViewFn<'_>,
    seed: u64,
    step: usize,
    device: &Device,
) -> Result<Vec<Tensor<4>>, TrainError> {
    let shapes = sizes
        .iter()
        .map(|&(h, w)| [3, h as usize, w as usize])
        .collect();
    let transform = FnViews::new(shapes, |img: &RgbImage, rng: &mut ChaCha8Rng| {
        views(img, rng)
    })?;
    let host = set
        .loader(transform, seed)
        .load_views(indices, 0, step as u64)?;
    Ok(host.into_tensors(device))
}
