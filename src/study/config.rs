//! What the study runs: its sizes ([`StudyConfig::default_size`],
//! [`StudyConfig::quick`], [`StudyConfig::toy`]), its rows ([`Row`]), the
//! recipes ([`Recipes`], from `configs/study/*.toml`) and the compute budget
//! rule ([`StudyConfig::plan`], [`Plan`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::denoise::DenoiseConfig;
use crate::synth::{LupersonNlConfig, Market1501Config, Span, VideoConfig};
use crate::train::{CionConfig, Decay, FinetuneConfig, MocoConfig, PnlConfig, Warmup};

use super::StudyError;

/// One row of the comparison: a pre-training (or none) followed by the same
/// BoT fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Row {
    /// No pre-training: random init (the baseline).
    Scratch,
    /// LUPerson's MoCo v2 on the corpus images (labels unused).
    Moco,
    /// LUPerson-NL's PNL on the tracker's noisy tracklet labels.
    Pnl,
    /// CION on identities from denoising the corpus with the features of
    /// the same seed's backbone of another row
    /// ([`StudyConfig::denoise_features`]: PNL's by default), from random
    /// init.
    Cion,
    /// CION on the corpus's true persons (`synth_truth.json`): a diagnostic
    /// of CION without denoising errors, not a method.
    CionOracle,
    /// The BoT recipe on the tracker's tracklet labels: a supervised
    /// reference, not a seed method.
    Supervised,
}

impl Row {
    /// Every row, in table order.
    pub const ALL: [Row; 6] = [
        Row::Scratch,
        Row::Moco,
        Row::Pnl,
        Row::Cion,
        Row::CionOracle,
        Row::Supervised,
    ];

    /// The row's name on command lines, in folders and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Row::Scratch => "scratch",
            Row::Moco => "moco",
            Row::Pnl => "pnl",
            Row::Cion => "cion",
            Row::CionOracle => "cion_oracle",
            Row::Supervised => "supervised",
        }
    }

    /// What the row pre-trains on, in a few words (the table's second
    /// column).
    pub fn describe(self) -> &'static str {
        match self {
            Row::Scratch => "none (random init)",
            Row::Moco => "MoCo v2, corpus images, no labels",
            Row::Pnl => "PNL, tracker's tracklet labels",
            Row::Cion => "CION, denoised identities",
            Row::CionOracle => "CION, true persons (diagnostic)",
            Row::Supervised => "BoT, tracker's tracklet labels (reference)",
        }
    }

    /// Whether the row pre-trains (every row but [`Row::Scratch`]).
    pub fn pretrains(self) -> bool {
        self != Row::Scratch
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Row {
    type Err = StudyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().replace('-', "_").to_ascii_lowercase();
        Row::ALL
            .into_iter()
            .find(|r| r.name() == key)
            .ok_or_else(|| {
                StudyError::InvalidConfig(format!(
                    "unknown row {s:?}; expected one of: {}",
                    Row::ALL.map(Row::name).join(", ")
                ))
            })
    }
}

/// The recipe settings of every method, parsed from TOML files into the
/// recipes' own configuration structs (which reject unknown keys). The
/// study overrides the fields that belong to its size, seed and budget (see
/// [`StudyConfig::plan`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipes {
    /// MoCo v2 (`moco.toml`).
    pub moco: MocoConfig,
    /// PNL (`pnl.toml`).
    pub pnl: PnlConfig,
    /// CION (`cion.toml`).
    pub cion: CionConfig,
    /// BoT (`bot.toml`): every row's fine-tuning, and the supervised row's
    /// pre-training.
    pub bot: FinetuneConfig,
}

/// The files' names, in [`Recipes`] field order.
pub const RECIPE_FILES: [&str; 4] = ["moco.toml", "pnl.toml", "cion.toml", "bot.toml"];

