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

fn main() -> std::process::ExitCode {
    reid::cli::plot::main()
}
