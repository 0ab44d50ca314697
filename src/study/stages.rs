//! One function per stage of the study: generate the world, pre-train a
//! row, denoise the corpus, evaluate a backbone's own features, fine-tune
//! and evaluate. Each returns what its stage record stores; caching and
//! progress are [`super`]'s.

use crate::train::FromConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backbones::{ResNet, build_backbone};
use crate::burn::module::Module;
use crate::burn::tensor::Device;
use crate::data::batch::TestTransform;
use crate::data::datasets::cional::CionAl;
use crate::data::datasets::{Corpus, ImageDatasetOptions, luperson_nl, market1501};
use crate::data::sampler_identity::IdentitySampler;
use crate::data::{ImageRecord, Splits};
use crate::denoise::source::{corpus_blocks, corpus_paths, synthetic_truth, truth_records};
use crate::denoise::{Quality, annos};
use crate::gap_eval::{avg_pooled, evaluate_pooled};
use crate::metrics::EvalResult;
use crate::synth::{WorldConfig, write_luperson_nl, write_market1501};
use crate::train::checkpoint::{module_from_bytes, module_to_bytes, write_atomic};
use crate::train::{
    FinetuneConfig, FinetuneEvent, PretrainEvent, RunOptions, evaluate_model, extract_features,
    finetune as finetune_bot, pretrain_cion, pretrain_moco, pretrain_pnl,
};

use super::config::{Plan, RowConfig, StudyConfig};
use super::{Row, StudyError};

/// The generated world on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldInfo {
    /// The Market-style dataset folder, relative to the output folder.
    pub market_dir: PathBuf,
    /// The corpus folder (holds `synth_truth.json`), relative to the output
    /// folder.
    pub corpus_dir: PathBuf,
    /// Market-style train / query / gallery images.
    pub market_images: [usize; 3],
    /// Market-style train identities.
    pub market_train_ids: usize,
    /// Corpus crops.
    pub corpus_images: usize,
    /// Corpus videos.
    pub corpus_videos: usize,
    /// The tracker's tracklets (the noisy labels).
    pub corpus_tracklets: usize,
}

/// The parsed world, in memory.
pub(crate) struct World {
    pub splits: Splits,
    pub corpus: Corpus,
}

/// The world's generator settings (what its stage record keys on).
pub(crate) fn world_inputs(cfg: &StudyConfig) -> serde_json::Value {
    serde_json::json!({
        "height": cfg.height, "width": cfg.width, "world_seed": cfg.world_seed,
        "market": cfg.market, "corpus": cfg.corpus,
    })
}

/// `path` relative to `base` when it is inside it (records stay valid
/// when the output folder moves or the study runs from another folder).
pub(crate) fn relative(base: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(base).unwrap_or(path).to_path_buf()
}

/// Generates the Market-style set and the corpus under `out/world`
/// (replacing earlier generator output there), as the demo does.
pub(crate) fn generate_world(cfg: &StudyConfig, out: &Path) -> Result<WorldInfo, StudyError> {
    let dir = out.join("world");
    let world = WorldConfig::sized(cfg.world_seed, cfg.height, cfg.width).with_overwrite(true);
    world
        .validate()
        .map_err(|e| StudyError::InvalidConfig(e.to_string()))?;
    cfg.corpus
        .validate()
        .map_err(|e| StudyError::InvalidConfig(e.to_string()))?;
    let market = write_market1501(&dir.join("market"), &world, &cfg.market)?;
    let corpus_world = world.with_seed(cfg.world_seed.wrapping_add(1000));
    let corpus = write_luperson_nl(&dir.join("corpus"), &corpus_world, &cfg.corpus)?;
    let market_dir = relative(out, &market.dataset_dir);
    let corpus_dir = relative(out, &corpus.dataset_dir);
    let w = load_world(out, &market_dir, &corpus_dir)?;
    let st = w.splits.stats();
    let cs = w.corpus.stats();
    Ok(WorldInfo {
        market_dir,
        corpus_dir,
        market_images: [st.train.images, st.query.images, st.gallery.images],
        market_train_ids: st.train.ids,
        corpus_images: cs.images,
        corpus_videos: cs.videos,
        corpus_tracklets: cs.tracklets,
    })
}

/// Parses the generated folders (relative to `out`).
pub(crate) fn load_world(
    out: &Path,
    market_dir: &Path,
    corpus_dir: &Path,
) -> Result<World, StudyError> {
    let parsed = market1501::parse(&out.join(market_dir), &ImageDatasetOptions::default())?;
    let corpus = luperson_nl::parse(&out.join(corpus_dir))?;
    Ok(World {
        splits: parsed.splits,
        corpus,
    })
}