/// The image size `[height, width]` in pixels that `cion.toml`'s crop
/// sizes (`global_size`, `local_size`) are given for: a study of another
/// size scales both by its own size over this one.
pub const CION_REFERENCE_SIZE: [u32; 2] = [128, 64];

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, StudyError> {
    toml::from_str(text).map_err(|e| StudyError::Recipe {
        file: name.to_string(),
        message: e.to_string(),
    })
}

impl Recipes {
    /// The recipes shipped in the repository's `configs/study/` (compiled
    /// in; equal to [`Recipes::load`] of that folder).
    pub fn builtin() -> Self {
        Self::from_texts([
            include_str!("../../configs/study/moco.toml"),
            include_str!("../../configs/study/pnl.toml"),
            include_str!("../../configs/study/cion.toml"),
            include_str!("../../configs/study/bot.toml"),
        ])
        .expect("the compiled-in configs/study/*.toml parse")
    }

    /// Reads `moco.toml`, `pnl.toml`, `cion.toml` and `bot.toml` from `dir`.
    ///
    /// # Errors
    /// A file is missing or unreadable ([`StudyError::Io`]), or does not
    /// parse into its configuration, unknown keys included
    /// ([`StudyError::Recipe`]).
    pub fn load(dir: &Path) -> Result<Self, StudyError> {
        let mut texts: [String; 4] = Default::default();
        for (t, name) in texts.iter_mut().zip(RECIPE_FILES) {
            let path = dir.join(name);
            *t = std::fs::read_to_string(&path).map_err(|e| StudyError::io(&path, e))?;
        }
        let [a, b, c, d] = &texts;
        Self::from_texts([a, b, c, d]).map_err(|e| match e {
            StudyError::Recipe { file, message } => StudyError::Recipe {
                file: dir.join(file).display().to_string(),
                message,
            },
            other => other,
        })
    }

    fn from_texts([moco, pnl, cion, bot]: [&str; 4]) -> Result<Self, StudyError> {
        Ok(Self {
            moco: parse(RECIPE_FILES[0], moco)?,
            pnl: parse(RECIPE_FILES[1], pnl)?,
            cion: parse(RECIPE_FILES[2], cion)?,
            bot: parse(RECIPE_FILES[3], bot)?,
        })
    }
}

/// Everything one study runs. Build it with [`StudyConfig::default_size`],
/// [`StudyConfig::quick`] or [`StudyConfig::toy`] and change fields as
/// needed; [`StudyConfig::validate`] checks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// A name for the size (`default`, `quick`, `toy`), recorded in the
    /// outputs.
    pub size: String,
    /// Image height in pixels: generated, pre-trained on (global crops) and
    /// fine-tuned at.
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Backbone of every row (`resnet18`).
    pub arch: String,
    /// Channel width of the backbone's stem (16 in the demo).
    pub base_width: usize,
    /// Seed of the synthetic world (the same world for every training
    /// seed; the corpus uses this + 1000, as the demo).
    pub world_seed: u64,
    /// The Market-1501-style set (fine-tuning and evaluation).
    pub market: Market1501Config,
    /// The LUPerson-NL-style video corpus (pre-training).
    pub corpus: LupersonNlConfig,
    /// Training seeds: every row runs once per seed (weights, samplers,
    /// augmentations).
    pub seeds: Vec<u64>,
    /// The rows to run, in table order.
    pub rows: Vec<Row>,
    /// Pre-training compute per method, in backbone image passes: every crop
    /// through any network (query and key encoder, student and teacher)
    /// counts as its pixel count divided by `height × width`.
    pub budget_passes: f64,
    /// BoT fine-tuning epochs of every row (the recipe's milestones are
    /// scaled to it).
    pub finetune_epochs: usize,
    /// Which denoising level's identities the `cion` row trains on (1, 2
    /// or 3; all levels are scored).
    pub denoise_level: u8,
    /// The row whose backbone (same seed) extracts the features the `cion`
    /// row's identities are denoised with: `pnl` (default; the tracker's
    /// labels are what LUPerson-NL and CION both start from) or `moco` (no
    /// labels). Its pre-training runs first, and the `cion` row's compute
    /// includes it (not counted in `budget_passes`).
    #[serde(default = "default_denoise_features")]
    pub denoise_features: Row,
    /// The denoising settings of the `cion` row (levels are always
    /// recorded): the defaults with level 2's stitching on (2 sampling
    /// steps, 4 spread units; docs/denoise.md, "Stitching fragments in
    /// time").
    #[serde(default = "default_study_denoise")]
    pub denoise: DenoiseConfig,
    /// Pre-training and fine-tuning checkpoints every this many optimiser
    /// steps (and at the end); a re-run resumes from the newest.
    pub checkpoint_every: usize,
    /// Images per batch of feature extraction and evaluation.
    pub eval_batch: usize,
    /// The recipes.
    pub recipes: Recipes,
}

