//! CION pre-training (identity-guided self-distillation) on CION-AL style
//! annotations, e.g. the `annos.json` written by the `denoise` example.
//!
//! ```sh
//! cargo run --release --example pretrain_cion -- --annos DIR_OR_annos.json --out RUN_DIR \
//!     [--config configs/cion.toml] [--epochs N] [--batch-size N] [--seed N] \
//!     [--checkpoint-every N] [--resume] [--stop-after N] [--backend flex|wgpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! `RUN_DIR` receives `checkpoints/` (atomic; `--resume` continues from the
//! newest), `metrics.jsonl` (one line per step; the `plot` example turns it
//! into PNGs), `config.json`, and at the end `teacher_backbone.safetensors`
//! and `student_backbone.safetensors` (PyTorch names; CION releases the
//! teacher). Bad arguments or inputs exit with code 2.
//!
//! The same program as `pretrain --recipe cion` (and `reid pretrain cion`).

fn main() -> std::process::ExitCode {
    reid::cli::pretrain::main_for(reid::cli::pretrain::Recipe::Cion)
}
