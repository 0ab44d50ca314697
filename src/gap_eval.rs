//! A backbone's own global-average-pooled features: how the programs, the
//! demo and the study extract them, and their evaluation (what the demo,
//! the study and `reid finetune --baseline` report for weights before
//! fine-tuning).

use crate::backbones::Backbone;
use crate::backbones::GlobalPool;
use crate::burn::tensor::Device;
use crate::data::ImageRecord;
use crate::data::batch::TestTransform;
use crate::metrics::{EvalConfig, EvalResult, Metric, evaluate_features};
use crate::train::input::{eval_labels, image_paths};
use crate::train::{ExtractOptions, TrainError, extract_features};

/// Extraction of global-average-pooled features of `transform`ed images
/// in batches of `batch_size`, L2-normalised when `normalize`.
pub(crate) fn avg_pooled(
    transform: TestTransform,
    batch_size: usize,
    normalize: bool,
) -> ExtractOptions {
    ExtractOptions::default()
        .with_transform(transform)
        .with_batch_size(batch_size)
        .with_pool(GlobalPool::Avg)
        .with_normalize(normalize)
}

/// mAP / CMC / mINP of `model`'s pooled features (as `options` extracts
/// them) of `query` against `gallery`, cosine distance, same-id same-camera
/// gallery entries removed. `splits` names the query and gallery records in
/// errors.
pub(crate) fn evaluate_pooled(
    model: &impl Backbone,
    query: &[ImageRecord],
    gallery: &[ImageRecord],
    splits: [&str; 2],
    options: &ExtractOptions,
    device: &Device,
) -> Result<EvalResult, TrainError> {
    let q = extract_features(model, &image_paths(query, splits[0])?, options, device)?;
    let g = extract_features(model, &image_paths(gallery, splits[1])?, options, device)?;
    let (q_ids, g_ids) = (eval_labels(query)?, eval_labels(gallery)?);
    let (cosine, settings) = (Metric::Cosine, EvalConfig::default());
    Ok(evaluate_features(
        q.view(),
        g.view(),
        &q_ids,
        &g_ids,
        cosine,
        false,
        &settings,
    )?)
}
