//! The README's main command: the whole story on the built-in synthetic
//! world, in about ten minutes on two cores.
//!
//! 1. generate the world: a Market-1501-style set and a LUPerson-NL-style
//!    video corpus with noisy tracklet labels (other persons);
//! 2. pre-train supervised on the tracker's noisy tracklet labels (BoT
//!    recipe), denoise the corpus (levels 1–3) with its features, write
//!    CION-AL `annos.json`, score it against the truth;
//! 3. pre-train the backbone further with CION on those identities;
//! 4. fine-tune with BoT on the Market-style train split twice, from random
//!    init and from the pre-trained teacher backbone;
//! 5. evaluate both (Market protocol) and print a table; write a CMC plot
//!    (`cmc.png`), a rank-list picture (`ranklist.png`), the metrics logs
//!    and `summary.json` to `--out`.
//!
//! ```sh
//! reid demo [--out DIR] [--seed N] [--backend flex] [--json]
//!     [--pretrain-epochs N] [--finetune-epochs N] [--videos N] [--skip-pretrain]
//!     [--pretrain tracklets+cion|tracklets|pnl+cion|pnl|cion|cion-oracle|oracle]
//!     [--tracklet-epochs N] [--oracle-epochs N] [--eval-every N]
//! ```
//! Bad arguments exit with code 2; failures while running exit with code 1.
//!
//! The `demo` example and `reid demo` run this module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::exit::usage;
use super::progress::Progress;
use super::progress::StepBar;
use crate::Backend;
use crate::backbones::{GlobalPool, ResNet, build_backbone};
use crate::burn::module::Module;
use crate::burn::tensor::Device;
use crate::data::batch::{TestTransform, load_rgb};
use crate::data::datasets::cional::CionAl;
use crate::data::datasets::{ImageDatasetOptions, luperson_nl, market1501};
use crate::data::sampler_identity::KSchedule;
use crate::data::synth::{
    LupersonNlConfig, Market1501Config, WorldConfig, write_luperson_nl, write_market1501,
};
use crate::data::{ImageLocation, ImageRecord};
use crate::denoise::source::{corpus_blocks, corpus_paths, synthetic_truth, truth_records};
use crate::denoise::{DenoiseConfig, annos};
use crate::metrics::{EvalResult, Labels, Metric, pairwise_distance, top_matches};
use crate::train::finetune::embed_records;
use crate::train::{
    CionConfig, Decay, ExtractOptions, FinetuneConfig, FinetuneEvent, PnlConfig, Precision,
    RunOptions, Warmup, evaluate_model, extract_features, finetune_backbone_with, finetune_with,
    pretrain_cion_from, pretrain_pnl,
};
use anyhow::Context;
use clap::Parser;

