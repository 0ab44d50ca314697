//! The demo as a library function: the whole toolkit on the built-in
//! synthetic world in one call ([`run_demo`]).
//!
//! 1. generate the world: a Market-1501-style set and a LUPerson-NL-style
//!    video corpus with noisy tracklet labels;
//! 2. pre-train as [`DemoConfig::pretrain`] says: PNL (the default) or
//!    supervised on the tracker's tracklet labels, then denoise the corpus
//!    (levels 1–3) with that backbone's features into CION-AL `annos.json`
//!    (scored against the generator's truth) and continue with CION — or
//!    the diagnostics
//!    (`cion-oracle`, `oracle`) on the true persons;
//! 3. evaluate the backbones' own pooled features (random init, pre-trained);
//! 4. fine-tune with BoT from random init and from the pre-trained backbone
//!    and evaluate both (Market protocol, cosine);
//! 5. write a CMC plot (`cmc.png`), a rank-list picture (`ranklist.png`),
//!    the metrics logs and `summary.json` to [`DemoConfig::out`].
//!
//! The `demo` program (`reid demo`, `cargo run --example demo`) is this
//! function with progress bars and a table.
//!
//! ```no_run
//! use reid::demo::{DemoConfig, DemoEvent, run_demo};
//!
//! let cfg = DemoConfig::default().with_finetune_epochs(2);
//! let device = reid::burn::tensor::Device::flex();
//! let out = run_demo(&cfg, &device, &mut |e| {
//!     if let DemoEvent::Line(s) = e {
//!         println!("{s}");
//!     }
//! })?;
//! for row in &out.finetuned {
//!     println!("{}: mAP {:.1} %", row.init, 100.0 * row.result.map);
//! }
//! # Ok::<(), reid::demo::DemoError>(())
//! ```

mod pipeline;
mod stages;

use derive_setters::Setters;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::EvalResult;
use crate::train::{Precision, PretrainEvent};

pub use pipeline::run_demo;

/// What the demo pre-trains before fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum PretrainPlan {
    /// Supervised (the BoT recipe) on the tracker's tracklet labels, its
    /// features for denoising, then CION from its weights (the default
    /// until 2026-12-08; its first stage is not a seed method).
    #[serde(rename = "tracklets+cion")]
    #[cfg_attr(feature = "cli", value(name = "tracklets+cion"))]
    TrackletsCion,
    /// The supervised stage on tracklet labels only.
    #[serde(rename = "tracklets")]
    #[cfg_attr(feature = "cli", value(name = "tracklets"))]
    Tracklets,
    /// PNL on the tracker's labels, its features for denoising, then CION
    /// from its weights: the default.
    #[serde(rename = "pnl+cion")]
    #[cfg_attr(feature = "cli", value(name = "pnl+cion"))]
    PnlCion,
    /// PNL only.
    #[serde(rename = "pnl")]
    #[cfg_attr(feature = "cli", value(name = "pnl"))]
    Pnl,
    /// Denoising with the untrained backbone, CION from random init.
    #[serde(rename = "cion")]
    #[cfg_attr(feature = "cli", value(name = "cion"))]
    Cion,
    /// CION from random init on the corpus's true persons (a diagnostic of
    /// CION without denoising errors).
    #[serde(rename = "cion-oracle")]
    #[cfg_attr(feature = "cli", value(name = "cion-oracle"))]
    CionOracle,
    /// CION from random init on the true persons *within each video* (a
    /// person seen in two videos is two identities): perfect tracking with no
    /// cross-video link, the diagnostic that separates what CION gains from
    /// clean tracklets from what it gains from linking videos.
    #[serde(rename = "cion-oracle-video")]
    #[cfg_attr(feature = "cli", value(name = "cion-oracle-video"))]
    CionOracleVideo,
    /// CION from random init on the tracker's tracklets made pure: each
    /// tracklet split by true person (no identity switch, the tracker's
    /// fragmentation kept). With `cion-oracle-video` it separates what
    /// switches and what fragmentation cost CION.
    #[serde(rename = "cion-oracle-tracklets")]
    #[cfg_attr(feature = "cli", value(name = "cion-oracle-tracklets"))]
    CionOracleTracklets,
    /// `cion`, then denoising again with the CION backbone's features and a
    /// second CION from random init on those identities: whether CION's
    /// own features denoise better than untrained ones.
    #[serde(rename = "cion-twice")]
    #[cfg_attr(feature = "cli", value(name = "cion-twice"))]
    CionTwice,
    /// The BoT recipe on the corpus's true persons (`synth_truth.json`): an
    /// upper bound for perfect denoising, a diagnostic rather than a method.
    #[serde(rename = "oracle")]
    #[cfg_attr(feature = "cli", value(name = "oracle"))]
    Oracle,
}

