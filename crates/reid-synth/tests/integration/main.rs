//! Integration tests of `reid-synth`, linked into one test binary.
//!
//! Each test binary links every dependency, so one per crate (not one per
//! file) keeps the build small. Each module is one topic; run one with a
//! filter, e.g. `cargo test -p reid-synth --test integration synth_writers::`.

mod common;
mod synth_difficulty;
mod synth_layouts;
mod synth_writers;
