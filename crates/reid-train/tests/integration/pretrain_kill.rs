//! A pre-training process killed with SIGKILL in the middle of a run (a
//! checkpoint after every step, so the kill may land inside a checkpoint
//! write) resumes from its newest complete checkpoint, and the metrics log
//! of the interrupted + resumed run equals that of an uninterrupted run,
//! bit for bit, with no step lost or repeated.
//!
//! The test re-runs its own binary as the worker process (selected by an
//! environment variable) so that it can kill it.

use crate::common;
use reid_train::FromConfig;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use common::{loss_bits, tiny_cion, tiny_records};
use reid_data::ImageRecord;
use reid_data::sampler_identity::KSchedule;
use reid_train::checkpoint::CheckpointDir;
use reid_train::metrics_log::read_log;
use reid_train::{CionConfig, PretrainEvent, RunOptions, pretrain_cion};

const WORKER: &str = "REID_KILL_TEST_WORKER_DIR";

fn config() -> CionConfig {
    (tiny_cion(4, 3))
        .with_k_schedule(KSchedule::constant(2))
        .with_seed(9)
}

fn options(dir: &Path, resume: bool) -> RunOptions {
    RunOptions::default()
        .with_checkpoint_dir(Some(dir.join("ckpt")))
        .with_checkpoint_every(1)
        .with_keep_checkpoints(3)
        .with_resume(resume)
        .with_log_path(Some(dir.join("metrics.jsonl")))
        .with_stop_after(None)
}

fn records(dir: &Path) -> Vec<ImageRecord> {
    serde_json::from_str::<Vec<(String, i64)>>(
        &std::fs::read_to_string(dir.join("records.json")).unwrap(),
    )
    .unwrap()
    .into_iter()
    .map(|(p, pid)| ImageRecord::new(p, pid, 0))
    .collect()
}

/// The worker: trains slowly (a pause after each step) until killed.
#[test]
fn worker() {
    let Ok(dir) = std::env::var(WORKER) else {
        return; // only runs as the child of the test below
    };
    let dir = Path::new(&dir);
    pretrain_cion(
        &config(),
        FromConfig,
        &records(dir),
        &Device::flex(),
        &options(dir, false),
        |e| {
            if let PretrainEvent::Step(_) = e {
                std::thread::sleep(Duration::from_millis(400));
            }
        },
    )
    .unwrap();
}

/// The full name of the `worker` test in this binary: `<module>::worker`
/// (the tests are modules of one binary, `tests/integration/main.rs`).
fn worker_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::worker")
}

#[test]
fn a_killed_run_resumes_without_lost_or_repeated_steps() {
    if std::env::var(WORKER).is_ok() {
        return;
    }
    let (dir, recs) = tiny_records("kill");
    let list: Vec<(String, i64)> = recs
        .iter()
        .map(|r| match &r.location {
            reid_data::ImageLocation::Path(p) => (p.display().to_string(), r.pid),
            reid_data::ImageLocation::LmdbKey(_) => unreachable!("synthetic files"),
        })
        .collect();
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(
        run_dir.join("records.json"),
        serde_json::to_string(&list).unwrap(),
    )
    .unwrap();
    let recs = records(&run_dir);

    // Reference: the same run, uninterrupted, in this process.
    let (cfg, device, plain) = (config(), Device::flex(), RunOptions::default());
    let reference = pretrain_cion(&cfg, FromConfig, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(reference.steps_done, 12);

    // The worker, killed once a few checkpoints exist.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &worker_test_name(),
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(WORKER, &run_dir)
        .spawn()
        .unwrap();
    let ckpts = CheckpointDir::new(run_dir.join("ckpt"), 3);
    let t0 = Instant::now();
    loop {
        let done = ckpts.latest().unwrap().map_or(0, |c| c.step);
        if done >= 5 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the worker wrote no checkpoint of 5 steps in 2 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = ckpts.latest().unwrap().unwrap().step;
    assert!(at_kill < 12, "the worker finished before the kill");

    // Resume in this process and finish.
    let mut resumed_from = None;
    let resume = options(&run_dir, true);
    let out = pretrain_cion(&cfg, FromConfig, &recs, &device, &resume, |e| {
        if let PretrainEvent::Resumed { step, .. } = e {
            resumed_from = Some(step);
        }
    })
    .unwrap();
    assert!(out.finished);
    assert!(resumed_from.is_some_and(|s| s >= at_kill));
    let log = read_log(&run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(loss_bits(&log), loss_bits(&reference.log));
    std::fs::remove_dir_all(dir).ok();
}
