//! The study's report: per-row, per-seed results with means and standard
//! deviations over seeds, written as `study.json`, `study.md` (a Markdown
//! table) and `study.png` (+BoT mAP per row with ± std whiskers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Backend;
use crate::viz::{Bar, BarChart, save_png};

use super::config::{Plan, Row, StudyConfig};
use super::stages::{DenoiseResult, FinetuneResult, PretrainResult, Scores, WorldInfo};
use super::{StageId, StageKind, StageStatus, StudyError, write_json};

/// One row's results for one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The training seed.
    pub seed: u64,
    /// The pre-training's share of the budget (`None` for scratch).
    pub plan: Option<Plan>,
    /// What the pre-training did (`None` for scratch).
    pub pretrain: Option<PretrainResult>,
    /// Denoising quality (the `cion` row only).
    pub denoise: Option<DenoiseResult>,
    /// The backbone's own features, no fine-tuning.
    pub noft: Scores,
    /// After BoT fine-tuning.
    pub finetune: FinetuneResult,
}

/// Mean and sample standard deviation of one value over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// The values, one per seed, in seed order.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (`n − 1`); `None` for one value.
    pub std: Option<f64>,
}

impl Stat {
    /// The statistics of `values` (mean `NaN` when empty).
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Self { values, mean, std }
    }

    /// `mean ± std` in percent with one decimal (`41.3 ± 1.2`, or `41.3`
    /// for one seed) of a fraction.
    pub fn pct(&self) -> String {
        match self.std {
            Some(s) => format!("{:.1} ± {:.1}", 100.0 * self.mean, 100.0 * s),
            None => format!("{:.1}", 100.0 * self.mean),
        }
    }
}

/// One row over all seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowReport {
    /// The row.
    pub row: Row,
    /// What it pre-trains on.
    pub description: String,
    /// Per-seed results, in seed order.
    pub seeds: Vec<SeedResult>,
    /// No-FT mAP (fraction).
    pub noft_map: Stat,
    /// No-FT Rank-1 (fraction).
    pub noft_rank1: Stat,
    /// +BoT mAP (fraction).
    pub ft_map: Stat,
    /// +BoT Rank-1 (fraction).
    pub ft_rank1: Stat,
    /// +BoT mINP (fraction).
    pub ft_minp: Stat,
    /// Pre-training optimiser steps.
    pub pretrain_steps: Option<Stat>,
    /// Pre-training compute, backbone image passes.
    pub pretrain_passes: Option<Stat>,
    /// Pre-training wall-clock seconds (as recorded by the stage).
    pub pretrain_seconds: Option<Stat>,
    /// Fine-tuning wall-clock seconds (stage record, evaluation included).
    pub finetune_seconds: Stat,
    /// Pairwise precision of the denoised identities CION trains on.
    pub denoise_precision: Option<Stat>,
    /// Pairwise recall of those identities.
    pub denoise_recall: Option<Stat>,
    /// Pairwise F-score of those identities.
    pub denoise_f: Option<Stat>,
}

/// The budget statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Backbone image passes per pre-training.
    pub passes: f64,
    /// The image size one pass is, `[height, width]` pixels.
    pub pass_size: [u32; 2],
    /// The rule, in words.
    pub rule: String,
}

/// One stage's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// The stage.
    pub stage: String,
    /// Ran in the call that wrote the report, or skipped.
    pub status: StageStatus,
    /// Seconds it took when it ran.
    pub seconds: f64,
}

/// The study's report (`study.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// The settings.
    pub config: StudyConfig,
    /// The compute backend.
    pub backend: String,
    /// The budget.
    pub budget: Budget,
    /// The generated world.
    pub world: WorldInfo,
    /// The rows with results, in table order.
    pub rows: Vec<RowReport>,
    /// Every finished stage's time.
    pub stages: Vec<StageTime>,
    /// Seconds of every finished stage, from their records.
    pub stage_seconds: f64,
    /// Wall-clock seconds of the call that wrote the report.
    pub call_seconds: f64,
}

/// The budget rule in words.
pub const BUDGET_RULE: &str = "every method gets the same pre-training compute in backbone image passes: \
each crop through any network (query and key encoder, student and teacher) counts as its pixel count \
divided by one image's; MoCo and PNL: 2 x batch per step, CION: batch x (4 global crops + local crops, each by its pixels), \
BoT: batch; steps S = floor(budget / passes per step), run as E = ceil(S / steps per epoch) epochs of at most \
ceil(S / E) steps; backward passes are not counted separately";

