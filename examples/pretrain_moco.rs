//! LUPerson MoCo v2 pre-training on a LUPerson-style folder of crops or
//! LMDB.
//!
//! ```sh
//! cargo run --release --example pretrain_moco -- --data LUP_DIR --out RUN_DIR \
//!     [--config configs/moco.toml] [--checkpoint-every N] [--resume] [--stop-after N] \
//!     [--backend flex|wgpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! `LUP_DIR` is a LUPerson image tree (see `reid_data::datasets::luperson`;
//! `synth --kind luperson` writes one), or the upstream LMDB (`keys.pkl` +
//! `data.mdb`; build with `--features lmdb`). `RUN_DIR` receives `checkpoints/`,
//! `metrics.jsonl`, `config.json` and at the end
//! `query_backbone.safetensors` (PyTorch names; what LUPerson releases).
//! Bad arguments or inputs exit with code 2.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/pretrain.rs"]
mod pretrain;
#[path = "common/progress.rs"]
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cli::usage;
use pretrain::{Progress, RunArgs, classify, export_backbone};
use reid::data::datasets::luperson;
use reid::train::{MocoConfig, pretrain_moco};

/// MoCo v2 pre-training.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The LUPerson image tree.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let (backend, device) = args.run.device()?;
    let cfg: MocoConfig = args.run.recipe()?;
    cfg.validate().map_err(|e| usage(e.to_string()))?;
    let corpus = luperson::parse(&args.data).map_err(|e| usage(e.to_string()))?;
    let records: Vec<_> = corpus.images().cloned().collect();
    println!(
        "{}: {} images; {} at {}x{}, batch {}, {} epochs, backend {}",
        args.data.display(),
        records.len(),
        cfg.arch,
        cfg.size[0],
        cfg.size[1],
        cfg.batch_size,
        cfg.epochs,
        backend
    );
    let mut opts = args.run.run_options(&cfg)?;
    // Folders, or an LMDB (`keys.pkl` + `data.mdb`; build with `--features lmdb`).
    opts.image_source = corpus.image_source().map_err(|e| usage(e.to_string()))?;
    let mut progress = Progress::new("moco");
    let out =
        pretrain_moco(&cfg, &records, &device, &opts, |e| progress.event(e)).map_err(classify)?;
    progress.finish();
    if out.finished {
        export_backbone(&args.run.out, "query", &out.query.backbone)?;
    }
    println!("{} steps", out.steps_done);
    Ok(())
}

fn main() -> ExitCode {
    cli::exit(run(&Args::parse()))
}