impl PretrainPlan {
    /// Every plan, in the order of the documentation.
    pub const ALL: [PretrainPlan; 10] = [
        PretrainPlan::TrackletsCion,
        PretrainPlan::Tracklets,
        PretrainPlan::PnlCion,
        PretrainPlan::Pnl,
        PretrainPlan::Cion,
        PretrainPlan::CionOracle,
        PretrainPlan::CionOracleVideo,
        PretrainPlan::CionOracleTracklets,
        PretrainPlan::CionTwice,
        PretrainPlan::Oracle,
    ];

    /// The command-line and `summary.json` name (`tracklets+cion`, …).
    pub fn name(self) -> &'static str {
        match self {
            PretrainPlan::TrackletsCion => "tracklets+cion",
            PretrainPlan::Tracklets => "tracklets",
            PretrainPlan::PnlCion => "pnl+cion",
            PretrainPlan::Pnl => "pnl",
            PretrainPlan::Cion => "cion",
            PretrainPlan::CionOracle => "cion-oracle",
            PretrainPlan::CionOracleVideo => "cion-oracle-video",
            PretrainPlan::CionOracleTracklets => "cion-oracle-tracklets",
            PretrainPlan::CionTwice => "cion-twice",
            PretrainPlan::Oracle => "oracle",
        }
    }

    /// The table's name for the weights this plan pre-trains.
    pub fn label(self) -> &'static str {
        match self {
            PretrainPlan::Oracle => "oracle pre-trained",
            PretrainPlan::Tracklets => "tracklet pre-trained",
            PretrainPlan::TrackletsCion => "tracklet+CION pre-trained",
            PretrainPlan::Pnl => "PNL pre-trained",
            PretrainPlan::Cion => "CION pre-trained",
            PretrainPlan::CionOracle => "CION (true ids) pre-trained",
            PretrainPlan::CionOracleVideo => "CION (true ids per video) pre-trained",
            PretrainPlan::CionOracleTracklets => "CION (pure tracklets) pre-trained",
            PretrainPlan::CionTwice => "CION (second round) pre-trained",
            PretrainPlan::PnlCion => "PNL+CION pre-trained",
        }
    }

    /// Whether CION runs (after denoising, or on the true persons).
    pub fn uses_cion(self) -> bool {
        matches!(
            self,
            PretrainPlan::TrackletsCion
                | PretrainPlan::PnlCion
                | PretrainPlan::Cion
                | PretrainPlan::CionOracle
                | PretrainPlan::CionOracleVideo
                | PretrainPlan::CionOracleTracklets
                | PretrainPlan::CionTwice
        )
    }
}

impl fmt::Display for PretrainPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PretrainPlan {
    type Err = DemoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                DemoError::InvalidConfig(format!(
                    "pretrain must be one of {}, got {s:?}",
                    names.join(", ")
                ))
            })
    }
}

