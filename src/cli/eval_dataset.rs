//! `reid evaluate --dataset NAME --root DIR --weights FILE`: a trained or
//! downloaded BoT model evaluated on a dataset's query/gallery split, the
//! fast-reid way (test transform, the head's feature, optional flip
//! averaging, query expansion and re-ranking, Market-1501 protocol), with
//! the features, the metrics and two pictures written to `--out`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::Array2;

use crate::Backend;
use crate::backbones::{Backbone, ReidModel, ResNet};
use crate::burn::module::Module;
use crate::burn::tensor::{Device, Tensor};
use crate::data::ImageRecord;
use crate::data::batch::{TestTransform, load_rgb};
use crate::data::datasets::{ImageDatasetOptions, Loaded, entry};
use crate::metrics::qe::{AqeConfig, average_query_expansion};
use crate::metrics::rerank::evaluate_reranked_features;
use crate::metrics::{
    EvalConfig, EvalResult, Labels, Metric, RerankConfig, evaluate_features, flip::flip_average,
    pairwise_distance, top_matches,
};
use crate::train::extract::{ExtractOptions, extract_features};
use crate::train::finetune::HeadEmbedder;
use crate::train::finetune::mgn::embed_records_mgn;
use crate::train::input::{eval_labels, image_paths};

use super::exit::{classify, classify_data, classify_metrics, usage};
use super::model_file::{ModelSpec, is_mgn, load_bot, load_mgn_model};

/// What the dataset mode needs besides the evaluation settings.
pub struct DatasetRun<'a> {
    /// Registry name (`market1501`, …).
    pub dataset: &'a str,
    /// The dataset folder.
    pub root: &'a Path,
    /// The model file.
    pub weights: &'a Path,
    /// How to build the model.
    pub spec: ModelSpec,
    /// Average each image's feature with its horizontal flip's.
    pub flip: bool,
    /// Average query expansion over query + gallery (fast-reid `TEST.AQE`).
    pub aqe: Option<AqeConfig>,
    /// Distance.
    pub metric: Metric,
    /// k-reciprocal re-ranking.
    pub rerank: Option<RerankConfig>,
    /// Protocol settings.
    pub eval: EvalConfig,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Compute backend.
    pub backend: Backend,
    /// Output folder (metrics.json, features, pictures).
    pub out: Option<&'a Path>,
}

/// fast-reid's test transform, as fine-tuning evaluates with it: bicubic
/// resize to `[height, width]` (`T.Resize(size, interpolation=3)`),
/// ImageNet normalisation.
fn test_transform(size: [u32; 2]) -> TestTransform {
    TestTransform {
        interpolation: crate::data::transform::Interpolation::Bicubic,
        ..TestTransform::new(size[0], size[1])
    }
}

/// `inner` fed horizontally flipped images.
struct Flipped<B>(B);

impl<B: Backbone> Backbone for Flipped<B> {
    fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.0.forward_features(images.flip([3]))
    }
    fn out_channels(&self) -> usize {
        self.0.out_channels()
    }
    fn output_stride(&self) -> usize {
        self.0.output_stride()
    }
}

/// Head features `[records, dim]` of `records`, flip-averaged when asked.
fn embed(
    model: &ReidModel<ResNet>,
    records: &[ImageRecord],
    split: &str,
    options: &ExtractOptions,
    flip: bool,
    device: &Device,
) -> Result<Array2<f32>> {
    let paths = image_paths(records, split).map_err(classify)?;
    let embedder = HeadEmbedder::new(model);
    let f = extract_features(&embedder, &paths, options, device).map_err(classify)?;
    if !flip {
        return Ok(f);
    }
    let g = extract_features(&Flipped(embedder), &paths, options, device).map_err(classify)?;
    flip_average(f.view(), g.view()).map_err(classify_metrics)
}