impl StudyReport {
    /// Aggregates `results` (by row and seed) into the report.
    pub(crate) fn new(
        cfg: &StudyConfig,
        backend: Backend,
        world: &WorldInfo,
        results: &BTreeMap<(Row, u64), SeedResult>,
        stages: &[(StageId, StageStatus, f64)],
        call_seconds: f64,
    ) -> Self {
        let seconds = |seed: u64, row: Row, kind: StageKind| {
            stages
                .iter()
                .find(|(s, ..)| s.seed == Some(seed) && s.row == Some(row) && s.kind == kind)
                .map_or(f64::NAN, |s| s.2)
        };
        let rows = cfg
            .rows
            .iter()
            .filter_map(|&row| {
                let seeds: Vec<SeedResult> = cfg
                    .seeds
                    .iter()
                    .filter_map(|&s| results.get(&(row, s)).cloned())
                    .collect();
                if seeds.is_empty() {
                    return None;
                }
                let stat = |f: &dyn Fn(&SeedResult) -> f64| Stat::of(seeds.iter().map(f).collect());
                let opt = |f: &dyn Fn(&SeedResult) -> Option<f64>| {
                    let v: Option<Vec<f64>> = seeds.iter().map(f).collect();
                    v.map(Stat::of)
                };
                let quality = |f: &dyn Fn(&crate::denoise::Quality) -> f64| {
                    opt(&|s| s.denoise.as_ref().and_then(|d| d.chosen()).map(f))
                };
                Some(RowReport {
                    row,
                    description: cfg.describe(row),
                    noft_map: stat(&|s| s.noft.map),
                    noft_rank1: stat(&|s| s.noft.rank1),
                    ft_map: stat(&|s| s.finetune.scores.map),
                    ft_rank1: stat(&|s| s.finetune.scores.rank1),
                    ft_minp: stat(&|s| s.finetune.scores.minp),
                    pretrain_steps: opt(&|s| s.pretrain.as_ref().map(|p| p.steps as f64)),
                    pretrain_passes: opt(&|s| s.pretrain.as_ref().map(|p| p.passes)),
                    pretrain_seconds: row
                        .pretrains()
                        .then(|| stat(&|s| seconds(s.seed, row, StageKind::Pretrain))),
                    finetune_seconds: stat(&|s| seconds(s.seed, row, StageKind::Finetune)),
                    denoise_precision: quality(&|q| q.precision),
                    denoise_recall: quality(&|q| q.recall),
                    denoise_f: quality(&|q| q.f_score),
                    seeds,
                })
            })
            .collect();
        let stage_times: Vec<StageTime> = stages
            .iter()
            .map(|(s, status, secs)| StageTime {
                stage: s.to_string(),
                status: *status,
                seconds: *secs,
            })
            .collect();
        Self {
            config: cfg.clone(),
            backend: backend.to_string(),
            budget: Budget {
                passes: cfg.budget_passes,
                pass_size: [cfg.height, cfg.width],
                rule: BUDGET_RULE.to_string(),
            },
            world: world.clone(),
            rows,
            stage_seconds: stages.iter().map(|s| s.2).sum(),
            stages: stage_times,
            call_seconds,
        }
    }

    /// The Markdown table with a header stating the size, budget and seeds.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(s, "# Pre-training study ({} size)\n", c.size);
        let _ = writeln!(
            s,
            "{} at {}x{}, seeds {:?}, backend {}. World: Market-style train {} ids / {} images, \
             query {}, gallery {}; corpus {} videos, {} crops, {} tracker tracklets.\n",
            c.arch,
            c.height,
            c.width,
            c.seeds,
            self.backend,
            self.world.market_train_ids,
            self.world.market_images[0],
            self.world.market_images[1],
            self.world.market_images[2],
            self.world.corpus_videos,
            self.world.corpus_images,
            self.world.corpus_tracklets,
        );
        let _ = writeln!(
            s,
            "Budget: {} backbone image passes per pre-training (one pass = one {}x{} image through \
             the backbone); {}. Fine-tuning: BoT, {} epochs, every row.\n",
            self.budget.passes, c.height, c.width, self.budget.rule, c.finetune_epochs
        );
        let _ = writeln!(
            s,
            "mAP and Rank-1 in %, mean ± sample std over seeds (no ± with one seed). Denoising: pairwise \
             precision / recall / F of the level-{} identities against the generator's truth. Recipes: \
             configs/study/*.toml (MoCo, PNL, BoT: the demo's small settings; CION: \
             configs/cion-small.toml's). With one seed, a difference of a few points is within the \
             seed-to-seed variation measured in docs/pretraining.md.\n",
            c.denoise_level
        );
        let _ = writeln!(
            s,
            "| row | pre-training | steps | passes | no-FT mAP | +BoT mAP | +BoT Rank-1 | denoise P / R / F | pre-train s |"
        );
        let _ = writeln!(
            s,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
        );
        let num = |x: &Option<Stat>| {
            x.as_ref().map_or("—".to_string(), |v| match v.mean {
                m if m < 10.0 => format!("{m:.1}"),
                m => format!("{m:.0}"),
            })
        };
        for r in &self.rows {
            let denoise = match (&r.denoise_precision, &r.denoise_recall, &r.denoise_f) {
                (Some(p), Some(rc), Some(f)) => {
                    format!("{:.2} / {:.2} / {:.2}", p.mean, rc.mean, f.mean)
                }
                _ => "—".to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.row,
                r.description,
                num(&r.pretrain_steps),
                num(&r.pretrain_passes),
                r.noft_map.pct(),
                r.ft_map.pct(),
                r.ft_rank1.pct(),
                denoise,
                num(&r.pretrain_seconds),
            );
        }
        let _ = writeln!(
            s,
            "\nStages took {:.0} s in all (from their records); this call {:.0} s.",
            self.stage_seconds, self.call_seconds
        );
        s
    }

    /// The bar chart: +BoT mAP (%) per row, whiskers ± one std.
    pub fn chart(&self) -> BarChart {
        let n = self.config.seeds.len();
        BarChart {
            title: format!("+BoT mAP (%), mean +- std over {n} seed(s)"),
            y_label: "mAP %".into(),
            bars: self
                .rows
                .iter()
                .map(|r| {
                    let bar = Bar::new(r.row.name(), 100.0 * r.ft_map.mean);
                    match r.ft_map.std {
                        Some(sd) => bar.with_whisker(100.0 * sd),
                        None => bar,
                    }
                })
                .collect(),
            y_range: None,
            decimals: 1,
        }
    }

    /// Writes `study.json`, `study.md` and `study.png` into `out`.
    ///
    /// # Errors
    /// Writing a file failed.
    pub fn write(&self, out: &Path) -> Result<(), StudyError> {
        write_json(&out.join("study.json"), self)?;
        let md = out.join("study.md");
        crate::train::checkpoint::write_atomic(&md, self.markdown().as_bytes())?;
        save_png(&self.chart().render(720, 420), &out.join("study.png"))?;
        Ok(())
    }
}
