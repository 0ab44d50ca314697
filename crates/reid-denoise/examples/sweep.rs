//! Sweep of the denoising pipeline over the synthetic difficulty settings
//! (`reid_denoise::corpora`): pairwise precision / recall / F per level, the
//! former pipeline (no normalisation, fixed thresholds, mutual top-2)
//! against the current defaults and other target precisions, the
//! calibration's estimates, and level 3's precision–recall curve over the
//! link threshold (the merge threshold and the rest as calibrated) with the
//! calibrated operating point marked.
//!
//! ```sh
//! cargo run --release -p reid-denoise --example sweep -- --out /tmp/sweep \
//!     [--videos 120] [--seed 0] [--levels base,shift,...] \
//!     [--targets 0.9,0.95,0.99] [--links 0.1,0.2,...] [--set video_shift=1.5 ...] \
//!     [--denoise level3.mutual_top_k=4 ...]
//! ```
//!
//! Writes `sweep.json` (every run), `sweep.csv` (one row per run and
//! level), `pr.png` (level-3 precision against recall over link thresholds
//! `--links`, one curve per setting, the default's point as a square) and
//! prints a Markdown table. `--set k=v`
//! overrides a field of every setting's `SyntheticConfig` (JSON value),
//! `--denoise path=v` one of every run's `DenoiseConfig` (dotted path).

use std::path::PathBuf;
use std::time::Instant;

use reid_denoise::corpora::Difficulty;
use reid_denoise::synthetic::{SyntheticConfig, SyntheticCorpus};
use reid_denoise::{
    CalibrationReport, DenoiseConfig, Quality, VideoNormalization, run as denoise, score,
};
use reid_viz::chart::PALETTE;
use reid_viz::{LineChart, Series, output::Format};
use serde_json::{Value, json};

