//! Evaluations in the fine-tuning metrics log: what a caller records in
//! `RunEvent::EpochEnd::metrics` becomes one line at the epoch's last step
//! (`mAP`, `rank1`, `rank5`, `rank10`, `mINP`) in the same JSON-lines file
//! as the step lines, for BoT and MGN; `read_log` returns them; a run
//! stopped and resumed (inside an epoch and at an epoch boundary) writes the
//! same log as an uninterrupted one, with every evaluation once; a
//! checkpoint at an epoch's end comes after that epoch's evaluation line.

use crate::common;
use reid_train::FromConfig;
use reid_train::MgnStart;

use std::path::Path;

use burn::tensor::Device;
use common::{tiny_market, tiny_mgn};
use reid_data::ImageRecord;
use reid_data::batch::TestTransform;
use reid_data::datasets::ParsedDataset;
use reid_train::finetune::mgn::{MgnEvent, evaluate_mgn, finetune_mgn};
use reid_train::metrics_log::{EVAL_KEYS, read_log};
use reid_train::{
    FinetuneConfig, FinetuneEvent, FinetuneOutput, LogLine, MetricsLog, RunOptions, evaluate_model,
    finetune,
};

/// The tiny BoT recipe, `epochs` × 3 steps, evaluated after every epoch.
fn tiny_bot(epochs: usize) -> FinetuneConfig {
    common::tiny_bot(epochs, 3).with_eval_every(1)
}

/// What a run's callback saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    EpochEnd(usize),
    Checkpoint(usize),
}

/// BoT on `data`, evaluating (and recording) where the recipe asks.
fn run_bot(
    cfg: &FinetuneConfig,
    data: &ParsedDataset,
    run: &RunOptions,
    seen: &mut Vec<Seen>,
) -> FinetuneOutput {
    let device = Device::flex();
    let splits = &data.splits;
    finetune(cfg, FromConfig, &splits.train, &device, run, |e| match e {
        FinetuneEvent::EpochEnd {
            epoch,
            model,
            evaluate,
            metrics,
            ..
        } => {
            seen.push(Seen::EpochEnd(epoch));
            if evaluate {
                let test = TestTransform::new(64, 32);
                let r = evaluate_model(model, &splits.query, &splits.gallery, test, 16, &device)
                    .unwrap();
                metrics.record(&r);
            }
        }
        FinetuneEvent::Checkpoint { step, .. } => seen.push(Seen::Checkpoint(step)),
        _ => {}
    })
    .unwrap()
}

/// One stopped run of the resume check: `cfg` on `data` with `opts`
/// stops unfinished after `stop` steps, having seen `seen` in order, and
/// returns the evaluations `evals` (in name order; `what` names them).
fn check_stopped_run(
    cfg: &FinetuneConfig,
    data: &ParsedDataset,
    opts: &RunOptions,
    stop: usize,
    seen: [Seen; 3],
    evals: &[LogLine],
    what: &str,
) {
    let mut got = Vec::new();
    let out = run_bot(cfg, data, opts, &mut got);
    assert_eq!((out.steps_done, out.finished), (stop, false));
    assert_eq!(got, seen);
    assert_eq!(sorted(&out.evaluations), evals, "{what}");
}

fn is_eval(line: &LogLine) -> bool {
    line.get("mAP").is_some()
}

/// A log line as `(step, epoch, [(name, value bits)])`.
type LineBits = (usize, usize, Vec<(String, u64)>);

/// A log's lines with their values as bits, without the wall-clock
/// `images_per_sec`.
fn bits(lines: &[LogLine]) -> Vec<LineBits> {
    lines
        .iter()
        .map(|l| {
            let values = l
                .values
                .iter()
                .filter(|(k, _)| k != "images_per_sec")
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect();
            (l.step, l.epoch, values)
        })
        .collect()
}

