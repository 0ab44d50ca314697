//! The demo's stages: denoising, the pre-training stages, evaluation of a
//! backbone's own features, and one BoT fine-tuning run.

use crate::train::FromConfig;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;

use super::{DemoConfig, DemoError, DemoEvent};
use crate::backbones::ResNet;
use crate::burn::module::Module;
use crate::burn::tensor::Device;
use crate::data::batch::TestTransform;
use crate::data::datasets::cional::CionAl;
use crate::data::datasets::luperson_nl;
use crate::data::sampler_identity::KSchedule;
use crate::data::{ImageRecord, Splits};
use crate::denoise::source::{corpus_blocks, corpus_paths, synthetic_truth, truth_records};
use crate::denoise::{DenoiseConfig, annos};
use crate::gap_eval::{avg_pooled, evaluate_pooled};
use crate::metrics::{EvalResult, Labels};
use crate::train::finetune::embed_records;
use crate::train::{
    CionConfig, Decay, FinetuneConfig, FinetuneEvent, PnlConfig, RunOptions, Warmup,
    evaluate_model, extract_features, finetune, pretrain_cion, pretrain_pnl,
};

/// The events callback of the demo.
pub(crate) type Events<'c> = dyn FnMut(DemoEvent<'_>) + 'c;

/// Sends a line of progress text.
pub(crate) fn say(events: &mut Events<'_>, line: String) {
    events(DemoEvent::Line(line));
}

/// The file paths of `records` (an LMDB key is an error).
pub(crate) fn paths(records: &[ImageRecord]) -> Result<Vec<PathBuf>, DemoError> {
    Ok(crate::train::input::image_paths(records, "demo")?)
}

/// The pids and camera ids of `records`.
pub(crate) fn labels(records: &[ImageRecord]) -> Result<Labels, DemoError> {
    Ok(crate::train::input::eval_labels(records)?)
}

/// Distinct pids of `records`.
fn identities(records: &[ImageRecord]) -> usize {
    records.iter().map(|r| r.pid).collect::<BTreeSet<_>>().len()
}

