//! The programs (cargo feature `cli`): the `reid` command and the examples
//! are thin wrappers over these modules, so one implementation serves both.
//!
//! - [`mod@exit`]: the exit-code rule (2: wrong arguments or input; 1: the
//!   environment failed) and error classification;
//! - [`run_args`]: the flags every training program shares, with recipe
//!   files and `--set key.path=value` overrides;
//! - [`progress`]: progress bars and event display;
//! - one module per program: [`synth`], [`inspect`], [`extract`],
//!   [`denoise`], [`evaluate`], [`export`], [`pretrain`] (`moco`, `pnl`, `cion`), [`finetune`],
//!   [`study`], [`plot`], [`demo`]; each has `execute(args)` (what the
//!   `reid` subcommand runs) and `main()` (what its example runs);
//! - [`weights`]: the weight-loading flags of `extract` and `denoise`;
//! - [`images`]: `--on-corrupt error|skip` and the image listings and
//!   checks of the programs that read images.
//!
//! Every program first calls [`crate::allocator::keep_freed_memory`].
//!
//! The programs report errors with `anyhow` (what they print is the whole
//! chain); the library crates keep their typed errors.

pub mod demo;
pub mod denoise;
pub mod eval_dataset;
pub mod evaluate;
pub mod exit;
pub mod export;
pub mod extract;
pub mod finetune;
pub mod images;
pub mod inspect;
pub mod model_file;
pub mod plot;
pub mod pretrain;
pub mod progress;
pub mod run_args;
pub mod study;
pub mod synth;
pub mod weights;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::{UsageError, classify, exit, usage};

/// Overrides `slot` with the flag's value when the flag was given.
pub(crate) fn set_if_given<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}

/// Parses `args` (the program name first) as the `reid` command and runs
/// it, as the binary does: clap's own errors (an unknown flag, a missing
/// value) print the usage and give exit code 2, `--help` and `--version`
/// exit code 0. For tests that run the programs in-process.
pub fn run_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.execute(),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}

/// The `reid` command.
#[derive(Parser, Debug)]
#[command(
    name = "reid",
    version,
    about = "Person re-identification toolkit on burn",
    subcommand_required = true,
    arg_required_else_help = false
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `reid`; `reid <subcommand> --help` lists the flags.
// Parsed once per process: the size of the largest flag set does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate synthetic datasets (Market-1501, DukeMTMC-reID, MSMT17,
    /// CUHK03-NP, LUPerson, LUPerson-NL styles).
    ///
    /// Example: `reid synth --out data --kind market1501`
    Synth(synth::Args),
    /// Check a dataset folder and print its statistics.
    ///
    /// Example: `reid inspect --dataset market1501 --root data/market1501`
    Inspect(inspect::Args),
    /// Extract features of images with a backbone.
    ///
    /// Example: `reid extract --arch resnet50 --weights lup_moco.pth --images crops/ --out feats.npy`
    Extract(extract::Args),
    /// Denoise a LUPerson-NL corpus's tracklet labels into identities (CION's levels 1-3).
    ///
    /// Example: `reid denoise --corpus data/LUPerson-NL --features feats.npy --out annos.json`
    Denoise(denoise::Args),
    /// Evaluate features (query/gallery) with the ReID metrics.
    ///
    /// Example: `reid evaluate --query q.npy --gallery g.npy --query-pids qp.npy …`
    Evaluate(evaluate::Args),
    /// Export a BoT model for deployment (BatchNorms folded, fast-reid names).
    ///
    /// Example: `reid export --weights model.safetensors --out deploy.safetensors`
    Export(export::Args),
    /// Pre-train a backbone with MoCo (LUPerson), PNL (LUPerson-NL) or CION.
    ///
    /// Example: `reid pretrain cion --annos denoised/annos.json --out runs/cion --config configs/cion.toml`
    Pretrain {
        /// The recipe.
        #[arg(value_enum)]
        recipe: pretrain::Recipe,
        /// The data and run flags.
        #[command(flatten)]
        args: pretrain::PretrainArgs,
    },
    /// Fine-tune with BoT or MGN and evaluate.
    ///
    /// Example: `reid finetune --synth --epochs 4 --head bot`
    Finetune(finetune::Args),
    /// The seeds' comparison on the synthetic world (scratch, MoCo, PNL, CION).
    ///
    /// Example: `reid study --out runs/study --quick`
    Study(study::Args),
    /// Draw the curves of a `metrics.jsonl` log as pictures.
    ///
    /// Example: `reid plot --log runs/cion/metrics.jsonl --out runs/cion`
    Plot(plot::Args),
    /// The whole toolkit on synthetic data in one run.
    ///
    /// Example: `reid demo --out demo-out`
    Demo(demo::Args),
}

impl Cli {
    /// Runs the subcommand, after [`crate::allocator::keep_freed_memory`];
    /// returns the exit code.
    pub fn execute(self) -> ExitCode {
        crate::allocator::keep_freed_memory();
        match self.command {
            Command::Synth(a) => synth::execute(a),
            Command::Inspect(a) => inspect::execute(a),
            Command::Extract(a) => extract::execute(a),
            Command::Denoise(a) => denoise::execute(a),
            Command::Evaluate(a) => evaluate::execute(a),
            Command::Export(a) => export::execute(a),
            Command::Pretrain { recipe, args } => exit(pretrain::run(recipe, &args)),
            Command::Finetune(a) => finetune::execute(a),
            Command::Study(a) => study::execute(a),
            Command::Plot(a) => plot::execute(a),
            Command::Demo(a) => demo::execute(a),
        }
    }
}
