//! The pre-training study on the synthetic world: every method (scratch,
//! MoCo, PNL, CION on denoised identities, CION on the true persons,
//! supervised on tracklets) pre-trains the same backbone under the same
//! compute budget, then the same BoT fine-tuning; the table reports no-FT
//! and +BoT mAP / Rank-1 as mean ± std over seeds, and the denoising quality
//! of CION's identities. All the work is `reid::study::run_study`; this
//! program parses flags and prints progress.
//!
//! ```sh
//! reid study [--out DIR] [--quick] [--seeds N]
//!     [--rows scratch,moco,pnl,cion,cion_oracle,supervised] [--config-dir DIR]
//!     [--budget PASSES] [--finetune-epochs N] [--denoise-features pnl|moco]
//!     [--stitch-gap-steps G] [--stitch-threshold T] [--backend flex]
//! ```
//! Re-running with the same `--out` skips finished stages and resumes
//! unfinished training. Writes `study.json`, `study.md` and `study.png` to
//! `--out`. Bad arguments or inputs exit with code 2; failures while running
//! exit with code 1.
//!
//! The `study` example and `reid study` run this module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::Backend;
use crate::study::{Recipes, Row, StudyConfig, StudyError, StudyEvent, StudyOptions, run_study};
use clap::Parser;

/// The pre-training study: every seed method under one compute budget, then
/// BoT, over seeds, on the synthetic world.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Output folder: the world, each stage's record and checkpoints, the
    /// report. Re-using it resumes the study.
    #[arg(long, default_value = "target/reid-study")]
    out: PathBuf,
    /// The quick size (20 corpus videos, 1 seed, a fifth of the budget,
    /// 8 BoT epochs; 10-25 minutes on 2 cores) instead of the full one.
    #[arg(long)]
    quick: bool,
    /// Number of training seeds (0, 1, …); default: 3, or 1 with --quick.
    #[arg(long)]
    seeds: Option<u64>,
    /// Rows to run, comma-separated (default: all): scratch, moco, pnl,
    /// cion, cion_oracle, supervised.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Folder of the recipe files moco.toml, pnl.toml, cion.toml, bot.toml.
    #[arg(long, default_value = "configs/study")]
    config_dir: PathBuf,
    /// Pre-training budget per method in backbone image passes (default:
    /// the size's: 48,000, or 9,600 with --quick).
    #[arg(long)]
    budget: Option<f64>,
    /// BoT fine-tuning epochs of every row (default: the size's: 24, or 8
    /// with --quick); the recipe's decay milestones and warm-up scale with
    /// it.
    #[arg(long)]
    finetune_epochs: Option<usize>,
    /// The row whose backbone extracts the features the `cion` row's
    /// identities are denoised with: pnl (default) or moco.
    #[arg(long)]
    denoise_features: Option<String>,
    /// The `cion` row's denoising: level 2's stitching gap in sampling
    /// steps (default 2; 0 turns stitching off).
    #[arg(long)]
    stitch_gap_steps: Option<f32>,
    /// The `cion` row's denoising: level 2's stitching threshold in spread
    /// units (default 4; 0 turns stitching off).
    #[arg(long)]
    stitch_threshold: Option<f32>,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: String,
}

/// The study's settings from the flags; every error here is a usage error
/// (exit code 2): a missing recipe file too.
fn config(args: &Args) -> Result<(StudyConfig, Backend), StudyError> {
    let backend: Backend = args.backend.parse()?;
    let recipes = Recipes::load(&args.config_dir).map_err(|e| match e {
        StudyError::Io { .. } => StudyError::InvalidConfig(e.to_string()),
        other => other,
    })?;
    let mut cfg = if args.quick {
        StudyConfig::quick(recipes)
    } else {
        StudyConfig::default_size(recipes)
    };
    if let Some(n) = args.seeds {
        cfg.seeds = (0..n).collect();
    }
    if !args.rows.is_empty() {
        cfg.rows = args
            .rows
            .iter()
            .map(|r| r.parse::<Row>())
            .collect::<Result<_, _>>()?;
    }
    if let Some(b) = args.budget {
        cfg.budget_passes = b;
    }
    if let Some(e) = args.finetune_epochs {
        cfg.finetune_epochs = e;
    }
    if let Some(f) = &args.denoise_features {
        cfg.denoise_features = f.parse::<Row>()?;
    }
    if let Some(g) = args.stitch_gap_steps {
        cfg.denoise.level2.stitch_gap_steps = g;
    }
    if let Some(t) = args.stitch_threshold {
        cfg.denoise.level2.stitch_threshold = t;
    }
    cfg.validate()?;
    Ok((cfg, backend))
}

fn run(args: &Args) -> Result<(), StudyError> {
    let t0 = Instant::now();
    let (cfg, backend) = config(args)?;
    println!(
        "pre-training study ({} size): rows {}, seeds {:?}, budget {} backbone image passes per \
         pre-training (one pass = one {}x{} image), BoT {} epochs -> {}",
        cfg.size,
        cfg.rows
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(","),
        cfg.seeds,
        cfg.budget_passes,
        cfg.height,
        cfg.width,
        cfg.finetune_epochs,
        args.out.display()
    );
    let opts = StudyOptions::new(args.out.clone(), backend);
    let mut last_line = Instant::now();
    let report = run_study(&cfg, &opts, |e| match e {
        StudyEvent::Start {
            stage,
            index,
            total,
        } => println!("[{index}/{total}] {stage}: running"),
        StudyEvent::Step {
            stage,
            step,
            total_steps,
            loss,
        } => {
            if last_line.elapsed().as_secs() >= 30 || step == total_steps {
                last_line = Instant::now();
                println!("    {stage}: step {step}/{total_steps}, loss {loss:.4}");
            }
        }
        StudyEvent::Done(d) => println!("{d}"),
    })?;
    println!();
    print!("{}", report.markdown());
    println!(
        "\nwrote {0}/study.json, {0}/study.md and {0}/study.png ({1:.0} s)",
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args).map_err(super::exit::classify_pipeline))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}
