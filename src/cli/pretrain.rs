//! `pretrain`: one program for the three pre-training recipes.
//!
//! ```sh
//! reid pretrain moco --data LUP_DIR --out RUN_DIR [--config configs/moco.toml] [--set KEY=VALUE]…
//! reid pretrain pnl  --data NL_DIR  --out RUN_DIR [--config configs/pnl.toml]
//! reid pretrain cion --annos DIR_OR_annos.json --out RUN_DIR [--config configs/cion.toml]
//! ```
//! (`cargo run --release --example pretrain -- --recipe moco …` is the same
//! program.) Inputs: MoCo reads a LUPerson image tree or LMDB
//! (`reid_data::datasets::luperson`), PNL a LUPerson-NL tree or LMDB
//! (`luperson_nl`), CION CION-AL annotations (`annos.json`, e.g. from
//! `denoise`). `RUN_DIR` receives `checkpoints/` (atomic; `--resume`
//! continues from the newest), `metrics.jsonl` (one line per step; `plot`
//! draws it), `config.json`, and at the end the backbones as safetensors
//! with PyTorch names (`query_backbone` for MoCo / PNL, `teacher_backbone`
//! and `student_backbone` for CION). Bad arguments or inputs exit with
//! code 2.

use reid_train::FromConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use reid_data::datasets::cional::CionAl;
use reid_data::datasets::{luperson, luperson_nl};
use reid_train::config::Override;
use reid_train::{CionConfig, MocoConfig, PnlConfig, pretrain_cion, pretrain_moco, pretrain_pnl};

use super::exit::{classify, usage};
use super::progress::Progress;
use super::run_args::RunArgs;

/// A pre-training recipe.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// LUPerson's MoCo v2 on unlabeled crops.
    Moco,
    /// LUPerson-NL's PNL on tracklet labels.
    Pnl,
    /// CION's identity-guided self-distillation on denoised identities.
    Cion,
}

/// The flags of `pretrain` after the recipe.
#[derive(Args, Debug, Clone)]
pub struct PretrainArgs {
    /// The training data: a LUPerson tree / LMDB (MoCo), a LUPerson-NL tree /
    /// LMDB (PNL), or CION-AL annotations, an `annos.json` or a folder
    /// holding one (CION).
    #[arg(long, visible_alias = "annos")]
    pub data: PathBuf,
    /// The run folder, recipe file, checkpoints, backend, devices, precision.
    #[command(flatten)]
    pub run: RunArgs,
    /// Shorthand for `--set epochs=N`.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Shorthand for `--set batch_size=N`.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Shorthand for `--set seed=N`.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl PretrainArgs {
    /// The shorthand flags as overrides.
    fn shorthands(&self) -> Vec<Override> {
        let mut v = Vec::new();
        let mut push = |key: &str, value: Option<u64>| {
            if let Some(x) = value {
                v.push(Override {
                    path: vec![key.to_string()],
                    value: x.into(),
                });
            }
        };
        push("epochs", self.epochs.map(|x| x as u64));
        push("batch_size", self.batch_size.map(|x| x as u64));
        push("seed", self.seed);
        v
    }
}

/// Runs `recipe` with `args`.
pub fn run(recipe: Recipe, args: &PretrainArgs) -> anyhow::Result<()> {
    let (backend, device) = args.run.device()?;
    let t0 = Instant::now();
    let extra = args.shorthands();
    let steps = match recipe {
        Recipe::Moco | Recipe::Pnl => {
            let corpus = match recipe {
                Recipe::Moco => luperson::parse(&args.data),
                _ => luperson_nl::parse(&args.data),
            }
            .map_err(|e| usage(e.to_string()))?;
            let records: Vec<_> = corpus.images().cloned().collect();
            println!(
                "{}: {} images; backend {backend}",
                args.data.display(),
                records.len()
            );
            let label = if recipe == Recipe::Moco {
                "moco"
            } else {
                "pnl"
            };
            let mut progress = Progress::new(label);
            let source = corpus.image_source().map_err(|e| usage(e.to_string()))?;
            // MoCo and PNL run alike; only their recipe and output types differ.
            macro_rules! run_contrastive {
                ($config:ty, $pretrain:ident) => {{
                    let cfg: $config = args.run.recipe(&extra)?;
                    cfg.validate().map_err(classify)?;
                    describe(&cfg.arch, cfg.size, cfg.batch_size, cfg.epochs);
                    let mut opts = args.run.run_options(&cfg)?;
                    opts.image_source = source;
                    let o = $pretrain(&cfg, FromConfig, &records, &device, &opts, |e| {
                        progress.event(e)
                    })
                    .map_err(classify)?;
                    (o.finished, o.steps_done, vec![("query", o.query.backbone)])
                }};
            }
            let out = if recipe == Recipe::Moco {
                run_contrastive!(MocoConfig, pretrain_moco)
            } else {
                run_contrastive!(PnlConfig, pretrain_pnl)
            };
            progress.finish();
            out
        }
        Recipe::Cion => {
            let cfg: CionConfig = args.run.recipe(&extra)?;
            cfg.validate().map_err(classify)?;
            let set = CionAl::open(&args.data).map_err(|e| usage(e.to_string()))?;
            let records = set.records();
            println!(
                "{}: {} images, {} identities; backend {backend}",
                set.annos_path.display(),
                records.len(),
                set.by_identity().len(),
            );
            describe(&cfg.arch, cfg.global_size, cfg.batch_size, cfg.epochs);
            let opts = args.run.run_options(&cfg)?;
            let mut progress = Progress::new("cion");
            let o = pretrain_cion(&cfg, FromConfig, &records, &device, &opts, |e| {
                progress.event(e)
            })
            .map_err(classify)?;
            progress.finish();
            (
                o.finished,
                o.steps_done,
                vec![
                    ("teacher", o.teacher.backbone),
                    ("student", o.student.backbone),
                ],
            )
        }
    };
    let (finished, steps_done, backbones) = steps;
    if finished {
        for (name, backbone) in &backbones {
            export_backbone(&args.run.out, name, backbone)?;
        }
    }
    println!(
        "{steps_done} steps ({}) in {:.1} s",
        if finished { "finished" } else { "stopped" },
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints the recipe's shape.
fn describe(arch: &str, size: [u32; 2], batch: usize, epochs: usize) {
    println!(
        "{arch} at {}x{}, batch {batch}, {epochs} epochs",
        size[0], size[1]
    );
}

/// Writes `backbone` to `<out>/<name>_backbone.safetensors` (PyTorch names).
pub fn export_backbone(
    out: &Path,
    name: &str,
    backbone: &reid_backbones::ResNet,
) -> anyhow::Result<()> {
    let path = out.join(format!("{name}_backbone.safetensors"));
    reid_backbones::import::save_safetensors(backbone, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The flags of a program that runs one fixed recipe.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct OneRecipe {
    #[command(flatten)]
    args: PretrainArgs,
}

/// The whole program for `recipe`: parses the process arguments
/// ([`PretrainArgs`]), runs and maps the result to the exit code (the
/// `pretrain_moco`, `pretrain_pnl` and `pretrain_cion` examples).
pub fn main_for(recipe: Recipe) -> std::process::ExitCode {
    crate::allocator::keep_freed_memory();
    use clap::Parser;
    super::exit(run(recipe, &OneRecipe::parse().args))
}
