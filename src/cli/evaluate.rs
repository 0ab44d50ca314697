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
//! The `evaluate` example and `reid evaluate` run this module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use reid_metrics::npy::{read_ids, read_matrix};
use reid_metrics::rerank::{evaluate_reranked, evaluate_reranked_features};
use reid_metrics::{ApKind, EvalConfig, Labels, Metric, RerankConfig, evaluate, evaluate_features};

/// The flags of `evaluate`.
#[derive(Parser, Debug)]
#[command(about = "Evaluate ReID features or distances (CMC / mAP / mINP, optional re-ranking)")]
pub struct Args {
    /// Query features `[n_query, dim]` (.npy, float32/float64).
    #[arg(long, requires = "gallery", required_unless_present = "distmat")]
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
    #[arg(long)]
    query_pids: PathBuf,
    /// Query camera ids `[n_query]`.
    #[arg(long)]
    query_camids: PathBuf,
    /// Gallery person ids `[n_gallery]`.
    #[arg(long)]
    gallery_pids: PathBuf,
    /// Gallery camera ids `[n_gallery]`.
    #[arg(long)]
    gallery_camids: PathBuf,
    /// Distance: squared Euclidean or cosine (1 - cos).
    #[arg(long, default_value = "euclidean", value_parser = ["euclidean", "cosine"])]
    metric: String,
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
}

fn labels(pids: &Path, camids: &Path, n: usize, rows_of: &str) -> Result<Labels> {
    let p = read_ids(pids)?;
    let c = read_ids(camids)?;
    if p.len() != n {
        bail!(
            "{}: expected {n} ids (the rows of {rows_of}), got {}",
            pids.display(),
            p.len()
        );
    }
    if c.len() != n {
        bail!(
            "{}: expected {n} ids (the rows of {rows_of}), got {}",
            camids.display(),
            c.len()
        );
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
    let metric: Metric = cli.metric.parse()?;
    let ecfg = EvalConfig {
        max_rank: cli.max_rank,
        ap: if cli.trapezoid_ap {
            ApKind::Trapezoid
        } else {
            ApKind::NonInterpolated
        },
        junk_pid: None,
    };
    let rcfg = RerankConfig {
        k1: cli.k1,
        k2: cli.k2,
        lambda: cli.lambda,
    };
    let t0 = Instant::now();
    let result = if let Some(dpath) = &cli.distmat {
        let d = read_matrix(dpath)?;
        let (nq, ng) = d.dim();
        if ng == 0 {
            bail!("{}: the gallery is empty (0 columns)", dpath.display());
        }
        let q = labels(
            &cli.query_pids,
            &cli.query_camids,
            nq,
            &dpath.display().to_string(),
        )?;
        let g = labels(
            &cli.gallery_pids,
            &cli.gallery_camids,
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
        let q = labels(
            &cli.query_pids,
            &cli.query_camids,
            qf.nrows(),
            &qp.display().to_string(),
        )?;
        let g = labels(
            &cli.gallery_pids,
            &cli.gallery_camids,
            gf.nrows(),
            &gp.display().to_string(),
        )?;
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
    Ok(serde_json::Value::Null)
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
    execute(<Args as clap::Parser>::parse())
}