/// The corpus crops with the tracker's tracklet labels as `pid`.
pub(crate) fn tracklet_records(world: &World) -> Vec<ImageRecord> {
    world.corpus.images().cloned().collect()
}

/// The corpus crops with their true person as `pid` (false detections
/// dropped).
pub(crate) fn oracle_records(world: &World) -> Result<Vec<ImageRecord>, StudyError> {
    truth_records(&world.corpus)?.ok_or_else(|| {
        StudyError::InvalidConfig(format!(
            "no synth_truth.json in {}",
            world.corpus.root.display()
        ))
    })
}

/// Steps per epoch of CION's identity sampler over `records` (epoch 0).
///
/// # Errors
/// Too few identities for a batch (e.g. denoising merged nearly everything).
pub(crate) fn cion_epoch_steps(
    cfg: &StudyConfig,
    records: &[ImageRecord],
    what: &str,
) -> Result<usize, StudyError> {
    let pids: Vec<i64> = records.iter().map(|r| r.pid).collect();
    let c = &cfg.recipes.cion;
    let sampler = IdentitySampler::from_pids(&pids, c.batch_size, c.k_schedule.clone(), 0)
        .map_err(|e| StudyError::InvalidConfig(format!("CION on {what}: {e}")))?;
    Ok(sampler.epoch(0).len().max(1))
}

/// What a pre-training stage records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainResult {
    /// Optimiser steps completed (including any before a resume).
    pub steps: usize,
    /// Backbone image passes of those steps (`steps × passes_per_step`).
    pub passes: f64,
    /// The step a resumed run continued from, if it resumed.
    pub resumed_from: Option<usize>,
    /// Mean loss of the first epoch seen by this process, if any.
    pub first_epoch_loss: Option<f64>,
    /// Mean loss of the last epoch seen by this process, if any.
    pub last_epoch_loss: Option<f64>,
}

/// Loss bookkeeping of a pre-training run's events.
#[derive(Default)]
struct Watch {
    first: Option<f64>,
    last: Option<f64>,
    resumed: Option<usize>,
}

impl Watch {
    fn event(&mut self, e: &PretrainEvent<'_>, on_step: &mut dyn FnMut(usize, usize, f64)) {
        match e {
            PretrainEvent::Step(r) => on_step(r.step + 1, r.total_steps, r.loss),
            PretrainEvent::EpochEnd { mean_loss, .. } => {
                self.first.get_or_insert(*mean_loss);
                self.last = Some(*mean_loss);
            }
            PretrainEvent::Resumed { step, .. } => self.resumed = Some(*step),
            _ => {}
        }
    }
}

/// The run options of a training stage in `dir`: checkpoints in
/// `dir/checkpoints` (resumed when there), the log `dir/metrics.jsonl`.
fn stage_run(cfg: &StudyConfig, dir: &Path) -> RunOptions {
    RunOptions::default()
        .with_checkpoint_dir(Some(dir.join("checkpoints")))
        .with_checkpoint_every(cfg.checkpoint_every)
        .with_keep_checkpoints(1)
        .with_resume(true)
        .with_log_path(Some(dir.join("metrics.jsonl")))
}

/// Runs a row's pre-training in `dir` (checkpoints in `dir/checkpoints`,
/// resumed when there; log `dir/metrics.jsonl`) and saves the backbone the
/// row hands on (MoCo / PNL: the query encoder's; CION: the teacher's;
/// supervised: the BoT model's) as `dir/backbone.bpk`.
pub(crate) fn pretrain(
    cfg: &StudyConfig,
    plan: &Plan,
    records: &[ImageRecord],
    dir: &Path,
    device: &Device,
    on_step: &mut dyn FnMut(usize, usize, f64),
) -> Result<PretrainResult, StudyError> {
    let run = stage_run(cfg, dir);
    let mut w = Watch::default();
    let (backbone, steps) = match &plan.config {
        RowConfig::Moco(c) => {
            let out = pretrain_moco(c, FromConfig, records, device, &run, |e| {
                w.event(&e, on_step)
            })?;
            (out.query.backbone.valid(), out.steps_done)
        }
        RowConfig::Pnl(c) => {
            let out = pretrain_pnl(c, FromConfig, records, device, &run, |e| {
                w.event(&e, on_step)
            })?;
            (out.query.backbone.valid(), out.steps_done)
        }
        RowConfig::Cion(c) | RowConfig::CionOracle(c) => {
            let out = pretrain_cion(c, FromConfig, records, device, &run, |e| {
                w.event(&e, on_step)
            })?;
            (out.teacher.backbone.valid(), out.steps_done)
        }
        RowConfig::Supervised(c) => {
            let total = c.epochs * c.iters_per_epoch.unwrap_or(1);
            let out = finetune_bot(c, FromConfig, records, device, &run, |e| {
                if let FinetuneEvent::Iteration(it) = e {
                    on_step(it.iteration + 1, total, f64::from(it.loss_ce + it.loss_tri));
                }
            })?;
            (out.model.backbone.valid(), out.steps_done)
        }
    };
    let bytes = module_to_bytes(&backbone)?;
    write_atomic(&dir.join("backbone.bpk"), &bytes)?;
    Ok(PretrainResult {
        steps,
        passes: steps as f64 * plan.passes_per_step,
        resumed_from: w.resumed,
        first_epoch_loss: w.first,
        last_epoch_loss: w.last,
    })
}