/// The `cion` row's default feature source: the PNL backbone.
fn default_denoise_features() -> Row {
    Row::Pnl
}

/// The `cion` row's default denoising: [`DenoiseConfig::default`] with
/// level 2's stitching on (gap 2 sampling steps, threshold 4 spread units).
pub fn default_study_denoise() -> DenoiseConfig {
    let mut d = DenoiseConfig::default();
    d.level2.stitch_gap_steps = 2.0;
    d.level2.stitch_threshold = 4.0;
    d
}

/// The pre-training recipe `$recipe` on the study's trunk (its `arch` and
/// `base_width`, last stride 1) for `$epochs` epochs of at most `$cap`
/// steps, seeded with `$seed` (the MoCo, PNL and CION recipes have these
/// setters alike).
macro_rules! study_recipe {
    ($study:ident, $recipe:ident, $epochs:ident, $cap:ident, $seed:ident) => {
        $recipe
            .clone()
            .with_arch($study.arch.clone())
            .with_base_width($study.base_width)
            .with_last_stride(1)
            .with_epochs($epochs)
            .with_max_steps_per_epoch(Some($cap))
            .with_seed($seed)
    };
}

impl StudyConfig {
    /// The full study (target: at most 3 hours on 2 cores, release build):
    /// the demo's world (Market-style set of 100 + 100 identities, 60
    /// corpus videos ≈ 3,000 crops) at 128 × 64, ResNet18 width 16, seeds
    /// 0, 1, 2, every row, 48,000 passes per pre-training (≈ 8 MoCo epochs),
    /// 24 BoT epochs.
    pub fn default_size(recipes: Recipes) -> Self {
        let mut corpus = LupersonNlConfig::default();
        corpus.video.videos = 60;
        Self {
            size: "default".into(),
            height: 128,
            width: 64,
            arch: "resnet18".into(),
            base_width: 16,
            world_seed: 0,
            market: Market1501Config::default(),
            corpus,
            seeds: vec![0, 1, 2],
            rows: Row::ALL.to_vec(),
            budget_passes: 48_000.0,
            finetune_epochs: 24,
            denoise_level: 3,
            denoise_features: default_denoise_features(),
            denoise: default_study_denoise(),
            checkpoint_every: 100,
            eval_batch: 64,
            recipes,
        }
    }

    /// A quick pass (target: under 20 minutes on 2 idle cores, release
    /// build; 23.5 minutes measured on shared cores):
    /// 20 corpus videos, one seed, 9,600 passes per pre-training, 8 BoT
    /// epochs; otherwise as [`StudyConfig::default_size`].
    pub fn quick(recipes: Recipes) -> Self {
        let mut cfg = Self::default_size(recipes);
        cfg.size = "quick".into();
        cfg.corpus.video.videos = 20;
        cfg.seeds = vec![0];
        cfg.budget_passes = 9_600.0;
        cfg.finetune_epochs = 8;
        cfg
    }

