//! CION pre-training (identity-guided self-distillation) on CION-AL style
//! annotations, e.g. the `annos.json` written by the `denoise` example.
//!
//! ```sh
//! cargo run --release --example pretrain_cion -- --annos DIR_OR_annos.json --out RUN_DIR \
//!     [--config configs/cion.toml] [--epochs N] [--batch-size N] [--seed N] \
//!     [--checkpoint-every N] [--resume] [--stop-after N] [--backend flex|wgpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! `RUN_DIR` receives `checkpoints/` (atomic; `--resume` continues from the
//! newest), `metrics.jsonl` (one line per step; the `plot` example turns it
//! into PNGs), `config.json`, and at the end `teacher_backbone.safetensors`
//! and `student_backbone.safetensors` (PyTorch names; CION releases the
//! teacher). Bad arguments or inputs exit with code 2.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/pretrain.rs"]
mod pretrain;
#[path = "common/progress.rs"]
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cli::usage;
use pretrain::{Progress, RunArgs, classify, export_backbone};
use reid::data::datasets::cional::CionAl;
use reid::train::{CionConfig, pretrain_cion};

/// CION pre-training.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// CION-AL annotations: an `annos.json` file or a folder holding one.
    #[arg(long)]
    annos: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Override: epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override: images per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override: seed.
    #[arg(long)]
    seed: Option<u64>,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let (backend, device) = args.run.device()?;
    let mut cfg: CionConfig = args.run.recipe()?;
    cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.validate().map_err(|e| usage(e.to_string()))?;
    let set = CionAl::open(&args.annos).map_err(|e| usage(e.to_string()))?;
    let records = set.records();
    println!(
        "{}: {} images, {} identities; {} at {}x{}, batch {}, {} epochs, backend {}",
        set.annos_path.display(),
        records.len(),
        set.by_identity().len(),
        cfg.arch,
        cfg.global_size[0],
        cfg.global_size[1],
        cfg.batch_size,
        cfg.epochs,
        backend
    );
    let opts = args.run.run_options(&cfg)?;
    let t0 = Instant::now();
    let mut progress = Progress::new("cion");
    let out =
        pretrain_cion(&cfg, &records, &device, &opts, |e| progress.event(e)).map_err(classify)?;
    progress.finish();
    if out.finished {
        export_backbone(&args.run.out, "teacher", &out.teacher.backbone)?;
        export_backbone(&args.run.out, "student", &out.student.backbone)?;
    }
    println!(
        "{} steps ({}) in {:.1} s",
        out.steps_done,
        if out.finished { "finished" } else { "stopped" },
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    cli::exit(run(&Args::parse()))
}
