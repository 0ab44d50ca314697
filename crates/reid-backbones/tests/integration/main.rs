//! Integration tests of `reid-backbones`, linked into one test binary.
//!
//! Each test binary links burn and every dependency, so one per crate (not
//! one per file) keeps the test build small: CI's disk and link time grow
//! with the number of binaries. Each module is one former test file; run
//! one with a filter, e.g. `cargo test -p reid-backbones --test integration <module>::`.
//! The family parity modules (`parity_*`) share the generic harness of
//! `common::family`: a family module declares its fixture and keeps only the
//! tests that are its own.

#[macro_use]
mod common;
mod attention;
mod batch_norm;
mod depthwise_conv;
mod export_folded;
mod gelu;
mod mgn_from_trunk;
mod parity;
mod parity_cion_zoo;
mod parity_convnext;
mod parity_edgenext;
mod parity_fastvit;
mod parity_ghostnet;
mod parity_repvit;
mod parity_repvit_cion;
mod parity_resnet_cion;
mod parity_swin;
mod parity_vit;
mod parity_vit_cion;
mod parity_volo;
mod pointwise_conv;
mod precision;
mod spatial_conv;
mod zoo_init;
