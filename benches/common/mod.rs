//! Helpers shared by the bench binaries (each includes this file with
//! `#[path = "common/mod.rs"] mod common;`, so not every helper is used by every bench).
#![allow(dead_code)]

use std::path::PathBuf;

/// The Python interpreter of the reference side: `$REID_PYTHON`, else the
/// repository's `.venv/bin/python`, else `python3`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("REID_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Peak resident memory of this process, MiB (`VmHWM` of /proc/self/status;
/// NaN where unavailable).
pub fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) of this process, seconds (from /proc/self/stat).
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// An environment variable as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (mean of the middle two for an even count; NaN when empty).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `tools/<script>` with `args` under [`python`] and parses the JSON
/// line it prints; the error is the script's last stderr line (or why it
/// could not run).
pub fn run_python_json(script: &str, args: &[String]) -> Result<serde_json::Value, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(script);
    let out = std::process::Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python().display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).map_err(|e| format!("bad output {text:?}: {e}"))
}

/// The `times_s` array of a reference script's JSON output.
pub fn json_times(json: &serde_json::Value) -> Result<Vec<f64>, String> {
    json["times_s"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .ok_or_else(|| format!("no times in {json}"))
}

/// The timing arguments the PyTorch reference scripts share: `--batch`,
/// `--height`, `--width`, `--threads`, `--warmup 1`, `--runs`.
pub fn torch_timing_args(
    batch: usize,
    height: usize,
    width: usize,
    threads: usize,
    runs: usize,
) -> Vec<String> {
    [
        ("--batch", batch),
        ("--height", height),
        ("--width", width),
        ("--threads", threads),
        ("--warmup", 1),
        ("--runs", runs),
    ]
    .iter()
    .flat_map(|(flag, v)| [flag.to_string(), v.to_string()])
    .collect()
}
