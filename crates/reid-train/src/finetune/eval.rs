//! Evaluation of a fine-tuned [`ReidModel`] on a query/gallery split, the
//! fast-reid way: the head's test feature (the BNNeck output for BoT),
//! cosine distance, Market-1501 protocol.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ndarray::Array2;
use reid_backbones::{Backbone, GlobalPool, ReidModel, ResNet, TrainBackbone};
use reid_data::ImageRecord;
use reid_data::batch::TestTransform;
use reid_metrics::{EvalConfig, EvalResult, Metric, evaluate_features};

use crate::error::TrainError;
use crate::extract::{ExtractOptions, extract_features};
use crate::input::{eval_labels, image_paths};

/// A [`Backbone`] view of a whole [`ReidModel`] whose "feature map" is the
/// head's test embedding `[batch, dim, 1, 1]`, so that
/// [`extract_features`] (with average pooling) returns the embedding
/// `[n, dim]` itself.
#[derive(Debug)]
pub struct HeadEmbedder<'a, M: TrainBackbone = ResNet> {
    model: &'a ReidModel<M>,
    dim: usize,
}

impl<M: TrainBackbone> Clone for HeadEmbedder<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: TrainBackbone> Copy for HeadEmbedder<'_, M> {}

impl<'a, M: TrainBackbone> HeadEmbedder<'a, M> {
    /// Wraps `model` (use it on a plain device, i.e. after
    /// [`Module::valid`], so BatchNorm uses its running statistics).
    pub fn new(model: &'a ReidModel<M>) -> Self {
        let dim = model.heads.neck.gamma.val().dims()[0];
        Self { model, dim }
    }
}

impl<M: TrainBackbone> Backbone for HeadEmbedder<'_, M> {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let e = self.model.embed(images);
        let [b, d] = e.dims();
        e.reshape([b, d, 1, 1])
    }

    fn out_channels(&self) -> usize {
        self.dim
    }

    fn output_stride(&self) -> usize {
        self.model.backbone.output_stride()
    }
}

/// Test embeddings `[records.len(), dim]` of `records` with `model` (its
/// validation snapshot is taken here, so an autodiff-device model from a
/// training callback is fine), resized with `transform`, in batches of
/// `batch_size`, on the plain version of `device`. Not L2-normalised.
pub fn embed_records<M: TrainBackbone>(
    model: &ReidModel<M>,
    records: &[ImageRecord],
    transform: TestTransform,
    batch_size: usize,
    device: &Device,
) -> Result<Array2<f32>, TrainError> {
    let model = model.valid();
    let options = ExtractOptions {
        transform,
        batch_size,
        pool: GlobalPool::Avg,
        normalize: false,
    };
    let device = device.clone().inner();
    extract_features(
        &HeadEmbedder::new(&model),
        &image_paths(records, "evaluation")?,
        &options,
        &device,
    )
}

/// mAP / CMC / mINP of `model` on `query` against `gallery` with fast-reid's
/// test settings: head test feature, cosine distance (`1 − cos`), same-id
/// same-camera gallery entries removed, queries without a match skipped.
pub fn evaluate_model<M: TrainBackbone>(
    model: &ReidModel<M>,
    query: &[ImageRecord],
    gallery: &[ImageRecord],
    transform: TestTransform,
    batch_size: usize,
    device: &Device,
) -> Result<EvalResult, TrainError> {
    let q = embed_records(model, query, transform, batch_size, device)?;
    let g = embed_records(model, gallery, transform, batch_size, device)?;
    cosine_eval(&q, &g, query, gallery)
}

/// Market-protocol evaluation of query/gallery embeddings (`[n, dim]` each,
/// rows in record order) with cosine distance, fast-reid's test setting.
pub(crate) fn cosine_eval(
    q: &Array2<f32>,
    g: &Array2<f32>,
    query: &[ImageRecord],
    gallery: &[ImageRecord],
) -> Result<EvalResult, TrainError> {
    Ok(evaluate_features(
        q.view(),
        g.view(),
        &eval_labels(query)?,
        &eval_labels(gallery)?,
        Metric::Cosine,
        false,
        &EvalConfig::default(),
    )?)
}