    /// A toy size for tests (seconds): 64 × 32 images, ResNet18 width 4, a
    /// world of a few identities and 4 videos, one seed, batches of 8, a
    /// handful of steps per method, one BoT epoch of at most 2 steps, denoising
    /// level 1. The recipes' small-batch fields are shrunk to fit.
    pub fn toy(recipes: Recipes) -> Self {
        // The toy's MoCo and PNL settings (the recipes name them alike).
        macro_rules! toy_contrastive {
            ($c:expr) => {
                $c.batch_size = 8;
                $c.bn_groups = 2;
                $c.queue_size = 32;
                $c.mlp_hidden_dim = 32;
                $c.dim = 16;
            };
        }
        let mut r = recipes;
        toy_contrastive!(r.moco);
        toy_contrastive!(r.pnl);
        r.pnl.cls_dim = 16;
        r.cion.batch_size = 8;
        // Global crops of the study's own size and half-size locals (the
        // reference size scales to the toy's 64 x 32), so the toy run
        // exercises the local-crop path.
        r.cion.global_size = CION_REFERENCE_SIZE;
        r.cion.local_size = [64, 32];
        r.cion.local_crops = 2;
        r.cion.head_hidden_dim = 32;
        r.cion.head_bottleneck_dim = 16;
        r.cion.out_dim = 64;
        r.bot.p = 4;
        r.bot.k = 2;
        r.bot.iters_per_epoch = Some(2);
        r.bot.warmup = Warmup {
            iters: 2,
            factor: 0.1,
        };
        let corpus = LupersonNlConfig::default().with_video(
            VideoConfig::default()
                .with_countries(1)
                .with_cities_per_country(1)
                .with_videos(4)
                .with_persons_per_video(Span::new(3, 4)),
        );
        Self {
            size: "toy".into(),
            height: 64,
            width: 32,
            base_width: 4,
            market: Market1501Config::small(8, 6)
                .with_images_per_cam(Span::new(1, 2))
                .with_junk(2)
                .with_distractors(2),
            corpus,
            seeds: vec![0],
            budget_passes: 64.0,
            finetune_epochs: 1,
            denoise_level: 1,
            checkpoint_every: 2,
            eval_batch: 16,
            // The default's backbone, world seed and rows.
            ..Self::default_size(r)
        }
    }

