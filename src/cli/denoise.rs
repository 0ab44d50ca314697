//! CION-style progressive multi-level denoising of a LUPerson-NL corpus.
//!
//! ```sh
//! reid denoise --corpus DIR \
//!     (--features F.npy | --arch resnet50 --weights W [--weights-format …]) \
//!     --out annos.json [stage parameters]
//! ```
//!
//! - `--corpus DIR`: a LUPerson-NL folder tree (`country/city/video/{pid}_{frame}_{obj}.jpg`)
//!   or LMDB (see `reid_data::datasets::luperson_nl`).
//! - `--features F.npy`: float32 `[images, dim]` in corpus order (videos in
//!   order; in each, tracklets by pid, crops by frame), streamed, never loaded
//!   whole. Or `--arch/--weights`: features are extracted here with the
//!   standard test transform (`--height`/`--width`, default 256×128).
//! - `--out annos.json`: CION-AL style `[{"file_path","id"}]`, sorted by id,
//!   paths relative to the corpus folder.
//! - Stage parameters: see `--help` and `docs/denoise.md`. Every video's
//!   features are mean-centred first (`--normalization`). The merge and link
//!   thresholds are set for `--target-precision` (default 0.95) from pairs
//!   the corpus labels itself (two crops of one frame are two persons),
//!   measured on the first `--calibration-videos`; when the target cannot be
//!   reached, the stage joins nothing and says so. `--target-precision 0`
//!   (or giving `--merge-threshold`/`--link-threshold` alone) keeps fixed
//!   thresholds; with the default `--scale calibrated` the other thresholds
//!   are multiples of the typical spread of one tracklet's crops, measured
//!   on the first videos.
//!
//! When the corpus was written by `reid_synth` (it has a
//! `synth_truth.json`), the quality after each level is printed. Bad
//! arguments or inputs exit with code 2 (`docs/errors.md`).
//!
//! The `denoise` example and `reid denoise` run this module.

use super::exit as cli;
use super::set_if_given;
use super::weights;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::Backend;
use crate::data::batch::TestTransform;
use crate::data::datasets::luperson_nl;
use crate::denoise::calibrate::ThresholdCalibration;
use crate::denoise::source::{corpus_blocks, corpus_npy_blocks, corpus_paths, synthetic_truth};
use crate::denoise::{
    CalibrationStatus, DenoiseConfig, DenoiseError, DenoiseOutput, FeatureDistance, ThresholdScale,
    VideoNormalization, annos,
};
use crate::gap_eval::avg_pooled;
use crate::train::extract_features;
use clap::Parser;
use cli::usage;
use weights::WeightsArgs;