/// Everything the demo does, with the README command's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct DemoConfig {
    /// Output folder: the generated data, logs, checkpoints and pictures.
    pub out: PathBuf,
    /// Seed of the world, the weights, the samplers and the augmentations.
    pub seed: u64,
    /// Backbone architecture (a ResNet name, `reid_backbones::Arch`).
    pub arch: String,
    /// Channel width of the backbone's first stage (64 in published models).
    pub base_width: usize,
    /// Image height in pixels (generated and fed to the models).
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Videos of the pre-training corpus.
    pub videos: u32,
    /// Identities used for CION: the output of denoising level 1, 2 or 3
    /// (all levels are scored either way).
    pub denoise_level: u8,
    /// Pairwise precision denoising's merges, links and re-assignments
    /// must reach (calibrated on the corpus's same-frame negatives), in
    /// `(0, 1]`; 0.95 by default (see `reid_denoise::calibrate`).
    #[serde(default = "default_target_precision")]
    pub denoise_target_precision: f32,
    /// Level 2's stitching of a track the tracker fragmented: the largest
    /// gap between two fragments, in sampling steps (0 turns stitching
    /// off; 2 by default, the study's; docs/denoise.md, "Stitching
    /// fragments in time").
    #[serde(default = "default_stitch_gap_steps")]
    pub stitch_gap_steps: f32,
    /// Level 2's stitching threshold, in spread units (0 turns stitching
    /// off; 4 by default, the study's).
    #[serde(default = "default_stitch_threshold")]
    pub stitch_threshold: f32,
    /// CION pre-training epochs.
    pub pretrain_epochs: usize,
    /// BoT fine-tuning epochs (each run).
    pub finetune_epochs: usize,
    /// Also evaluate the fine-tuned models every N epochs (0: only at the
    /// end); every evaluation goes into their metrics logs.
    pub eval_every: usize,
    /// A CION recipe replacing the demo's small built-in one (its seed is
    /// set to [`seed`](Self::seed)).
    pub cion: Option<crate::train::CionConfig>,
    /// What is pre-trained.
    pub pretrain: PretrainPlan,
    /// PNL pre-training epochs (plans `pnl`, `pnl+cion`); the loss starts
    /// of the 3-epoch reference recipe (prototypes at epoch 1, label
    /// correction and label-guided contrast at 2) scale with it.
    pub pnl_epochs: usize,
    /// Epochs of the `oracle` plan over the corpus's true persons.
    pub oracle_epochs: usize,
    /// Epochs of the supervised stage over the tracker's labels (plans
    /// `tracklets`, `tracklets+cion`).
    pub tracklet_epochs: usize,
    /// Skip pre-training (fine-tune from random init only).
    pub skip_pretrain: bool,
    /// Stop after pre-training: compare the backbones' own features only.
    pub no_finetune: bool,
    /// Float type of the backbones in every training stage.
    pub precision: Precision,
    /// The backend's name, recorded in `summary.json`.
    pub backend: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reid-demo"),
            seed: 0,
            arch: "resnet18".into(),
            base_width: 16,
            height: 128,
            width: 64,
            videos: 60,
            denoise_level: 3,
            denoise_target_precision: default_target_precision(),
            stitch_gap_steps: default_stitch_gap_steps(),
            stitch_threshold: default_stitch_threshold(),
            pretrain_epochs: 8,
            finetune_epochs: 24,
            eval_every: 0,
            cion: None,
            pretrain: PretrainPlan::PnlCion,
            pnl_epochs: 9,
            oracle_epochs: 24,
            tracklet_epochs: 6,
            skip_pretrain: false,
            no_finetune: false,
            precision: Precision::F32,
            backend: "flex".into(),
        }
    }
}

fn default_target_precision() -> f32 {
    0.95
}

/// The study's stitching gap (`reid::study`'s denoising default).
fn default_stitch_gap_steps() -> f32 {
    crate::study::config::default_study_denoise()
        .level2
        .stitch_gap_steps
}

/// The study's stitching threshold.
fn default_stitch_threshold() -> f32 {
    crate::study::config::default_study_denoise()
        .level2
        .stitch_threshold
}

