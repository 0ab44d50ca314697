//! The README's main command: the whole story on the built-in synthetic
//! world, in about ten minutes on two cores.
//!
//! 1. generate the world: a Market-1501-style set and a LUPerson-NL-style
//!    video corpus with noisy tracklet labels (other persons);
//! 2. pre-train with LUPerson-NL's PNL on the tracker's noisy tracklet
//!    labels, denoise the corpus (levels 1–3, level 2's stitching on) with
//!    its features, write CION-AL `annos.json`, score it against the truth;
//! 3. pre-train the backbone further with CION on those identities
//!    (`configs/cion-after-pnl.toml`);
//! 4. fine-tune with BoT on the Market-style train split twice, from random
//!    init and from the pre-trained teacher backbone;
//! 5. evaluate both (Market protocol) and print a table; write a CMC plot
//!    (`cmc.png`), a rank-list picture (`ranklist.png`), the metrics logs
//!    and `summary.json` to `--out`.
//!
//! ```sh
//! reid demo [--out DIR] [--seed N] [--backend flex] [--json]
//!     [--pretrain-epochs N] [--finetune-epochs N] [--videos N] [--skip-pretrain]
//!     [--pretrain pnl+cion|pnl|tracklets+cion|tracklets|cion|cion-oracle|
//!                cion-oracle-video|cion-oracle-tracklets|cion-twice|oracle]
//!     [--tracklet-epochs N] [--oracle-epochs N] [--pnl-epochs N] [--eval-every N]
//!     [--stitch-gap-steps G] [--stitch-threshold T] [--cion-config FILE]
//! ```
//! Bad arguments exit with code 2; failures while running exit with code 1.
//!
//! The `demo` example and `reid demo` run this module: the flags, progress
//! display and table around [`crate::demo::run_demo`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::exit::usage;
use super::progress::{Progress, StepBar};
use crate::Backend;
use crate::demo::{DemoConfig, DemoEvent, PretrainPlan, run_demo};
use crate::train::Precision;
use crate::train::config::load_recipe;

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
    /// Pairwise precision that denoising's merges, links and re-assignments
    /// must reach, in (0, 1] (calibrated on same-frame negatives).
    #[arg(long, default_value_t = 0.95)]
    denoise_target_precision: f32,
    /// Level 2's stitching of fragmented tracks: the largest gap between
    /// two fragments in sampling steps (0 turns stitching off; the study's
    /// value by default).
    #[arg(long, default_value_t = 2.0)]
    stitch_gap_steps: f32,
    /// Level 2's stitching threshold in spread units (0 turns stitching
    /// off).
    #[arg(long, default_value_t = 4.0)]
    stitch_threshold: f32,
    /// CION pre-training epochs (of the built-in recipe).
    #[arg(long, default_value_t = 8)]
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
    /// the demo's built-in recipe (`configs/cion-after-pnl.toml`).
    #[arg(long)]
    cion_config: Option<PathBuf>,
    /// Pre-training: `pnl+cion` (LUPerson-NL's PNL on the tracker's noisy
    /// tracklet labels; its features for denoising, then CION from its
    /// weights), `pnl` (the PNL stage only), `tracklets+cion` (the same with
    /// a supervised first stage, the BoT recipe on the tracklet labels: not
    /// a seed method), `tracklets` (the supervised stage only), `cion`
    /// (denoise with the untrained backbone, CION from random init),
    /// `cion-oracle` (CION from random init on the corpus's true persons, a
    /// diagnostic of CION without denoising errors), `cion-oracle-video`
    /// (the same with one identity per person and video: no cross-video
    /// link), `cion-oracle-tracklets` (the tracker's tracklets, each split
    /// by true person: no switch, the tracker's fragmentation), `cion-twice`
    /// (`cion`, then denoising with its backbone's features and a second
    /// CION from random init), or
    /// `oracle`: the BoT recipe on the corpus's *true* persons,
    /// read from the generator's `synth_truth.json` — an upper bound for
    /// perfect denoising, a diagnostic rather than a method.
    #[arg(long, value_enum, default_value_t = PretrainPlan::PnlCion)]
    pretrain: PretrainPlan,
    /// PNL pre-training epochs (for `--pretrain pnl` and `pnl+cion`); the
    /// prototype, label-correction and label-guided-contrast starts (epochs
    /// 1, 2 and 2 of the 3-epoch reference) scale with it.
    #[arg(long, default_value_t = 9)]
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
    /// Compute backend (must be compiled in).
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Float type of the backbones in every training stage: f32, bf16, or
    /// f16 (with dynamic loss scaling); heads, losses and master weights stay
    /// f32.
    #[arg(long, default_value = "f32", value_parser = |s: &str| s.parse::<Precision>().map_err(|e| e.to_string()))]
    precision: Precision,
    /// Print one JSON object at the end instead of tables.
    #[arg(long)]
    json: bool,
}