/// The whole toolkit on synthetic data: generate → denoise → CION
/// pre-training → fine-tuning from random vs pre-trained → evaluation.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Output folder: the generated data, logs, checkpoints and pictures.
    #[arg(long, default_value = "target/reid-demo")]
    out: PathBuf,
    /// Seed of the world, the weights, the samplers and the augmentations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backbone architecture.
    #[arg(long, default_value = "resnet18")]
    arch: String,
    /// Channel width of the backbone's first stage (64 in published models).
    #[arg(long, default_value_t = 16)]
    base_width: usize,
    /// Image height in pixels (generated and fed to the models).
    #[arg(long, default_value_t = 128)]
    height: u32,
    /// Image width in pixels.
    #[arg(long, default_value_t = 64)]
    width: u32,
    /// Videos of the pre-training corpus.
    #[arg(long, default_value_t = 60)]
    videos: u32,
    /// Identities used for pre-training: the output of denoising level 1, 2
    /// or 3 (all levels are scored either way).
    #[arg(long, default_value_t = 3)]
    denoise_level: u8,
    /// CION pre-training epochs.
    #[arg(long, default_value_t = 4)]
    pretrain_epochs: usize,
    /// BoT fine-tuning epochs (each run).
    #[arg(long, default_value_t = 24)]
    finetune_epochs: usize,
    /// Also evaluate the fine-tuned models every N epochs (0: only at the
    /// end); every evaluation goes into their metrics logs
    /// (`finetune-*.jsonl`) for `plot`'s mAP curve.
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// CION recipe file (`.toml`/`.json`, fields of `CionConfig`) replacing
    /// the demo's small built-in recipe (see `configs/cion-tiny.toml`).
    #[arg(long)]
    cion_config: Option<PathBuf>,
    /// Pre-training: `tracklets+cion` (supervised: the BoT recipe on the
    /// tracker's noisy tracklet labels; its features for denoising, then
    /// CION from its weights), `tracklets` (the supervised stage only),
    /// `pnl+cion` (the same with PNL as the first stage), `pnl`, `cion`
    /// (denoise with the untrained backbone, CION from random init),
    /// `cion-oracle` (CION from random init on the corpus's true persons, a
    /// diagnostic of CION without denoising errors), or
    /// `oracle`: the BoT recipe on the corpus's *true* persons,
    /// read from the generator's `synth_truth.json` — an upper bound for
    /// perfect denoising, a diagnostic rather than a method.
    #[arg(long, default_value = "tracklets+cion")]
    pretrain: String,
    /// PNL pre-training epochs (for `--pretrain pnl` and `pnl+cion`).
    #[arg(long, default_value_t = 3)]
    pnl_epochs: usize,
    /// Epochs of `--pretrain oracle` over the corpus's true persons.
    #[arg(long, default_value_t = 24)]
    oracle_epochs: usize,
    /// Epochs of `--pretrain tracklets` / `tracklets+cion` over the
    /// tracker's labels.
    #[arg(long, default_value_t = 6)]
    tracklet_epochs: usize,
    /// Skip pre-training (fine-tune from random init only).
    #[arg(long)]
    skip_pretrain: bool,
    /// Stop after pre-training: compare the backbones' own features only.
    #[arg(long)]
    no_finetune: bool,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Float type of the backbones in every training stage: f32, bf16, or
    /// f16 (with dynamic loss scaling); heads, losses and master weights stay
    /// f32.
    #[arg(long, default_value = "f32", value_parser = |s: &str| s.parse::<Precision>().map_err(|e| e.to_string()))]
    precision: Precision,
    /// Print one JSON object at the end instead of tables.
    #[arg(long)]
    json: bool,
}

fn paths(records: &[ImageRecord]) -> anyhow::Result<Vec<PathBuf>> {
    records
        .iter()
        .map(|r| match &r.location {
            ImageLocation::Path(p) => Ok(p.clone()),
            ImageLocation::LmdbKey(k) => anyhow::bail!("record {k} is not a file"),
        })
        .collect()
}

fn labels(records: &[ImageRecord]) -> anyhow::Result<Labels> {
    Ok(Labels::new(
        records.iter().map(|r| r.pid).collect(),
        records.iter().map(|r| i64::from(r.camid)).collect(),
    )?)
}

