//! Scaling of the denoising pipeline (levels 1–3) on synthetic features.
//!
//! ```sh
//! cargo bench --bench denoise                      # 100K, 1M and 10M images
//! REID_DENOISE_SIZES=100000,1000000 cargo bench --bench denoise
//! ```
//!
//! Each size and configuration runs in a child process (so peak memory,
//! `VmHWM`, is per run): `reid::denoise::synthetic` streams a
//! LUPerson-NL-shaped corpus of 256-d features (10–30 persons per video,
//! tracks of 6–40 crops, so about 460 crops per video as in LUPerson-NL's 10M
//! crops / 21K videos) into `reid::denoise::run`, with the default
//! configuration (per-video mean-centring; merge and link thresholds for
//! target precision 0.95, calibrated on the first 64 videos; window 64
//! videos, stride 32, mutual top-4) and, with `REID_DENOISE_FORMER=1`, also
//! the former one (no normalisation, fixed thresholds, mutual top-2).
//! Generating the features is timed separately and is part of the wall
//! time; the table also scores the result against the generator's truth.
//! There is no reference implementation to compare with (CION released none).
//!
//! ```sh
//! REID_DENOISE_SIZES=100000,1000000 REID_DENOISE_FORMER=1 cargo bench --bench denoise
//! ```

#[path = "common/mod.rs"]
mod common;

use common::vm_hwm_mb;

use std::process::Command;
use std::time::Instant;

use reid::denoise::synthetic::{SyntheticConfig, SyntheticCorpus};
use reid::denoise::{DenoiseConfig, REMOVED, VideoNormalization, score};
use serde_json::{Value, json};

const CHILD_ENV: &str = "REID_DENOISE_BENCH_CHILD";
const CONFIG_ENV: &str = "REID_DENOISE_BENCH_CONFIG";
const CROPS_PER_VIDEO: f64 = 460.0;

/// The configuration named `name`: "default" or "former".
fn denoise_config(name: &str) -> DenoiseConfig {
    let mut c = DenoiseConfig::default();
    if name == "former" {
        c.normalization.mode = VideoNormalization::None;
        c.calibration.target_precision = None;
        c.level3.mutual_top_k = 2;
    }
    c
}

fn child(images: u64, config: &str) {
    let cfg = SyntheticConfig::default()
        .with_seed(1)
        .with_videos(((images as f64 / CROPS_PER_VIDEO).round() as usize).max(1))
        .with_persons_per_video((10, 30))
        .with_track_len((6, 40))
        .with_dim(256)
        .with_recurrence_span(32);
    let mut generator = SyntheticCorpus::new(cfg).expect("valid synthetic config");
    let mut truth: Vec<i64> = Vec::new();
    let mut gen_seconds = 0.0;
    let source = std::iter::from_fn(|| {
        let t = Instant::now();
        let next = generator.next_video();
        gen_seconds += t.elapsed().as_secs_f64();
        next.map(|(b, t)| {
            truth.extend(t);
            Ok(b)
        })
    });
    let t0 = Instant::now();
    let out = reid::denoise::run(&denoise_config(config), source, |_| {}).expect("denoising runs");
    let wall = t0.elapsed().as_secs_f64();
    let q = score(&out.labels, &truth).expect("scored");
    let raw_ids = out.report.level1.tracklets_in;
    println!(
        "{}",
        json!({
            "images": out.report.images,
            "videos": out.report.videos,
            "wall_seconds": wall,
            "generate_seconds": gen_seconds,
            "denoise_seconds": wall - gen_seconds,
            "peak_rss_mb": vm_hwm_mb(),
            "tracklets": raw_ids,
            "identities": out.identities,
            "kept": out.labels.iter().filter(|&&l| l != REMOVED).count(),
            "f_score": q.f_score,
            "precision": q.precision,
            "recall": q.recall,
            "links": out.report.level3.links,
            "config": config,
            "calibration": out.report.calibration,
        })
    );
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    if let Ok(n) = std::env::var(CHILD_ENV) {
        let config = std::env::var(CONFIG_ENV).unwrap_or_else(|_| "default".into());
        child(n.parse().expect("image count"), &config);
        return;
    }
    let mut configs = vec!["default"];
    if std::env::var("REID_DENOISE_FORMER").is_ok_and(|v| v == "1") {
        configs.insert(0, "former");
    }
    let sizes: Vec<u64> = std::env::var("REID_DENOISE_SIZES")
        .unwrap_or_else(|_| "100000,1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let exe = std::env::current_exe().expect("own path");
    println!(
        "{:>8} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>6} {:>6} {:>9}",
        "config",
        "images",
        "videos",
        "wall s",
        "gen s",
        "denoise s",
        "peak MB",
        "tracklets",
        "ids",
        "P",
        "F",
        "link thr"
    );
    for (n, config) in sizes
        .iter()
        .flat_map(|&n| configs.iter().map(move |&c| (n, c)))
    {
        let out = Command::new(&exe)
            .env(CHILD_ENV, n.to_string())
            .env(CONFIG_ENV, config)
            .output()
            .expect("spawn child");
        let line = String::from_utf8_lossy(&out.stdout);
        let Some(v) = line
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
        else {
            eprintln!("size {n} failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        };
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let link = v["calibration"]["link"]["threshold"]
            .as_f64()
            .unwrap_or(f64::NAN);
        println!(
            "{:>8} {:>10} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>10} {:>9} {:>6.3} {:>6.3} {:>9.4}",
            config,
            f("images"),
            f("videos"),
            f("wall_seconds"),
            f("generate_seconds"),
            f("denoise_seconds"),
            f("peak_rss_mb"),
            f("tracklets"),
            f("identities"),
            f("precision"),
            f("f_score"),
            link
        );
    }
}
