//! Benchmark of `reid-metrics` against the NumPy reference `tools/metrics_reference.py`
//! (torchreid protocol: one stable argsort per query), on the same random problems.
//!
//! ```text
//! cargo bench --bench metrics
//! REID_BENCH_CASES=market-eval,market-rerank cargo bench --bench metrics
//! ```
//! Cases: `market-eval` (3,368 × 15,913 distance matrix), `market-rerank` (re-ranking
//! from the q-g, q-q and g-g distance matrices), `msmt-eval` (11,659 × 82,161
//! distance matrix), `msmt-eval-features` (same problem from 128-d features,
//! streamed), `msmt-rerank` (re-ranking from 128-d features; ours only: the NumPy
//! reference needs several dense 93,820² matrices, > 35 GB each).
//! Each side runs in its own process: ours is this binary re-executed in child mode
//! (peak memory = `VmHWM` of /proc/self/status), the reference runs under
//! `$REID_PYTHON` (default `.venv/bin/python`, else `python3`) and reports
//! `resource.getrusage` peak RSS. Timings exclude reading the files; both sides
//! report their load time separately. Set `REID_BENCH_SKIP_PYTHON=1` to time ours only.

#[path = "common/mod.rs"]
mod common;

use common::{cpu_seconds, python, vm_hwm_mb};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reid_metrics::npy::{read_ids, read_matrix, write_ids, write_matrix};
use reid_metrics::rerank::{evaluate_reranked, evaluate_reranked_features};
use reid_metrics::{
    EvalConfig, Labels, Metric, RerankConfig, evaluate, evaluate_features, pairwise_distance,
};
use serde_json::{Value, json};

const CHILD_ENV: &str = "REID_METRICS_BENCH_CHILD";

struct Problem {
    q: Array2<f32>,
    g: Array2<f32>,
    qp: Vec<i64>,
    qc: Vec<i64>,
    gp: Vec<i64>,
    gc: Vec<i64>,
}

/// Identities with random centres; features = centre + uniform noise (tie-free).
fn make_problem(nq: usize, ng: usize, n_ids: usize, n_cams: i64, dim: usize, seed: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres = Array2::from_shape_simple_fn((n_ids, dim), || rng.random_range(-1.0f32..1.0));
    let mut side = |n: usize| {
        let pids: Vec<i64> = (0..n).map(|_| rng.random_range(0..n_ids as i64)).collect();
        let cams: Vec<i64> = (0..n).map(|_| rng.random_range(0..n_cams)).collect();
        let mut f = Array2::<f32>::zeros((n, dim));
        for (i, mut row) in f.outer_iter_mut().enumerate() {
            let c = centres.row(pids[i] as usize);
            for (v, &m) in row.iter_mut().zip(c.iter()) {
                *v = m + rng.random_range(-1.6f32..1.6);
            }
        }
        (f, pids, cams)
    };
    let (g, gp, gc) = side(ng);
    let (q, qp, qc) = side(nq);
    Problem {
        q,
        g,
        qp,
        qc,
        gp,
        gc,
    }
}

fn write_ids_all(dir: &Path, p: &Problem) {
    write_ids(dir.join("qp.npy"), &p.qp).unwrap();
    write_ids(dir.join("qc.npy"), &p.qc).unwrap();
    write_ids(dir.join("gp.npy"), &p.gp).unwrap();
    write_ids(dir.join("gc.npy"), &p.gc).unwrap();
}

