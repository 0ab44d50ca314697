//! The pre-training study on the synthetic world: every method (scratch,
//! MoCo, PNL, CION on denoised identities, CION on the true persons,
//! supervised on tracklets) pre-trains the same backbone under the same
//! compute budget, then the same BoT fine-tuning; the table reports no-FT
//! and +BoT mAP / Rank-1 as mean ± std over seeds, and the denoising quality
//! of CION's identities. All the work is `reid::study::run_study`; this
//! program parses flags and prints progress.
//!
//! ```sh
//! cargo run --release --example study -- [--out DIR] [--quick] [--seeds N]
//!     [--rows scratch,moco,pnl,cion,cion_oracle,supervised] [--config-dir DIR]
//!     [--budget PASSES] [--finetune-epochs N] [--backend flex]
//! ```
//! Re-running with the same `--out` skips finished stages and resumes
//! unfinished training. Writes `study.json`, `study.md` and `study.png` to
//! `--out`. Bad arguments or inputs exit with code 2; failures while running
//! exit with code 1.

fn main() -> std::process::ExitCode {
    reid::cli::study::main()
}
