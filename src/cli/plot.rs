//! Turns a JSON-lines metrics log (written by the training examples) into
//! one PNG curve per metric, each from the lines that hold it; a
//! fine-tuning log's evaluation lines (`mAP`, `rank1`, `rank5`, `rank10`,
//! `mINP`) also give `evaluation.png`, all of them in percent over steps
//! (without `--keys`).
//!
//! ```sh
//! reid plot --log RUN/metrics.jsonl --out RUN/plots [--keys loss,lr]
//! ```
//! Bad arguments or a malformed log exit with code 2.
//!
//! The `plot` example and `reid plot` run this module.

use std::path::PathBuf;
use std::process::ExitCode;

use super::exit::usage;
use clap::Parser;

/// Plots a metrics log.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
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
    let files = crate::viz::plot_log(&args.log, &args.out, keys.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    for f in files {
        println!("wrote {}", f.display());
    }
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
