//! The pre-training study: the seed papers' comparison — the same backbone
//! pre-trained by each method under the same compute budget, then
//! fine-tuned with the same BoT recipe — run on the synthetic world, over
//! several seeds, resumable in pieces.
//!
//! [`run_study`] runs it: for every seed and every [`Row`] (`scratch`,
//! `moco`, `pnl`, `cion`, `cion_oracle`, `supervised`) a pre-training stage,
//! an evaluation of the backbone's own pooled features ("no-FT"), and a BoT
//! fine-tuning stage with its evaluation ("+BoT"); the `cion` row adds a
//! denoising stage that uses the same seed's backbone of another row (PNL's
//! by default, [`StudyConfig::denoise_features`]).
//! Every stage writes its result as JSON (and its checkpoints) under the
//! output folder; a second call with the same folder skips finished stages
//! and resumes unfinished training from its newest checkpoint. The report
//! ([`StudyReport`]) is written as `study.json`, `study.md` and
//! `study.png`.
//!
//! Budget rule ([`StudyConfig::plan`]): every method gets the same
//! pre-training compute in *backbone image passes* — each crop through any
//! network (query and key encoder, student and teacher) counts as its pixel
//! count relative to one image of the study's size — so a method with more
//! crops per image takes fewer steps. Backward passes are not counted
//! separately. See `docs/pretraining.md`, "The pre-training study".

pub mod config;
pub mod report;
pub mod stages;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Backend;
use crate::backbones::ResNet;
use crate::burn::tensor::Device;
use crate::data::ImageRecord;
use crate::train::checkpoint::write_atomic;

pub use config::{CION_REFERENCE_SIZE, Plan, RECIPE_FILES, Recipes, Row, RowConfig, StudyConfig};
pub use report::{RowReport, SeedResult, Stat, StudyReport};
pub use stages::{DenoiseResult, FinetuneResult, PretrainResult, Scores, WorldInfo};

use stages::World;

/// Why the study stopped (the facade's [`PipelineError`](crate::PipelineError)).
pub type StudyError = crate::PipelineError;

/// How a study is operated (not what it computes).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StudyOptions {
    /// Output folder: the world, every stage's records and checkpoints,
    /// and the report. Re-using it resumes the study.
    pub out: PathBuf,
    /// Compute backend (must be compiled in).
    pub backend: Backend,
}

impl StudyOptions {
    /// A study writing to (and resuming from) `out` on `backend`.
    pub fn new(out: impl Into<PathBuf>, backend: Backend) -> Self {
        Self {
            out: out.into(),
            backend,
        }
    }
}

/// What a stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Generate the synthetic world (once for all seeds).
    World,
    /// Pre-train a row's backbone.
    Pretrain,
    /// Denoise the corpus with another row's backbone's features (the `cion` row).
    Denoise,
    /// Evaluate the backbone's own pooled features (no fine-tuning).
    NoFt,
    /// BoT fine-tuning and its evaluation.
    Finetune,
}

impl StageKind {
    fn name(self) -> &'static str {
        match self {
            StageKind::World => "world",
            StageKind::Pretrain => "pretrain",
            StageKind::Denoise => "denoise",
            StageKind::NoFt => "noft",
            StageKind::Finetune => "finetune",
        }
    }
}

/// One stage of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageId {
    /// The training seed (`None` for the world).
    pub seed: Option<u64>,
    /// The row (`None` for the world).
    pub row: Option<Row>,
    /// What it does.
    pub kind: StageKind,
}

impl StageId {
    fn new(seed: u64, row: Row, kind: StageKind) -> Self {
        Self {
            seed: Some(seed),
            row: Some(row),
            kind,
        }
    }

