//! Turns a JSON-lines metrics log (written by the training examples) into
//! one PNG curve per metric, each from the lines that hold it; a
//! fine-tuning log's evaluation lines (`mAP`, `rank1`, `rank5`, `rank10`,
//! `mINP`) also give `evaluation.png`, all of them in percent over steps
//! (without `--keys`).
//!
//! ```sh
//! cargo run --release --example plot -- --log RUN/metrics.jsonl --out RUN/plots [--keys loss,lr]
//! ```
//! Bad arguments or a malformed log exit with code 2.

#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cli::usage;

/// Plots a metrics log.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The JSON-lines log.
    #[arg(long)]
    log: PathBuf,
    /// Output folder for the PNGs.
    #[arg(long)]
    out: PathBuf,
    /// Comma-separated metrics to plot (default: all but `epoch`).
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let keys: Option<Vec<&str>> = args
        .keys
        .as_ref()
        .map(|k| k.iter().map(String::as_str).collect());
    let files = reid::viz::plot_log(&args.log, &args.out, keys.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::exit(run(&Args::parse()))
}