/// The library's settings from the flags.
fn config(args: &Args) -> anyhow::Result<DemoConfig> {
    let cion = match &args.cion_config {
        Some(p) => Some(load_recipe(Some(p), &[]).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    Ok(DemoConfig {
        out: args.out.clone(),
        seed: args.seed,
        arch: args.arch.clone(),
        base_width: args.base_width,
        height: args.height,
        width: args.width,
        videos: args.videos,
        denoise_level: args.denoise_level,
        denoise_target_precision: args.denoise_target_precision,
        stitch_gap_steps: args.stitch_gap_steps,
        stitch_threshold: args.stitch_threshold,
        pretrain_epochs: args.pretrain_epochs,
        finetune_epochs: args.finetune_epochs,
        eval_every: args.eval_every,
        cion,
        pretrain: args.pretrain,
        pnl_epochs: args.pnl_epochs,
        oracle_epochs: args.oracle_epochs,
        tracklet_epochs: args.tracklet_epochs,
        skip_pretrain: args.skip_pretrain,
        no_finetune: args.no_finetune,
        precision: args.precision,
        backend: args.backend.to_string(),
    })
}

/// Progress display of the demo's events: text lines (unless `--json`),
/// bars for the pre-training and fine-tuning stages.
struct Display {
    quiet: bool,
    pretrain: Option<(&'static str, Progress)>,
    finetune: Option<(String, StepBar)>,
}

impl Display {
    fn event(&mut self, e: DemoEvent<'_>) {
        match e {
            DemoEvent::Line(s) => {
                if !self.quiet {
                    self.close();
                    println!("{s}");
                }
            }
            DemoEvent::Pretrain { stage, event } => {
                if self.pretrain.as_ref().is_none_or(|(s, _)| *s != stage) {
                    self.close();
                    self.pretrain = Some((stage, Progress::new(stage)));
                }
                if let Some((_, p)) = self.pretrain.as_mut() {
                    p.event(event);
                }
            }
            DemoEvent::FinetuneStep {
                label,
                step,
                total,
                loss,
                lr,
                images_per_sec,
            } => {
                if self.finetune.as_ref().is_none_or(|(l, _)| l != label) {
                    self.close();
                    self.finetune = Some((label.to_string(), StepBar::new(label, total, step)));
                }
                if let Some((_, b)) = &self.finetune {
                    b.step(step, loss, lr, images_per_sec);
                }
            }
        }
    }

    /// Removes the bars.
    fn close(&mut self) {
        if let Some((_, p)) = self.pretrain.take() {
            p.finish();
        }
        if let Some((_, b)) = self.finetune.take() {
            b.finish();
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let device = args.backend.device().map_err(|e| usage(format!("{e}")))?;
    let cfg = config(args)?;
    let mut display = Display {
        quiet: args.json,
        pretrain: None,
        finetune: None,
    };
    let out = run_demo(&cfg, &device, &mut |e| display.event(e))
        .map_err(super::exit::classify_pipeline)?;
    display.close();
    let Some(summary) = &out.summary else {
        // `--no-finetune`: the backbone-only rows.
        if args.json {
            let rows: Vec<_> = out
                .backbone_only
                .iter()
                .map(|r| serde_json::json!({"init": r.init, "mAP": r.result.map, "rank1": r.result.rank(1)}))
                .collect();
            println!("{}", serde_json::json!({ "backbone_features_only": rows }));
        }
        return Ok(());
    };
    if args.json {
        println!("{summary}");
        return Ok(());
    }
    println!();
    println!("5. results on the synthetic Market-style test split (query vs gallery, cosine)");
    for line in out.table().lines() {
        println!("  {line}");
    }
    println!();
    if let (Some((cmc, ranklist)), Some(model)) = (&out.pictures, out.ranked_model) {
        println!(
            "wrote {}, {} (rank lists of the {model} model) and {} ({:.0} s in all)",
            cmc.display(),
            ranklist.display(),
            args.out.join("summary.json").display(),
            out.seconds
        );
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
    execute(Args::parse())
}
