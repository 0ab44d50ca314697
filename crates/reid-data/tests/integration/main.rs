//! Integration tests of `reid-data`, linked into one test binary.
//!
//! Each test binary links burn and every dependency, so one per crate (not
//! one per file) keeps the test build small: CI's disk and link time grow
//! with the number of binaries. Each module is one former test file; run
//! one with a filter, e.g. `cargo test -p reid-data --test integration <module>::`.

mod common;

mod augment;
mod datasets_corpora;
mod datasets_folders;
mod datasets_inspect;
mod datasets_lists;
#[cfg(feature = "lmdb")]
mod datasets_lmdb;
mod identity_sampler;
#[cfg(feature = "burn")]
mod loader;
mod sampler;
mod transform_parity;
mod views_parity;
mod views_random;
