//! The training data loader: records → decoded images → transformed,
//! stacked batches, in parallel and with bounded prefetching.
//!
//! - [`ImageSource`] reads encoded bytes of an [`ImageRecord`] (a file, or
//!   an LMDB key with the `lmdb` feature — one value copied out per image,
//!   never the whole database); [`decode_rgb`] decodes them, refusing
//!   truncated JPEGs like Pillow.
//! - [`ReidDataset`] is burn's `Dataset<ReidItem, DataError>` over a split
//!   ([`ReidDataset::into_burn`]: with burn's `DatasetError`, for burn's own
//!   `DataLoaderBuilder`).
//! - [`TrainBatcher`] is burn's `Batcher<ReidItem, BatchResult>`:
//!   parallel [`ItemTransform`] (BoT [`TrainTransform`], a pre-training
//!   [`ViewPipeline`], the test transform or a closure) and stacking into
//!   `[batch, C, H, W]`.
//! - [`TrainLoader`] takes the index batches of a sampler and decodes +
//!   transforms each image in one rayon task, with a [`CorruptPolicy`]
//!   (error naming the file, or skip and count in [`LoaderStats`]);
//!   [`TrainLoader::epoch`] runs it on a background thread through a
//!   bounded channel ([`Prefetch`]). [`TrainLoader::load_views`] draws
//!   several views of each image ([`ViewsTransform`]: the pre-training
//!   recipes' crops) into one [`HostViews`].
//!
//! Determinism: image `i` of batch `b` in epoch `e` draws from
//! [`item_rng`]`(seed, e, b, i)`, so batches are identical whatever the
//! thread count.
//!
//! [`ImageRecord`]: crate::ImageRecord
//! [`TrainTransform`]: crate::augment::TrainTransform
//! [`ViewPipeline`]: crate::views::ViewPipeline

mod batcher;
mod dataset;
mod item;
mod policy;
mod prefetch;
mod source;
mod views;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use crate::fused::resize_pil_fast;
pub use batcher::{BatchResult, HostBatch, TrainBatch, TrainBatcher, TrainLoader};
pub use dataset::{BurnReidDataset, ReidDataset, ReidItem};
pub use item::{FnTransform, ItemTransform};
pub use policy::{CorruptPolicy, LoaderStats, MAX_SKIPPED_PATHS, StatsCounter};
pub use prefetch::Prefetch;
pub use source::{ImageSource, decode_rgb};
pub use views::{FnViews, HostViews, ViewsTransform};

/// SplitMix64 finaliser: a bijective 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of one item: a hash of `(seed, epoch, key, position)` (`key`
/// is the batch number in [`TrainLoader`], the dataset index in the
/// [`TrainBatcher`] as burn batcher).
pub fn item_seed(seed: u64, epoch: u64, key: u64, position: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ epoch) ^ key) ^ position)
}

/// The generator of one item: `ChaCha8Rng` seeded with [`item_seed`].
pub fn item_rng(seed: u64, epoch: u64, key: u64, position: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(item_seed(seed, epoch, key, position))
}