/// Denoises LUPerson-NL tracklet labels into CION-AL style identities.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// The LUPerson-NL corpus (folder tree or LMDB).
    #[arg(long)]
    corpus: PathBuf,
    /// Per-image features, float32 `[images, dim]`, corpus order.
    #[arg(long, conflicts_with_all = ["arch", "weights"])]
    features: Option<PathBuf>,
    #[command(flatten)]
    model: WeightsArgs,
    /// Input height for `--arch/--weights` extraction.
    #[arg(long, default_value_t = 256)]
    height: u32,
    /// Input width for `--arch/--weights` extraction.
    #[arg(long, default_value_t = 128)]
    width: u32,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Compute backend for extraction: flex, wgpu, wgpu-cpu or cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Output annotation file.
    #[arg(long)]
    out: PathBuf,
    /// Also write the per-level report (and quality, with truth) as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Distance: cosine or euclidean.
    #[arg(long, default_value = "cosine")]
    metric: String,
    /// Thresholds as multiples of the measured spread (calibrated) or as raw distances (absolute).
    #[arg(long, default_value = "calibrated")]
    scale: String,
    /// Per-video feature normalisation: none, center or whiten.
    #[arg(long, default_value = "center")]
    normalization: String,
    /// Pairwise precision the merges and links must reach, in (0, 1]; 0 keeps
    /// the fixed thresholds (default 0.95).
    #[arg(long)]
    target_precision: Option<f32>,
    /// Videos at the start of the corpus the calibration is measured on.
    #[arg(long)]
    calibration_videos: Option<usize>,
    /// Level 1: largest crop-to-centroid distance in a tracklet.
    #[arg(long)]
    radius: Option<f32>,
    /// Level 1: smaller tracklets are dissolved.
    #[arg(long)]
    min_tracklet_size: Option<usize>,
    /// Level 2: largest distance of a re-assigned crop to its tracklet's centroid.
    #[arg(long)]
    reassign_radius: Option<f32>,
    /// Level 2: tracklets of one video closer than this are merged.
    #[arg(long)]
    merge_threshold: Option<f32>,
    /// Level 2: allow two crops of the same frame in one identity.
    #[arg(long)]
    allow_frame_overlap: bool,
    /// Level 2 stitching: largest gap, in the video's sampling steps, between
    /// a tracklet's end and its continuation's start (0 = off, the default).
    #[arg(long)]
    stitch_gap_steps: Option<f32>,
    /// Level 2 stitching: largest centroid distance of a tracklet and its
    /// continuation (a multiple of the spread under --scale calibrated; not
    /// set by --target-precision).
    #[arg(long)]
    stitch_threshold: Option<f32>,
    /// Level 3: videos per Sliding Range window.
    #[arg(long)]
    window: Option<usize>,
    /// Level 3: videos the window moves by.
    #[arg(long)]
    stride: Option<usize>,
    /// Level 3: largest centroid distance of a Linking Relation.
    #[arg(long)]
    link_threshold: Option<f32>,
    /// Level 3: mutual nearest-neighbour rank of a relation (0 = off).
    #[arg(long)]
    mutual_top_k: Option<usize>,
    /// Level 3: smaller identities are removed.
    #[arg(long)]
    min_images: Option<usize>,
}

fn config(args: &Args) -> anyhow::Result<DenoiseConfig> {
    let metric = FeatureDistance::from_name(&args.metric).ok_or_else(|| {
        usage(format!(
            "--metric must be cosine or euclidean, got {:?}",
            args.metric
        ))
    })?;
    let scale = match args.scale.as_str() {
        "calibrated" => ThresholdScale::Calibrated,
        "absolute" => ThresholdScale::Absolute,
        other => {
            return Err(usage(format!(
                "--scale must be calibrated or absolute, got {other:?}"
            )));
        }
    };
    let mode = VideoNormalization::from_name(&args.normalization).ok_or_else(|| {
        usage(format!(
            "--normalization must be none, center or whiten, got {:?}",
            args.normalization
        ))
    })?;
    let mut c = DenoiseConfig::default()
        .with_metric(metric)
        .with_scale(scale);
    c.normalization.mode = mode;
    let fixed_given = args.merge_threshold.is_some() || args.link_threshold.is_some();
    match args.target_precision {
        Some(0.0) => c.calibration.target_precision = None,
        Some(p) if fixed_given => {
            return Err(usage(format!(
                "--target-precision {p} sets the merge and link thresholds; give --merge-threshold/--link-threshold with --target-precision 0"
            )));
        }
        Some(p) => c.calibration.target_precision = Some(p),
        None if fixed_given => {
            eprintln!(
                "note: fixed --merge-threshold/--link-threshold given: no target-precision calibration"
            );
            c.calibration.target_precision = None;
        }
        None => {}
    }
    set_if_given(&mut c.calibration.videos, args.calibration_videos);
    set_if_given(&mut c.level1.radius, args.radius);
    set_if_given(&mut c.level1.min_tracklet_size, args.min_tracklet_size);
    set_if_given(&mut c.level2.reassign_radius, args.reassign_radius);
    set_if_given(&mut c.level2.merge_threshold, args.merge_threshold);
    c.level2.forbid_frame_overlap = !args.allow_frame_overlap;
    set_if_given(&mut c.level2.stitch_gap_steps, args.stitch_gap_steps);
    set_if_given(&mut c.level2.stitch_threshold, args.stitch_threshold);
    set_if_given(&mut c.level3.window, args.window);
    set_if_given(&mut c.level3.stride, args.stride);
    set_if_given(&mut c.level3.link_threshold, args.link_threshold);
    set_if_given(&mut c.level3.mutual_top_k, args.mutual_top_k);
    set_if_given(&mut c.level3.min_images, args.min_images);
    c.record_levels = true;
    c.validate().map_err(|e| usage(e.to_string()))?;
    Ok(c)
}

