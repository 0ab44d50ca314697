//! Supervised fine-tuning with the BoT recipe (`reid_train::finetune`) or,
//! with `--head mgn`, MGN as LUPerson fine-tunes it
//! (`reid_train::finetune::mgn`), on a dataset (Market-1501 by default;
//! `--dataset` names any other with a query/gallery split, `lists` your
//! own list files), then evaluation on its query/gallery split.
//!
//! ```sh
//! reid finetune (--data DIR [--dataset market1501] | --synth) [--head bot|mgn] [--config FILE.toml|json]
//!     [--epochs N] [--arch resnet18] [--base-width 16] [--height 128] [--width 64]
//!     [--p 16] [--k 4] [--iters-per-epoch N] [--lr 3.5e-4] [--warmup-iters N]
//!     [--seed 0] [--eval-every N] [--baseline] [--out model.bpk] [--export-backbone trunk.safetensors]
//!     [--log log.jsonl] [--checkpoint-dir DIR] [--checkpoint-every N] [--resume] [--stop-after N]
//!     [--weights TRUNK.pth [--weights-format auto] [--allow-unexpected KEY]]
//!     [--backend flex] [--devices N] [--precision f32|bf16|f16]
//! ```
//!
//! Values come from the BoT defaults (`FinetuneConfig::default()`), then the
//! config file, then the flags given. `--synth` writes the default synthetic
//! Market-1501-style set (`reid_synth`, 100 + 100 identities) at
//! `--height × --width` into a temporary folder (one per process, removed at
//! the end). Prints the loss per epoch,
//! then mAP / Rank-k (fast-reid protocol: BNNeck feature, cosine distance).
//! `--baseline` first evaluates a randomly initialised backbone of the same
//! architecture (global-average-pooled features), for comparison.
//! `--out` writes the trained model as a burn record (burnpack);
//! `--export-backbone` the trunk as safetensors with torchvision names.
//! With either head, `--eval-every N` also evaluates every N epochs, and
//! `--checkpoint-dir` writes atomic checkpoints there
//! (every `--checkpoint-every` steps and at the end) and a `metrics.jsonl`
//! log: one line per step, and one per evaluation (`mAP`, `rank1`, `rank5`,
//! `rank10`, `mINP` at the epoch's last step; the final evaluation too), so
//! `plot` draws the mAP curve; `--resume` continues bit-exactly from the
//! newest one (same head, recipe and dataset required); `--stop-after N`
//! stops after N steps in total (with a checkpoint) and skips the final
//! evaluation.
//! With `--head bot`, `--weights` starts from a pre-trained ResNet trunk
//! (the same checkpoints as below, or a model written by `--export-model`)
//! under a fresh BNNeck head instead of random init.
//! With `--head mgn`, `--weights` initialises MGN from a pre-trained ResNet
//! trunk (a LUPerson / LUPerson-NL / torchvision / CION / fast-reid
//! checkpoint of the `--arch` and `--base-width` given, read as
//! `reid_backbones::import::load_backbone` reads it; an ImageNet
//! classifier's `fc.*` is set aside): its stem, `layer1`, `layer2` and
//! `layer3[0]` become the shared trunk and `layer3[1:]` + `layer4` every
//! branch, as LUPerson's fast-reid configs do; without it MGN starts from
//! random weights.
//!
//! Every image of the dataset is decoded before training (a truncated JPEG
//! is corrupt): `--on-corrupt error` (the default) stops at the first
//! corrupt one, naming it; `--on-corrupt skip` leaves them out of their
//! split and prints how many and which. `--resume` without a checkpoint
//! says so and starts a fresh run. Exit codes follow `reid::cli::exit`: 2
//! for bad arguments, recipe values, inputs, checkpoints of another run or
//! a diverging run; 1 when the environment fails (a full disk).
//!
//! The `finetune` example and `reid finetune` run this module.

