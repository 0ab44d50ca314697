//! Evaluates ReID features or a distance matrix with the Market-1501 protocol
//! (CMC, mAP, mINP), optionally after k-reciprocal re-ranking.
//!
//! ```text
//! reid evaluate --query Q.npy --gallery G.npy \
//!     --query-pids QP.npy --query-camids QC.npy --gallery-pids GP.npy --gallery-camids GC.npy \
//!     [--metric euclidean|cosine] [--normalize] [--rerank] [--k1 20] [--k2 6] [--lambda 0.3] \
//!     [--max-rank 50] [--json]
//! ```
//! or `--distmat D.npy` (`[n_query, n_gallery]`) instead of `--query/--gallery`
//! (re-ranking then also needs `--distmat-qq` and `--distmat-gg`).
//! Features: float32/float64 `[n, dim]`; ids: int64/int32 `[n]`.
//! Bad input (mismatched lengths, wrong dtypes, NaN, empty or
//! zero-dimensional arrays, an all-zero feature under the cosine distance,
//! no valid query) exits with code 2, naming the file.
//!
//! Or a model on a dataset, in one command (fast-reid's `--eval-only`):
//!
//! ```text
//! reid evaluate --dataset market1501 --root DIR --weights MODEL.safetensors \
//!     [--arch resnet50] [--ibn a] [--last-stride 1] [--base-width 64] \
//!     [--height 256 --width 128] [--feature bnneck|pool] [--flip] [--aqe] \
//!     [--rerank] [--metric cosine] [--out DIR] [--json]
//! ```
//! `MODEL` is a file written by `reid finetune --export-model` (which
//! records the architecture and input size: no other flag is needed), a
//! fast-reid BoT checkpoint or a TransReID one (give `--arch`). The
//! feature is the head's BNNeck output by default (what fine-tuning
//! evaluates), the distance cosine. `--out DIR` receives `metrics.json`,
//! the features (`query.npy`, `gallery.npy`, `*_pids.npy`,
//! `*_camids.npy`), the CMC curve (`cmc.png`) and the rank lists of the
//! three best and three worst queries (`ranklist.png`).
//!
//! The `evaluate` example and `reid evaluate` run this module.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use reid_metrics::npy::{read_ids, read_matrix};
use reid_metrics::qe::AqeConfig;
use reid_metrics::rerank::{evaluate_reranked, evaluate_reranked_features};
use reid_metrics::{ApKind, EvalConfig, Labels, Metric, RerankConfig, evaluate, evaluate_features};

