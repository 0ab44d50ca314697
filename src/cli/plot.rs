//! Turns a JSON-lines metrics log (written by the training programs) into
//! one picture per metric, each from the lines that hold it; a
//! fine-tuning log's evaluation lines (`mAP`, `rank1`, `rank5`, `rank10`,
//! `mINP`) also give `evaluation.png`, all of them in percent over steps
//! (without `--keys`). Several `--log`s overlay their runs: one chart per
//! metric with a curve per run, named by `--names` (default: each log's
//! folder name).
//!
//! ```sh
//! reid plot --log RUN/metrics.jsonl --out RUN/plots [--keys loss,lr] [--format svg]
//! reid plot --log A/metrics.jsonl --log B/metrics.jsonl --names a,b --out cmp
//! ```
//! A log that cannot be read, is malformed, or has nothing to draw (no
//! line, no metric besides `step` and `epoch`) exits with code 2 and says
//! why; a torn last line (a run stopped while writing it) is left out with
//! a note, as a resume leaves it out. Failing to write a picture exits
//! with code 1.
//!
//! The `plot` example and `reid plot` run this module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::exit::usage;
use clap::{Parser, ValueEnum};

/// Picture format of `plot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PictureFormat {
    /// PNG (RGB8, anti-aliased).
    Png,
    /// SVG 1.1 (vectors, monospace text).
    Svg,
}

/// Plots a metrics log, or overlays several.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// The JSON-lines log; repeat the flag to overlay several runs.
    #[arg(long, required = true)]
    log: Vec<PathBuf>,
    /// Output folder for the pictures.
    #[arg(long)]
    out: PathBuf,
    /// Comma-separated metrics to plot (default: all but `epoch`).
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
    /// Comma-separated run names for the legend, one per `--log` (default:
    /// the name of each log's folder).
    #[arg(long, value_delimiter = ',')]
    names: Option<Vec<String>>,
    /// Picture format.
    #[arg(long, value_enum, default_value_t = PictureFormat::Png)]
    format: PictureFormat,
    /// Picture width in pixels.
    #[arg(long, default_value_t = 800)]
    width: u32,
    /// Picture height in pixels.
    #[arg(long, default_value_t = 480)]
    height: u32,
}

/// The legend names of the logs: `--names`, or each log's folder name
/// (the file name where folders repeat).
fn run_names(args: &Args) -> anyhow::Result<Vec<String>> {
    if let Some(names) = &args.names {
        if names.len() != args.log.len() {
            return Err(usage(format!(
                "--names: {} names for {} logs; expected one per --log",
                names.len(),
                args.log.len()
            )));
        }
        return Ok(names.clone());
    }
    let folder = |p: &Path| {
        p.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let names: Vec<String> = args.log.iter().map(|p| folder(p)).collect();
    let unique = names
        .iter()
        .enumerate()
        .all(|(i, n)| !names[..i].contains(n));
    Ok(if unique {
        names
    } else {
        args.log.iter().map(|p| p.display().to_string()).collect()
    })
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(usage(format!(
            "--out {}: is a file; expected a folder for the pictures",
            args.out.display()
        )));
    }
    if !(160..=8192).contains(&args.width) || !(120..=8192).contains(&args.height) {
        return Err(usage(format!(
            "--width {} --height {}: expected a width of 160 to 8192 and a height of 120 to 8192 pixels",
            args.width, args.height
        )));
    }
    let keys: Option<Vec<&str>> = args
        .keys
        .as_ref()
        .map(|k| k.iter().map(String::as_str).collect());
    let options = crate::viz::PlotOptions::default()
        .with_format(match args.format {
            PictureFormat::Png => crate::viz::Format::Png,
            PictureFormat::Svg => crate::viz::Format::Svg,
        })
        .with_width(args.width)
        .with_height(args.height);
    let is_log = |path: &Path| args.log.iter().any(|l| l == path);
    let classify = |e: crate::viz::VizError| match &e {
        // Writing a picture failed: the environment's (a full disk).
        crate::viz::VizError::Io { path, .. } if !is_log(path) => anyhow::Error::new(e),
        _ => usage(e.to_string()),
    };
    let (files, torn): (Vec<PathBuf>, Vec<(PathBuf, Option<usize>)>) = if args.log.len() == 1 {
        let report = crate::viz::plot_log_with(&args.log[0], &args.out, keys.as_deref(), &options)
            .map_err(classify)?;
        (
            report.files,
            vec![(args.log[0].clone(), report.torn_last_line)],
        )
    } else {
        let names = run_names(args)?;
        let logs: Vec<(&str, &Path)> = names
            .iter()
            .map(String::as_str)
            .zip(args.log.iter().map(PathBuf::as_path))
            .collect();
        let (report, torn) =
            crate::viz::plot_runs(&logs, &args.out, keys.as_deref(), &options).map_err(classify)?;
        (report.files, torn)
    };
    for (path, line) in torn {
        if let Some(line) = line {
            eprintln!(
                "note: {}: line {line} is cut short (a run stopped while writing it) and was left out, as a resume leaves it out",
                path.display()
            );
        }
    }
    for f in &files {
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
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, name: &str, scale: f64) -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("metrics.jsonl");
        let lines: Vec<String> = (0..5)
            .map(|s| {
                format!(
                    "{{\"step\":{s},\"epoch\":0,\"loss\":{}}}",
                    scale / (s + 1) as f64
                )
            })
            .collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    fn args(logs: Vec<PathBuf>, out: PathBuf, format: PictureFormat) -> Args {
        Args {
            log: logs,
            out,
            keys: None,
            names: None,
            format,
            width: 320,
            height: 200,
        }
    }

    /// Two logs overlay into one SVG chart per metric, the runs named by
    /// their folders; one log as PNG; mismatched `--names` is a usage error.
    #[test]
    fn overlays_runs_and_writes_svg() {
        let dir = std::env::temp_dir().join(format!("reid-plot-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = log(&dir, "run-a", 2.0);
        let b = log(&dir, "run-b", 3.0);
        let out = dir.join("cmp");
        run(&args(
            vec![a.clone(), b.clone()],
            out.clone(),
            PictureFormat::Svg,
        ))
        .unwrap();
        let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..40]
        );
        assert!(
            svg.contains("run-a") && svg.contains("run-b"),
            "legend names"
        );
        let one = dir.join("one");
        run(&args(vec![a.clone()], one.clone(), PictureFormat::Png)).unwrap();
        let png = std::fs::read(one.join("loss.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let mut bad = args(vec![a, b], dir.join("bad"), PictureFormat::Png);
        bad.names = Some(vec!["only-one".into()]);
        let e = run(&bad).unwrap_err().to_string();
        assert!(
            e.contains("--names") && e.contains("expected one per --log"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