use crate::train::FromConfig;
use crate::train::LrSchedule;
use crate::train::MgnStart;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::exit::{check_output_file, classify, classify_backbone, classify_data, usage};
use super::images::{OnCorrupt, Skipped, check_images};
use super::set_if_given;
use crate::Backend;
use crate::backbones::build_backbone;
use crate::backbones::import::{ImportOptions, WeightsFormat, load_backbone};
use crate::burn::module::Module;
use crate::data::ImageRecord;
use crate::data::batch::TestTransform;
use crate::data::datasets::ImageDatasetOptions;
use crate::data::transform::Interpolation;
use crate::gap_eval::{avg_pooled, evaluate_pooled};
use crate::metrics::EvalResult;
use crate::synth::{Market1501Config, WorldConfig, write_market1501};
use crate::train::finetune::mgn::{MgnEvent, MgnFinetuneConfig, evaluate_mgn, finetune_mgn};
use crate::train::finetune::{IterationLog, RunEvent};
use crate::train::{
    EpochMetrics, FinetuneConfig, FinetuneEvent, Precision, RunOptions, TrainError, evaluate_model,
    finetune,
};
use anyhow::Context;
use clap::Parser;

/// BoT fine-tuning on a Market-1501-style dataset.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Root of the dataset (for market1501 the folder holding
    /// `Market-1501-v15.09.15/` or that folder itself; for `--dataset lists`
    /// the folder with `train.txt`, `query.txt` and `gallery.txt`).
    #[arg(long, conflicts_with = "synth")]
    data: Option<PathBuf>,
    /// Which dataset `--data` holds: any registry dataset with a
    /// query/gallery split (market1501, dukemtmc, msmt17, cuhk03-labeled,
    /// cuhk03-detected, lists for your own list files, cional).
    #[arg(long, default_value = "market1501", conflicts_with = "synth",
          value_parser = clap::builder::PossibleValuesParser::new(super::evaluate::image_datasets()))]
    dataset: String,
    /// Generate the default synthetic Market-1501-style set instead.
    #[arg(long)]
    synth: bool,
    /// Head and recipe: `bot` (BNNeck, `FinetuneConfig`) or `mgn` (fast-reid
    /// MGN as LUPerson fine-tunes it, `MgnFinetuneConfig`).
    #[arg(long, default_value = "bot")]
    head: String,
    /// Recipe file (`.toml` or `.json`, fields of `FinetuneConfig`, or of
    /// `MgnFinetuneConfig` with `--head mgn`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Backbone (resnet18 … resnet152, with _ibn_a / _ibn_b).
    #[arg(long)]
    arch: Option<String>,
    /// Channels of the backbone's stem (64 in the published models).
    #[arg(long)]
    base_width: Option<usize>,
    /// Input height in pixels (also the synthetic image height).
    #[arg(long)]
    height: Option<u32>,
    /// Input width in pixels (also the synthetic image width).
    #[arg(long)]
    width: Option<u32>,
    /// Identities per batch.
    #[arg(long)]
    p: Option<usize>,
    /// Images per identity.
    #[arg(long)]
    k: Option<usize>,
    /// Iterations per epoch (default: images // (P·K)).
    #[arg(long)]
    iters_per_epoch: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up length in iterations.
    #[arg(long)]
    warmup_iters: Option<usize>,
    /// Seed of the weights, sampler, augmentation and synthetic world.
    #[arg(long)]
    seed: Option<u64>,
    /// Evaluate on query/gallery every N epochs (0: only at the end; BoT:
    /// the recipe's `eval_every`, default 30; MGN: default 0).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Also evaluate a randomly initialised backbone first.
    #[arg(long)]
    baseline: bool,
    /// Write the trained model here (burn record, burnpack format).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the trained trunk here as safetensors with torchvision names
    /// (loadable by `extract`/`denoise --weights-format safetensors` and PyTorch).
    #[arg(long)]
    export_backbone: Option<PathBuf>,
    /// Write the whole trained model (trunk + BNNeck, and the classifier as
    /// `heads.weight`) here as safetensors with fast-reid names, the
    /// architecture recorded in the file's metadata: `reid evaluate
    /// --dataset … --weights FILE` reads it back (BoT head).
    #[arg(long)]
    export_model: Option<PathBuf>,
    /// Write the metrics log here: JSON lines, one per step (`step`,
    /// `epoch`, losses, `lr`) and one per evaluation (`mAP`, `rank1`, …),
    /// the format `plot` reads (without it, `--checkpoint-dir`'s
    /// `metrics.jsonl`).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Write atomic checkpoints (and `metrics.jsonl`) into this folder.
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Write a checkpoint every N steps (0 = at the end only).
    #[arg(long, default_value_t = 500, requires = "checkpoint_dir")]
    checkpoint_every: usize,
    /// Continue from the newest checkpoint in `--checkpoint-dir`.
    #[arg(long, requires = "checkpoint_dir")]
    resume: bool,
    /// Stop after this many steps in total (a checkpoint is written there).
    #[arg(long, requires = "checkpoint_dir")]
    stop_after: Option<usize>,
    /// Images per forward pass at evaluation.
    #[arg(long, default_value_t = 64)]
    eval_batch_size: usize,
    /// A pre-trained ResNet trunk checkpoint (.pth / .pt / .safetensors:
    /// torchvision, LUPerson MoCo, CION, fast-reid, or a trunk exported by
    /// `pretrain` / `--export-backbone`) to start from: with `--head bot`
    /// the trunk under a fresh BNNeck head, with `--head mgn` MGN's shared
    /// trunk and its three branches (fast-reid's construction). Its
    /// `--arch` and `--base-width` must match.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Format of `--weights`: auto, torchvision, lup, cion, fastreid,
    /// safetensors.
    #[arg(long, default_value = "auto")]
    weights_format: String,
    /// Keys of `--weights` that may stay unused besides `fc.*` (exact, or
    /// prefix ending in `*`); repeatable.
    #[arg(long)]
    allow_unexpected: Vec<String>,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Data-parallel over this many devices of `--backend` (CUDA / wgpu
    /// GPUs 0..N; on flex N handles of the one CPU, for tests): each PK
    /// batch is cut into N shards of whole identities.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Float type of the backbone: f32, bf16, or f16 (with dynamic loss
    /// scaling); heads, losses and master weights stay f32.
    #[arg(long, default_value = "f32", value_parser = |s: &str| s.parse::<Precision>().map_err(|e| e.to_string()))]
    precision: Precision,
    /// A dataset image that cannot be decoded (every image is checked
    /// before training): `error` stops (exit 2, naming it), `skip` leaves
    /// it out of its split and the summary counts and names it.
    #[arg(long, value_enum, default_value_t = OnCorrupt::Error)]
    on_corrupt: OnCorrupt,
}

