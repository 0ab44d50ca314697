//! Integration tests of `reid-train`, linked into one test binary.
//!
//! Each test binary links burn and every dependency, so one per crate (not
//! one per file) keeps the test build small: CI's disk and link time grow
//! with the number of binaries. Each module is one former test file; run
//! one with a filter, e.g. `cargo test -p reid-train --test integration <module>::`.

mod any_backbone;
mod cion_step_parity;
mod common;
mod finetune;
mod finetune_eval_log;
mod finetune_mgn;
mod finetune_mgn_trunk;
mod moco_step_parity;
mod pnl_step_parity;
mod precision;
mod pretrain_cion;
mod pretrain_kill;
#[cfg(feature = "lmdb")]
mod pretrain_lmdb;
mod pretrain_moco;
mod pretrain_pnl;
mod schedule_parity;