/// A fresh backbone of the study's architecture for `seed` (the demo's
/// random init; the scratch row's own features).
pub(crate) fn random_backbone(
    cfg: &StudyConfig,
    seed: u64,
    device: &Device,
) -> Result<ResNet, StudyError> {
    device.seed(seed);
    Ok(build_backbone(&cfg.arch, cfg.base_width, 1, device)?)
}

/// Loads the backbone a pre-training stage saved in `dir`.
pub(crate) fn load_backbone(
    cfg: &StudyConfig,
    dir: &Path,
    device: &Device,
) -> Result<ResNet, StudyError> {
    let path = dir.join("backbone.bpk");
    let bytes = std::fs::read(&path).map_err(|e| StudyError::io(&path, e))?;
    let fresh = build_backbone(&cfg.arch, cfg.base_width, 1, device)?;
    Ok(module_from_bytes(
        fresh,
        bytes,
        &path.display().to_string(),
    )?)
}

/// What the denoising stage records: pairwise quality of each level's
/// identities against the generator's truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenoiseResult {
    /// The level whose identities CION trains on.
    pub level: u8,
    /// The CION-AL file written (in the corpus root), relative to the
    /// output folder.
    pub annos: PathBuf,
    /// Crops kept at that level.
    pub images_kept: usize,
    /// Identities at that level.
    pub identities: usize,
    /// `(labels, quality)` for the tracker's labels and levels 1–3.
    pub quality: Vec<(String, Quality)>,
}

impl DenoiseResult {
    /// The quality of the level CION trains on.
    pub fn chosen(&self) -> Option<&Quality> {
        let name = format!("level {}", self.level);
        self.quality
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, q)| q)
    }
}

/// Denoises the corpus (levels 1–3) with `backbone`'s features (as the
/// demo: unnormalised global-average-pooled features, the library's
/// default thresholds), writes the chosen level's identities to `annos`
/// (CION-AL, in the corpus root) and scores every level.
pub(crate) fn denoise(
    cfg: &StudyConfig,
    world: &World,
    backbone: &ResNet,
    annos_path: &Path,
    out_dir: &Path,
    device: &Device,
) -> Result<DenoiseResult, StudyError> {
    let corpus = &world.corpus;
    let paths = record_paths(&corpus.images().cloned().collect::<Vec<_>>())?;
    let options = avg_pooled(
        TestTransform::new(cfg.height, cfg.width),
        cfg.eval_batch,
        false,
    );
    let feats = extract_features(backbone, &paths, &options, device)?;
    let dcfg = cfg.denoise.with_record_levels(true);
    let blocks = corpus_blocks(corpus, feats.view())?;
    let out = crate::denoise::run(&dcfg, blocks, |_| {})?;
    let levels = out
        .levels
        .as_ref()
        .ok_or_else(|| StudyError::InvalidConfig("denoising did not record its levels".into()))?;
    let chosen = match cfg.denoise_level {
        1 => &levels.level1,
        2 => &levels.level2,
        _ => &out.labels,
    };
    let kept = annos::write(annos_path, chosen, &corpus_paths(corpus))?;
    let identities = chosen
        .iter()
        .filter(|&&l| l != crate::denoise::REMOVED)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut quality = Vec::new();
    if let Some(truth) = synthetic_truth(corpus)? {
        for (name, l) in [
            ("tracker", &levels.raw),
            ("level 1", &levels.level1),
            ("level 2", &levels.level2),
            ("level 3", &out.labels),
        ] {
            quality.push((name.to_string(), crate::denoise::score(l, &truth)?));
        }
    }
    Ok(DenoiseResult {
        level: cfg.denoise_level,
        annos: relative(out_dir, annos_path),
        images_kept: kept,
        identities,
        quality,
    })
}