/// Removes the synthetic dataset folder when the run ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config {}: {e}", path.display())))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(usage(format!(
                "config {} must end in .toml or .json",
                path.display()
            )));
        }
    };
    parsed.map_err(|e| usage(format!("bad config {}: {e}", path.display())))
}

/// The recipe of `--config` (else the default `$ty`) with the flags the BoT
/// and MGN recipes share applied.
macro_rules! recipe_with_flags {
    ($args:ident, $ty:ty) => {{
        let mut c = match &$args.config {
            Some(p) => read_config(p)?,
            None => <$ty>::default(),
        };
        set_if_given(&mut c.epochs, $args.epochs);
        set_if_given(&mut c.arch, $args.arch.clone());
        set_if_given(&mut c.base_width, $args.base_width);
        set_if_given(&mut c.height, $args.height);
        set_if_given(&mut c.width, $args.width);
        set_if_given(&mut c.p, $args.p);
        set_if_given(&mut c.k, $args.k);
        set_if_given(&mut c.lr, $args.lr);
        set_if_given(&mut c.seed, $args.seed);
        if $args.iters_per_epoch.is_some() {
            c.iters_per_epoch = $args.iters_per_epoch;
        }
        c
    }};
}

fn config(args: &Args) -> anyhow::Result<FinetuneConfig> {
    let mut c = recipe_with_flags!(args, FinetuneConfig);
    set_if_given(&mut c.eval_every, args.eval_every);
    set_if_given(&mut c.warmup.iters, args.warmup_iters);
    c.validate().map_err(|e| usage(e.to_string()))?;
    Ok(c)
}

fn mgn_config(args: &Args) -> anyhow::Result<MgnFinetuneConfig> {
    let c = recipe_with_flags!(args, MgnFinetuneConfig);
    c.validate().map_err(|e| usage(e.to_string()))?;
    Ok(c)
}

/// `--weights-format` parsed.
fn weights_format(args: &Args) -> anyhow::Result<WeightsFormat> {
    args.weights_format
        .parse()
        .map_err(|e: crate::backbones::BackboneError| usage(e.to_string()))
}

