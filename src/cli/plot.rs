//! Turns a JSON-lines metrics log (written by the training examples) into
//! one PNG curve per metric, each from the lines that hold it; a
//! fine-tuning log's evaluation lines (`mAP`, `rank1`, `rank5`, `rank10`,
//! `mINP`) also give `evaluation.png`, all of them in percent over steps
//! (without `--keys`).
//!
//! ```sh
//! reid plot --log RUN/metrics.jsonl --out RUN/plots [--keys loss,lr]
//! ```
//! A log that cannot be read, is malformed, or has nothing to draw (no
//! line, no metric besides `step` and `epoch`) exits with code 2 and says
//! why; a torn last line (a run stopped while writing it) is left out with
//! a note, as a resume leaves it out. Failing to write a picture exits
//! with code 1.
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
    if args.out.exists() && !args.out.is_dir() {
        return Err(usage(format!(
            "--out {}: is a file; expected a folder for the pictures",
            args.out.display()
        )));
    }
    let keys: Option<Vec<&str>> = args
        .keys
        .as_ref()
        .map(|k| k.iter().map(String::as_str).collect());
    let report = crate::viz::plot_log_with(
        &args.log,
        &args.out,
        keys.as_deref(),
        &crate::viz::PlotOptions::default(),
    )
    .map_err(|e| match &e {
        // Writing a picture failed: the environment's (a full disk).
        crate::viz::VizError::Io { path, .. } if path != &args.log => anyhow::Error::new(e),
        _ => usage(e.to_string()),
    })?;
    if let Some(line) = report.torn_last_line {
        eprintln!(
            "note: {}: line {line} is cut short (a run stopped while writing it) and was left out, as a resume leaves it out",
            args.log.display()
        );
    }
    for f in &report.files {
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