impl DemoConfig {
    /// Checks the settings before anything runs.
    ///
    /// # Errors
    /// [`DemoError::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<(), DemoError> {
        let bad = |m: &str| Err(DemoError::InvalidConfig(m.into()));
        if self.finetune_epochs == 0 || (!self.skip_pretrain && self.pretrain_epochs == 0) {
            return bad("epochs must be positive");
        }
        if self.oracle_epochs == 0 || self.tracklet_epochs == 0 || self.pnl_epochs == 0 {
            return bad("oracle_epochs, tracklet_epochs and pnl_epochs must be positive");
        }
        if !(self.denoise_target_precision > 0.0 && self.denoise_target_precision <= 1.0) {
            return bad("denoise_target_precision must be in (0, 1]");
        }
        let usable = |v: f32| v.is_finite() && v >= 0.0;
        if !usable(self.stitch_gap_steps) || !usable(self.stitch_threshold) {
            return bad("stitch_gap_steps and stitch_threshold must be finite and ≥ 0");
        }
        if !(1..=3).contains(&self.denoise_level) {
            return bad("denoise_level must be 1, 2 or 3");
        }
        if self.base_width == 0 || self.height < 16 || self.width < 8 {
            return bad("base_width must be positive and the images at least 16×8 pixels");
        }
        Ok(())
    }
}

/// What the demo reports while it runs.
#[derive(Debug)]
pub enum DemoEvent<'a> {
    /// A line of progress text.
    Line(String),
    /// An event of a pre-training stage (`"pnl"`, `"cion"`).
    Pretrain {
        /// The stage.
        stage: &'static str,
        /// The recipe's event.
        event: PretrainEvent<'a>,
    },
    /// A fine-tuning step.
    FinetuneStep {
        /// The run (`"random init"` or the plan's label).
        label: &'a str,
        /// 0-based global step.
        step: usize,
        /// Steps of the run.
        total: usize,
        /// Cross-entropy + triplet loss of the step.
        loss: f64,
        /// Learning rate of the step.
        lr: f64,
        /// Training images per second over the step.
        images_per_sec: f64,
    },
}

/// One evaluated model.
#[derive(Debug, Clone)]
pub struct DemoRow {
    /// Which weights (`"random init"` or the plan's label).
    pub init: &'static str,
    /// Its evaluation on the Market-style test split.
    pub result: EvalResult,
    /// Fine-tuning time in seconds (0 for backbone-only rows).
    pub seconds: f64,
}

/// What [`run_demo`] measured.
#[derive(Debug, Clone)]
pub struct DemoOutput {
    /// The backbones' own pooled features, before any fine-tuning.
    pub backbone_only: Vec<DemoRow>,
    /// The BoT fine-tuning runs (empty with [`DemoConfig::no_finetune`]).
    pub finetuned: Vec<DemoRow>,
    /// `summary.json` as written (`None` with `no_finetune`, which writes none).
    pub summary: Option<serde_json::Value>,
    /// The CMC plot and the rank-list picture (`None` with `no_finetune`).
    pub pictures: Option<(PathBuf, PathBuf)>,
    /// The model whose rank lists are drawn.
    pub ranked_model: Option<&'static str>,
    /// Wall time of the whole demo in seconds.
    pub seconds: f64,
}

impl DemoOutput {
    /// The results table (Markdown): backbone-only rows, then the
    /// fine-tuned ones; mAP, Rank-1/5/10 and mINP in percent.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| model                              |   mAP  | Rank-1 | Rank-5 | Rank-10 |  mINP  |\n\
             |------------------------------------|--------|--------|--------|---------|--------|\n",
        );
        let rows = self
            .backbone_only
            .iter()
            .map(|r| (format!("{}, no FT", r.init), &r.result))
            .chain(
                self.finetuned
                    .iter()
                    .map(|r| (format!("{} + BoT", r.init), &r.result)),
            );
        for (name, r) in rows {
            let pct = |k| r.rank(k).map_or(f64::NAN, |v| 100.0 * v);
            s.push_str(&format!(
                "| {:<34} | {:>5.1}% | {:>5.1}% | {:>5.1}% | {:>6.1}% | {:>5.1}% |\n",
                name,
                100.0 * r.map,
                pct(1),
                pct(5),
                pct(10),
                100.0 * r.minp
            ));
        }
        s
    }
}

/// Why the demo stopped (the facade's [`PipelineError`](crate::PipelineError)).
pub type DemoError = crate::PipelineError;