/// `--weights`: the trunk `build` makes for the `--weights-format`, with
/// the checkpoint `path` loaded key by key (an ImageNet classifier's `fc.*`
/// and `--allow-unexpected` keys may stay unused; the report goes to
/// stderr); bad weights are usage errors.
fn load_trunk(
    args: &Args,
    path: &Path,
    build: impl FnOnce(WeightsFormat) -> anyhow::Result<crate::backbones::ResNet>,
) -> anyhow::Result<crate::backbones::ResNet> {
    let format = weights_format(args)?;
    let mut trunk = build(format)?;
    let mut allow_unexpected = vec!["fc.*".to_string()];
    allow_unexpected.extend(args.allow_unexpected.iter().cloned());
    let options = ImportOptions::default()
        .with_format(format)
        .with_allow_unexpected(allow_unexpected);
    let report = load_backbone(&mut trunk, path, &options)
        .map_err(|e| usage(format!("loading weights: {e}")))?;
    eprintln!("{report}");
    let trunk = super::weights::to_f32(trunk);
    super::weights::check_finite_weights(&trunk, path)?;
    Ok(trunk)
}

/// MGN's trunk as the recipe builds it, for `--weights`.
fn mgn_trunk(
    cfg: &MgnFinetuneConfig,
    device: &crate::burn::tensor::Device,
) -> anyhow::Result<crate::backbones::ResNet> {
    cfg.model(0)
        .and_then(|m| Ok(m.trunk.init(device)?))
        .map_err(|e| usage(e.to_string()))
}

/// BoT's ResNet trunk for the checkpoint `path` in `format`: the recipe's
/// `arch`, `base_width` and `last_stride`, with the stem pooling the file
/// records (or fast-reid's for a fast-reid checkpoint).
fn bot_trunk(
    cfg: &FinetuneConfig,
    format: WeightsFormat,
    path: &Path,
    device: &crate::burn::tensor::Device,
) -> anyhow::Result<crate::backbones::ResNet> {
    let (meta, layout) = super::model_file::file_metadata(path)?;
    crate::backbones::Arch::from_name(&cfg.arch)
        .map_err(|e| usage(e.to_string()))?
        .config()
        .with_base_width(cfg.base_width)
        .with_last_stride(cfg.last_stride)
        .with_stem_pool(super::model_file::stem_pool(&meta, format, layout, path)?)
        .init(device)
        .map_err(|e| usage(e.to_string()))
}

/// `--head mgn`: fine-tune MGN from random init, or from the `--weights`
/// trunk, and evaluate it.
fn run_mgn(
    args: &Args,
    cfg: &MgnFinetuneConfig,
    splits: &crate::data::Splits,
    test: TestTransform,
    device: &crate::burn::tensor::Device,
) -> anyhow::Result<()> {
    println!(
        "Fine-tuning MGN ({}, base width {}) at {}x{}, P×K = {}×{}, {} epochs ({} frozen), lr {:e}, seed {}",
        cfg.arch,
        cfg.base_width,
        cfg.height,
        cfg.width,
        cfg.p,
        cfg.k,
        cfg.epochs,
        cfg.freeze_epochs,
        cfg.lr,
        cfg.seed
    );
    let batch = (cfg.p * cfg.k).max(1);
    warn_unreached(&cfg.schedule(cfg.iters_per_epoch.unwrap_or(splits.train.len() / batch)));
    let trunk = match &args.weights {
        Some(path) => {
            let trunk = load_trunk(args, path, |_| mgn_trunk(cfg, device))?;
            println!("  trunk and branches initialised from {}", path.display());
            Some(trunk)
        }
        None => None,
    };
    let t0 = Instant::now();
    let opts = run_options(args)?;
    let every = args.eval_every.unwrap_or(0);
    let mut evals = Evaluations::default();
    let callback = |e: MgnEvent<'_>| {
        if let RunEvent::EpochEnd {
            epoch,
            log,
            model,
            metrics,
            ..
        } = e
        {
            print_epoch(epoch, log, t0);
            let periodic = every > 0 && (epoch + 1) % every == 0;
            evals.at_epoch_end(epoch, cfg.epochs, periodic, metrics, || {
                evaluate_mgn(
                    model,
                    &splits.query,
                    &splits.gallery,
                    test,
                    args.eval_batch_size,
                    device,
                )
            });
        } else {
            print_progress(&e);
        }
    };
    let out = match &trunk {
        Some(trunk) => finetune_mgn(
            cfg,
            MgnStart::Trunk(trunk),
            &splits.train,
            device,
            &opts,
            callback,
        ),
        None => finetune_mgn(
            cfg,
            MgnStart::Random,
            &splits.train,
            device,
            &opts,
            callback,
        ),
    }
    .map_err(classify)?;
    let last = evals.finish().map_err(classify)?;
    if stopped(out.finished, out.steps_done) {
        return Ok(());
    }
    // Evaluated at the last epoch's end (and logged there), unless this
    // process resumed a finished run.
    let (r, _) = match last {
        Some(last) => last,
        None => timed(|| {
            evaluate_mgn(
                &out.model,
                &splits.query,
                &splits.gallery,
                test,
                args.eval_batch_size,
                device,
            )
        })
        .map_err(classify)?,
    };
    print_metrics("fine-tuned MGN (8 heads, post-BN)", &r);
    if let Some(path) = &args.export_model {
        crate::backbones::save_mgn_safetensors_with_metadata(
            &out.model,
            path,
            &super::model_file::describe_mgn(cfg),
        )
        .map_err(classify_backbone)
        .with_context(|| format!("exporting the model to {}", path.display()))?;
        println!("Model written to {}", path.display());
    }
    Ok(())
}

