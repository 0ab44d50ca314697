//! Prints the statistics table of a ReID dataset (fast-reid's layout), or JSON.
//!
//! ```text
//! cargo run --release --example inspect -- --dataset market1501 --root datasets/ [--json]
//! ```
//! `--dataset`: market1501 | dukemtmc | msmt17 | cuhk03-labeled |
//! cuhk03-detected | luperson | luperson-nl | cional. `--root` may be the
//! dataset's own folder or a folder above it (fast-reid or torchreid
//! convention). Warnings go to stderr. Exit codes: 0 success, 2 wrong layout
//! (the message names the path expected) or bad arguments, 1 other errors.

fn main() -> std::process::ExitCode {
    reid::cli::inspect::main()
}
