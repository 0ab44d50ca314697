//! Prints the statistics table of a ReID dataset (fast-reid's layout), or JSON.
//!
//! ```text
//! reid inspect --dataset market1501 --root datasets/ [--json]
//! ```
//! `--dataset`: market1501 | dukemtmc | msmt17 | cuhk03-labeled |
//! cuhk03-detected | lists (your own: `train.txt`, `query.txt`,
//! `gallery.txt` of `path pid camid` lines under `--root`) | luperson |
//! luperson-nl | cional. `--root` may be the
//! dataset's own folder or a folder above it (fast-reid or torchreid
//! convention). Warnings go to stderr. Exit codes (`reid::cli::exit`): 0
//! success; 2 for a wrong layout (the message names the path expected), a
//! malformed name, an unreadable folder or bad arguments; 1 when the
//! environment fails.
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
    if let Err(e) = super::exit::check_readable_dir(&args.root, "--root") {
        return super::exit::exit(Err(e));
    }
    if args.dataset == "cional"
        && let Err(e) = check_annotations(&args.root)
    {
        return super::exit::exit(Err(e));
    }
    match inspect::inspect(&args.dataset, &args.root, args.json) {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", report.output);
            ExitCode::SUCCESS
        }
        Err(err) => super::exit::exit(Err(super::exit::classify_data(err))),
    }
}

/// CION-AL annotations name their images instead of listing a folder:
/// an empty list, or an entry whose image is not there, is an error here
/// (naming the first missing images), not a table of what is not there.
fn check_annotations(root: &std::path::Path) -> anyhow::Result<()> {
    use reid_data::datasets::cional::CionAl;
    let set = CionAl::open(root).map_err(super::exit::classify_data)?;
    if set.annos.is_empty() {
        return Err(super::exit::usage(format!(
            "{}: the annotation list is empty; expected [{{\"file_path\": …, \"id\": …}}, …]",
            set.annos_path.display()
        )));
    }
    let missing: Vec<String> = set
        .annos
        .iter()
        .map(|a| set.image_path(a))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        return Err(super::exit::usage(format!(
            "{}: {} of its {} images are not there (image paths are relative to {}): {}{}",
            set.annos_path.display(),
            missing.len(),
            set.annos.len(),
            set.image_root.display(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}