/// The evaluations a run's epoch-end callback makes: periodic ones printed
/// as they come, the one after the last epoch kept for the final report;
/// each recorded in the event's `metrics` (so the metrics log has it).
#[derive(Default)]
struct Evaluations {
    /// The evaluation after the last epoch and its duration in seconds.
    last: Option<(EvalResult, f64)>,
    /// The first failure (training goes on; reported at the end).
    error: Option<TrainError>,
}

impl Evaluations {
    /// At the end of `epoch` (of `epochs`): evaluates with `eval` when
    /// `periodic` or after the last epoch, and records the result.
    fn at_epoch_end(
        &mut self,
        epoch: usize,
        epochs: usize,
        periodic: bool,
        metrics: &mut EpochMetrics,
        eval: impl FnOnce() -> Result<EvalResult, TrainError>,
    ) {
        let last = epoch + 1 == epochs;
        if !(periodic || last) || self.error.is_some() {
            return;
        }
        match timed(eval) {
            Ok((r, secs)) => {
                metrics.record(&r);
                if last {
                    self.last = Some((r, secs));
                } else {
                    print_metrics(&format!("after epoch {}", epoch + 1), &r);
                }
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The evaluation after the last epoch (`None` when that epoch did not
    /// end in this process), or the first failure.
    fn finish(self) -> Result<Option<(EvalResult, f64)>, TrainError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.last),
        }
    }
}

/// `f()` and the seconds it took.
fn timed<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(T, f64), E> {
    let t0 = Instant::now();
    f().map(|v| (v, t0.elapsed().as_secs_f64()))
}

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume`, `--stop-after`
/// (and `DIR/metrics.jsonl`) and `--devices` as run options.
fn run_options(args: &Args) -> anyhow::Result<RunOptions> {
    let ckpt = &args.checkpoint_dir;
    let devices = match args.devices {
        0 | 1 => Vec::new(),
        n => args
            .backend
            .parse::<Backend>()
            .and_then(|b| b.devices(n))
            .map_err(|e| usage(format!("--devices {n}: {e}")))?,
    };
    Ok(RunOptions::default()
        .with_checkpoint_dir(ckpt.clone())
        .with_checkpoint_every(args.checkpoint_every)
        .with_keep_checkpoints(2)
        .with_resume(args.resume)
        .with_log_path(
            args.log
                .clone()
                .or_else(|| ckpt.as_ref().map(|d| d.join("metrics.jsonl"))),
        )
        .with_stop_after(args.stop_after)
        .with_devices(devices)
        .with_precision(args.precision))
}

/// Prints a resume or a written checkpoint.
fn print_progress<M>(event: &RunEvent<'_, M>) {
    match event {
        RunEvent::Resumed { step, path } => {
            println!("  resumed from {} ({step} steps done)", path.display());
        }
        RunEvent::Checkpoint { step, path } => {
            println!("  checkpoint {} ({step} steps)", path.display());
        }
        _ => {}
    }
}

/// Prints the mean losses of an epoch's steps.
fn print_epoch(epoch: usize, log: &[IterationLog], t0: Instant) {
    let n = log.len().max(1) as f32;
    let ce = log.iter().map(|l| l.loss_ce).sum::<f32>() / n;
    let tri = log.iter().map(|l| l.loss_tri).sum::<f32>() / n;
    let lr = log.last().map_or(0.0, |l| l.lr);
    println!(
        "  epoch {:>3}: loss_ce {ce:.4}  loss_tri {tri:.4}  lr {lr:.3e}  ({:.1} s)",
        epoch + 1,
        t0.elapsed().as_secs_f64()
    );
}

/// After `--stop-after`: says how to continue; `true` when the run stopped.
fn stopped(finished: bool, steps_done: usize) -> bool {
    if !finished {
        println!("Stopped after {steps_done} steps; continue with --resume");
    }
    !finished
}

/// Leaves the corrupt images of `split` out under [`OnCorrupt::Skip`];
/// under [`OnCorrupt::Error`] the first one is an error naming it.
fn drop_corrupt(split: &mut Vec<ImageRecord>, policy: OnCorrupt) -> anyhow::Result<Skipped> {
    let files = paths(split, "dataset")?;
    let (kept, skipped) = check_images(&files, policy)?;
    if kept.len() != split.len() {
        let mut keep = vec![false; split.len()];
        for i in kept {
            keep[i] = true;
        }
        let mut flags = keep.into_iter();
        split.retain(|_| flags.next().unwrap_or(false));
    }
    Ok(skipped)
}

/// The image files of `records` (`split` names them in errors).
fn paths(records: &[ImageRecord], split: &str) -> anyhow::Result<Vec<PathBuf>> {
    crate::train::input::image_paths(records, split).map_err(classify)
}

fn print_metrics(name: &str, r: &EvalResult) {
    let pct = |k: usize| r.rank(k).map_or(f64::NAN, |v| 100.0 * v);
    println!(
        "  {name:<22} mAP {:>5.1} %  Rank-1 {:>5.1} %  Rank-5 {:>5.1} %  Rank-10 {:>5.1} %  mINP {:>5.1} %",
        100.0 * r.map,
        pct(1),
        pct(5),
        pct(10),
        100.0 * r.minp
    );
}

fn run(args: &Args) -> anyhow::Result<()> {
    let backend: Backend = args.backend.parse().map_err(|e| usage(format!("{e}")))?;
    let devices = backend
        .devices(args.devices)
        .map_err(|e| usage(format!("--devices {}: {e}", args.devices)))?;
    let device = devices
        .first()
        .cloned()
        .ok_or_else(|| usage(format!("--devices {}: expected at least 1", args.devices)))?;
    if args.eval_batch_size == 0 {
        return Err(usage("--eval-batch-size must be positive"));
    }
    for (path, flag) in [
        (&args.out, "--out"),
        (&args.export_backbone, "--export-backbone"),
        (&args.export_model, "--export-model"),
        (&args.log, "--log"),
    ] {
        if let Some(p) = path {
            check_output_file(p, flag)?;
        }
    }
    if let Some(dir) = &args.checkpoint_dir
        && args.resume
        && crate::train::checkpoint::CheckpointDir::new(dir.clone(), 1)
            .latest()
            .map_err(classify)?
            .is_none()
    {
        println!(
            "note: --resume: {} holds no checkpoint; starting a fresh run",
            dir.display()
        );
    }
    let (cfg, mgn_cfg) = match args.head.as_str() {
        "bot" => (Some(config(args)?), None),
        "mgn" => (None, Some(mgn_config(args)?)),
        other => return Err(usage(format!("--head must be bot or mgn, got {other:?}"))),
    };
    let (seed, height, width) = match (&cfg, &mgn_cfg) {
        (Some(c), _) => (c.seed, c.height, c.width),
        (_, Some(m)) => (m.seed, m.height, m.width),
        _ => return Err(usage("no recipe")),
    };

    let mut _synth_guard = None;
    let root = match (&args.data, args.synth) {
        (Some(d), false) => d.clone(),
        (None, true) => {
            let world = WorldConfig::sized(seed, height, width).with_overwrite(true);
            world.validate().map_err(|e| usage(e.to_string()))?;
            let out = std::env::temp_dir().join(format!(
                "reid-finetune-synth-{}-{}x{}-{}",
                seed,
                height,
                width,
                std::process::id()
            ));
            _synth_guard = Some(RemoveOnDrop(out.clone()));
            let t0 = Instant::now();
            let report = write_market1501(&out, &world, &Market1501Config::default())
                .context("generating the synthetic Market-1501-style dataset")?;
            println!(
                "Synthetic Market-1501-style set written to {} in {:.1} s",
                report.dataset_dir.display(),
                t0.elapsed().as_secs_f64()
            );
            report.dataset_dir
        }
        _ => return Err(usage("give exactly one of --data DIR or --synth")),
    };
    let parsed = match crate::data::datasets::entry(&args.dataset)
        .map_err(classify_data)?
        .load(&root, &ImageDatasetOptions::default())
        .map_err(classify_data)?
    {
        crate::data::datasets::Loaded::Images(p) => p,
        crate::data::datasets::Loaded::Corpus(_) => {
            return Err(usage(format!(
                "--dataset {}: a video corpus has no query/gallery split",
                args.dataset
            )));
        }
    };
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    let mut splits = parsed.splits.clone();
    let mut skipped = Vec::new();
    for (name, split) in [
        ("the train split", &mut splits.train),
        ("the query", &mut splits.query),
        ("the gallery", &mut splits.gallery),
    ] {
        let s = drop_corrupt(split, args.on_corrupt)?;
        if s.count() > 0 {
            skipped.push((name, s));
        }
    }
    for (name, s) in &skipped {
        println!("{}", s.summary(name));
    }
    if splits.train.is_empty() || splits.query.is_empty() || splits.gallery.is_empty() {
        return Err(usage(format!(
            "{}: after leaving out the corrupt images a split is empty (train {}, query {}, gallery {} images)",
            root.display(),
            splits.train.len(),
            splits.query.len(),
            splits.gallery.len()
        )));
    }
    let splits = &splits;
    let stats = splits.stats();
    println!(
        "train {} ids / {} images, query {} / {}, gallery {} / {}",
        stats.train.ids,
        stats.train.images,
        stats.query.ids,
        stats.query.images,
        stats.gallery.ids,
        stats.gallery.images
    );
    for w in &parsed.warnings {
        println!("  warning: {w}");
    }
    let test = TestTransform {
        interpolation: Interpolation::Bicubic,
        ..TestTransform::new(height, width)
    };

    let Some(cfg) = cfg else {
        let mgn_cfg = mgn_cfg.context("no recipe")?;
        return run_mgn(args, &mgn_cfg, splits, test, &device);
    };

    println!("Evaluation (query vs gallery, cosine distance):");
    if args.baseline {
        let t0 = Instant::now();
        device.seed(cfg.seed);
        let model = build_backbone(&cfg.arch, cfg.base_width, cfg.last_stride, &device)
            .map_err(classify_backbone)?;
        let opts = avg_pooled(test, args.eval_batch_size, false);
        let (query, gallery) = (&splits.query, &splits.gallery);
        let names = ["query", "gallery"];
        let r = evaluate_pooled(&model, query, gallery, names, &opts, &device).map_err(classify)?;
        print_metrics("random init (GAP)", &r);
        println!("  ({:.1} s)", t0.elapsed().as_secs_f64());
    }

    println!(
        "Fine-tuning {} (base width {}) at {}x{}, P×K = {}×{}, {} epochs, lr {:e}, seed {}",
        cfg.arch, cfg.base_width, cfg.height, cfg.width, cfg.p, cfg.k, cfg.epochs, cfg.lr, cfg.seed
    );
    let batch = (cfg.p * cfg.k).max(1);
    warn_unreached(&cfg.schedule(cfg.iters_per_epoch.unwrap_or(splits.train.len() / batch)));
    let t0 = Instant::now();
    let mut evals = Evaluations::default();
    let opts = run_options(args)?;
    let callback = |event: FinetuneEvent<'_>| {
        print_progress(&event);
        if let FinetuneEvent::EpochEnd {
            epoch,
            log,
            model,
            evaluate,
            metrics,
        } = event
        {
            print_epoch(epoch, log, t0);
            evals.at_epoch_end(epoch, cfg.epochs, evaluate, metrics, || {
                evaluate_model(
                    model,
                    &splits.query,
                    &splits.gallery,
                    test,
                    args.eval_batch_size,
                    &device,
                )
            });
        }
    };
    let out = match &args.weights {
        Some(path) => {
            let trunk = load_trunk(args, path, |format| bot_trunk(&cfg, format, path, &device))?;
            finetune(&cfg, trunk, &splits.train, &device, &opts, callback)
        }
        None => finetune(&cfg, FromConfig, &splits.train, &device, &opts, callback),
    }
    .map_err(classify)?;
    let last = evals.finish().map_err(classify)?;
    if stopped(out.finished, out.steps_done) {
        return Ok(());
    }
    let train_s = t0.elapsed().as_secs_f64() - last.as_ref().map_or(0.0, |(_, secs)| *secs);
    println!(
        "Trained {} iterations ({} per epoch, {} identities) in {train_s:.1} s",
        out.log.len(),
        out.iters_per_epoch,
        out.num_classes
    );

    // Evaluated at the last epoch's end (and logged there), unless this
    // process resumed a finished run.
    let (r, secs) = match last {
        Some(last) => last,
        None => timed(|| {
            evaluate_model(
                &out.model,
                &splits.query,
                &splits.gallery,
                test,
                args.eval_batch_size,
                &device,
            )
        })
        .map_err(classify)?,
    };
    print_metrics("fine-tuned (BNNeck)", &r);
    println!("  ({secs:.1} s)");

    if let Some(path) = &args.out {
        out.model
            .clone()
            .save_file(path)
            .map_err(|e| anyhow::anyhow!("writing the model to {}: {e}", path.display()))?;
        println!("Model written to {}", path.display());
    }
    if let Some(path) = &args.export_backbone {
        crate::backbones::import::save_safetensors(&out.model.backbone, path)
            .map_err(classify_backbone)
            .with_context(|| format!("exporting the trunk to {}", path.display()))?;
        println!("Trunk written to {}", path.display());
    }
    if let Some(path) = &args.export_model {
        crate::backbones::save_safetensors_with_metadata(
            &out.model,
            path,
            &super::model_file::describe_bot(&cfg),
        )
        .map_err(classify_backbone)
        .with_context(|| format!("exporting the model to {}", path.display()))?;
        println!("Model written to {}", path.display());
    }
    Ok(())
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}

/// Warns (on stderr) when decay milestones fall past the run
/// ([`unreached_warning`]).
fn warn_unreached(schedule: &LrSchedule) {
    if let Some(w) = unreached_warning(schedule) {
        eprintln!("{w}");
    }
}

/// The warning for decay milestones that never take effect: they count
/// epochs after the warm-up, as in fast-reid, so milestones written as
/// absolute epochs can leave the rate at its peak to the end. `None` when
/// every milestone is reached.
fn unreached_warning(schedule: &LrSchedule) -> Option<String> {
    let unreached = schedule.unreached_milestones();
    if unreached.is_empty() || schedule.iters_per_epoch == 0 {
        return None;
    }
    let warm = schedule.warmup.iters.div_ceil(schedule.iters_per_epoch);
    Some(format!(
        "warning: decay milestones {unreached:?} are never reached: milestones count epochs after \
         the warm-up ({} iterations = {warm} epochs of {} iterations), and the run has {} epochs \
         (docs/training.md)",
        schedule.warmup.iters, schedule.iters_per_epoch, schedule.epochs
    ))
}

#[cfg(test)]
mod schedule_warning_tests {
    use super::*;
    use crate::train::FinetuneConfig;

    #[test]
    fn milestones_past_the_run_are_named() {
        // The study's recipe before 2026-12-08: 24 epochs, a warm-up of 130
        // iterations, milestones [16, 21], on 872 images in batches of 64.
        let mut cfg = FinetuneConfig::default().with_epochs(24);
        cfg.warmup.iters = 130;
        cfg.decay = crate::train::Decay::MultiStep {
            milestones: vec![16, 21],
            gamma: 0.1,
        };
        let w = unreached_warning(&cfg.schedule(872 / 64)).expect("a warning");
        assert!(
            w.contains("[16, 21]") && w.contains("10 epochs of 13 iterations"),
            "{w}"
        );
        cfg.decay = crate::train::Decay::MultiStep {
            milestones: vec![6, 11],
            gamma: 0.1,
        };
        assert_eq!(unreached_warning(&cfg.schedule(872 / 64)), None);
    }
}
