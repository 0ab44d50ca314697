//! The flags every training program takes: the run folder, the recipe
//! file and its `--set` overrides, checkpoints, resume, backend, devices and
//! precision.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use reid_train::config::{Override, load_recipe};
use reid_train::{Precision, RunOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::exit::{classify, usage};
use crate::Backend;

/// Flags of every training program.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run folder: `checkpoints/`, `metrics.jsonl`, `config.json`, exported backbones.
    #[arg(long)]
    pub out: PathBuf,
    /// Recipe file (`.toml` or `.json`); fields not given keep the paper's values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one recipe field, e.g. `--set epochs=2 --set k_schedule.start=4`
    /// (TOML values; checked as the file is). Repeatable; applied after `--config`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Write a checkpoint every N steps (0 = at the end only).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: usize,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps in total (a checkpoint is written there).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Compute backend (must be compiled in).
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Data-parallel over this many devices of `--backend` (CUDA / wgpu
    /// GPUs 0..N; on flex N handles of the one CPU, for tests): each batch
    /// is cut into N shards.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Float type of the backbone (`f16` with dynamic loss scaling); heads,
    /// losses and master weights stay f32.
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
        let devices = self.backend.devices(self.devices).map_err(|e| {
            usage(format!(
                "--backend {} --devices {}: {e}",
                self.backend, self.devices
            ))
        })?;
        Ok((self.backend, devices))
    }

    /// The recipe: `--config` (or the defaults), then `extra` overrides
    /// (the programs' shorthand flags), then `--set`.
    pub fn recipe<T>(&self, extra: &[Override]) -> anyhow::Result<T>
    where
        T: DeserializeOwned + Serialize + Default,
    {
        let mut sets = extra.to_vec();
        for s in &self.sets {
            sets.push(Override::parse(s).map_err(|e| usage(format!("--set {s}: {e}")))?);
        }
        load_recipe(self.config.as_deref(), &sets).map_err(classify)
    }

    /// Checkpoints, log and resume under `--out`; writes `config.json`.
    pub fn run_options(&self, config: &impl Serialize) -> anyhow::Result<RunOptions> {
        std::fs::create_dir_all(&self.out)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", self.out.display()))?;
        let path = self.out.join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        Ok(RunOptions::default()
            .with_checkpoint_dir(Some(self.out.join("checkpoints")))
            .with_checkpoint_every(self.checkpoint_every)
            .with_keep_checkpoints(2)
            .with_resume(self.resume)
            .with_log_path(Some(self.out.join("metrics.jsonl")))
            .with_stop_after(self.stop_after)
            .with_devices(match self.devices {
                0 | 1 => Vec::new(),
                _ => self.all_devices()?.1,
            })
            .with_precision(self.precision))
    }
}
