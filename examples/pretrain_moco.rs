//! LUPerson MoCo v2 pre-training on a LUPerson-style folder of crops or
//! LMDB.
//!
//! ```sh
//! cargo run --release --example pretrain_moco -- --data LUP_DIR --out RUN_DIR \
//!     [--config configs/moco.toml] [--checkpoint-every N] [--resume] [--stop-after N] \
//!     [--backend flex|wgpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! `LUP_DIR` is a LUPerson image tree (see `reid_data::datasets::luperson`;
//! `synth --kind luperson` writes one), or the upstream LMDB (`keys.pkl` +
//! `data.mdb`; build with `--features lmdb`). `RUN_DIR` receives `checkpoints/`,
//! `metrics.jsonl`, `config.json` and at the end
//! `query_backbone.safetensors` (PyTorch names; what LUPerson releases).
//! Bad arguments or inputs exit with code 2.
//!
//! The same program as `pretrain --recipe moco` (and `reid pretrain moco`).

fn main() -> std::process::ExitCode {
    reid::cli::pretrain::main_for(reid::cli::pretrain::Recipe::Moco)
}
