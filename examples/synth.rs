//! Writes synthetic ReID datasets (Market-1501-, DukeMTMC-reID-, MSMT17-,
//! CUHK03-NP-, LUPerson-NL- and LUPerson-style) with ground-truth sidecars.
//!
//! ```text
//! cargo run --release --example synth -- --out /tmp/synth --kind all --seed 0
//! ```
//!
//! Exit status: 0 on success, 2 for bad arguments (clap usage errors, invalid
//! values, an existing non-empty output folder without `--force`), 1 for
//! other failures (I/O).

fn main() -> std::process::ExitCode {
    reid::cli::synth::main()
}