/// A denoising error as the program reports it (`cli::classify_denoise`):
/// unreadable or inconsistent inputs and bad parameters are the user's
/// (exit 2); a failure to write is the environment's (1).
fn bad_input(e: DenoiseError) -> anyhow::Error {
    cli::classify_denoise(e)
}

/// The largest side `--height`/`--width` may give: a batch of images this
/// size already takes gigabytes.
const MAX_SIDE: u32 = 4096;

/// Checks `--height`/`--width` against the network before anything is
/// allocated: at least one output-stride cell each way, at most
/// [`MAX_SIDE`].
fn check_size(args: &Args, stride: usize) -> anyhow::Result<()> {
    for (flag, v) in [("--height", args.height), ("--width", args.width)] {
        if (v as usize) < stride {
            return Err(usage(format!(
                "{flag} {v}: smaller than the model's output stride {stride}; expected at least {stride}"
            )));
        }
        if v > MAX_SIDE {
            return Err(usage(format!(
                "{flag} {v}: too large; expected at most {MAX_SIDE}"
            )));
        }
    }
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let cfg = config(args)?;
    // Outputs first: a run is not to end, after its work, on an output
    // that could never be written.
    cli::check_output_file(&args.out, "--out")?;
    if let Some(r) = &args.report {
        cli::check_output_file(r, "--report")?;
    }
    if !args.corpus.exists() {
        return Err(usage(format!(
            "--corpus {}: no such file or folder",
            args.corpus.display()
        )));
    }
    cli::check_readable_dir(&args.corpus, "--corpus")?;
    let t0 = Instant::now();
    let corpus = luperson_nl::parse(&args.corpus).map_err(cli::classify_data)?;
    let stats = corpus.stats();
    eprintln!(
        "corpus {}: {} videos, {} tracklets, {} images",
        corpus.root.display(),
        stats.videos,
        stats.tracklets,
        stats.images
    );
    let progress = |r: &crate::denoise::DenoiseReport| {
        eprintln!(
            "  {:>6}/{} videos  {:>9} images  {:>7} video identities  ({:.1} s)",
            r.videos,
            stats.videos,
            r.images,
            r.video_identities,
            t0.elapsed().as_secs_f64()
        );
    };
    let out: DenoiseOutput = match &args.features {
        Some(f) => {
            let blocks = corpus_npy_blocks(&corpus, f).map_err(bad_input)?;
            crate::denoise::run(&cfg, blocks, progress).map_err(bad_input)?
        }
        None => {
            if !args.model.given() {
                return Err(usage("give --features, or --arch and --weights"));
            }
            if args.batch_size == 0 {
                return Err(usage("--batch-size must be positive"));
            }
            let backend: Backend = args.backend.parse().map_err(|e| usage(format!("{e}")))?;
            let device = backend.device().map_err(|e| usage(format!("{e}")))?;
            let model = args.model.load_resnet(&device)?.fold_batch_norm();
            check_size(args, crate::backbones::Backbone::output_stride(&model))?;
            let paths: Vec<PathBuf> = corpus
                .images()
                .map(|r| match &r.location {
                    crate::data::ImageLocation::Path(p) => Ok(p.clone()),
                    crate::data::ImageLocation::LmdbKey(_) => Err(usage(
                        "feature extraction from LMDB corpora is not supported here: extract to .npy first",
                    )),
                })
                .collect::<anyhow::Result<_>>()?;
            eprintln!("extracting features of {} images", paths.len());
            let options = avg_pooled(
                TestTransform::new(args.height, args.width),
                args.batch_size,
                false,
            );
            let features =
                extract_features(&model, &paths, &options, &device).map_err(cli::classify)?;
            eprintln!("  done in {:.1} s", t0.elapsed().as_secs_f64());
            let blocks = corpus_blocks(&corpus, features.view()).map_err(bad_input)?;
            crate::denoise::run(&cfg, blocks, progress).map_err(bad_input)?
        }
    };
    let paths = corpus_paths(&corpus);
    let written = annos::write(&args.out, &out.labels, &paths).map_err(bad_input)?;
    let r = &out.report;
    println!("scale (median tracklet spread): {:.4}", r.scale);
    println!(
        "level 1: {} tracklets, {} crops pruned, {} tracklets dissolved",
        r.level1.tracklets_in, r.level1.images_pruned, r.level1.tracklets_dissolved
    );
    println!(
        "level 2: {} crops re-assigned, {} removed, {} fragments stitched, {} tracklet merges -> {} video identities",
        r.level2.images_reassigned,
        r.level2.images_removed,
        r.level2.tracklets_stitched,
        r.level2.tracklets_merged,
        r.video_identities
    );
    println!(
        "level 3: {} windows, {} links ({} refused), {} small identities removed ({} crops)",
        r.level3.windows,
        r.level3.links,
        r.level3.links_refused,
        r.level3.identities_removed,
        r.level3.images_removed
    );
    let c = &r.calibration;
    match c.target_precision {
        Some(p) => println!(
            "calibration on {} videos for target precision {p}:",
            c.videos
        ),
        None => println!("calibration off (fixed thresholds):"),
    }
    print_calibration("re-assign", &c.reassign);
    print_calibration("merge", &c.merge);
    print_calibration("link", &c.link);
    println!(
        "wrote {} ({} images, {} identities) in {:.1} s",
        args.out.display(),
        written,
        out.identities,
        t0.elapsed().as_secs_f64()
    );
    let mut json = serde_json::json!({ "config": cfg, "report": out.report });
    if let (Some(truth), Some(levels)) = (synthetic_truth(&corpus).map_err(bad_input)?, &out.levels)
    {
        println!();
        println!("quality against synth_truth.json:");
        println!(
            "{:<10} {:>9} {:>9} {:>9} {:>10} {:>8} {:>6} {:>6} {:>7}",
            "labels", "precision", "recall", "F", "recall_all", "purity", "ids", "true", "kept"
        );
        let mut rows = Vec::new();
        for (name, labels) in [
            ("tracker", &levels.raw),
            ("level 1", &levels.level1),
            ("level 2", &levels.level2),
            ("level 3", &out.labels),
        ] {
            let q = crate::denoise::score(labels, &truth).map_err(bad_input)?;
            println!(
                "{:<10} {:>9.4} {:>9.4} {:>9.4} {:>10.4} {:>8.4} {:>6} {:>6} {:>7}",
                name,
                q.precision,
                q.recall,
                q.f_score,
                q.recall_all,
                q.purity,
                q.identities,
                q.true_identities,
                q.images_kept
            );
            rows.push(serde_json::json!({ "labels": name, "quality": q }));
        }
        json["quality"] = serde_json::Value::Array(rows);
    }
    if let Some(p) = &args.report {
        std::fs::write(p, serde_json::to_vec_pretty(&json)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    Ok(())
}

/// One threshold's calibration: status, threshold and the distance quantiles.
fn print_calibration(name: &str, t: &ThresholdCalibration) {
    if t.status == CalibrationStatus::Fixed {
        println!("  {name:<5} fixed threshold {:.4}", t.threshold);
        return;
    }
    println!(
        "  {name:<5} {:?}: threshold {:.4}; known negatives {} (0.1 % {:.4}, 1 % {:.4}, median {:.4}); \
         known positives {} (median {:.4}, 99 % {:.4}); {} of {} candidate pairs accepted, \
         expected precision {:.3} (best reachable {:.3})",
        t.status,
        t.threshold,
        t.negatives.count,
        t.negatives.p0_1,
        t.negatives.p1,
        t.negatives.p50,
        t.positives.count,
        t.positives.p50,
        t.positives.p99,
        t.accepted,
        t.candidates,
        t.expected_precision,
        t.best_precision
    );
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    cli::exit(run(&args))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(Args::parse())
}