/// Stage 2: features of the untrained backbone → levels 1–3 → annos.json.
fn denoise(
    args: &Args,
    corpus_dir: &Path,
    model: &ResNet,
    device: &Device,
    say: &dyn Fn(String),
) -> anyhow::Result<(Vec<ImageRecord>, serde_json::Value)> {
    let corpus = luperson_nl::parse(corpus_dir).context("parsing the generated corpus")?;
    let stats = corpus.stats();
    let img_paths: Vec<PathBuf> = corpus
        .images()
        .map(|r| match &r.location {
            ImageLocation::Path(p) => Ok(p.clone()),
            ImageLocation::LmdbKey(k) => anyhow::bail!("corpus record {k} is not a file"),
        })
        .collect::<anyhow::Result<_>>()?;
    let options = ExtractOptions {
        transform: TestTransform::new(args.height, args.width),
        batch_size: 64,
        pool: GlobalPool::Avg,
        normalize: false,
    };
    let t0 = Instant::now();
    let feats = extract_features(model, &img_paths, &options, device)?;
    let cfg = DenoiseConfig {
        record_levels: true,
        ..DenoiseConfig::default()
    };
    let blocks = corpus_blocks(&corpus, feats.view())?;
    let out = crate::denoise::run(&cfg, blocks, |_| {})?;
    let annos_path = corpus.root.join("annos.json");
    let chosen = match (args.denoise_level, &out.levels) {
        (3, _) => &out.labels,
        (2, Some(l)) => &l.level2,
        (1, Some(l)) => &l.level1,
        _ => return Err(usage("--denoise-level must be 1, 2 or 3")),
    };
    let written = annos::write(&annos_path, chosen, &corpus_paths(&corpus))?;
    say(format!(
        "denoised {} videos / {} tracklets / {} crops; level {} labels: {} crops kept, in {:.1} s -> {}",
        stats.videos,
        stats.tracklets,
        stats.images,
        args.denoise_level,
        written,
        t0.elapsed().as_secs_f64(),
        annos_path.display()
    ));
    let mut quality = Vec::new();
    if let (Some(truth), Some(levels)) = (synthetic_truth(&corpus)?, &out.levels) {
        say(format!(
            "  {:<8} {:>9} {:>7} {:>6} {:>5}",
            "labels", "precision", "recall", "F", "ids"
        ));
        for (name, l) in [
            ("tracker", &levels.raw),
            ("level 1", &levels.level1),
            ("level 2", &levels.level2),
            ("level 3", &out.labels),
        ] {
            let q = crate::denoise::score(l, &truth)?;
            say(format!(
                "  {:<8} {:>9.3} {:>7.3} {:>6.3} {:>5}",
                name, q.precision, q.recall, q.f_score, q.identities
            ));
            quality.push(serde_json::json!({"labels": name, "quality": q}));
        }
    }
    let records = CionAl::open(&annos_path)?.records();
    Ok((records, serde_json::Value::Array(quality)))
}

/// PNL pre-training on the tracker's (noisy) labels; returns the query
/// encoder's backbone (plain device, inference mode).
fn pretrain_pnl_stage(
    args: &Args,
    corpus_dir: &Path,
    device: &Device,
    say: &dyn Fn(String),
) -> anyhow::Result<(ResNet, PnlConfig)> {
    let corpus = luperson_nl::parse(corpus_dir).context("parsing the generated corpus")?;
    let records: Vec<ImageRecord> = corpus.images().cloned().collect();
    let cfg = PnlConfig {
        arch: args.arch.clone(),
        base_width: args.base_width,
        last_stride: 1,
        size: [args.height, args.width],
        batch_size: 32,
        bn_groups: 4,
        epochs: args.pnl_epochs,
        lr: 0.05,
        lr_milestones: vec![],
        cls_dim: 128,
        mlp_hidden_dim: 256,
        dim: 64,
        queue_size: 1024,
        key_momentum: 0.99,
        proto_momentum: 0.99,
        start_proto_epoch: 1,
        start_clean_epoch: 2,
        start_supcont_epoch: 2,
        seed: args.seed,
        ..PnlConfig::default()
    };
    let run = RunOptions {
        log_path: Some(args.out.join("pnl/metrics.jsonl")),
        precision: args.precision,
        ..RunOptions::default()
    };
    say(format!(
        "PNL pre-training: {} crops / {} tracklet labels, batch {}, {} epochs",
        records.len(),
        corpus.stats().tracklets,
        cfg.batch_size,
        cfg.epochs
    ));
    let t0 = Instant::now();
    let mut progress = Progress::new("pnl");
    let out = pretrain_pnl(&cfg, &records, device, &run, |e| progress.event(e))?;
    progress.finish();
    say(format!(
        "  {} steps in {:.1} s",
        out.steps_done,
        t0.elapsed().as_secs_f64()
    ));
    Ok((out.query.backbone.valid(), cfg))
}

