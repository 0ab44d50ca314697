//! CION pre-training (identity-guided self-distillation) on CION-AL style
//! annotations, e.g. the `annos.json` written by the `denoise` example.
//!
//! ```sh
//! cargo run --release --example pretrain_cion -- --annos DIR_OR_annos.json --out RUN_DIR \
//!     [--config configs/cion.toml] [--epochs N] [--batch-size N] [--seed N] \
//!     [--checkpoint-every N] [--resume] [--backend flex|wgpu|cuda]
//! ```
//! `RUN_DIR` receives `checkpoints/` (atomic, `--resume` continues from the
//! newest), `metrics.jsonl` (one line per step; `plot` turns it into PNGs),
//! `config.json`, and at the end `teacher_backbone.safetensors` and
//! `student_backbone.safetensors` (PyTorch key names; the teacher is what
//! CION releases). Bad arguments or inputs exit with code 2.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/progress.rs"]
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cli::usage;
use progress::StepBar;
use reid::Backend;
use reid::backbones::import::save_safetensors;
use reid::data::datasets::cional::CionAl;
use reid::train::{CionConfig, PretrainEvent, RunOptions, pretrain_cion};

/// CION pre-training.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// CION-AL annotations: an `annos.json` file or a folder holding one.
    #[arg(long)]
    annos: PathBuf,
    /// Run folder (checkpoints, metrics log, exported backbones).
    #[arg(long)]
    out: PathBuf,
    /// Recipe file (`.toml` or `.json`, fields of `CionConfig`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override: epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override: images per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override: seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write a checkpoint every N steps (0 = at the end only).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps in total (a checkpoint is written there).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: String,
}

fn read_config(path: &Path) -> anyhow::Result<CionConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config {}: {e}", path.display())))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(usage(format!(
                "config {} must end in .toml or .json",
                path.display()
            )));
        }
    };
    parsed.map_err(|e| usage(format!("bad config {}: {e}", path.display())))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let backend: Backend = args.backend.parse().map_err(|e| usage(format!("{e}")))?;
    let device = backend.device().map_err(|e| usage(format!("{e}")))?;
    let mut cfg = match &args.config {
        Some(p) => read_config(p)?,
        None => CionConfig::default(),
    };
    if let Some(v) = args.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = args.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
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
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", args.out.display()))?;
    std::fs::write(
        args.out.join("config.json"),
        serde_json::to_vec_pretty(&cfg)?,
    )?;
    let run = RunOptions {
        checkpoint_dir: Some(args.out.join("checkpoints")),
        checkpoint_every: args.checkpoint_every,
        keep_checkpoints: 2,
        resume: args.resume,
        log_path: Some(args.out.join("metrics.jsonl")),
        stop_after: args.stop_after,
    };
    let t0 = Instant::now();
    let mut bar: Option<StepBar> = None;
    let out = pretrain_cion(&cfg, &records, &device, &run, |e| match e {
        PretrainEvent::Resumed { step, path } => {
            println!("resumed from {} ({step} steps done)", path.display());
        }
        PretrainEvent::Step(r) => {
            let b = bar.get_or_insert_with(|| StepBar::new("cion", r.total_steps, r.step));
            b.step(r.step, r.loss, r.lr, r.images_per_sec);
        }
        PretrainEvent::EpochEnd { epoch, mean_loss } => {
            let line = format!("epoch {epoch:>3}: mean loss {mean_loss:.4}");
            match &bar {
                Some(b) => b.println(line),
                None => println!("{line}"),
            }
        }
        PretrainEvent::Checkpoint { step, path } => {
            if let Some(b) = &bar {
                b.println(format!("checkpoint {} ({step} steps)", path.display()));
            }
        }
    })
    .map_err(|e| match e {
        reid::train::TrainError::InvalidConfig(_) | reid::train::TrainError::Checkpoint(_) => {
            usage(e.to_string())
        }
        other => anyhow::Error::new(other),
    })?;
    if let Some(b) = bar {
        b.finish();
    }
    if out.finished {
        for (name, net) in [("teacher", &out.teacher), ("student", &out.student)] {
            let path = args.out.join(format!("{name}_backbone.safetensors"));
            save_safetensors(&net.backbone, &path)?;
            println!("wrote {}", path.display());
        }
    }
    println!(
        "{} steps ({}) in {:.1} s; metrics in {}",
        out.steps_done,
        if out.finished { "finished" } else { "stopped" },
        t0.elapsed().as_secs_f64(),
        args.out.join("metrics.jsonl").display()
    );
    Ok(())
}

fn main() -> ExitCode {
    cli::exit(run(&Args::parse()))
}
