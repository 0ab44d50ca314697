//! What the three pre-training examples share: the run flags (output
//! folder, recipe file, checkpoints, resume, backend, devices, precision), reading a recipe
//! file, the progress display and the backbone export.

use std::path::{Path, PathBuf};

use clap::Args;
use reid::Backend;
use reid::burn::tensor::Device;
use reid::train::{Precision, PretrainEvent, RunOptions, TrainError};
use serde::de::DeserializeOwned;

use crate::cli::usage;
use crate::progress::StepBar;

/// Flags of every pre-training example.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run folder: `checkpoints/`, `metrics.jsonl`, `config.json`, exported backbones.
    #[arg(long)]
    pub out: PathBuf,
    /// Recipe file (`.toml` or `.json`); fields not given keep the paper's values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write a checkpoint every N steps (0 = at the end only).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: usize,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps in total (a checkpoint is written there).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Data-parallel over this many devices of `--backend` (CUDA / wgpu
    /// GPUs 0..N; on flex N handles of the one CPU, for tests): each batch
    /// is cut into N shards.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Float type of the backbone: f32, bf16, or f16 (with dynamic loss
    /// scaling); heads, losses and master weights stay f32.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

/// Parses `--precision`.
fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse::<Precision>().map_err(|e| e.to_string())
}

impl RunArgs {
    /// The main device of `--backend` (the first of `--devices`).
    pub fn device(&self) -> anyhow::Result<(Backend, Device)> {
        let (backend, devices) = self.all_devices()?;
        Ok((backend, devices[0].clone()))
    }

    /// `--backend` and its `--devices` devices, main device first.
    fn all_devices(&self) -> anyhow::Result<(Backend, Vec<Device>)> {
        let backend: Backend = self.backend.parse().map_err(|e| usage(format!("{e}")))?;
        let devices = backend
            .devices(self.devices)
            .map_err(|e| usage(format!("--devices {}: {e}", self.devices)))?;
        Ok((backend, devices))
    }

    /// The recipe: `--config` or the defaults.
    pub fn recipe<T: DeserializeOwned + Default>(&self) -> anyhow::Result<T> {
        match &self.config {
            Some(p) => read_recipe(p),
            None => Ok(T::default()),
        }
    }

    /// Checkpoints, log and resume under `--out`; writes `config.json`.
    pub fn run_options(&self, config: &impl serde::Serialize) -> anyhow::Result<RunOptions> {
        std::fs::create_dir_all(&self.out)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", self.out.display()))?;
        std::fs::write(
            self.out.join("config.json"),
            serde_json::to_vec_pretty(config)?,
        )?;
        Ok(RunOptions {
            checkpoint_dir: Some(self.out.join("checkpoints")),
            checkpoint_every: self.checkpoint_every,
            keep_checkpoints: 2,
            resume: self.resume,
            log_path: Some(self.out.join("metrics.jsonl")),
            stop_after: self.stop_after,
            devices: match self.devices {
                0 | 1 => Vec::new(),
                _ => self.all_devices()?.1,
            },
            precision: self.precision,
            ..RunOptions::default()
        })
    }
}

/// Reads a `.toml` or `.json` recipe; errors are usage errors naming the file.
pub fn read_recipe<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config {}: {e}", path.display())))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(usage(format!(
                "config {} must end in .toml or .json",
                path.display()
            )));
        }
    };
    parsed.map_err(|e| usage(format!("bad config {}: {e}", path.display())))
}

/// A progress callback for a recipe: a bar (or plain lines without a
/// terminal), epoch means, checkpoints and resumes.
pub struct Progress {
    label: &'static str,
    bar: Option<StepBar>,
    warned: Option<&'static str>,
}

impl Progress {
    /// Progress of the recipe `label`.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            bar: None,
            warned: None,
        }
    }

    /// Handles one event.
    pub fn event(&mut self, e: PretrainEvent<'_>) {
        match e {
            PretrainEvent::Resumed { step, path } => {
                println!("resumed from {} ({step} steps done)", path.display());
            }
            PretrainEvent::Step(r) => {
                let label = self.label;
                let b = self
                    .bar
                    .get_or_insert_with(|| StepBar::new(label, r.total_steps, r.step));
                b.step(r.step, r.loss, r.lr, r.images_per_sec);
                let warning = r.warning();
                if warning.is_some() && warning != self.warned {
                    self.line(format!(
                        "warning at step {}: {}",
                        r.step,
                        warning.unwrap_or_default()
                    ));
                }
                self.warned = warning;
            }
            PretrainEvent::EpochEnd { epoch, mean_loss } => {
                self.line(format!("epoch {epoch:>3}: mean loss {mean_loss:.4}"));
            }
            PretrainEvent::Checkpoint { step, path } => {
                self.line(format!("checkpoint {} ({step} steps)", path.display()));
            }
        }
    }

    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => println!("{s}"),
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish();
        }
    }
}

/// Bad configurations and unusable checkpoints are usage errors (exit 2).
pub fn classify(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::InvalidConfig(_) | TrainError::Checkpoint(_) | TrainError::Data(_) => {
            usage(e.to_string())
        }
        other => anyhow::Error::new(other),
    }
}

/// Writes `backbone` to `<out>/<name>_backbone.safetensors` (PyTorch names).
pub fn export_backbone(
    out: &Path,
    name: &str,
    backbone: &reid::backbones::ResNet,
) -> anyhow::Result<()> {
    let path = out.join(format!("{name}_backbone.safetensors"));
    reid::backbones::import::save_safetensors(backbone, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}
