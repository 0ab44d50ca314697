//! Pre-training with any of the three seed recipes; the `reid pretrain`
//! command as an example.
//!
//! ```sh
//! cargo run --release --example pretrain -- --recipe cion --annos DIR_OR_annos.json --out RUN_DIR \
//!     [--config configs/cion.toml] [--set KEY=VALUE]… [--checkpoint-every N] [--resume] \
//!     [--stop-after N] [--backend flex|wgpu|wgpu-cpu|cuda] [--devices N] [--precision f32|bf16|f16]
//! ```
//! See [`reid::cli::pretrain`] for the inputs and outputs of each recipe.

use clap::Parser;
use reid::cli::pretrain::{PretrainArgs, Recipe, run};

/// Pre-training (MoCo, PNL or CION).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The recipe.
    #[arg(long, value_enum)]
    recipe: Recipe,
    #[command(flatten)]
    args: PretrainArgs,
}

fn main() -> std::process::ExitCode {
    reid::allocator::keep_freed_memory();
    let a = Args::parse();
    reid::cli::exit(run(a.recipe, &a.args))
}