struct Args {
    out: PathBuf,
    videos: usize,
    seed: u64,
    levels: Vec<Difficulty>,
    targets: Vec<f32>,
    links: Vec<f32>,
    sets: Vec<(String, Value)>,
    denoise_sets: Vec<(String, Value)>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        out: PathBuf::from("sweep"),
        videos: 120,
        seed: 0,
        levels: Difficulty::ALL.to_vec(),
        targets: vec![0.9, 0.95, 0.99],
        links: (1..=16).map(|i| i as f32 * 0.05).collect(),
        sets: Vec::new(),
        denoise_sets: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(value()?),
            "--videos" => a.videos = value()?.parse().map_err(|e| format!("--videos: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--levels" => {
                a.levels = value()?
                    .split(',')
                    .map(|n| Difficulty::from_name(n).ok_or(format!("unknown level {n:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--targets" => {
                a.targets = value()?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--targets {t:?}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--links" => {
                a.links = value()?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--links {t:?}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--set" => {
                let v = value()?;
                let (k, x) = v.split_once('=').ok_or("--set takes key=value")?;
                let x: Value = serde_json::from_str(x).map_err(|e| format!("--set {k}: {e}"))?;
                a.sets.push((k.to_string(), x));
            }
            "--denoise" => {
                let v = value()?;
                let (k, x) = v.split_once('=').ok_or("--denoise takes key.path=value")?;
                let x: Value =
                    serde_json::from_str(x).map_err(|e| format!("--denoise {k}: {e}"))?;
                a.denoise_sets.push((k.to_string(), x));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// `cfg` with the `--denoise` overrides (dotted paths into its JSON form).
fn with_overrides(cfg: DenoiseConfig, sets: &[(String, Value)]) -> Result<DenoiseConfig, String> {
    let mut v = serde_json::to_value(cfg).map_err(|e| e.to_string())?;
    for (k, x) in sets {
        let mut slot = &mut v;
        for part in k.split('.') {
            slot = slot
                .get_mut(part)
                .ok_or(format!("--denoise: no field {k:?}"))?;
        }
        *slot = x.clone();
    }
    serde_json::from_value(v).map_err(|e| format!("--denoise: {e}"))
}

fn corpus_config(d: Difficulty, a: &Args) -> Result<SyntheticConfig, String> {
    let mut v = serde_json::to_value(d.config(a.seed, a.videos)).map_err(|e| e.to_string())?;
    for (k, x) in &a.sets {
        v[k] = x.clone();
    }
    serde_json::from_value(v).map_err(|e| format!("--set: {e}"))
}

/// One run: its scores per level, calibration and seconds.
struct Outcome {
    levels: [Quality; 4],
    scale: f32,
    calibration: CalibrationReport,
    links: usize,
    seconds: f64,
}

fn run_once(sc: SyntheticConfig, cfg: &DenoiseConfig) -> Result<Outcome, String> {
    let mut g = SyntheticCorpus::new(sc).map_err(|e| e.to_string())?;
    let mut truth = Vec::new();
    let mut blocks = Vec::new();
    while let Some((b, t)) = g.next_video() {
        blocks.push(Ok(b));
        truth.extend(t);
    }
    let t0 = Instant::now();
    let out = denoise(cfg, blocks, |_| {}).map_err(|e| e.to_string())?;
    let seconds = t0.elapsed().as_secs_f64();
    let lv = out.levels.as_ref().ok_or("levels not recorded")?;
    let mut levels = Vec::new();
    for l in [&lv.raw, &lv.level1, &lv.level2, &out.labels] {
        levels.push(score(l, &truth).map_err(|e| e.to_string())?);
    }
    Ok(Outcome {
        levels: levels.try_into().map_err(|_| "four levels")?,
        scale: out.report.scale,
        calibration: out.report.calibration,
        links: out.report.level3.links,
        seconds,
    })
}

const LEVELS: [&str; 4] = ["tracker", "level 1", "level 2", "level 3"];

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn main_inner() -> Result<(), String> {
    let a = parse()?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let defaults = DenoiseConfig::default().with_record_levels(true);
    let mut former = defaults;
    former.normalization.mode = VideoNormalization::None;
    former.calibration.target_precision = None;
    former.level3.mutual_top_k = 2;
    let mut center_fixed = defaults;
    center_fixed.calibration.target_precision = None;
    let mut whiten = defaults;
    whiten.normalization.mode = VideoNormalization::Whiten;

    let mut runs = Vec::new();
    let mut csv = String::from(
        "setting,pipeline,target,level,precision,recall,f,recall_all,identities,true_identities,kept\n",
    );
    let mut series = Vec::new();
    let mut curves = Vec::new();
    let mut colors = PALETTE.to_vec();
    colors.push(image::Rgb([127, 127, 127]));
    println!(
        "| setting | pipeline | tracker F | level 1 F | level 2 F | level 3 P | level 3 R | level 3 F | ids (true) | link thr | exp. P | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &d in &a.levels {
        let sc = corpus_config(d, &a)?;
        let mut variants: Vec<(String, Option<f32>, DenoiseConfig)> = vec![
            ("former (none, fixed)".into(), None, former),
            ("center, fixed, top-4".into(), None, center_fixed),
            ("whiten, target 0.95".into(), Some(0.95), whiten),
        ];
        for &t in &a.targets {
            let mut c = defaults;
            c.calibration.target_precision = Some(t);
            let name = if t == 0.95 {
                "default (center, target 0.95)".to_string()
            } else {
                format!("center, target {t}")
            };
            variants.push((name, Some(t), c));
        }
        let mut operating = None;
        let mut curve_base = None;
        for (name, target, cfg) in variants {
            let cfg = with_overrides(cfg, &a.denoise_sets)?;
            let o = run_once(sc, &cfg)?;
            let l3 = o.levels[3];
            let link = o.calibration.link;
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} ({}) | {:.3} {:?} | {} | {:.1} |",
                d.name(),
                name,
                o.levels[0].f_score,
                o.levels[1].f_score,
                o.levels[2].f_score,
                l3.precision,
                l3.recall,
                l3.f_score,
                l3.identities,
                l3.true_identities,
                link.threshold,
                link.status,
                if target.is_some() {
                    format!("{:.3}", link.expected_precision)
                } else {
                    "–".into()
                },
                o.seconds
            );
            for (level, q) in LEVELS.iter().zip(&o.levels) {
                csv.push_str(&format!(
                    "{},{},{},{},{:.5},{:.5},{:.5},{:.5},{},{},{}\n",
                    d.name(),
                    name,
                    target.map_or(String::new(), |t| t.to_string()),
                    level,
                    q.precision,
                    q.recall,
                    q.f_score,
                    q.recall_all,
                    q.identities,
                    q.true_identities,
                    q.images_kept
                ));
            }
            if name.starts_with("default") {
                operating = Some((l3.recall, l3.precision));
                curve_base = Some((cfg, o.scale, o.calibration.merge.threshold));
            }
            runs.push(json!({
                "setting": d.name(),
                "corpus": sc,
                "pipeline": name,
                "config": cfg,
                "quality": LEVELS.iter().zip(&o.levels).map(|(l, q)| json!({"labels": l, "quality": q})).collect::<Vec<_>>(),
                "calibration": o.calibration,
                "links": o.links,
                "seconds": o.seconds,
            }));
        }
        // Level 3's precision–recall curve over the link threshold, the
        // rest as the default run set it.
        let Some((cfg, scale, merge)) = curve_base else {
            continue;
        };
        let mut fixed = cfg.scaled(scale);
        fixed.scale = reid_denoise::ThresholdScale::Absolute;
        fixed.calibration.target_precision = None;
        fixed.level2.merge_threshold = merge;
        let mut pr = Vec::new();
        for &t in &a.links {
            fixed.level3.link_threshold = t;
            let o = run_once(sc, &fixed)?;
            let q = o.levels[3];
            pr.push((q.recall, q.precision));
            curves.push(json!({"setting": d.name(), "link_threshold": t, "quality": q}));
        }
        let color = colors[(series.len() / 2) % colors.len()];
        series.push(Series::new(d.name(), pr).with_color(color));
        if let Some(p) = operating {
            series.push(Series::new("", vec![p]).with_color(color).with_markers());
        }
    }
    let chart = LineChart {
        title: "Level 3 over the link threshold (squares: calibrated, target 0.95)".into(),
        x_label: "pairwise recall (level 3)".into(),
        y_label: "pairwise precision".into(),
        series,
        y_range: None,
        log_y: false,
    };
    let png = a.out.join("pr.png");
    chart
        .save(&png, Format::Png, 900, 600)
        .map_err(|e| format!("{}: {e}", png.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = a.out.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("sweep.csv", csv.as_bytes())?;
    let json = serde_json::to_vec_pretty(&json!({"runs": runs, "link_curves": curves}))
        .map_err(|e| e.to_string())?;
    write("sweep.json", &json)?;
    eprintln!("wrote {}/sweep.{{json,csv}} and pr.png", a.out.display());
    Ok(())
}