/// Stage 3: CION pre-training; returns the teacher's backbone.
fn pretrain(
    args: &Args,
    records: &[ImageRecord],
    init: Option<ResNet>,
    device: &Device,
    say: &dyn Fn(String),
) -> anyhow::Result<(ResNet, CionConfig)> {
    let [h, w] = [args.height, args.width];
    let mut cfg = CionConfig {
        arch: args.arch.clone(),
        base_width: args.base_width,
        global_size: [h, w],
        local_size: [h / 2, w / 2],
        local_crops: 4,
        batch_size: 32,
        // The first stage of CION's K schedule (K = 2 for epochs 0-39 of
        // 100): a run this short stays in it (see docs/pretraining.md).
        k_schedule: KSchedule::constant(2),
        epochs: args.pretrain_epochs,
        lr: 1.6e-2,
        warmup_epochs: 1.min(args.pretrain_epochs),
        momentum_teacher: 0.95,
        head_hidden_dim: 512,
        head_bottleneck_dim: 128,
        out_dim: 1024,
        seed: args.seed,
        ..CionConfig::default()
    };
    if let Some(p) = &args.cion_config {
        let text = std::fs::read_to_string(p)
            .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
        cfg = match p.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
            _ => toml::from_str(&text).map_err(|e| e.to_string()),
        }
        .map_err(|e| usage(format!("bad config {}: {e}", p.display())))?;
        cfg.seed = args.seed;
    }
    cfg.validate().map_err(|e| usage(e.to_string()))?;
    let run = RunOptions {
        checkpoint_dir: Some(args.out.join("cion/checkpoints")),
        checkpoint_every: 100,
        keep_checkpoints: 1,
        log_path: Some(args.out.join("cion/metrics.jsonl")),
        precision: args.precision,
        ..RunOptions::default()
    };
    say(format!(
        "CION pre-training: {} images / {} identities, batch {}, {} epochs, {} + {} crops",
        records.len(),
        records
            .iter()
            .map(|r| r.pid)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        cfg.batch_size,
        cfg.epochs,
        2,
        cfg.local_crops
    ));
    let t0 = Instant::now();
    let mut progress = Progress::new("cion");
    let init = match init {
        Some(b) => b,
        None => crate::train::pretrain::cion::init_backbone(&cfg, device)?,
    };
    let out = pretrain_cion_from(&cfg, init, records, device, &run, |e| progress.event(e))?;
    progress.finish();
    say(format!(
        "  {} steps in {:.1} s; loss first/last epoch-mean in cion/metrics.jsonl",
        out.steps_done,
        t0.elapsed().as_secs_f64()
    ));
    Ok((out.teacher.backbone, cfg))
}

/// A backbone's own global-average-pooled features on the test split
/// (no fine-tuning): how much identity the weights carry by themselves.
fn eval_backbone(
    model: &ResNet,
    splits: &crate::data::Splits,
    args: &Args,
    device: &Device,
) -> anyhow::Result<EvalResult> {
    let options = ExtractOptions {
        transform: TestTransform::new(args.height, args.width),
        batch_size: 64,
        pool: GlobalPool::Avg,
        normalize: true,
    };
    let q = extract_features(model, &paths(&splits.query)?, &options, device)?;
    let g = extract_features(model, &paths(&splits.gallery)?, &options, device)?;
    Ok(crate::metrics::evaluate_features(
        q.view(),
        g.view(),
        &labels(&splits.query)?,
        &labels(&splits.gallery)?,
        Metric::Cosine,
        false,
        &crate::metrics::EvalConfig::default(),
    )?)
}