/// The flags of `evaluate`.
#[derive(Parser, Debug)]
#[command(about = "Evaluate ReID features or distances (CMC / mAP / mINP, optional re-ranking)")]
pub struct Args {
    /// Query features `[n_query, dim]` (.npy, float32/float64).
    #[arg(long, requires = "gallery", required_unless_present_any = ["distmat", "dataset"])]
    query: Option<PathBuf>,
    /// Gallery features `[n_gallery, dim]` (.npy).
    #[arg(long, requires = "query")]
    gallery: Option<PathBuf>,
    /// Precomputed query-gallery distances `[n_query, n_gallery]` (.npy), instead of features.
    #[arg(long, conflicts_with_all = ["query", "gallery"])]
    distmat: Option<PathBuf>,
    /// Query-query distances `[n_query, n_query]`, for `--rerank` with `--distmat`.
    #[arg(long, requires = "distmat")]
    distmat_qq: Option<PathBuf>,
    /// Gallery-gallery distances `[n_gallery, n_gallery]`, for `--rerank` with `--distmat`.
    #[arg(long, requires = "distmat")]
    distmat_gg: Option<PathBuf>,
    /// Query person ids `[n_query]` (.npy, int64/int32).
    #[arg(long, required_unless_present = "dataset")]
    query_pids: Option<PathBuf>,
    /// Query camera ids `[n_query]`.
    #[arg(long, required_unless_present = "dataset")]
    query_camids: Option<PathBuf>,
    /// Gallery person ids `[n_gallery]`.
    #[arg(long, required_unless_present = "dataset")]
    gallery_pids: Option<PathBuf>,
    /// Gallery camera ids `[n_gallery]`.
    #[arg(long, required_unless_present = "dataset")]
    gallery_camids: Option<PathBuf>,
    /// Distance: squared Euclidean or cosine (1 - cos); default euclidean
    /// for given features, cosine with --dataset (fast-reid's test setting).
    #[arg(long, value_parser = ["euclidean", "cosine"])]
    metric: Option<String>,
    /// L2-normalise features before the distance.
    #[arg(long)]
    normalize: bool,
    /// Apply k-reciprocal re-ranking.
    #[arg(long)]
    rerank: bool,
    /// k1 of re-ranking.
    #[arg(long, default_value_t = 20)]
    k1: usize,
    /// k2 of re-ranking.
    #[arg(long, default_value_t = 6)]
    k2: usize,
    /// λ of re-ranking.
    #[arg(long = "lambda", default_value_t = 0.3)]
    lambda: f64,
    /// Length of the CMC curve.
    #[arg(long, default_value_t = 50)]
    max_rank: usize,
    /// Use the official Market-1501 trapezoid AP instead of torchreid's.
    #[arg(long)]
    trapezoid_ap: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Evaluate a model on this dataset's query/gallery split instead of
    /// given features (with --root and --weights).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(image_datasets()),
          requires_all = ["root", "weights"], conflicts_with_all = ["query", "distmat"])]
    dataset: Option<String>,
    /// The dataset's folder (--dataset).
    #[arg(long, requires = "dataset")]
    root: Option<PathBuf>,
    /// The model (--dataset): a `finetune --export-model` file, a fast-reid
    /// BoT or a TransReID checkpoint (.safetensors / .pth).
    #[arg(long, requires = "dataset")]
    weights: Option<PathBuf>,
    /// Checkpoint format (--dataset): auto, fastreid, transreid, safetensors.
    #[arg(long, default_value = "auto", requires = "dataset")]
    weights_format: String,
    /// Architecture (--dataset; default: the file's metadata): resnet18 …
    /// resnet152, optionally suffixed _ibn_a / _ibn_b.
    #[arg(long, requires = "dataset")]
    arch: Option<String>,
    /// IBN variant, a or b (--dataset).
    #[arg(long, requires = "dataset")]
    ibn: Option<String>,
    /// Stride of the last stage (--dataset; default: the file's, else 1).
    #[arg(long, requires = "dataset")]
    last_stride: Option<usize>,
    /// Channels of the stem (--dataset; default: the file's, else 64).
    #[arg(long, requires = "dataset")]
    base_width: Option<usize>,
    /// Input height in pixels (--dataset; default: the file's, else 256).
    #[arg(long, requires = "dataset")]
    height: Option<u32>,
    /// Input width in pixels (--dataset; default: the file's, else 128).
    #[arg(long, requires = "dataset")]
    width: Option<u32>,
    /// The feature evaluated (--dataset; default bnneck).
    #[arg(long, value_enum, requires = "dataset")]
    feature: Option<super::model_file::Feature>,
    /// Average each image's feature with its horizontal flip's (--dataset).
    #[arg(long, requires = "dataset")]
    flip: bool,
    /// Average query expansion over query and gallery, fast-reid's TEST.AQE
    /// (k 5, alpha 3, one round) (--dataset).
    #[arg(long, requires = "dataset")]
    aqe: bool,
    /// Images per forward pass (--dataset).
    #[arg(long, default_value_t = 64, requires = "dataset")]
    batch_size: usize,
    /// Compute backend (--dataset; must be compiled in).
    #[arg(long, value_enum, default_value_t = crate::Backend::Flex, requires = "dataset")]
    backend: crate::Backend,
    /// Write metrics.json, the features and the pictures here (--dataset).
    #[arg(long, requires = "dataset")]
    out: Option<PathBuf>,
}

/// The registry's datasets with a query/gallery split.
pub fn image_datasets() -> Vec<&'static str> {
    crate::data::datasets::REGISTRY
        .iter()
        .filter(|e| !e.is_corpus)
        .map(|e| e.name)
        .collect()
}

/// A required label file of the features mode.
fn given<'a>(p: &'a Option<PathBuf>, flag: &str) -> Result<&'a Path> {
    p.as_deref()
        .ok_or_else(|| anyhow::anyhow!("{flag} is required with --query/--gallery or --distmat"))
}

