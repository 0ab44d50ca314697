//! [`run_demo`]: the stages in order, the pictures and `summary.json`.

use std::path::Path;
use std::time::Instant;

use super::stages::{
    Events, bot_config, denoise, eval_backbone, finetune_run, labels, paths, pretrain_cion_stage,
    pretrain_cion_stage_in, pretrain_pnl_stage, pretrain_supervised_stage, say, split_by,
    true_persons,
};
use super::{DemoConfig, DemoError, DemoOutput, DemoRow, PretrainPlan};
use crate::backbones::{ResNet, build_backbone};
use crate::burn::module::Module;
use crate::burn::tensor::Device;
use crate::data::Splits;
use crate::data::batch::load_rgb;
use crate::data::datasets::{ImageDatasetOptions, market1501};
use crate::metrics::{Metric, pairwise_distance, top_matches};
use crate::synth::{
    LupersonNlConfig, Market1501Config, WorldConfig, write_luperson_nl, write_market1501,
};
use crate::train::{FinetuneConfig, RunOptions};

/// Runs the demo with `cfg` on `device`, reporting to `events`; writes
/// the data, logs, pictures and `summary.json` under `cfg.out`.
///
/// # Errors
/// [`DemoError::InvalidConfig`] for bad settings (before anything runs), or
/// the first error of a stage.
pub fn run_demo(
    cfg: &DemoConfig,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<DemoOutput, DemoError> {
    cfg.validate()?;
    let t_all = Instant::now();
    std::fs::create_dir_all(&cfg.out).map_err(|source| DemoError::Io {
        path: cfg.out.clone(),
        source,
    })?;

    // 1. The world.
    let world = WorldConfig::sized(cfg.seed, cfg.height, cfg.width).with_overwrite(true);
    world
        .validate()
        .map_err(|e| DemoError::InvalidConfig(e.to_string()))?;
    let t0 = Instant::now();
    let market = write_market1501(
        &cfg.out.join("market"),
        &world,
        &Market1501Config::default(),
    )?;
    let mut nl_cfg = LupersonNlConfig::default();
    nl_cfg.video.videos = cfg.videos;
    nl_cfg
        .validate()
        .map_err(|e| DemoError::InvalidConfig(e.to_string()))?;
    let corpus_world = world.clone().with_seed(cfg.seed.wrapping_add(1000));
    let corpus = write_luperson_nl(&cfg.out.join("corpus"), &corpus_world, &nl_cfg)?;
    let parsed = market1501::parse(&market.dataset_dir, &ImageDatasetOptions::default())?;
    let splits = &parsed.splits;
    let st = splits.stats();
    say(
        events,
        format!(
            "1. world (seed {}): Market-style train {} ids / {} images, query {}, gallery {}; corpus {} videos, {} crops ({:.1} s)",
            cfg.seed,
            st.train.ids,
            st.train.images,
            st.query.images,
            st.gallery.images,
            cfg.videos,
            corpus.images_written,
            t0.elapsed().as_secs_f64()
        ),
    );

    // 2-3. Pre-training (and denoising).
    let stages = if cfg.skip_pretrain {
        Pretrained::default()
    } else {
        pretrain(cfg, &corpus.dataset_dir, device, events)?
    };
    let label = cfg.pretrain.label();

    // The backbones' own features, before any fine-tuning.
    let mut backbone_only = Vec::new();
    device.seed(cfg.seed);
    let random_backbone = build_backbone(&cfg.arch, cfg.base_width, 1, device)?;
    backbone_only.push(DemoRow {
        init: "random init",
        result: eval_backbone(&random_backbone, splits, cfg, device)?,
        seconds: 0.0,
    });
    if let Some(b) = &stages.backbone {
        backbone_only.push(DemoRow {
            init: label,
            result: eval_backbone(&b.clone().valid(), splits, cfg, device)?,
            seconds: 0.0,
        });
    }
    for r in &backbone_only {
        say(
            events,
            format!(
                "  backbone features only, {}: mAP {:.1} %, Rank-1 {:.1} %",
                r.init,
                100.0 * r.result.map,
                100.0 * r.result.rank(1).unwrap_or(0.0)
            ),
        );
    }
    if cfg.no_finetune {
        return Ok(DemoOutput {
            backbone_only,
            finetuned: Vec::new(),
            summary: None,
            pictures: None,
            ranked_model: None,
            seconds: t_all.elapsed().as_secs_f64(),
        });
    }

    // 4. Fine-tune twice and evaluate.
    let ft = bot_config(cfg, cfg.finetune_epochs).with_eval_every(cfg.eval_every);
    say(
        events,
        format!(
            "4. BoT fine-tuning, {} epochs each ({} at {}x{})",
            ft.epochs, ft.arch, ft.height, ft.width
        ),
    );
    let run_options = |log: &str| {
        RunOptions::default()
            .with_log_path(Some(cfg.out.join(log)))
            .with_precision(cfg.precision)
    };
    let mut runs = vec![(
        "random init",
        finetune_run(
            "random init",
            &ft,
            None,
            splits,
            &run_options("finetune-random.jsonl"),
            device,
            events,
        )?,
    )];
    if let Some(b) = stages.backbone.clone() {
        let pre = finetune_run(
            label,
            &ft,
            Some(b),
            splits,
            &run_options("finetune-cion.jsonl"),
            device,
            events,
        )?;
        runs.push((label, pre));
    }

    // 5. Pictures.
    let cmc_png = cfg.out.join("cmc.png");
    let curves: Vec<(&str, Vec<f64>)> = runs
        .iter()
        .map(|(n, (r, ..))| (*n, r.cmc.iter().take(20).map(|v| 100.0 * v).collect()))
        .collect();
    let curve_refs: Vec<(&str, &[f64])> = curves.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    crate::viz::save_png(
        &crate::viz::cmc_chart(&curve_refs, 20).render(640, 420),
        &cmc_png,
    )?;
    // The rank lists of the best fine-tuned model.
    let (ranked_model, (_, q, g, _)) =
        runs.iter()
            .max_by(|a, b| a.1.0.map.total_cmp(&b.1.0.map))
            .ok_or_else(|| DemoError::InvalidConfig("no fine-tuning run".into()))?;
    let ranklist_png = cfg.out.join("ranklist.png");
    rank_list(splits, q, g, &ranklist_png)?;

    let finetuned: Vec<DemoRow> = runs
        .iter()
        .map(|(n, (r, _, _, secs))| DemoRow {
            init: n,
            result: r.clone(),
            seconds: *secs,
        })
        .collect();
    let seconds = t_all.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "seed": cfg.seed,
        "arch": cfg.arch,
        "base_width": cfg.base_width,
        "size": [cfg.height, cfg.width],
        "backend": cfg.backend,
        "precision": cfg.precision.name(),
        "denoise_quality": stages.denoise_quality,
        "pretrain": cfg.pretrain.name(),
        "pnl": stages.pnl,
        "supervised": stages.supervised,
        "cion": stages.cion,
        "finetune": ft,
        "backbone_features_only": backbone_only.iter().map(|r| serde_json::json!({
            "init": r.init, "mAP": r.result.map, "rank1": r.result.rank(1),
        })).collect::<Vec<_>>(),
        "results": finetuned.iter().map(|r| serde_json::json!({
            "init": r.init, "mAP": r.result.map, "mINP": r.result.minp,
            "cmc": r.result.cmc.iter().take(20).collect::<Vec<_>>(),
            "seconds": r.seconds,
        })).collect::<Vec<_>>(),
        "pictures": {"cmc": cmc_png, "ranklist": ranklist_png, "ranklist_model": ranked_model},
        "seconds": seconds,
    });
    let summary_path = cfg.out.join("summary.json");
    let bytes = serde_json::to_vec_pretty(&summary).map_err(|e| DemoError::Io {
        path: summary_path.clone(),
        source: std::io::Error::other(e),
    })?;
    crate::train::checkpoint::write_atomic(&summary_path, &bytes)?;
    Ok(DemoOutput {
        backbone_only,
        finetuned,
        summary: Some(summary),
        pictures: Some((cmc_png, ranklist_png)),
        ranked_model: Some(ranked_model),
        seconds,
    })
}