/// Stage 4: one BoT fine-tuning run; returns the evaluated result and
/// query/gallery embeddings. `run` sets the metrics log (one line per step,
/// and one per evaluation: every `cfg.eval_every` epochs and the final one)
/// and the precision.
fn finetune_run(
    label: &str,
    cfg: &FinetuneConfig,
    init: Option<ResNet>,
    splits: &crate::data::Splits,
    run: &RunOptions,
    device: &Device,
    say: &dyn Fn(String),
) -> anyhow::Result<(EvalResult, ndarray::Array2<f32>, ndarray::Array2<f32>, f64)> {
    let mut bar: Option<StepBar> = None;
    let total = cfg.epochs * (splits.train.len() / cfg.batch_size()).max(1);
    let t0 = Instant::now();
    let test = TestTransform::new(cfg.height, cfg.width);
    // The final evaluation is made at the last epoch's end, so the metrics
    // log has it; periodic ones are logged and shown beside the bar.
    let mut evaluated: anyhow::Result<Option<EvalResult>> = Ok(None);
    let mut eval_secs = 0.0;
    let mut last_step = Instant::now();
    let callback = |e: FinetuneEvent<'_>| match e {
        FinetuneEvent::Iteration(it) => {
            let b = bar.get_or_insert_with(|| StepBar::new(label, total, 0));
            // Images per second of this step (it printed 0 before).
            let now = Instant::now();
            let secs = now.duration_since(last_step).as_secs_f64().max(1e-9);
            last_step = now;
            b.step(
                it.iteration,
                f64::from(it.loss_ce + it.loss_tri),
                it.lr,
                cfg.batch_size() as f64 / secs,
            );
        }
        FinetuneEvent::EpochEnd {
            epoch,
            model,
            evaluate,
            metrics,
            ..
        } => {
            let last = epoch + 1 == cfg.epochs;
            if !(evaluate || last) || evaluated.is_err() {
                return;
            }
            let t_eval = Instant::now();
            evaluated = evaluate_model(model, &splits.query, &splits.gallery, test, 64, device)
                .map(|r| {
                    metrics.record(&r);
                    if !last {
                        say(format!(
                            "  {label}, after epoch {}: mAP {:.1} %, Rank-1 {:.1} %",
                            epoch + 1,
                            100.0 * r.map,
                            100.0 * r.rank(1).unwrap_or(0.0)
                        ));
                    }
                    last.then_some(r)
                })
                .map_err(Into::into);
            eval_secs += t_eval.elapsed().as_secs_f64();
        }
        _ => {}
    };
    let out = match init {
        None => finetune_with(cfg, &splits.train, device, run, callback)?,
        Some(b) => finetune_backbone_with(cfg, b, &splits.train, device, run, callback)?,
    };
    let secs = t0.elapsed().as_secs_f64() - eval_secs;
    let r = match evaluated? {
        Some(r) => r,
        None => evaluate_model(&out.model, &splits.query, &splits.gallery, test, 64, device)?,
    };
    let q = embed_records(&out.model, &splits.query, test, 64, device)?;
    let g = embed_records(&out.model, &splits.gallery, test, 64, device)?;
    say(format!(
        "  {label}: mAP {:.1} %, Rank-1 {:.1} % ({:.0} s)",
        100.0 * r.map,
        100.0 * r.rank(1).unwrap_or(0.0),
        secs
    ));
    Ok((r, q, g, secs))
}

/// The demo's BoT recipe for `epochs` epochs (LR steps at 2/3 and 9/10;
/// those that coincide or fall on epoch 0 in very short runs are left out).
fn bot_config(args: &Args, epochs: usize) -> FinetuneConfig {
    let mut milestones: Vec<usize> = Vec::new();
    for m in [epochs * 2 / 3, epochs * 9 / 10] {
        if m > 0 && milestones.last() != Some(&m) {
            milestones.push(m);
        }
    }
    FinetuneConfig {
        arch: args.arch.clone(),
        base_width: args.base_width,
        height: args.height,
        width: args.width,
        epochs,
        warmup: Warmup {
            iters: 130,
            factor: 0.1,
        },
        decay: Decay::MultiStep {
            milestones,
            gamma: 0.1,
        },
        eval_every: 0,
        seed: args.seed,
        ..FinetuneConfig::default()
    }
}

/// Supervised pre-training with the BoT recipe on the corpus: on the
/// tracker's tracklet labels (`oracle == false`), or on the crops' true
/// persons (false detections dropped); returns the trained backbone.
fn pretrain_supervised_stage(
    args: &Args,
    corpus_dir: &Path,
    oracle: bool,
    device: &Device,
    say: &dyn Fn(String),
) -> anyhow::Result<(ResNet, FinetuneConfig)> {
    let corpus = luperson_nl::parse(corpus_dir).context("parsing the generated corpus")?;
    let (records, what, epochs) = if oracle {
        let records = truth_records(&corpus)?
            .with_context(|| format!("no synth_truth.json next to {}", corpus_dir.display()))?;
        (records, "true persons", args.oracle_epochs)
    } else {
        let records: Vec<ImageRecord> = corpus.images().cloned().collect();
        (records, "tracklet labels", args.tracklet_epochs)
    };
    let classes = records
        .iter()
        .map(|r| r.pid)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let cfg = bot_config(args, epochs);
    say(format!(
        "supervised pre-training: BoT on {} corpus crops, {classes} {what}, {} epochs",
        records.len(),
        cfg.epochs
    ));
    let t0 = Instant::now();
    let run = RunOptions {
        precision: args.precision,
        ..RunOptions::default()
    };
    let out = finetune_with(&cfg, &records, device, &run, |_| {})?;
    say(format!("  done in {:.1} s", t0.elapsed().as_secs_f64()));
    Ok((out.model.backbone.valid(), cfg))
}