fn labels(pids: &Path, camids: &Path, n: usize, rows_of: &dyn Display) -> Result<Labels> {
    let p = read_ids(pids)?;
    let c = read_ids(camids)?;
    for (file, ids) in [(pids, &p), (camids, &c)] {
        if ids.len() != n {
            bail!(
                "{}: expected {n} ids (the rows of {rows_of}), got {}",
                file.display(),
                ids.len()
            );
        }
    }
    Ok(Labels::new(p, c)?)
}

/// Under the cosine distance (or `--normalize`) a row of zeros has no
/// direction: its distance to everything would be the same made-up value
/// (1), and the ranking an artefact of tie-breaking. Refused, naming it.
fn check_directions(x: &ndarray::Array2<f32>, path: &Path) -> Result<()> {
    if let Some(i) = x.outer_iter().position(|r| r.iter().all(|&v| v == 0.0)) {
        bail!(
            "{}: row {i} is all zeros; under the cosine distance (or --normalize) a feature needs a direction (use --metric euclidean, or check how the features were made)",
            path.display()
        );
    }
    Ok(())
}

fn run(cli: &Args) -> Result<serde_json::Value> {
    let default_metric = if cli.dataset.is_some() {
        "cosine"
    } else {
        "euclidean"
    };
    let metric: Metric = cli.metric.as_deref().unwrap_or(default_metric).parse()?;
    let ecfg = EvalConfig::default()
        .with_max_rank(cli.max_rank)
        .with_ap(if cli.trapezoid_ap {
            ApKind::Trapezoid
        } else {
            ApKind::NonInterpolated
        })
        .with_junk_pid(None);
    let rcfg = RerankConfig::default()
        .with_k1(cli.k1)
        .with_k2(cli.k2)
        .with_lambda(cli.lambda);
    if let (Some(dataset), Some(root), Some(weights)) = (&cli.dataset, &cli.root, &cli.weights) {
        if cli.batch_size == 0 {
            bail!("--batch-size must be positive");
        }
        let run = super::eval_dataset::DatasetRun {
            dataset,
            root,
            weights,
            spec: super::model_file::ModelSpec {
                arch: cli.arch.clone(),
                ibn: cli.ibn.clone(),
                last_stride: cli.last_stride,
                base_width: cli.base_width,
                feature: cli.feature,
                size: [cli.height, cli.width],
                format: cli.weights_format.clone(),
            },
            flip: cli.flip,
            aqe: cli.aqe.then(AqeConfig::default),
            metric,
            rerank: cli.rerank.then_some(rcfg),
            eval: ecfg,
            batch_size: cli.batch_size,
            backend: cli.backend,
            out: cli.out.as_deref(),
        };
        let summary = super::eval_dataset::run(&run)?;
        if !cli.json {
            let cmc: Vec<f64> = serde_json::from_value(summary["cmc"].clone())?;
            let result = reid_metrics::EvalResult {
                cmc,
                map: summary["mAP"].as_f64().unwrap_or(f64::NAN),
                minp: summary["mINP"].as_f64().unwrap_or(f64::NAN),
                num_valid_queries: summary["num_valid_queries"].as_u64().unwrap_or(0) as usize,
                num_queries: summary["queries"].as_u64().unwrap_or(0) as usize,
                per_query: Vec::new(),
            };
            print_table(&result, summary["seconds"].as_f64().unwrap_or(0.0));
            if let Some(out) = &cli.out {
                println!(
                    "wrote metrics.json, query/gallery features, cmc.png and ranklist.png to {}",
                    out.display()
                );
            }
            return Ok(serde_json::Value::Null);
        }
        return Ok(summary);
    }
    let (query_pids, query_camids, gallery_pids, gallery_camids) = (
        given(&cli.query_pids, "--query-pids")?,
        given(&cli.query_camids, "--query-camids")?,
        given(&cli.gallery_pids, "--gallery-pids")?,
        given(&cli.gallery_camids, "--gallery-camids")?,
    );
    let t0 = Instant::now();
    let result = if let Some(dpath) = &cli.distmat {
        let d = read_matrix(dpath)?;
        let (nq, ng) = d.dim();
        if ng == 0 {
            bail!("{}: the gallery is empty (0 columns)", dpath.display());
        }
        let q = labels(query_pids, query_camids, nq, &dpath.display())?;
        let g = labels(
            gallery_pids,
            gallery_camids,
            ng,
            &format!("the transpose of {}", dpath.display()),
        )?;
        if cli.rerank {
            let (Some(qq_path), Some(gg_path)) = (&cli.distmat_qq, &cli.distmat_gg) else {
                bail!(
                    "--rerank with --distmat needs the query-query and gallery-gallery distances too: pass --distmat-qq and --distmat-gg (or use --query/--gallery features)"
                );
            };
            let qq = read_matrix(qq_path)?;
            let gg = read_matrix(gg_path)?;
            if qq.dim() != (nq, nq) {
                bail!(
                    "{}: expected shape [{nq}, {nq}], got {:?}",
                    qq_path.display(),
                    qq.dim()
                );
            }
            if gg.dim() != (ng, ng) {
                bail!(
                    "{}: expected shape [{ng}, {ng}], got {:?}",
                    gg_path.display(),
                    gg.dim()
                );
            }
            evaluate_reranked(d.view(), qq.view(), gg.view(), &q, &g, &rcfg, &ecfg)?
        } else {
            evaluate(d.view(), &q, &g, &ecfg)?
        }
    } else {
        let (Some(qp), Some(gp)) = (&cli.query, &cli.gallery) else {
            bail!("pass --query and --gallery, or --distmat");
        };
        let qf = read_matrix(qp)?;
        let gf = read_matrix(gp)?;
        if metric == Metric::Cosine || cli.normalize {
            check_directions(&qf, qp)?;
            check_directions(&gf, gp)?;
        }
        if gf.nrows() == 0 {
            bail!("{}: the gallery is empty (0 rows)", gp.display());
        }
        if qf.ncols() != gf.ncols() {
            bail!(
                "{} has dimension {} but {} has dimension {}",
                qp.display(),
                qf.ncols(),
                gp.display(),
                gf.ncols()
            );
        }
        let q = labels(query_pids, query_camids, qf.nrows(), &qp.display())?;
        let g = labels(gallery_pids, gallery_camids, gf.nrows(), &gp.display())?;
        if cli.rerank {
            evaluate_reranked_features(
                qf.view(),
                gf.view(),
                &q,
                &g,
                metric,
                cli.normalize,
                &rcfg,
                &ecfg,
            )?
        } else {
            evaluate_features(qf.view(), gf.view(), &q, &g, metric, cli.normalize, &ecfg)?
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    if cli.json {
        return Ok(serde_json::json!({
            "mAP": result.map,
            "mINP": result.minp,
            "cmc": result.cmc,
            "num_valid_queries": result.num_valid_queries,
        }));
    }
    print_table(&result, secs);
    Ok(serde_json::Value::Null)
}

/// The metrics as a two-column table.
fn print_table(result: &reid_metrics::EvalResult, secs: f64) {
    println!("{:<18} {:>8}", "metric", "value");
    println!("{:<18} {:>7.2}%", "mAP", 100.0 * result.map);
    println!("{:<18} {:>7.2}%", "mINP", 100.0 * result.minp);
    for k in [1usize, 5, 10, 20] {
        if let Some(v) = result.rank(k) {
            println!("{:<18} {:>7.2}%", format!("Rank-{k}"), 100.0 * v);
        }
    }
    println!(
        "{:<18} {:>8}",
        "valid queries",
        format!("{}/{}", result.num_valid_queries, result.num_queries)
    );
    println!("{:<18} {:>7.2}s", "time (incl. load)", secs);
}

/// Runs the program on parsed arguments; returns its exit code. Every
/// failure here is the input's (files, shapes, values): exit code 2.
pub fn execute(args: Args) -> ExitCode {
    let cli = args;
    super::exit::exit(match run(&cli) {
        Ok(v) => {
            if cli.json {
                println!("{v}");
            }
            Ok(())
        }
        Err(e) => Err(super::exit::usage(super::exit::describe(&e))),
    })
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}