    /// The stage's folder under the output folder
    /// (`world`, `seed-0/moco/pretrain`, …).
    pub fn dir(&self, out: &Path) -> PathBuf {
        match (self.seed, self.row) {
            (Some(s), Some(r)) => out
                .join(format!("seed-{s}"))
                .join(r.name())
                .join(self.kind.name()),
            _ => out.join(self.kind.name()),
        }
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.seed, self.row) {
            (Some(s), Some(r)) => write!(f, "seed {s} / {r} / {}", self.kind.name()),
            _ => f.write_str(self.kind.name()),
        }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It ran in this call (a training stage may have resumed from a
    /// checkpoint).
    Ran,
    /// Its record was already there: skipped.
    Cached,
}

/// A finished (or skipped) stage, with the time estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct StageDone {
    /// The stage.
    pub stage: StageId,
    /// 1-based position among the study's stages.
    pub index: usize,
    /// Number of stages of the study.
    pub total: usize,
    /// Ran or skipped.
    pub status: StageStatus,
    /// Seconds the stage took when it ran (from its record when cached).
    pub seconds: f64,
    /// Seconds of every finished stage so far (from their records).
    pub done_seconds: f64,
    /// Estimated seconds of the stages left: each costs the mean of the
    /// finished stages of its kind and row (or of its kind, or of all);
    /// `None` before any stage has a time.
    pub left_seconds: Option<f64>,
}

fn hms(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl fmt::Display for StageDone {
    /// The progress line: `[3/40] seed 0 / moco / pretrain: ran in 3m12s;
    /// done 5m01s, ~1h52m left, ~1h57m in all`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.status {
            StageStatus::Ran => format!("ran in {}", hms(self.seconds)),
            StageStatus::Cached => "skipped (finished before)".to_string(),
        };
        write!(
            f,
            "[{}/{}] {}: {what}; done {}",
            self.index,
            self.total,
            self.stage,
            hms(self.done_seconds)
        )?;
        if let Some(left) = self.left_seconds {
            write!(
                f,
                ", ~{} left, ~{} in all",
                hms(left),
                hms(self.done_seconds + left)
            )?;
        }
        Ok(())
    }
}

/// What [`run_study`] reports to its callback.
#[derive(Debug)]
pub enum StudyEvent<'a> {
    /// A stage starts running (it had no record).
    Start {
        /// The stage.
        stage: &'a StageId,
        /// 1-based position.
        index: usize,
        /// Number of stages.
        total: usize,
    },
    /// A training step of the running stage finished.
    Step {
        /// The stage.
        stage: &'a StageId,
        /// Steps completed (1-based, counting steps before a resume).
        step: usize,
        /// Steps of the whole run.
        total_steps: usize,
        /// The step's loss.
        loss: f64,
    },
    /// A stage finished or was skipped.
    Done(&'a StageDone),
}

/// A stage's record on disk (`<stage dir>/result.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StageRecord<T> {
    /// The stage, as text.
    stage: String,
    /// Every setting the result depends on; a cached record is used only
    /// when these are equal.
    inputs: serde_json::Value,
    /// Wall-clock seconds of the stage.
    seconds: f64,
    /// The result.
    result: T,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StudyError> {
    let bytes = std::fs::read(path).map_err(|e| StudyError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| StudyError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StudyError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StudyError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StudyError::io(dir, e))?;
    }
    Ok(write_atomic(path, &bytes)?)
}

/// The study's stages in the order they run: the world, then per seed the
/// MoCo pre-training (also needed by `cion`), then per row its
/// pre-training (with denoising before `cion`'s), no-FT evaluation and
/// fine-tuning.
pub fn stage_list(cfg: &StudyConfig) -> Vec<StageId> {
    let mut out = vec![StageId {
        seed: None,
        row: None,
        kind: StageKind::World,
    }];
    let shared = cfg.shared_pretrains();
    for &seed in &cfg.seeds {
        for &row in &shared {
            out.push(StageId::new(seed, row, StageKind::Pretrain));
        }
        for &row in &cfg.rows {
            if row == Row::Cion {
                out.push(StageId::new(seed, row, StageKind::Denoise));
            }
            if row.pretrains() && !shared.contains(&row) {
                out.push(StageId::new(seed, row, StageKind::Pretrain));
            }
            out.push(StageId::new(seed, row, StageKind::NoFt));
            out.push(StageId::new(seed, row, StageKind::Finetune));
        }
    }
    out
}

/// What the stages share: settings, device, the parsed world, and the
/// products of earlier stages of this call.
struct State<'a> {
    cfg: &'a StudyConfig,
    out: &'a Path,
    device: Device,
    world: Option<World>,
    world_inputs: serde_json::Value,
    /// Inputs of finished stages, for their dependants' records.
    inputs: BTreeMap<StageId, serde_json::Value>,
    /// The denoised records of the `cion` row, by seed.
    denoised: BTreeMap<u64, Vec<ImageRecord>>,
}