/// The stage before CION (or the only one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    None,
    Pnl,
    Tracklets,
    Oracle,
}

/// The table's name for the pre-trained weights.
fn pretrained_label(args: &Args) -> &'static str {
    match args.pretrain.as_str() {
        "oracle" => "oracle pre-trained",
        "tracklets" => "tracklet pre-trained",
        "tracklets+cion" => "tracklet+CION pre-trained",
        "pnl" => "PNL pre-trained",
        "cion" => "CION pre-trained",
        "cion-oracle" => "CION (true ids) pre-trained",
        _ => "PNL+CION pre-trained",
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let backend: Backend = args.backend.parse().map_err(|e| usage(format!("{e}")))?;
    let device = backend.device().map_err(|e| usage(format!("{e}")))?;
    if args.finetune_epochs == 0 || (!args.skip_pretrain && args.pretrain_epochs == 0) {
        return Err(usage("epochs must be positive"));
    }
    let quiet = args.json;
    let say = move |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    let t_all = Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    // 1. The world.
    let world = WorldConfig {
        seed: args.seed,
        height: args.height,
        width: args.width,
        overwrite: true,
        ..WorldConfig::default()
    };
    world.validate().map_err(|e| usage(e.to_string()))?;
    let t0 = Instant::now();
    let market = write_market1501(
        &args.out.join("market"),
        &world,
        &Market1501Config::default(),
    )
    .context("generating the synthetic Market-1501-style set")?;
    let mut nl_cfg = LupersonNlConfig::default();
    nl_cfg.video.videos = args.videos;
    nl_cfg.validate().map_err(|e| usage(e.to_string()))?;
    let corpus_world = WorldConfig {
        seed: args.seed.wrapping_add(1000),
        ..world.clone()
    };
    let corpus = write_luperson_nl(&args.out.join("corpus"), &corpus_world, &nl_cfg)
        .context("generating the synthetic LUPerson-NL-style corpus")?;
    let parsed = market1501::parse(&market.dataset_dir, &ImageDatasetOptions::default())?;
    let splits = &parsed.splits;
    let st = splits.stats();
    say(format!(
        "1. world (seed {}): Market-style train {} ids / {} images, query {}, gallery {}; corpus {} videos, {} crops ({:.1} s)",
        args.seed,
        st.train.ids,
        st.train.images,
        st.query.images,
        st.gallery.images,
        args.videos,
        corpus.images_written,
        t0.elapsed().as_secs_f64()
    ));

    // 2-3. Denoise and pre-train.
    let mut pretrained = None;
    let mut denoise_quality = serde_json::Value::Null;
    let mut cion_cfg = None;
    let mut pnl_cfg = None;
    let mut supervised_cfg = None;
    let (first, use_cion) = match args.pretrain.as_str() {
        "pnl+cion" => (First::Pnl, true),
        "cion" => (First::None, true),
        "cion-oracle" => (First::None, true),
        "pnl" => (First::Pnl, false),
        "tracklets" => (First::Tracklets, false),
        "tracklets+cion" => (First::Tracklets, true),
        "oracle" => (First::Oracle, false),
        other => {
            return Err(usage(format!(
                "--pretrain must be pnl+cion, cion, cion-oracle, pnl, tracklets, tracklets+cion or oracle, got {other:?}"
            )));
        }
    };
    if args.oracle_epochs == 0 || args.tracklet_epochs == 0 {
        return Err(usage(
            "--oracle-epochs and --tracklet-epochs must be positive",
        ));
    }
    if !args.skip_pretrain {
        let mut features_from = None;
        match first {
            First::None => {}
            First::Pnl => {
                say("2a. PNL pre-training on the tracker's noisy labels".into());
                let (backbone, cfg) = pretrain_pnl_stage(args, &corpus.dataset_dir, &device, &say)?;
                features_from = Some(backbone);
                pnl_cfg = Some(cfg);
            }
            First::Tracklets | First::Oracle => {
                let oracle = first == First::Oracle;
                say(format!(
                    "2a. supervised pre-training on the corpus's {}",
                    if oracle {
                        "true persons (synth_truth.json)"
                    } else {
                        "tracklet labels"
                    }
                ));
                let (backbone, cfg) =
                    pretrain_supervised_stage(args, &corpus.dataset_dir, oracle, &device, &say)?;
                features_from = Some(backbone);
                supervised_cfg = Some(cfg);
            }
        }
        if use_cion {
            let model = match &features_from {
                Some(b) => b.clone(),
                None => {
                    device.seed(args.seed);
                    build_backbone(&args.arch, args.base_width, 1, &device)?
                }
            };
            say(format!(
                "2. denoising the corpus (levels 1-3), features of the {} backbone",
                match first {
                    First::None => "untrained",
                    First::Pnl => "PNL",
                    First::Tracklets => "tracklet-supervised",
                    First::Oracle => "oracle",
                }
            ));
            let (records, quality) = if args.pretrain == "cion-oracle" {
                say(
                    "   (cion-oracle: the corpus's true persons replace the denoised identities)"
                        .into(),
                );
                let corpus = luperson_nl::parse(&corpus.dataset_dir)?;
                let records =
                    truth_records(&corpus)?.context("no synth_truth.json in the corpus")?;
                (records, serde_json::Value::Null)
            } else {
                denoise(args, &corpus.dataset_dir, &model, &device, &say)?
            };
            denoise_quality = quality;
            say("3. CION pre-training".into());
            let (backbone, cfg) = pretrain(args, &records, features_from.take(), &device, &say)?;
            features_from = Some(backbone.valid());
            cion_cfg = Some(cfg);
        }
        pretrained = features_from;
    }

    // The backbones' own features, before any fine-tuning.
    let mut gap_rows = Vec::new();
    device.seed(args.seed);
    let random_backbone = build_backbone(&args.arch, args.base_width, 1, &device)?;
    gap_rows.push((
        "random init",
        eval_backbone(&random_backbone, splits, args, &device)?,
    ));
    if let Some(b) = &pretrained {
        gap_rows.push((
            pretrained_label(args),
            eval_backbone(&b.clone().valid(), splits, args, &device)?,
        ));
    }
    for (name, r) in &gap_rows {
        say(format!(
            "  backbone features only, {name}: mAP {:.1} %, Rank-1 {:.1} %",
            100.0 * r.map,
            100.0 * r.rank(1).unwrap_or(0.0)
        ));
    }
    if args.no_finetune {
        // `say` is silent under --json: the rows still have to come out.
        if args.json {
            let rows: Vec<_> = gap_rows
                .iter()
                .map(|(n, r)| serde_json::json!({"init": n, "mAP": r.map, "rank1": r.rank(1)}))
                .collect();
            println!("{}", serde_json::json!({ "backbone_features_only": rows }));
        }
        return Ok(());
    }

    // 4-5. Fine-tune twice and evaluate.
    let ft = FinetuneConfig {
        eval_every: args.eval_every,
        ..bot_config(args, args.finetune_epochs)
    };
    say(format!(
        "4. BoT fine-tuning, {} epochs each ({} at {}x{})",
        ft.epochs, ft.arch, ft.height, ft.width
    ));
    let mut rows = Vec::new();
    let random = finetune_run(
        "random init",
        &ft,
        None,
        splits,
        &RunOptions {
            log_path: Some(args.out.join("finetune-random.jsonl")),
            precision: args.precision,
            ..RunOptions::default()
        },
        &device,
        &say,
    )?;
    rows.push(("random init", random));
    if let Some(b) = pretrained {
        let pre = finetune_run(
            pretrained_label(args),
            &ft,
            Some(b),
            splits,
            &RunOptions {
                log_path: Some(args.out.join("finetune-cion.jsonl")),
                precision: args.precision,
                ..RunOptions::default()
            },
            &device,
            &say,
        )?;
        rows.push((pretrained_label(args), pre));
    }

    // Pictures.
    let curves: Vec<(&str, Vec<f64>)> = rows
        .iter()
        .map(|(n, (r, ..))| (*n, r.cmc.iter().take(20).map(|v| 100.0 * v).collect()))
        .collect();
    let curve_refs: Vec<(&str, &[f64])> = curves.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let cmc_png = args.out.join("cmc.png");
    crate::viz::save_png(
        &crate::viz::cmc_chart(&curve_refs, 20).render(640, 420),
        &cmc_png,
    )?;
    // The rank list of the best fine-tuned model.
    let (ranked_model, (_, q, g, _)) = rows
        .iter()
        .max_by(|a, b| a.1.0.map.total_cmp(&b.1.0.map))
        .context("no run")?;
    let ql = labels(&splits.query)?;
    let gl = labels(&splits.gallery)?;
    let dist = pairwise_distance(q.view(), g.view(), Metric::Cosine, false)?;
    let top = top_matches(dist.view(), &ql, &gl, 10)?;
    let qp = paths(&splits.query)?;
    let gp = paths(&splits.gallery)?;
    let step = (qp.len() / 6).max(1);
    let mut picture_rows = Vec::new();
    for qi in (0..qp.len()).step_by(step).take(6) {
        let query = load_rgb(&qp[qi])?;
        let gallery = top[qi]
            .iter()
            .map(|m| {
                load_rgb(&gp[m.gallery_index])
                    .map(|i| (i, m.is_match))
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        picture_rows.push(crate::viz::RankRow { query, gallery });
    }
    let ranklist_png = args.out.join("ranklist.png");
    crate::viz::save_png(&crate::viz::rank_list(&picture_rows), &ranklist_png)?;

    let total = t_all.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "seed": args.seed,
        "arch": args.arch,
        "base_width": args.base_width,
        "size": [args.height, args.width],
        "backend": backend.to_string(),
        "precision": args.precision.name(),
        "denoise_quality": denoise_quality,
        "pretrain": args.pretrain,
        "pnl": pnl_cfg,
        "supervised": supervised_cfg,
        "cion": cion_cfg,
        "finetune": ft,
        "backbone_features_only": gap_rows.iter().map(|(n, r)| serde_json::json!({
            "init": n, "mAP": r.map, "rank1": r.rank(1),
        })).collect::<Vec<_>>(),
        "results": rows.iter().map(|(n, (r, _, _, secs))| serde_json::json!({
            "init": n, "mAP": r.map, "mINP": r.minp, "cmc": r.cmc.iter().take(20).collect::<Vec<_>>(),
            "seconds": secs,
        })).collect::<Vec<_>>(),
        "pictures": {"cmc": cmc_png, "ranklist": ranklist_png, "ranklist_model": ranked_model},
        "seconds": total,
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    if args.json {
        println!("{summary}");
        return Ok(());
    }
    println!();
    println!("5. results on the synthetic Market-style test split (query vs gallery, cosine)");
    println!(
        "  | model                              |   mAP  | Rank-1 | Rank-5 | Rank-10 |  mINP  |"
    );
    println!(
        "  |------------------------------------|--------|--------|--------|---------|--------|"
    );
    let all: Vec<(String, &EvalResult)> = gap_rows
        .iter()
        .map(|(n, r)| (format!("{n}, no FT"), r))
        .chain(rows.iter().map(|(n, (r, ..))| (format!("{n} + BoT"), r)))
        .collect();
    for (name, r) in all {
        let pct = |k| r.rank(k).map_or(f64::NAN, |v| 100.0 * v);
        println!(
            "  | {:<34} | {:>5.1}% | {:>5.1}% | {:>5.1}% | {:>6.1}% | {:>5.1}% |",
            name,
            100.0 * r.map,
            pct(1),
            pct(5),
            pct(10),
            100.0 * r.minp
        );
    }
    println!();
    println!(
        "wrote {}, {} (rank lists of the {} model) and {} ({:.0} s in all)",
        cmc_png.display(),
        ranklist_png.display(),
        ranked_model,
        args.out.join("summary.json").display(),
        total
    );
    Ok(())
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    execute(<Args as clap::Parser>::parse())
}
