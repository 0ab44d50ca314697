//! Prints the statistics table of a ReID dataset (fast-reid's layout), or JSON.
//!
//! ```text
//! reid inspect --dataset market1501 --root datasets/ [--json]
//! ```
//! `--dataset`: market1501 | dukemtmc | msmt17 | cuhk03-labeled |
//! cuhk03-detected | luperson | luperson-nl | cional. `--root` may be the
//! dataset's own folder or a folder above it (fast-reid or torchreid
//! convention). Warnings go to stderr. Exit codes: 0 success, 2 wrong layout
//! (the message names the path expected) or bad arguments, 1 other errors.
//!
//! The `inspect` example and `reid inspect` run this module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::builder::PossibleValuesParser;
use reid_data::datasets::{inspect, names};

/// The flags of `inspect`.
#[derive(Parser, Debug)]
#[command(about = "Statistics of a ReID dataset: images, identities and cameras per split")]
pub struct Args {
    /// Dataset name.
    #[arg(long, value_parser = PossibleValuesParser::new(names()))]
    dataset: String,
    /// The dataset's folder, or a folder above it.
    #[arg(long)]
    root: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    match inspect::inspect(&args.dataset, &args.root, args.json) {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", report.output);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(u8::try_from(inspect::exit_code(&err)).unwrap_or(1))
        }
    }
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    execute(<Args as clap::Parser>::parse())
}