/// What the pre-training stages left: the backbone to fine-tune, the
/// denoising quality and the configurations they ran (for `summary.json`).
#[derive(Default)]
struct Pretrained {
    backbone: Option<ResNet>,
    denoise_quality: serde_json::Value,
    pnl: Option<crate::train::PnlConfig>,
    supervised: Option<FinetuneConfig>,
    cion: Option<crate::train::CionConfig>,
}

/// Stages 2–3 as `cfg.pretrain` says.
fn pretrain(
    cfg: &DemoConfig,
    corpus_dir: &Path,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<Pretrained, DemoError> {
    let mut out = Pretrained::default();
    let plan = cfg.pretrain;
    // The stage before CION, or the only one.
    let first = match plan {
        PretrainPlan::Pnl | PretrainPlan::PnlCion => {
            say(
                events,
                "2a. PNL pre-training on the tracker's noisy labels".into(),
            );
            let (b, c) = pretrain_pnl_stage(cfg, corpus_dir, device, events)?;
            out.pnl = Some(c);
            Some((b, "PNL"))
        }
        PretrainPlan::Tracklets | PretrainPlan::TrackletsCion | PretrainPlan::Oracle => {
            let oracle = plan == PretrainPlan::Oracle;
            say(
                events,
                format!(
                    "2a. supervised pre-training on the corpus's {}",
                    if oracle {
                        "true persons (synth_truth.json)"
                    } else {
                        "tracklet labels"
                    }
                ),
            );
            let (b, c) = pretrain_supervised_stage(cfg, corpus_dir, oracle, device, events)?;
            out.supervised = Some(c);
            Some((
                b,
                if oracle {
                    "oracle"
                } else {
                    "tracklet-supervised"
                },
            ))
        }
        PretrainPlan::Cion
        | PretrainPlan::CionOracle
        | PretrainPlan::CionOracleVideo
        | PretrainPlan::CionOracleTracklets
        | PretrainPlan::CionTwice => None,
    };
    if !plan.uses_cion() {
        out.backbone = first.map(|(b, _)| b);
        return Ok(out);
    }
    let (model, which) = match &first {
        Some((b, name)) => (b.clone(), *name),
        None => {
            device.seed(cfg.seed);
            (
                build_backbone(&cfg.arch, cfg.base_width, 1, device)?,
                "untrained",
            )
        }
    };
    say(
        events,
        format!("2. denoising the corpus (levels 1-3), features of the {which} backbone"),
    );
    let records = if plan == PretrainPlan::CionOracle {
        say(
            events,
            "   (cion-oracle: the corpus's true persons replace the denoised identities)".into(),
        );
        true_persons(corpus_dir)?
    } else if plan == PretrainPlan::CionOracleVideo {
        say(
            events,
            "   (cion-oracle-video: the true persons, one identity per person and video)".into(),
        );
        split_by(true_persons(corpus_dir)?, |r| (r.video, None))
    } else if plan == PretrainPlan::CionOracleTracklets {
        say(
            events,
            "   (cion-oracle-tracklets: the tracker's tracklets, each split by true person)".into(),
        );
        split_by(true_persons(corpus_dir)?, |r| (r.video, r.tracklet))
    } else {
        let (records, quality) = denoise(cfg, corpus_dir, &model, device, events)?;
        out.denoise_quality = quality;
        records
    };
    say(events, "3. CION pre-training".into());
    let (mut backbone, mut c) =
        pretrain_cion_stage(cfg, &records, first.map(|(b, _)| b), device, events)?;
    if plan == PretrainPlan::CionTwice {
        say(
            events,
            "3b. denoising again, features of the CION backbone; CION from random init on them"
                .into(),
        );
        let (records, quality) = denoise(cfg, corpus_dir, &backbone.valid(), device, events)?;
        out.denoise_quality = quality;
        (backbone, c) = pretrain_cion_stage_in(cfg, &records, None, device, events, "cion2")?;
    }
    out.backbone = Some(backbone.valid());
    out.cion = Some(c);
    Ok(out)
}

/// Six queries, evenly spread, with their ten best gallery matches by
/// cosine distance of `q` / `g` (`[n, dim]` embeddings).
fn rank_list(
    splits: &Splits,
    q: &ndarray::Array2<f32>,
    g: &ndarray::Array2<f32>,
    png: &Path,
) -> Result<(), DemoError> {
    let ql = labels(&splits.query)?;
    let gl = labels(&splits.gallery)?;
    let dist = pairwise_distance(q.view(), g.view(), Metric::Cosine, false)?;
    let top = top_matches(dist.view(), &ql, &gl, 10)?;
    let qp = paths(&splits.query)?;
    let gp = paths(&splits.gallery)?;
    let step = (qp.len() / 6).max(1);
    let mut rows = Vec::new();
    for qi in (0..qp.len()).step_by(step).take(6) {
        let query = load_rgb(&qp[qi])?;
        let gallery = top[qi]
            .iter()
            .map(|m| load_rgb(&gp[m.gallery_index]).map(|i| (i, m.is_match)))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(crate::viz::RankRow { query, gallery });
    }
    crate::viz::save_png(&crate::viz::rank_list(&rows), png)?;
    Ok(())
}
