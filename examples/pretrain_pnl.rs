//! LUPerson-NL PNL pre-training on a LUPerson-NL corpus (tracklet labels).
//!
//! ```sh
//! cargo run --release --example pretrain_pnl -- --data NL_DIR --out RUN_DIR \
//!     [--config configs/pnl.toml] [--checkpoint-every N] [--resume] [--stop-after N] \
//!     [--backend flex|wgpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! `NL_DIR` is a LUPerson-NL tree (see `reid_data::datasets::luperson_nl`;
//! `synth --kind luperson-nl` writes one), or the upstream LMDB (`keys.pkl`
//! with `pids` + `data.mdb`; build with `--features lmdb`). `RUN_DIR` receives `checkpoints/`,
//! `metrics.jsonl`, `config.json` and at the end
//! `query_backbone.safetensors` (PyTorch names; what LUPerson-NL releases).
//! Bad arguments or inputs exit with code 2.
//!
//! The same program as `pretrain --recipe pnl` (and `reid pretrain pnl`).

fn main() -> std::process::ExitCode {
    reid::cli::pretrain::main_for(reid::cli::pretrain::Recipe::Pnl)
}
