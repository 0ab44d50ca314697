//! Integration tests of `reid-metrics`, linked into one test binary.
//!
//! Each test binary links burn and every dependency, so one per crate (not
//! one per file) keeps the test build small: CI's disk and link time grow
//! with the number of binaries. Each module is one former test file; run
//! one with a filter, e.g. `cargo test -p reid-metrics --test integration <module>::`.

mod common;

mod behaviour;
mod npy;
mod npy_props;
mod parity;