    /// Checks the study's own fields (the recipes are checked when a row's
    /// configuration is derived).
    ///
    /// # Errors
    /// [`StudyError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), StudyError> {
        let bad = |m: String| Err(StudyError::InvalidConfig(m));
        if self.seeds.is_empty() || self.rows.is_empty() {
            return bad("at least one seed and one row are needed".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(s) = self.seeds.iter().find(|s| !seen.insert(**s)) {
            return bad(format!("seed {s} is listed twice"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(r) = self.rows.iter().find(|r| !seen.insert(**r)) {
            return bad(format!("row {r} is listed twice"));
        }
        if !(self.budget_passes.is_finite() && self.budget_passes > 0.0) {
            return bad(format!(
                "budget_passes must be positive, got {}",
                self.budget_passes
            ));
        }
        if self.finetune_epochs == 0 || self.checkpoint_every == 0 || self.eval_batch == 0 {
            return bad("finetune_epochs, checkpoint_every and eval_batch must be >= 1".into());
        }
        if !matches!(self.denoise_features, Row::Moco | Row::Pnl) {
            return bad(format!(
                "denoise_features must be moco or pnl, got {}",
                self.denoise_features
            ));
        }
        self.denoise
            .validate()
            .map_err(|e| StudyError::InvalidConfig(format!("denoise: {e}")))?;
        if !(1..=3).contains(&self.denoise_level) {
            return bad(format!(
                "denoise_level must be 1, 2 or 3, got {}",
                self.denoise_level
            ));
        }
        if self.height < 16 || self.width < 8 {
            return bad(format!(
                "image size {}x{} is too small (at least 16x8)",
                self.height, self.width
            ));
        }
        Ok(())
    }

    /// What `row` pre-trains on, in a few words (the table's second
    /// column): [`Row::describe`], with the `cion` row's feature source and
    /// stitching.
    pub fn describe(&self, row: Row) -> String {
        if row != Row::Cion {
            return row.describe().to_string();
        }
        let stitched = if self.denoise.level2.stitch_gap_steps > 0.0
            && self.denoise.level2.stitch_threshold > 0.0
        {
            " + stitching"
        } else {
            ""
        };
        format!(
            "CION, identities denoised with {} features{stitched}",
            match self.denoise_features {
                Row::Pnl => "PNL",
                _ => "MoCo",
            }
        )
    }

    /// The rows whose pre-training runs first for each seed, shared with
    /// other rows: MoCo's when it is a row, and the denoising features'
    /// row when `cion` is a row.
    pub fn shared_pretrains(&self) -> Vec<Row> {
        let mut v = Vec::new();
        if self.rows.contains(&Row::Moco) {
            v.push(Row::Moco);
        }
        if self.rows.contains(&Row::Cion) && !v.contains(&self.denoise_features) {
            v.push(self.denoise_features);
        }
        v
    }

    /// The BoT fine-tuning configuration of every row for `seed`:
    /// `recipes.bot` at the study's backbone, size and
    /// [`finetune_epochs`](Self::finetune_epochs) (decay milestones and
    /// warm-up iterations scaled by `finetune_epochs / recipe epochs`).
    pub fn finetune_config(&self, seed: u64) -> FinetuneConfig {
        let mut c = self.bot_base(seed);
        c.decay = scale_decay(&c.decay, c.epochs, self.finetune_epochs);
        c.warmup.iters = scale_epoch(c.warmup.iters, c.epochs, self.finetune_epochs);
        c.epochs = self.finetune_epochs;
        c.eval_every = 0;
        c
    }

    fn bot_base(&self, seed: u64) -> FinetuneConfig {
        self.recipes
            .bot
            .clone()
            .with_arch(self.arch.clone())
            .with_base_width(self.base_width)
            .with_last_stride(1)
            .with_height(self.height)
            .with_width(self.width)
            .with_seed(seed)
    }

    /// Derives a pre-training row's configuration for `seed` from the
    /// budget, given its training records (`records` crops; `cion_epoch_steps`:
    /// the identity sampler's steps per epoch, for the CION rows).
    ///
    /// The rule: a step of the method costs `passes_per_step` backbone image
    /// passes (MoCo and PNL: 2 × batch, the two views through query and key
    /// encoder; CION: batch × (2 student + 2 teacher global crops + local
    /// crops × local area / global area); BoT: batch). The method gets
    /// `S = max(1, ⌊budget / passes_per_step⌋)` steps, run as
    /// `E = ⌈S / n⌉` epochs (`n`: its natural steps per epoch) of at most
    /// `⌈S / E⌉` steps, so it runs `S` to `S + E − 1` steps. The recipe
    /// file's epoch-indexed settings are scaled by `E / file epochs`
    /// (rounded; a start epoch of a loss stays ≥ 1 when it was); BoT's
    /// warm-up iterations are scaled the same way.
    ///
    /// # Errors
    /// [`StudyError::InvalidConfig`] when the row does not pre-train or the
    /// derived configuration does not validate.
    pub fn plan(
        &self,
        row: Row,
        seed: u64,
        records: usize,
        cion_epoch_steps: Option<usize>,
    ) -> Result<Plan, StudyError> {
        let area = f64::from(self.height) * f64::from(self.width);
        let invalid =
            |e: crate::train::TrainError| StudyError::InvalidConfig(format!("{row}: {e}"));
        let natural = |batch: usize| (records / batch.max(1)).max(1);
        match row {
            Row::Scratch => Err(StudyError::InvalidConfig(
                "the scratch row does not pre-train".into(),
            )),
            Row::Moco => {
                let r = &self.recipes.moco;
                let pps = 2.0 * r.batch_size as f64;
                let (steps, epochs, cap) = self.steps(pps, natural(r.batch_size));
                let cfg =
                    study_recipe!(self, r, epochs, cap, seed).with_size([self.height, self.width]);
                cfg.validate().map_err(invalid)?;
                Ok(Plan::new(RowConfig::Moco(cfg), pps, steps, epochs, cap))
            }
            Row::Pnl => {
                let r = &self.recipes.pnl;
                let pps = 2.0 * r.batch_size as f64;
                let (steps, epochs, cap) = self.steps(pps, natural(r.batch_size));
                let from = r.epochs.max(1);
                let start = |e: usize| scale_start(e, from, epochs);
                let cfg = study_recipe!(self, r, epochs, cap, seed)
                    .with_size([self.height, self.width])
                    .with_lr_milestones(scale_milestones(&r.lr_milestones, from, epochs))
                    .with_start_clean_epoch(start(r.start_clean_epoch))
                    .with_start_supcont_epoch(start(r.start_supcont_epoch))
                    .with_start_proto_epoch(start(r.start_proto_epoch));
                cfg.validate().map_err(invalid)?;
                Ok(Plan::new(RowConfig::Pnl(cfg), pps, steps, epochs, cap))
            }
            Row::Cion | Row::CionOracle => {
                let r = &self.recipes.cion;
                // The recipe file gives its crop sizes for a study of
                // `CION_REFERENCE_SIZE` images; other study sizes scale them.
                let [rh, rw] = CION_REFERENCE_SIZE;
                let scale = |v: u32, num: u32, den: u32| {
                    ((f64::from(v) * f64::from(num) / f64::from(den.max(1))).round() as u32).max(1)
                };
                let sized =
                    |[h, w]: [u32; 2]| [scale(h, self.height, rh), scale(w, self.width, rw)];
                let (global, local) = (sized(r.global_size), sized(r.local_size));
                let pixels = |[h, w]: [u32; 2]| f64::from(h) * f64::from(w);
                let pps = r.batch_size as f64
                    * (4.0 * pixels(global) + r.local_crops as f64 * pixels(local))
                    / area;
                let n = cion_epoch_steps
                    .unwrap_or_else(|| natural(r.batch_size))
                    .max(1);
                let (steps, epochs, cap) = self.steps(pps, n);
                let from = r.epochs.max(1);
                let mut k_schedule = r.k_schedule.clone();
                for b in &mut k_schedule.epochs {
                    if *b < 1_000_000 {
                        *b = (scale_epoch(*b as usize, from, epochs) as u64).max(1);
                    }
                }
                let warmup_epochs = scale_epoch(r.warmup_epochs, from, epochs).min(epochs);
                let cfg = study_recipe!(self, r, epochs, cap, seed)
                    .with_global_size(global)
                    .with_local_size(local)
                    .with_warmup_epochs(warmup_epochs)
                    .with_freeze_last_layer(scale_epoch(r.freeze_last_layer, from, epochs))
                    .with_warmup_teacher_temp_epochs(scale_epoch(
                        r.warmup_teacher_temp_epochs,
                        from,
                        epochs,
                    ))
                    .with_k_schedule(k_schedule);
                cfg.validate().map_err(invalid)?;
                let rc = if row == Row::Cion {
                    RowConfig::Cion(cfg)
                } else {
                    RowConfig::CionOracle(cfg)
                };
                Ok(Plan::new(rc, pps, steps, epochs, cap))
            }
            Row::Supervised => {
                let base = self.bot_base(seed);
                let pps = base.batch_size() as f64;
                let (steps, epochs, cap) = self.steps(pps, natural(base.batch_size()));
                let warmup = Warmup {
                    iters: scale_epoch(base.warmup.iters, base.epochs, epochs),
                    ..base.warmup
                };
                let decay = scale_decay(&base.decay, base.epochs, epochs);
                let cfg = base
                    .with_decay(decay)
                    .with_warmup(warmup)
                    .with_epochs(epochs)
                    .with_iters_per_epoch(Some(cap))
                    .with_eval_every(0);
                cfg.validate().map_err(invalid)?;
                Ok(Plan::new(
                    RowConfig::Supervised(cfg),
                    pps,
                    steps,
                    epochs,
                    cap,
                ))
            }
        }
    }

    /// `(S, E, cap)` of the budget rule for `pps` passes per step and `n`
    /// natural steps per epoch.
    fn steps(&self, pps: f64, n: usize) -> (usize, usize, usize) {
        let s = ((self.budget_passes / pps).floor() as usize).max(1);
        let e = s.div_ceil(n.max(1));
        (s, e, s.div_ceil(e))
    }
}

/// `v` epochs of a `from`-epoch schedule in a `to`-epoch one (rounded).
fn scale_epoch(v: usize, from: usize, to: usize) -> usize {
    ((v as f64) * (to as f64) / (from.max(1) as f64)).round() as usize
}

/// A loss's start epoch: scaled, and at least 1 when it was (epoch 0 stays 0).
pub(crate) fn scale_start(v: usize, from: usize, to: usize) -> usize {
    if v == 0 {
        0
    } else {
        scale_epoch(v, from, to).max(1)
    }
}

/// Milestones scaled into `1..to`, deduplicated, ascending.
fn scale_milestones(ms: &[usize], from: usize, to: usize) -> Vec<usize> {
    let mut out: Vec<usize> = ms
        .iter()
        .map(|&m| scale_epoch(m, from, to))
        .filter(|&m| m > 0 && m < to)
        .collect();
    out.dedup();
    out
}

fn scale_decay(d: &Decay, from: usize, to: usize) -> Decay {
    match d {
        Decay::MultiStep { milestones, gamma } => Decay::MultiStep {
            milestones: scale_milestones(milestones, from, to),
            gamma: *gamma,
        },
        Decay::Cosine {
            eta_min,
            delay_epochs,
        } => Decay::Cosine {
            eta_min: *eta_min,
            delay_epochs: scale_epoch(*delay_epochs, from, to).min(to.saturating_sub(1)),
        },
        Decay::Constant => Decay::Constant,
    }
}

/// A row's derived pre-training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "recipe", content = "config", rename_all = "snake_case")]
pub enum RowConfig {
    /// MoCo v2.
    Moco(MocoConfig),
    /// PNL.
    Pnl(PnlConfig),
    /// CION on denoised identities.
    Cion(CionConfig),
    /// CION on the true persons.
    CionOracle(CionConfig),
    /// BoT on the tracklet labels.
    Supervised(FinetuneConfig),
}

/// A pre-training row's share of the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The derived configuration.
    pub config: RowConfig,
    /// Backbone image passes per optimiser step (see
    /// [`StudyConfig::plan`]).
    pub passes_per_step: f64,
    /// `S`: the steps the budget buys (`⌊budget / passes_per_step⌋`, ≥ 1).
    pub budget_steps: usize,
    /// `E`: epochs run.
    pub epochs: usize,
    /// Steps per epoch at most (`⌈S / E⌉`).
    pub steps_per_epoch: usize,
}

impl Plan {
    fn new(
        config: RowConfig,
        passes_per_step: f64,
        budget_steps: usize,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> Self {
        Self {
            config,
            passes_per_step,
            budget_steps,
            epochs,
            steps_per_epoch,
        }
    }

    /// The passes the planned steps cost (`epochs × steps_per_epoch ×
    /// passes_per_step`; the run may do fewer when an epoch of its sampler
    /// is shorter).
    pub fn planned_passes(&self) -> f64 {
        (self.epochs * self.steps_per_epoch) as f64 * self.passes_per_step
    }
}