impl State<'_> {
    fn world(&self) -> Result<&World, StudyError> {
        self.world
            .as_ref()
            .ok_or_else(|| StudyError::InvalidConfig("the world stage has not run".into()))
    }

    fn input(&self, stage: &StageId) -> serde_json::Value {
        self.inputs
            .get(stage)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// A row's pre-trained backbone for `seed` (random init for scratch).
    fn backbone(&self, seed: u64, row: Row) -> Result<ResNet, StudyError> {
        if row.pretrains() {
            let dir = StageId::new(seed, row, StageKind::Pretrain).dir(self.out);
            stages::load_backbone(self.cfg, &dir, &self.device)
        } else {
            stages::random_backbone(self.cfg, seed, &self.device)
        }
    }
}

/// The running study: its state, the progress callback and the timings.
struct Runner<'a, F> {
    state: State<'a>,
    progress: F,
    stages: Vec<StageId>,
    index: usize,
    /// Seconds of finished stages by (kind, row).
    times: BTreeMap<(StageKind, Option<Row>), Vec<f64>>,
    /// Every finished stage: status and seconds.
    done: BTreeMap<StageId, (StageStatus, f64)>,
}

type StepFn<'b> = dyn FnMut(usize, usize, f64) + 'b;

impl<F: FnMut(StudyEvent<'_>)> Runner<'_, F> {
    /// Runs `stage` unless its record exists with the same `inputs`;
    /// returns the result, read back from the record either way (so a
    /// cached and a fresh study report the same numbers).
    fn stage<T, G>(
        &mut self,
        stage: StageId,
        inputs: serde_json::Value,
        run: G,
    ) -> Result<T, StudyError>
    where
        T: Serialize + DeserializeOwned,
        G: FnOnce(&mut State<'_>, &mut StepFn<'_>) -> Result<T, StudyError>,
    {
        self.index += 1;
        let path = stage.dir(self.state.out).join("result.json");
        // Compare as the record stores them (through JSON text).
        let inputs: serde_json::Value = serde_json::to_string(&inputs)
            .and_then(|t| serde_json::from_str(&t))
            .map_err(|e| StudyError::Json {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let status = if path.is_file() {
            let rec: StageRecord<serde_json::Value> = read_json(&path)?;
            if rec.inputs != inputs {
                return Err(StudyError::Stale {
                    stage: stage.to_string(),
                    path,
                });
            }
            StageStatus::Cached
        } else {
            (self.progress)(StudyEvent::Start {
                stage: &stage,
                index: self.index,
                total: self.stages.len(),
            });
            let t0 = Instant::now();
            let progress = &mut self.progress;
            let mut on_step = |step, total_steps, loss| {
                progress(StudyEvent::Step {
                    stage: &stage,
                    step,
                    total_steps,
                    loss,
                });
            };
            let result = run(&mut self.state, &mut on_step)?;
            let seconds = t0.elapsed().as_secs_f64();
            write_json(
                &path,
                &StageRecord {
                    stage: stage.to_string(),
                    inputs: inputs.clone(),
                    seconds,
                    result,
                },
            )?;
            StageStatus::Ran
        };
        let rec: StageRecord<T> = read_json(&path)?;
        self.state.inputs.insert(stage, inputs);
        self.finish(stage, status, rec.seconds);
        Ok(rec.result)
    }

    fn finish(&mut self, stage: StageId, status: StageStatus, seconds: f64) {
        self.times
            .entry((stage.kind, stage.row))
            .or_default()
            .push(seconds);
        self.done.insert(stage, (status, seconds));
        let done = StageDone {
            stage,
            index: self.index,
            total: self.stages.len(),
            status,
            seconds,
            done_seconds: self.done.values().map(|d| d.1).sum(),
            left_seconds: self.estimate_left(),
        };
        (self.progress)(StudyEvent::Done(&done));
    }

    /// Estimated seconds of the stages after the current one.
    fn estimate_left(&self) -> Option<f64> {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let all: Vec<f64> = self.times.values().flatten().copied().collect();
        if all.is_empty() {
            return None;
        }
        let by_kind = |k: StageKind| {
            let v: Vec<f64> = self
                .times
                .iter()
                .filter(|((kk, _), _)| *kk == k)
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            (!v.is_empty()).then(|| mean(&v))
        };
        let left = self.stages[self.index.min(self.stages.len())..]
            .iter()
            .map(|s| {
                self.times
                    .get(&(s.kind, s.row))
                    .map(|v| mean(v))
                    .or_else(|| by_kind(s.kind))
                    .unwrap_or_else(|| mean(&all))
            })
            .sum();
        Some(left)
    }

    /// The world: generated, or parsed when its record exists.
    fn world(&mut self) -> Result<WorldInfo, StudyError> {
        let id = stage_list(self.state.cfg)[0];
        let inputs = self.state.world_inputs.clone();
        let info: WorldInfo =
            self.stage(id, inputs, |st, _| stages::generate_world(st.cfg, st.out))?;
        let out = self.state.out;
        self.state.world = Some(stages::load_world(out, &info.market_dir, &info.corpus_dir)?);
        Ok(info)
    }

    /// A row's pre-training for `seed`.
    fn pretrain(&mut self, seed: u64, row: Row) -> Result<(Plan, PretrainResult), StudyError> {
        let id = StageId::new(seed, row, StageKind::Pretrain);
        let st = &self.state;
        let world = st.world()?;
        let denoise_id = StageId::new(seed, Row::Cion, StageKind::Denoise);
        let records = stages::row_records(row, world, st.denoised.get(&seed).map(Vec::as_slice))?;
        let cion_steps = match row {
            Row::Cion => Some(stages::cion_epoch_steps(
                st.cfg,
                &records,
                "the denoised identities",
            )?),
            Row::CionOracle => Some(stages::cion_epoch_steps(
                st.cfg,
                &records,
                "the true persons",
            )?),
            _ => None,
        };
        let plan = st.cfg.plan(row, seed, records.len(), cion_steps)?;
        let inputs = serde_json::json!({
            "world": st.world_inputs,
            "records": records.len(),
            "denoise": if row == Row::Cion { st.input(&denoise_id) } else { serde_json::Value::Null },
            "plan": plan,
            "checkpoint_every": st.cfg.checkpoint_every,
        });
        let p = plan.clone();
        let result = self.stage(id, inputs, move |st, on_step| {
            stages::pretrain(st.cfg, &p, &records, &id.dir(st.out), &st.device, on_step)
        })?;
        Ok((plan, result))
    }

    /// The `cion` row's denoising for `seed`, with the backbone of
    /// [`StudyConfig::denoise_features`]' row.
    fn denoise(&mut self, seed: u64) -> Result<DenoiseResult, StudyError> {
        let id = StageId::new(seed, Row::Cion, StageKind::Denoise);
        let from = self.state.cfg.denoise_features;
        let features = StageId::new(seed, from, StageKind::Pretrain);
        let st = &self.state;
        let annos = st
            .world()?
            .corpus
            .root
            .join(format!("annos-study-seed-{seed}.json"));
        let inputs = serde_json::json!({
            "features": from.name(),
            "backbone": st.input(&features),
            "level": st.cfg.denoise_level,
            "denoise": st.cfg.denoise,
            "eval_batch": st.cfg.eval_batch,
        });
        let result: DenoiseResult = self.stage(id, inputs, |st, _| {
            let backbone = st.backbone(seed, from)?;
            stages::denoise(st.cfg, st.world()?, &backbone, &annos, st.out, &st.device)
        })?;
        let records = stages::denoised_records(&self.state.out.join(&result.annos))?;
        self.state.denoised.insert(seed, records);
        Ok(result)
    }

    /// The no-FT evaluation of a row's backbone.
    fn noft(&mut self, seed: u64, row: Row) -> Result<Scores, StudyError> {
        let id = StageId::new(seed, row, StageKind::NoFt);
        let inputs = self.upstream(seed, row);
        self.stage(id, inputs, |st, _| {
            let backbone = st.backbone(seed, row)?;
            stages::eval_backbone(st.cfg, &backbone, &st.world()?.splits, &st.device)
        })
    }

    /// BoT fine-tuning of a row's backbone and its evaluation.
    fn finetune(&mut self, seed: u64, row: Row) -> Result<FinetuneResult, StudyError> {
        let id = StageId::new(seed, row, StageKind::Finetune);
        let ft = self.state.cfg.finetune_config(seed);
        let mut inputs = self.upstream(seed, row);
        inputs["finetune"] = serde_json::to_value(&ft).unwrap_or_default();
        self.stage(id, inputs, |st, on_step| {
            let init = if row.pretrains() {
                Some(st.backbone(seed, row)?)
            } else {
                None
            };
            let splits = &st.world()?.splits;
            stages::finetune(
                st.cfg,
                &ft,
                init,
                splits,
                &id.dir(st.out),
                &st.device,
                on_step,
            )
        })
    }

    /// What a row's evaluation depends on: its pre-training's inputs (or,
    /// for scratch, the random init's settings).
    fn upstream(&self, seed: u64, row: Row) -> serde_json::Value {
        let st = &self.state;
        let pre = if row.pretrains() {
            st.input(&StageId::new(seed, row, StageKind::Pretrain))
        } else {
            serde_json::json!({"arch": st.cfg.arch, "base_width": st.cfg.base_width, "seed": seed})
        };
        serde_json::json!({
            "world": st.world_inputs,
            "pretrain": pre,
            "size": [st.cfg.height, st.cfg.width],
            "eval_batch": st.cfg.eval_batch,
            "checkpoint_every": st.cfg.checkpoint_every,
        })
    }
}

/// Runs the study (or what is left of it) and writes its report.
///
/// Stages run in [`stage_list`] order; each one's record
/// (`<out>/<stage>/result.json`) is written when it ends, and a stage with a
/// record made with the same settings is skipped. Training stages
/// checkpoint every [`StudyConfig::checkpoint_every`] steps and resume from
/// the newest checkpoint, so an interrupted study continues where it
/// stopped. `progress` sees every stage's start and end (with a time
/// estimate) and every training step. The report is written after each
/// seed and at the end: `study.json`, `study.md` and `study.png` in
/// `opts.out`.
///
/// # Errors
/// [`StudyError`]; [`StudyError::is_usage`] tells the caller's mistakes
/// (settings, recipe files, backend, a foreign output folder) from
/// failures while running.
pub fn run_study<F>(
    cfg: &StudyConfig,
    opts: &StudyOptions,
    progress: F,
) -> Result<StudyReport, StudyError>
where
    F: FnMut(StudyEvent<'_>),
{
    cfg.validate()?;
    let device = opts.backend.device()?;
    std::fs::create_dir_all(&opts.out).map_err(|e| StudyError::io(&opts.out, e))?;
    let t0 = Instant::now();
    let mut r = Runner {
        state: State {
            cfg,
            out: &opts.out,
            device,
            world: None,
            world_inputs: stages::world_inputs(cfg),
            inputs: BTreeMap::new(),
            denoised: BTreeMap::new(),
        },
        progress,
        stages: stage_list(cfg),
        index: 0,
        times: BTreeMap::new(),
        done: BTreeMap::new(),
    };
    let world = r.world()?;
    let mut results: BTreeMap<(Row, u64), SeedResult> = BTreeMap::new();
    let mut report = None;
    for &seed in &cfg.seeds {
        let mut shared = BTreeMap::new();
        for row in cfg.shared_pretrains() {
            shared.insert(row, r.pretrain(seed, row)?);
        }
        for &row in &cfg.rows {
            let denoise = if row == Row::Cion {
                Some(r.denoise(seed)?)
            } else {
                None
            };
            let pretrain = match row {
                Row::Scratch => None,
                _ if shared.contains_key(&row) => shared.get(&row).cloned(),
                _ => Some(r.pretrain(seed, row)?),
            };
            let noft = r.noft(seed, row)?;
            let finetune = r.finetune(seed, row)?;
            results.insert(
                (row, seed),
                SeedResult {
                    seed,
                    plan: pretrain.as_ref().map(|p| p.0.clone()),
                    pretrain: pretrain.map(|p| p.1),
                    denoise,
                    noft,
                    finetune,
                },
            );
        }
        let stage_times: Vec<(StageId, StageStatus, f64)> = r
            .done
            .iter()
            .map(|(s, (st, secs))| (*s, *st, *secs))
            .collect();
        let rep = StudyReport::new(
            cfg,
            opts.backend,
            &world,
            &results,
            &stage_times,
            t0.elapsed().as_secs_f64(),
        );
        rep.write(&opts.out)?;
        report = Some(rep);
    }
    report.ok_or_else(|| StudyError::InvalidConfig("no seed to run".into()))
}
