//! A real `SIGKILL` of the `reid` binary in the middle of a tiny CION
//! pre-training run (32×16 images, a checkpoint after every step, so the
//! kill may land inside a checkpoint write), at a random step, then
//! `--resume`: the per-step losses in `metrics.jsonl` and the exported
//! weights must equal those of an uninterrupted run, bit for bit.
//!
//! The step is drawn from the clock and printed; `REID_KILL_STEP=N` replays
//! a given one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn reid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reid"));
    c.stdin(Stdio::null()).env("RUST_BACKTRACE", "1");
    c
}

fn ok(mut c: Command, what: &str) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A small Market-style set and CION annotations over its train images.
fn data(root: &Path) -> PathBuf {
    let mut c = reid();
    c.args([
        "synth",
        "--kind",
        "market1501",
        "--height",
        "32",
        "--width",
        "16",
    ])
    .args(["--train-ids", "6", "--test-ids", "2", "--cameras", "2"])
    .args(["--junk", "0", "--distractors", "0", "--out"])
    .arg(root);
    ok(c, "synth");
    let market = root.join("Market-1501-v15.09.15");
    let mut names: Vec<String> = std::fs::read_dir(market.join("bounding_box_train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let entries: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "{{\"file_path\":\"bounding_box_train/{n}\",\"id\":{}}}",
                n[..4].parse::<i64>().unwrap()
            )
        })
        .collect();
    let annos = market.join("annos.json");
    std::fs::write(&annos, format!("[{}]", entries.join(","))).unwrap();
    annos
}

fn config(root: &Path) -> PathBuf {
    let p = root.join("cion.toml");
    std::fs::write(
        &p,
        "arch = \"resnet18\"\nbase_width = 4\nglobal_size = [32, 16]\nlocal_size = [16, 8]\n\
         local_crops = 2\nbatch_size = 4\nepochs = 3\nhead_hidden_dim = 16\n\
         head_bottleneck_dim = 8\nout_dim = 16\nwarmup_epochs = 1\nseed = 5\n\
         [k_schedule]\nepochs = [1, 1000]\ninstances = [2, 4]\n",
    )
    .unwrap();
    p
}

fn pretrain(annos: &Path, cfg: &Path, out: &Path) -> Command {
    let mut c = reid();
    c.args(["pretrain", "cion", "--checkpoint-every", "1", "--annos"])
        .arg(annos)
        .arg("--config")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The log's lines without the timing fields, as JSON text.
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(l).unwrap();
            v.retain(|k, _| k != "images_per_sec");
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

/// The step of the newest complete checkpoint of a run, if any.
fn checkpoint_step(run: &Path) -> Option<usize> {
    let name = std::fs::read_to_string(run.join("checkpoints/latest")).ok()?;
    name.trim().strip_prefix("step-")?.parse().ok()
}

#[test]
fn a_run_killed_at_a_random_step_resumes_to_the_same_losses_and_weights() {
    let root = std::env::temp_dir().join(format!("reid-kill-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let annos = data(&root.join("data"));
    let cfg = config(&root);

    let whole = root.join("whole");
    ok(pretrain(&annos, &cfg, &whole), "the uninterrupted run");
    let reference = losses(&whole);
    let total = reference.len();
    assert!(total >= 6, "{total} steps");

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let at: usize = std::env::var("REID_KILL_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 + nanos % (total - 2));
    println!("killing after the checkpoint of step {at} of {total} (REID_KILL_STEP={at} replays)");

    let killed = root.join("killed");
    let mut child = pretrain(&annos, &cfg, &killed).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if checkpoint_step(&killed).is_some_and(|s| s >= at) {
            child.kill().unwrap(); // SIGKILL
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status:?}) before step {at}; it was to be killed there");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint of step {at}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    let stopped_at = checkpoint_step(&killed).unwrap();
    assert!(
        stopped_at >= at && stopped_at < total,
        "stopped at {stopped_at}"
    );

    let mut resume = pretrain(&annos, &cfg, &killed);
    resume.arg("--resume").stderr(Stdio::inherit());
    ok(resume, "the resumed run");

    assert_eq!(losses(&killed), reference, "per-step log after the resume");
    for part in [
        "teacher_backbone.safetensors",
        "student_backbone.safetensors",
    ] {
        let a = std::fs::read(whole.join(part)).unwrap();
        let b = std::fs::read(killed.join(part)).unwrap();
        assert!(a == b, "{part} differs after the resume");
    }
    let _ = std::fs::remove_dir_all(&root);
}