/// The records of a CION-AL file written by [`denoise`].
pub(crate) fn denoised_records(annos_path: &Path) -> Result<Vec<ImageRecord>, StudyError> {
    Ok(CionAl::open(annos_path)?.records())
}

/// Retrieval scores on the Market-style test split, fractions in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean average precision.
    pub map: f64,
    /// Rank-1 (CMC at 1).
    pub rank1: f64,
    /// Rank-5, when the gallery reaches it.
    pub rank5: Option<f64>,
    /// Rank-10, when the gallery reaches it.
    pub rank10: Option<f64>,
    /// Mean inverse negative penalty.
    pub minp: f64,
}

impl From<&EvalResult> for Scores {
    fn from(r: &EvalResult) -> Self {
        Self {
            map: r.map,
            rank1: r.rank(1).unwrap_or(0.0),
            rank5: r.rank(5),
            rank10: r.rank(10),
            minp: r.minp,
        }
    }
}

fn record_paths(records: &[ImageRecord]) -> Result<Vec<PathBuf>, StudyError> {
    Ok(crate::train::input::image_paths(records, "study")?)
}

/// A backbone's own features (global average pooling, L2-normalised,
/// cosine) on the test split, no fine-tuning: how much identity the
/// weights carry by themselves.
pub(crate) fn eval_backbone(
    cfg: &StudyConfig,
    backbone: &ResNet,
    splits: &Splits,
    device: &Device,
) -> Result<Scores, StudyError> {
    let options = avg_pooled(
        TestTransform::new(cfg.height, cfg.width),
        cfg.eval_batch,
        true,
    );
    let (query, gallery) = (&splits.query, &splits.gallery);
    let r = evaluate_pooled(backbone, query, gallery, ["study"; 2], &options, device)?;
    Ok(Scores::from(&r))
}

/// What a fine-tuning stage records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneResult {
    /// Scores of the fine-tuned model (BNNeck feature, cosine).
    pub scores: Scores,
    /// Optimiser steps completed.
    pub steps: usize,
    /// Seconds spent training in this process (evaluation excluded).
    pub train_seconds: f64,
}

/// BoT fine-tuning on the Market-style train split from `init` (`None`:
/// the recipe's own random init), checkpointed in `dir/checkpoints` and
/// resumed when there, then evaluated.
pub(crate) fn finetune(
    cfg: &StudyConfig,
    ft: &FinetuneConfig,
    init: Option<ResNet>,
    splits: &Splits,
    dir: &Path,
    device: &Device,
    on_step: &mut dyn FnMut(usize, usize, f64),
) -> Result<FinetuneResult, StudyError> {
    let run = stage_run(cfg, dir);
    let per_epoch = ft
        .iters_per_epoch
        .unwrap_or((splits.train.len() / ft.batch_size()).max(1));
    let total = ft.epochs * per_epoch;
    let callback = |e: FinetuneEvent<'_>| {
        if let FinetuneEvent::Iteration(it) = e {
            on_step(it.iteration + 1, total, f64::from(it.loss_ce + it.loss_tri));
        }
    };
    let t0 = Instant::now();
    let out = match init {
        None => finetune_bot(ft, FromConfig, &splits.train, device, &run, callback)?,
        Some(b) => finetune_bot(ft, b, &splits.train, device, &run, callback)?,
    };
    let train_seconds = t0.elapsed().as_secs_f64();
    let test = TestTransform::new(cfg.height, cfg.width);
    let r = evaluate_model(
        &out.model,
        &splits.query,
        &splits.gallery,
        test,
        cfg.eval_batch,
        device,
    )?;
    Ok(FinetuneResult {
        scores: Scores::from(&r),
        steps: out.steps_done,
        train_seconds,
    })
}

/// The records a pre-training row trains on, and a name for them.
pub(crate) fn row_records(
    row: Row,
    world: &World,
    denoised: Option<&[ImageRecord]>,
) -> Result<Vec<ImageRecord>, StudyError> {
    match row {
        Row::Moco | Row::Pnl | Row::Supervised => Ok(tracklet_records(world)),
        Row::CionOracle => oracle_records(world),
        Row::Cion => denoised.map(<[ImageRecord]>::to_vec).ok_or_else(|| {
            StudyError::InvalidConfig("the cion row needs the denoising stage first".into())
        }),
        Row::Scratch => Ok(Vec::new()),
    }
}
