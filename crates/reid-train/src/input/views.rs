//! Parallel decode + multi-view augmentation of one pre-training batch,
//! through reid-data's loader ([`TrainSet::loader`] with a
//! [`ViewsTransform`]).
//!
//! Every image of the batch is decoded and turned into `V` views by a
//! caller-given transform (MoCo's two crops, PNL's weak/strong pair, CION's
//! multi-crop), on rayon's pool, with a random stream seeded by
//! `(seed, step, slot)` only: the batch is the same whatever the thread
//! schedule, and a resumed run draws the same views.

use burn::tensor::{Device, Tensor};
use reid_data::loader::ViewsTransform;

use super::batch::TrainSet;
use crate::error::TrainError;

/// Decodes `set`'s images `indices` in parallel and renders the views of
/// `transform` for each (`TwoCrops`, `PnlViews`, `MultiCrop` write straight
/// into the batch; a closure goes through `FnViews`), as batch `step`;
/// returns one `[batch, 3, h_v, w_v]` tensor per view on `device`
/// (view-major, rows in `indices` order). An unreadable image or a view of
/// the wrong size is an error naming the file.
pub fn load_view_batch<T: ViewsTransform>(
    set: &TrainSet,
    indices: &[usize],
    transform: T,
    seed: u64,
    step: usize,
    device: &Device,
) -> Result<Vec<Tensor<4>>, TrainError> {
    let host = set
        .loader(transform, seed)
        .load_views(indices, 0, step as u64)?;
    Ok(host.into_tensors(device))
}