/// Runs the evaluation; returns the JSON summary (also written to
/// `out/metrics.json`).
pub fn run(r: &DatasetRun<'_>) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    let e = entry(r.dataset).map_err(classify_data)?;
    let Loaded::Images(parsed) = e
        .load(r.root, &ImageDatasetOptions::default())
        .map_err(classify_data)?
    else {
        return Err(usage(format!(
            "--dataset {}: a video corpus has no query/gallery split to evaluate on",
            r.dataset
        )));
    };
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    let (query, gallery) = (&parsed.splits.query, &parsed.splits.gallery);
    if query.is_empty() || gallery.is_empty() {
        return Err(usage(format!(
            "{}: the query ({}) or the gallery ({}) is empty",
            parsed.root.display(),
            query.len(),
            gallery.len()
        )));
    }
    let device = r
        .backend
        .device()
        .map_err(|e| usage(format!("--backend: {e}")))?;
    let (mut q, mut g, described) = if is_mgn(r.weights)? {
        if r.flip {
            return Err(usage(
                "--flip: MGN is evaluated without flip averaging (as LUPerson's MGN configs test it)",
            ));
        }
        let loaded = load_mgn_model(r.weights, &r.spec, &device)?;
        eprintln!("model: MGN, {}", loaded.described.join(", "));
        let transform = test_transform(loaded.size);
        let run = |records: &[ImageRecord]| {
            embed_records_mgn(&loaded.model, records, transform, r.batch_size, &device)
                .map_err(classify)
        };
        (run(query)?, run(gallery)?, loaded.described)
    } else {
        let loaded = load_bot(r.weights, &r.spec, &device)?;
        eprintln!("model: {}", loaded.described.join(", "));
        let model = loaded.model.valid();
        let options = ExtractOptions::default()
            .with_transform(test_transform(loaded.size))
            .with_batch_size(r.batch_size)
            .with_pool(crate::backbones::GlobalPool::Avg)
            .with_normalize(false);
        let plain = device.clone().inner();
        let q = embed(&model, query, "query", &options, r.flip, &plain)?;
        let g = embed(&model, gallery, "gallery", &options, r.flip, &plain)?;
        (q, g, loaded.described)
    };
    let extract_s = t0.elapsed().as_secs_f64();
    if let Some(cfg) = &r.aqe {
        (q, g) = average_query_expansion(q.view(), g.view(), cfg).map_err(classify_metrics)?;
    }
    let ql = eval_labels(query).map_err(classify)?;
    let gl = eval_labels(gallery).map_err(classify)?;
    let result = match &r.rerank {
        Some(rc) => {
            evaluate_reranked_features(q.view(), g.view(), &ql, &gl, r.metric, false, rc, &r.eval)
        }
        None => evaluate_features(q.view(), g.view(), &ql, &gl, r.metric, false, &r.eval),
    }
    .map_err(classify_metrics)?;
    let summary = serde_json::json!({
        "dataset": r.dataset,
        "root": parsed.root,
        "weights": r.weights,
        "model": described,
        "queries": query.len(),
        "gallery": gallery.len(),
        "flip": r.flip,
        "aqe": r.aqe.is_some(),
        "rerank": r.rerank.is_some(),
        "metric": format!("{:?}", r.metric).to_lowercase(),
        "mAP": result.map,
        "mINP": result.minp,
        "cmc": result.cmc,
        "num_valid_queries": result.num_valid_queries,
        "extract_seconds": extract_s,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    if let Some(out) = r.out {
        write_outputs(
            out, &summary, &q, &g, &ql, &gl, query, gallery, &result, r.metric,
        )?;
    }
    Ok(summary)
}

/// `metrics.json`, `query.npy` / `gallery.npy` with their `*_pids.npy` and
/// `*_camids.npy`, `cmc.png` and `ranklist.png` (the three best and the
/// three worst queries by AP, ten gallery images each) under `out`.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    out: &Path,
    summary: &serde_json::Value,
    q: &Array2<f32>,
    g: &Array2<f32>,
    ql: &Labels,
    gl: &Labels,
    query: &[ImageRecord],
    gallery: &[ImageRecord],
    result: &EvalResult,
    metric: Metric,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = |name: &str| -> PathBuf { out.join(name) };
    std::fs::write(
        file("metrics.json"),
        serde_json::to_string_pretty(summary)? + "\n",
    )
    .with_context(|| format!("writing {}", file("metrics.json").display()))?;
    for (name, x) in [("query.npy", q), ("gallery.npy", g)] {
        crate::metrics::npy::write_matrix(file(name), x.view())
            .with_context(|| format!("writing {}", file(name).display()))?;
    }
    for (name, l) in [("query", ql), ("gallery", gl)] {
        for (what, ids) in [("pids", l.pids()), ("camids", l.camids())] {
            let p = file(&format!("{name}_{what}.npy"));
            crate::metrics::npy::write_ids(&p, ids)
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    crate::viz::save_png(
        &crate::viz::cmc_chart(&[("model", &result.cmc)], 20.min(result.cmc.len()))
            .render(640, 420),
        &file("cmc.png"),
    )
    .map_err(|e| anyhow::anyhow!("writing {}: {e}", file("cmc.png").display()))?;
    // Queries by AP (valid ones only): the three best, then the three worst.
    let mut scored: Vec<(usize, f64)> = result
        .per_query
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.ap)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut picked: Vec<usize> = scored.iter().take(3).map(|s| s.0).collect();
    for s in scored.iter().rev().take(3).rev() {
        if !picked.contains(&s.0) {
            picked.push(s.0);
        }
    }
    let dist = pairwise_distance(q.view(), g.view(), metric, false).map_err(classify_metrics)?;
    let top = top_matches(dist.view(), ql, gl, 10).map_err(classify_metrics)?;
    let qp = image_paths(query, "query").map_err(classify)?;
    let gp = image_paths(gallery, "gallery").map_err(classify)?;
    let mut rows = Vec::new();
    for qi in picked {
        let load = |p: &Path| load_rgb(p).with_context(|| format!("reading {}", p.display()));
        let gallery = top[qi]
            .iter()
            .map(|m| load(&gp[m.gallery_index]).map(|i| (i, m.is_match)))
            .collect::<Result<Vec<_>>>()?;
        rows.push(crate::viz::RankRow {
            query: load(&qp[qi])?,
            gallery,
        });
    }
    crate::viz::save_png(&crate::viz::rank_list(&rows), &file("ranklist.png"))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", file("ranklist.png").display()))?;
    Ok(())
}