/// Features of `model` → levels 1–3 → `annos.json` of the chosen level;
/// returns its records and the quality of every level (JSON, empty without
/// a truth file).
pub(crate) fn denoise(
    cfg: &DemoConfig,
    corpus_dir: &Path,
    model: &ResNet,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<(Vec<ImageRecord>, serde_json::Value), DemoError> {
    let corpus = luperson_nl::parse(corpus_dir)?;
    let stats = corpus.stats();
    let img_paths = paths(&corpus.images().cloned().collect::<Vec<_>>())?;
    let options = avg_pooled(TestTransform::new(cfg.height, cfg.width), 64, false);
    let t0 = Instant::now();
    let feats = extract_features(model, &img_paths, &options, device)?;
    let mut dcfg = DenoiseConfig::default().with_record_levels(true);
    dcfg.calibration.target_precision = Some(cfg.denoise_target_precision);
    dcfg.level2.stitch_gap_steps = cfg.stitch_gap_steps;
    dcfg.level2.stitch_threshold = cfg.stitch_threshold;
    let blocks = corpus_blocks(&corpus, feats.view())?;
    let out = crate::denoise::run(&dcfg, blocks, |_| {})?;
    let annos_path = corpus.root.join("annos.json");
    let chosen = match (cfg.denoise_level, &out.levels) {
        (3, _) => &out.labels,
        (2, Some(l)) => &l.level2,
        (1, Some(l)) => &l.level1,
        _ => {
            return Err(DemoError::InvalidConfig(
                "denoise_level must be 1, 2 or 3".into(),
            ));
        }
    };
    let written = annos::write(&annos_path, chosen, &corpus_paths(&corpus))?;
    say(
        events,
        format!(
            "denoised {} videos / {} tracklets / {} crops; level {} labels: {} crops kept, in {:.1} s -> {}",
            stats.videos,
            stats.tracklets,
            stats.images,
            cfg.denoise_level,
            written,
            t0.elapsed().as_secs_f64(),
            annos_path.display()
        ),
    );
    let c = &out.report.calibration;
    if let Some(target) = c.target_precision {
        let t = |t: &crate::denoise::calibrate::ThresholdCalibration| {
            format!(
                "{:?} {:.3} (expected precision {:.2}, best {:.2})",
                t.status, t.threshold, t.expected_precision, t.best_precision
            )
        };
        say(
            events,
            format!(
                "  thresholds for precision {target} on {} videos: re-assign {}; merge {}; link {}",
                c.videos,
                t(&c.reassign),
                t(&c.merge),
                t(&c.link)
            ),
        );
    }
    let mut quality = Vec::new();
    if let (Some(truth), Some(levels)) = (synthetic_truth(&corpus)?, &out.levels) {
        say(
            events,
            format!(
                "  {:<8} {:>9} {:>7} {:>6} {:>5}",
                "labels", "precision", "recall", "F", "ids"
            ),
        );
        for (name, l) in [
            ("tracker", &levels.raw),
            ("level 1", &levels.level1),
            ("level 2", &levels.level2),
            ("level 3", &out.labels),
        ] {
            let q = crate::denoise::score(l, &truth)?;
            say(
                events,
                format!(
                    "  {:<8} {:>9.3} {:>7.3} {:>6.3} {:>5}",
                    name, q.precision, q.recall, q.f_score, q.identities
                ),
            );
            quality.push(serde_json::json!({"labels": name, "quality": q}));
        }
    }
    let records = CionAl::open(&annos_path)?.records();
    Ok((records, serde_json::Value::Array(quality)))
}

/// The corpus's true persons (`synth_truth.json`) as records.
pub(crate) fn true_persons(corpus_dir: &Path) -> Result<Vec<ImageRecord>, DemoError> {
    let corpus = luperson_nl::parse(corpus_dir)?;
    truth_records(&corpus)?.ok_or_else(|| {
        DemoError::InvalidConfig(format!(
            "no synth_truth.json next to {}",
            corpus_dir.display()
        ))
    })
}

/// The same records with one identity per (`group(record)`, person): with
/// `(video, None)` a person seen in two videos becomes two identities, with
/// `(video, tracklet)` each tracklet is split by person. Identities are
/// numbered from 0 in order of first appearance.
pub(crate) fn split_by(
    records: Vec<ImageRecord>,
    group: impl Fn(&ImageRecord) -> (Option<u32>, Option<u64>),
) -> Vec<ImageRecord> {
    let mut ids = std::collections::HashMap::new();
    records
        .into_iter()
        .map(|mut r| {
            let next = ids.len() as i64;
            r.pid = *ids.entry((group(&r), r.pid)).or_insert(next);
            r
        })
        .collect()
}

/// PNL pre-training on the tracker's (noisy) labels; returns the query
/// encoder's backbone (plain device, inference mode).
pub(crate) fn pretrain_pnl_stage(
    cfg: &DemoConfig,
    corpus_dir: &Path,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<(ResNet, PnlConfig), DemoError> {
    let corpus = luperson_nl::parse(corpus_dir)?;
    let records: Vec<ImageRecord> = corpus.images().cloned().collect();
    let pcfg = PnlConfig::default()
        .with_arch(cfg.arch.clone())
        .with_base_width(cfg.base_width)
        .with_last_stride(1)
        .with_size([cfg.height, cfg.width])
        .with_batch_size(32)
        .with_bn_groups(4)
        .with_epochs(cfg.pnl_epochs)
        .with_lr(0.05)
        .with_lr_milestones(vec![])
        .with_cls_dim(128)
        .with_mlp_hidden_dim(256)
        .with_dim(64)
        .with_queue_size(1024)
        .with_key_momentum(0.99)
        .with_proto_momentum(0.99)
        .with_start_proto_epoch(pnl_start(1, cfg.pnl_epochs))
        .with_start_clean_epoch(pnl_start(2, cfg.pnl_epochs))
        .with_start_supcont_epoch(pnl_start(2, cfg.pnl_epochs))
        .with_seed(cfg.seed);
    let run = RunOptions::default()
        .with_log_path(Some(cfg.out.join("pnl/metrics.jsonl")))
        .with_precision(cfg.precision);
    say(
        events,
        format!(
            "PNL pre-training: {} crops / {} tracklet labels, batch {}, {} epochs",
            records.len(),
            corpus.stats().tracklets,
            pcfg.batch_size,
            pcfg.epochs
        ),
    );
    let t0 = Instant::now();
    let out = pretrain_pnl(&pcfg, FromConfig, &records, device, &run, |e| {
        events(DemoEvent::Pretrain {
            stage: "pnl",
            event: e,
        });
    })?;
    say(
        events,
        format!(
            "  {} steps in {:.1} s",
            out.steps_done,
            t0.elapsed().as_secs_f64()
        ),
    );
    Ok((out.query.backbone.valid(), pcfg))
}

/// The epoch at which a PNL loss that starts at `epoch` of the demo's
/// 3-epoch reference recipe starts in a run of `epochs` (scaled, rounded,
/// at least 1): as the study scales `configs/study/pnl.toml`.
pub(crate) fn pnl_start(epoch: usize, epochs: usize) -> usize {
    crate::study::config::scale_start(epoch, 3, epochs)
}

/// The demo's CION recipe (`configs/cion-after-pnl.toml`, for
/// [`DemoConfig::pretrain_epochs`] epochs with the prototypes frozen
/// throughout), or the configured one, with the demo's seed.
pub(crate) fn cion_config(cfg: &DemoConfig) -> CionConfig {
    if let Some(c) = &cfg.cion {
        return c.clone().with_seed(cfg.seed);
    }
    let [h, w] = [cfg.height, cfg.width];
    CionConfig::default()
        .with_arch(cfg.arch.clone())
        .with_base_width(cfg.base_width)
        .with_global_size([h / 2, w / 2])
        .with_local_size([h / 4, w / 4])
        .with_local_crops(0)
        .with_batch_size(32)
        .with_k_schedule(KSchedule::constant(2))
        .with_epochs(cfg.pretrain_epochs)
        .with_lr(1e-3)
        .with_warmup_epochs(1.min(cfg.pretrain_epochs))
        .with_momentum_teacher(0.99)
        .with_head_hidden_dim(512)
        .with_head_bottleneck_dim(128)
        .with_out_dim(1024)
        .with_use_bn_in_head(true)
        .with_teacher_temp(0.02)
        .with_warmup_teacher_temp(0.02)
        .with_freeze_last_layer(cfg.pretrain_epochs)
        .with_seed(cfg.seed)
}

/// CION pre-training on `records` from `init` (random when `None`);
/// returns the teacher's backbone.
pub(crate) fn pretrain_cion_stage(
    cfg: &DemoConfig,
    records: &[ImageRecord],
    init: Option<ResNet>,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<(ResNet, CionConfig), DemoError> {
    pretrain_cion_stage_in(cfg, records, init, device, events, "cion")
}

/// [`pretrain_cion_stage`] with its checkpoints and log under `out/dir`
/// (a second round of CION keeps its own).
pub(crate) fn pretrain_cion_stage_in(
    cfg: &DemoConfig,
    records: &[ImageRecord],
    init: Option<ResNet>,
    device: &Device,
    events: &mut Events<'_>,
    dir: &str,
) -> Result<(ResNet, CionConfig), DemoError> {
    let ccfg = cion_config(cfg);
    ccfg.validate()?;
    let run = RunOptions::default()
        .with_checkpoint_dir(Some(cfg.out.join(dir).join("checkpoints")))
        .with_checkpoint_every(100)
        .with_keep_checkpoints(1)
        .with_log_path(Some(cfg.out.join(dir).join("metrics.jsonl")))
        .with_precision(cfg.precision);
    say(
        events,
        format!(
            "CION pre-training: {} images / {} identities, batch {}, {} epochs, 2 + {} crops",
            records.len(),
            identities(records),
            ccfg.batch_size,
            ccfg.epochs,
            ccfg.local_crops
        ),
    );
    let t0 = Instant::now();
    let init = match init {
        Some(b) => b,
        None => crate::train::pretrain::cion::init_backbone(&ccfg, device)?,
    };
    let out = pretrain_cion(&ccfg, init, records, device, &run, |e| {
        events(DemoEvent::Pretrain {
            stage: "cion",
            event: e,
        });
    })?;
    say(
        events,
        format!(
            "  {} steps in {:.1} s; loss first/last epoch-mean in {dir}/metrics.jsonl",
            out.steps_done,
            t0.elapsed().as_secs_f64()
        ),
    );
    Ok((out.teacher.backbone, ccfg))
}

/// A backbone's own global-average-pooled features on the test split
/// (no fine-tuning): how much identity the weights carry by themselves.
pub(crate) fn eval_backbone(
    model: &ResNet,
    splits: &Splits,
    cfg: &DemoConfig,
    device: &Device,
) -> Result<EvalResult, DemoError> {
    let options = avg_pooled(TestTransform::new(cfg.height, cfg.width), 64, true);
    let (query, gallery) = (&splits.query, &splits.gallery);
    let result = evaluate_pooled(model, query, gallery, ["demo"; 2], &options, device)?;
    Ok(result)
}

/// One evaluated fine-tuning run: the result, the query and gallery
/// embeddings (`[n, dim]`) and the training time in seconds.
pub(crate) type Finetuned = (EvalResult, Array2<f32>, Array2<f32>, f64);

/// One BoT fine-tuning run from `init` (random when `None`), evaluated at
/// its last epoch (and every `ft.eval_every` epochs, into the log `run`
/// names).
pub(crate) fn finetune_run(
    label: &'static str,
    ft: &FinetuneConfig,
    init: Option<ResNet>,
    splits: &Splits,
    run: &RunOptions,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<Finetuned, DemoError> {
    let total = ft.epochs * (splits.train.len() / ft.batch_size()).max(1);
    let t0 = Instant::now();
    let test = TestTransform::new(ft.height, ft.width);
    // The final evaluation is made at the last epoch's end, so the metrics
    // log has it; periodic ones are logged and reported as lines.
    let mut evaluated: Result<Option<EvalResult>, DemoError> = Ok(None);
    let mut eval_secs = 0.0;
    let mut last_step = Instant::now();
    let callback = |e: FinetuneEvent<'_>| match e {
        FinetuneEvent::Iteration(it) => {
            let now = Instant::now();
            let secs = now.duration_since(last_step).as_secs_f64().max(1e-9);
            last_step = now;
            events(DemoEvent::FinetuneStep {
                label,
                step: it.iteration,
                total,
                loss: f64::from(it.loss_ce + it.loss_tri),
                lr: it.lr,
                images_per_sec: ft.batch_size() as f64 / secs,
            });
        }
        FinetuneEvent::EpochEnd {
            epoch,
            model,
            evaluate,
            metrics,
            ..
        } => {
            let last = epoch + 1 == ft.epochs;
            if !(evaluate || last) || evaluated.is_err() {
                return;
            }
            let t_eval = Instant::now();
            evaluated = evaluate_model(model, &splits.query, &splits.gallery, test, 64, device)
                .map(|r| {
                    metrics.record(&r);
                    if !last {
                        events(DemoEvent::Line(format!(
                            "  {label}, after epoch {}: mAP {:.1} %, Rank-1 {:.1} %",
                            epoch + 1,
                            100.0 * r.map,
                            100.0 * r.rank(1).unwrap_or(0.0)
                        )));
                    }
                    last.then_some(r)
                })
                .map_err(Into::into);
            eval_secs += t_eval.elapsed().as_secs_f64();
        }
        _ => {}
    };
    let out = match init {
        None => finetune(ft, FromConfig, &splits.train, device, run, callback)?,
        Some(b) => finetune(ft, b, &splits.train, device, run, callback)?,
    };
    let secs = t0.elapsed().as_secs_f64() - eval_secs;
    let r = match evaluated? {
        Some(r) => r,
        None => evaluate_model(&out.model, &splits.query, &splits.gallery, test, 64, device)?,
    };
    let q = embed_records(&out.model, &splits.query, test, 64, device)?;
    let g = embed_records(&out.model, &splits.gallery, test, 64, device)?;
    say(
        events,
        format!(
            "  {label}: mAP {:.1} %, Rank-1 {:.1} % ({:.0} s)",
            100.0 * r.map,
            100.0 * r.rank(1).unwrap_or(0.0),
            secs
        ),
    );
    Ok((r, q, g, secs))
}

/// The demo's BoT recipe for `epochs` epochs: milestones at 2/3 and 9/10
/// of `epochs` (those that coincide or fall on epoch 0 in very short runs
/// are left out), which count epochs after the 130-iteration warm-up
/// (fast-reid's semantics, docs/training.md). On the demo's Market-style
/// split (13 iterations per epoch) the warm-up takes 10 epochs, so in a
/// 24-epoch fine-tuning neither milestone is reached and the rate stays at
/// its peak after the warm-up; in the supervised stage's longer epochs the
/// first one is. Kept so that the documented results stay reproducible
/// (docs/pretraining.md, "The fine-tuning schedule").
pub(crate) fn bot_config(cfg: &DemoConfig, epochs: usize) -> FinetuneConfig {
    let mut milestones: Vec<usize> = Vec::new();
    for m in [epochs * 2 / 3, epochs * 9 / 10] {
        if m > 0 && milestones.last() != Some(&m) {
            milestones.push(m);
        }
    }
    FinetuneConfig::default()
        .with_arch(cfg.arch.clone())
        .with_base_width(cfg.base_width)
        .with_height(cfg.height)
        .with_width(cfg.width)
        .with_epochs(epochs)
        .with_warmup(Warmup {
            iters: 130,
            factor: 0.1,
        })
        .with_decay(Decay::MultiStep {
            milestones,
            gamma: 0.1,
        })
        .with_eval_every(0)
        .with_seed(cfg.seed)
}

/// Supervised pre-training with the BoT recipe on the corpus: on the
/// tracker's tracklet labels (`oracle == false`), or on the crops' true
/// persons (false detections dropped); returns the trained backbone.
pub(crate) fn pretrain_supervised_stage(
    cfg: &DemoConfig,
    corpus_dir: &Path,
    oracle: bool,
    device: &Device,
    events: &mut Events<'_>,
) -> Result<(ResNet, FinetuneConfig), DemoError> {
    let (records, what, epochs) = if oracle {
        (true_persons(corpus_dir)?, "true persons", cfg.oracle_epochs)
    } else {
        let corpus = luperson_nl::parse(corpus_dir)?;
        let records: Vec<ImageRecord> = corpus.images().cloned().collect();
        (records, "tracklet labels", cfg.tracklet_epochs)
    };
    let ft = bot_config(cfg, epochs);
    say(
        events,
        format!(
            "supervised pre-training: BoT on {} corpus crops, {} {what}, {} epochs",
            records.len(),
            identities(&records),
            ft.epochs
        ),
    );
    let t0 = Instant::now();
    let run = RunOptions::default().with_precision(cfg.precision);
    let out = finetune(&ft, FromConfig, &records, device, &run, |_| {})?;
    say(
        events,
        format!("  done in {:.1} s", t0.elapsed().as_secs_f64()),
    );
    Ok((out.model.backbone.valid(), ft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_cion_recipe_is_the_shipped_file() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join("cion-after-pnl.toml");
        let mut shipped: CionConfig = crate::train::config::load_recipe(Some(&file), &[]).unwrap();
        let cfg = DemoConfig::default();
        // The file writes "K = 2 throughout" as one stage ending at epoch
        // 1000, the code as one stage without end.
        assert_eq!(shipped.k_schedule.instances, [2]);
        assert!(shipped.k_schedule.epochs[0] >= cfg.pretrain_epochs as u64);
        shipped.k_schedule = KSchedule::constant(2);
        assert_eq!(cion_config(&cfg), shipped.with_seed(cfg.seed));
    }

    #[test]
    fn pnl_starts_scale_with_the_run_and_stay_at_least_one() {
        // The 3-epoch reference keeps its starts (1 and 2).
        assert_eq!((pnl_start(1, 3), pnl_start(2, 3)), (1, 2));
        // The study's 9-epoch PNL: 3 and 6.
        assert_eq!((pnl_start(1, 9), pnl_start(2, 9)), (3, 6));
        // A 1-epoch run starts both at 1, not 0.
        assert_eq!((pnl_start(1, 1), pnl_start(2, 1)), (1, 1));
    }

    #[test]
    fn split_by_gives_one_identity_per_person_and_group() {
        let rec = |pid, video, tracklet| ImageRecord {
            video: Some(video),
            tracklet: Some(tracklet),
            ..ImageRecord::new("x.png", pid, 0)
        };
        let records = vec![
            rec(7, 0, 1),
            rec(7, 1, 2),
            rec(7, 0, 3),
            rec(3, 1, 2),
            rec(7, 1, 2),
        ];
        let pids = |out: Vec<ImageRecord>| out.iter().map(|r| r.pid).collect::<Vec<_>>();
        let by_video = split_by(records.clone(), |r| (r.video, None));
        assert_eq!(pids(by_video), [0, 1, 0, 2, 1]);
        let by_tracklet = split_by(records, |r| (r.video, r.tracklet));
        assert_eq!(pids(by_tracklet), [0, 1, 2, 3, 1]);
    }
}