/// Runs `f` `REID_BENCH_REPEAT` times (default `default_reps`; the machine may be shared) and
/// returns the last result with the minimum wall time and the CPU time of that run.
fn timed<T>(default_reps: usize, mut f: impl FnMut() -> T) -> (T, f64, f64) {
    let reps: usize = std::env::var("REID_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_reps)
        .max(1);
    let (mut best, mut best_cpu, mut out) = (f64::INFINITY, 0.0, None);
    for _ in 0..reps {
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let r = f();
        let (w, c) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        if w < best {
            best = w;
            best_cpu = c;
        }
        out = Some(r);
    }
    (out.expect("at least one run"), best, best_cpu)
}

/// Child mode: evaluates the files of `dir` for `case`, prints one JSON line.
fn child(case: &str, dir: &Path) {
    let t0 = Instant::now();
    let q = Labels::new(
        read_ids(dir.join("qp.npy")).unwrap(),
        read_ids(dir.join("qc.npy")).unwrap(),
    )
    .unwrap();
    let g = Labels::new(
        read_ids(dir.join("gp.npy")).unwrap(),
        read_ids(dir.join("gc.npy")).unwrap(),
    )
    .unwrap();
    let ecfg = EvalConfig::default();
    let rcfg = RerankConfig::default();
    let (res, load, compute, cpu) = match case {
        "market-eval" | "msmt-eval" => {
            let d = read_matrix(dir.join("distmat.npy")).unwrap();
            let load = t0.elapsed().as_secs_f64();
            let (r, w, c) = timed(3, || evaluate(d.view(), &q, &g, &ecfg).unwrap());
            (r, load, w, c)
        }
        "market-rerank" => {
            let d = read_matrix(dir.join("distmat.npy")).unwrap();
            let qq = read_matrix(dir.join("distmat_qq.npy")).unwrap();
            let gg = read_matrix(dir.join("distmat_gg.npy")).unwrap();
            let load = t0.elapsed().as_secs_f64();
            let (r, w, c) = timed(1, || {
                evaluate_reranked(d.view(), qq.view(), gg.view(), &q, &g, &rcfg, &ecfg).unwrap()
            });
            (r, load, w, c)
        }
        "msmt-eval-features" | "msmt-rerank" => {
            let qf = read_matrix(dir.join("q.npy")).unwrap();
            let gf = read_matrix(dir.join("g.npy")).unwrap();
            let load = t0.elapsed().as_secs_f64();
            let (r, w, c) = timed(if case == "msmt-rerank" { 1 } else { 3 }, || {
                if case == "msmt-rerank" {
                    evaluate_reranked_features(
                        qf.view(),
                        gf.view(),
                        &q,
                        &g,
                        Metric::Euclidean,
                        false,
                        &rcfg,
                        &ecfg,
                    )
                    .unwrap()
                } else {
                    evaluate_features(
                        qf.view(),
                        gf.view(),
                        &q,
                        &g,
                        Metric::Euclidean,
                        false,
                        &ecfg,
                    )
                    .unwrap()
                }
            });
            (r, load, w, c)
        }
        other => panic!("unknown case {other}"),
    };
    let out = json!({
        "compute_seconds": compute, "compute_cpu_seconds": cpu, "load_seconds": load, "peak_rss_mb": vm_hwm_mb(),
        "mAP": res.map, "mINP": res.minp, "r1": res.cmc[0], "num_valid_queries": res.num_valid_queries,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{out}");
}

fn last_json_line(stdout: &[u8]) -> Option<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
}

fn run_ours(case: &str, dir: &Path) -> Option<Value> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{case}:{}", dir.display()))
        .output()
        .ok()?;
    child_json(&out, "ours", case)
}

/// The last JSON line a child printed; `None`, with its stderr shown, when
/// `who` failed on `case`.
fn child_json(out: &std::process::Output, who: &str, case: &str) -> Option<Value> {
    if !out.status.success() {
        eprintln!(
            "{who} failed on {case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    last_json_line(&out.stdout)
}

fn run_python(case: &str, dir: &Path) -> Option<Value> {
    if std::env::var("REID_BENCH_SKIP_PYTHON").is_ok() || case == "msmt-rerank" {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/metrics_reference.py");
    let p = |n: &str| dir.join(n).display().to_string();
    let mut args = vec![script.display().to_string()];
    for (flag, file) in [
        ("--query-pids", "qp.npy"),
        ("--query-camids", "qc.npy"),
        ("--gallery-pids", "gp.npy"),
        ("--gallery-camids", "gc.npy"),
    ] {
        args.push(flag.into());
        args.push(p(file));
    }
    match case {
        "market-eval" | "msmt-eval" => args.extend(["--distmat".into(), p("distmat.npy")]),
        "market-rerank" => args.extend([
            "--distmat".into(),
            p("distmat.npy"),
            "--distmat-qq".into(),
            p("distmat_qq.npy"),
            "--distmat-gg".into(),
            p("distmat_gg.npy"),
            "--rerank".into(),
        ]),
        _ => args.extend(["--query".into(), p("q.npy"), "--gallery".into(), p("g.npy")]),
    }
    args.push("--json".into());
    let out = Command::new(python()).args(&args).output().ok()?;
    child_json(&out, "NumPy reference", case)
}

fn prepare(case: &str, dir: &Path) {
    let t = Instant::now();
    let market = case.starts_with("market");
    let p = if market {
        make_problem(3368, 15913, 751, 6, 128, 1501)
    } else {
        make_problem(11659, 82161, 3060, 15, 128, 17)
    };
    write_ids_all(dir, &p);
    match case {
        "market-eval" | "msmt-eval" => {
            let d = pairwise_distance(p.q.view(), p.g.view(), Metric::Euclidean, false).unwrap();
            write_matrix(dir.join("distmat.npy"), d.view()).unwrap();
        }
        "market-rerank" => {
            for (name, a, b) in [
                ("distmat.npy", &p.q, &p.g),
                ("distmat_qq.npy", &p.q, &p.q),
                ("distmat_gg.npy", &p.g, &p.g),
            ] {
                let d = pairwise_distance(a.view(), b.view(), Metric::Euclidean, false).unwrap();
                write_matrix(dir.join(name), d.view()).unwrap();
            }
        }
        _ => {
            write_matrix(dir.join("q.npy"), p.q.view()).unwrap();
            write_matrix(dir.join("g.npy"), p.g.view()).unwrap();
        }
    }
    eprintln!("[{case}] data written in {:.1}s", t.elapsed().as_secs_f64());
}

fn f(v: &Option<Value>, key: &str) -> Option<f64> {
    v.as_ref().and_then(|v| v.get(key)).and_then(|x| x.as_f64())
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (case, dir) = spec.split_once(':').expect("case:dir");
        child(case, Path::new(dir));
        return;
    }
    let cases = std::env::var("REID_BENCH_CASES").unwrap_or_else(|_| {
        "market-eval,market-rerank,msmt-eval,msmt-eval-features,msmt-rerank".into()
    });
    let root: PathBuf =
        std::env::temp_dir().join(format!("reid-metrics-bench-{}", std::process::id()));
    println!(
        "reid-metrics benchmark ({} threads; reference: {} tools/metrics_reference.py)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        python().display()
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>10}",
        "case", "ours s", "ours MB", "ours load", "numpy s", "numpy MB", "ratio", "|dmAP|"
    );
    for case in cases.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let dir = root.join(case);
        std::fs::create_dir_all(&dir).expect("temp dir");
        prepare(case, &dir);
        let ours = run_ours(case, &dir);
        let theirs = run_python(case, &dir);
        let (os, om, ol) = (
            f(&ours, "compute_seconds"),
            f(&ours, "peak_rss_mb"),
            f(&ours, "load_seconds"),
        );
        let (ps, pm) = (f(&theirs, "compute_seconds"), f(&theirs, "peak_rss_mb"));
        let show = |x: Option<f64>, prec: usize| {
            x.map(|v| format!("{v:.prec$}"))
                .unwrap_or_else(|| "-".into())
        };
        let ratio = match (os, ps) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x", b / a),
            _ => "-".into(),
        };
        let dmap = match (f(&ours, "mAP"), f(&theirs, "mAP")) {
            (Some(a), Some(b)) => format!("{:.1e}", (a - b).abs()),
            _ => "-".into(),
        };
        println!(
            "{:<20} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>10}",
            case,
            show(os, 3),
            show(om, 0),
            show(ol, 2),
            show(ps, 2),
            show(pm, 0),
            ratio,
            dmap
        );
        if let Some(o) = &ours {
            eprintln!("[{case}] ours: {o}");
        }
        if let Some(t) = &theirs {
            eprintln!(
                "[{case}] numpy: mAP {:?} mINP {:?}",
                t.get("mAP"),
                t.get("mINP")
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&root);
}