/// `lines` with their values in name order (the log's JSON objects are
/// written with sorted keys; `RunOutput::evaluations` keeps the order of
/// recording).
fn sorted(lines: &[LogLine]) -> Vec<LogLine> {
    let mut out = lines.to_vec();
    for l in &mut out {
        l.values.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

/// Every evaluation line has the five metrics, finite, in `[0, 1]`.
fn check_eval_values(line: &LogLine) {
    let mut keys: Vec<&str> = line.values.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    let mut expected = EVAL_KEYS;
    expected.sort_unstable();
    assert_eq!(keys, expected, "{line:?}");
    for (k, v) in &line.values {
        assert!(v.is_finite() && (0.0..=1.0).contains(v), "{k} = {v}");
    }
    let get = |k| line.get(k).unwrap();
    assert!(get("rank1") <= get("rank5") && get("rank5") <= get("rank10"));
}

#[test]
fn evaluations_are_logged_and_a_resumed_run_writes_the_same_log() {
    let (dir, data) = tiny_market("evallog-bot");
    let cfg = tiny_bot(3);

    // Uninterrupted, with a log.
    let full_log = dir.join("full/metrics.jsonl");
    let full_run = RunOptions::default().with_log_path(Some(full_log.clone()));
    let mut seen = Vec::new();
    let full = run_bot(&cfg, &data, &full_run, &mut seen);
    assert!(full.finished);
    let lines = read_log(&full_log).unwrap();
    // One step line per step, the epoch's evaluation right after its last.
    let shape: Vec<(usize, usize, bool)> = lines
        .iter()
        .map(|l| (l.step, l.epoch, is_eval(l)))
        .collect();
    let mut expected = Vec::new();
    for step in 0..9 {
        expected.push((step, step / 3, false));
        if step % 3 == 2 {
            expected.push((step, step / 3, true));
        }
    }
    assert_eq!(shape, expected);
    let evals: Vec<LogLine> = lines.iter().filter(|l| is_eval(l)).cloned().collect();
    for line in &evals {
        check_eval_values(line);
    }
    eprintln!("evaluations: {evals:?}");
    assert_eq!(sorted(&full.evaluations), evals, "returned as written");
    for line in &full.evaluations {
        let keys: Vec<&str> = line.values.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, EVAL_KEYS, "recorded in this order");
    }
    // The step lines carry no evaluation values.
    assert!(
        lines
            .iter()
            .filter(|l| !is_eval(l))
            .all(|l| EVAL_KEYS.iter().all(|k| l.get(k).is_none()))
    );
    // The last evaluation is the returned model's.
    let test = TestTransform::new(64, 32);
    let splits = &data.splits;
    let last = evaluate_model(
        &full.model,
        &splits.query,
        &splits.gallery,
        test,
        16,
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(evals[2].get("mAP"), Some(last.map));
    assert_eq!(evals[2].get("rank1"), last.rank(1));

    // Stopped after 4 steps (inside epoch 1), resumed and stopped after 6
    // (the end of epoch 1), resumed to the end; a checkpoint every 3 steps
    // (each at an epoch's end).
    let opts = common::stopping_logged(&dir.join("parts"), 3, 4);
    // The epoch's evaluation is in the log before the checkpoint at its end.
    let seen = [Seen::EpochEnd(0), Seen::Checkpoint(3), Seen::Checkpoint(4)];
    check_stopped_run(
        &cfg,
        &data,
        &opts,
        4,
        seen,
        &evals[..1],
        "epoch 0 ended here",
    );
    // The periodic checkpoint after the epoch's line, then the stop's.
    let resume = opts.clone().with_resume(true).with_stop_after(Some(6));
    let seen = [Seen::EpochEnd(1), Seen::Checkpoint(6), Seen::Checkpoint(6)];
    check_stopped_run(
        &cfg,
        &data,
        &resume,
        6,
        seen,
        &evals[1..2],
        "epoch 1 ended here",
    );
    let resume = resume.with_stop_after(None);
    let mut seen = Vec::new();
    let third = run_bot(&cfg, &data, &resume, &mut seen);
    assert!(third.finished);
    assert_eq!(sorted(&third.evaluations), evals[2..]);
    let joined = read_log(&dir.join("parts/metrics.jsonl")).unwrap();
    assert_eq!(bits(&joined), bits(&lines), "the resumed run's log differs");

    // Resuming the finished run runs nothing and keeps the log.
    let again = run_bot(&cfg, &data, &resume, &mut Vec::new());
    assert!(again.finished && again.evaluations.is_empty());
    assert_eq!(
        bits(&read_log(&dir.join("parts/metrics.jsonl")).unwrap()),
        bits(&lines)
    );
    std::fs::remove_dir_all(dir).ok();
}

/// What `MetricsLog::resume` keeps of a log with evaluation lines: an
/// evaluation of an epoch that ended before the checkpoint stays, once; one
/// of a later epoch goes with that epoch's steps.
#[test]
fn a_resume_keeps_the_evaluations_of_the_epochs_before_the_checkpoint() {
    let dir = std::env::temp_dir().join(format!("reid-evallog-resume-{}", std::process::id()));
    let path = dir.join("metrics.jsonl");
    let write_all = |path: &Path| {
        let mut log = MetricsLog::create(path).unwrap();
        for step in 0..9 {
            let epoch = step / 3;
            log.write(&LogLine::new(step, epoch).with("loss", 1.0 / (step + 1) as f64))
                .unwrap();
            if step % 3 == 2 {
                log.write(
                    &LogLine::new(step, epoch)
                        .with("mAP", 0.1 * (epoch + 1) as f64)
                        .with("rank1", 0.2),
                )
                .unwrap();
            }
        }
    };
    let evals_of = |lines: &[LogLine]| -> Vec<usize> {
        lines
            .iter()
            .filter(|l| is_eval(l))
            .map(|l| l.epoch)
            .collect()
    };
    for (checkpoint, kept_steps, kept_evals) in [
        (0, 0, vec![]),
        (2, 2, vec![]),
        (3, 3, vec![0]),
        (4, 4, vec![0]),
        (6, 6, vec![0, 1]),
        (9, 9, vec![0, 1, 2]),
    ] {
        write_all(&path);
        drop(MetricsLog::resume(&path, checkpoint).unwrap());
        let lines = read_log(&path).unwrap();
        let steps: Vec<usize> = lines
            .iter()
            .filter(|l| !is_eval(l))
            .map(|l| l.step)
            .collect();
        assert_eq!(steps, (0..kept_steps).collect::<Vec<_>>());
        assert_eq!(evals_of(&lines), kept_evals, "checkpoint at {checkpoint}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// MGN (no evaluation period of its own): the caller evaluates when it
/// likes, here after every epoch, and the log has those lines.
#[test]
fn mgn_evaluations_are_logged() {
    let (dir, data) = tiny_market("evallog-mgn");
    let cfg = tiny_mgn(2, 2);
    let device = Device::flex();
    let splits = &data.splits;
    let log = dir.join("mgn/metrics.jsonl");
    let run = RunOptions::default().with_log_path(Some(log.clone()));
    let train: &[ImageRecord] = &splits.train;
    let mut flags = Vec::new();
    let out = finetune_mgn(&cfg, MgnStart::Random, train, &device, &run, |e| {
        if let MgnEvent::EpochEnd {
            model,
            evaluate,
            metrics,
            ..
        } = e
        {
            flags.push(evaluate);
            let test = TestTransform::new(96, 32);
            let r = evaluate_mgn(model, &splits.query, &splits.gallery, test, 16, &device).unwrap();
            metrics.record(&r);
            metrics.insert("queries", r.num_valid_queries as f64);
        }
    })
    .unwrap();
    assert_eq!(flags, [false, false], "MGN has no evaluation period");
    let lines = read_log(&log).unwrap();
    let evals: Vec<&LogLine> = lines.iter().filter(|l| is_eval(l)).collect();
    let at: Vec<(usize, usize)> = evals.iter().map(|l| (l.step, l.epoch)).collect();
    assert_eq!(at, [(1, 0), (3, 1)]);
    for line in &evals {
        assert!(line.get("queries").is_some_and(|q| q > 0.0));
        let mut only_eval = (*line).clone();
        only_eval.values.retain(|(k, _)| k != "queries");
        check_eval_values(&only_eval);
    }
    assert_eq!(lines.len(), 4 + 2);
    assert_eq!(out.evaluations.len(), 2);
    std::fs::remove_dir_all(dir).ok();
}
