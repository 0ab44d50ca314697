//! ReIDZoo inference throughput, one model per family, burn (`flex`
//! backend) against PyTorch on the same CPU threads, in one run.
//!
//! ```sh
//! cargo bench --bench zoo
//! BENCH_MODELS=convnext_tiny,vit_small cargo bench --bench zoo
//! ```
//!
//! Workload: CION's feature of each model (`ZooModel::embed`: ResNet GAP,
//! GhostNet `conv_head`, ConvNeXt/EdgeNeXt `LayerNorm(GAP)`, ViT/VOLO class
//! token, Swin/FastViT/RepViT GAP), batch 16 × 3×256×128, random weights,
//! in the inference form `extract` uses (`ZooModel::into_inference`:
//! BatchNorm folded into ResNet, RepViT and FastViT re-parameterised).
//! PyTorch: `tools/zoo_bench_torch.py` as a subprocess (`.venv/bin/python`
//! or `$REID_PYTHON`), `eval()` + `inference_mode`, 2 threads, the same
//! reference models the parity tests use (timm, re-parameterised where
//! ours is). Each side is timed in alternating rounds (`BENCH_ROUNDS`,
//! default 2) of `BENCH_RUNS` (default 3) passes after one warm-up; a burn
//! time includes reading the output back. "ratio" = burn median time /
//! PyTorch median time (< 1: burn faster). Without PyTorch the torch
//! columns say so and burn is still timed.

#[path = "common/mod.rs"]
mod common;

use common::{env_usize, json_times, median, run_python_json, torch_timing_args};

use std::time::Instant;

use reid::backbones::{Embed, ZooModel};
use reid::burn::tensor::{Device, Distribution, Tensor};

const BATCH: usize = 16;
const HEIGHT: usize = 256;
const WIDTH: usize = 128;
const THREADS: usize = 2;

/// One model of each ReIDZoo family.
const DEFAULT_MODELS: [&str; 9] = [
    "resnet50",
    "ghostnet_1_0",
    "edgenext_small",
    "repvit_m1_0",
    "fastvit_s12",
    "convnext_tiny",
    "volo_d1",
    "vit_small",
    "swin_tiny",
];

/// One PyTorch round for `model`: per-pass times in seconds, or why none.
fn torch_round(model: &str, runs: usize) -> Result<Vec<f64>, String> {
    let mut args = vec!["--model".into(), model.to_string()];
    args.extend(torch_timing_args(BATCH, HEIGHT, WIDTH, THREADS, runs));
    json_times(&run_python_json("zoo_bench_torch.py", &args)?)
}

/// One burn round: per-pass times in seconds after one warm-up.
fn burn_round(model: &ZooModel, x: &Tensor<4>, runs: usize) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 1 {
        let t0 = Instant::now();
        let y = model.embed(x.clone()).map_err(|e| e.to_string())?;
        let v: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap_or_default();
        std::hint::black_box(v);
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    let rounds = env_usize("BENCH_ROUNDS", 2);
    let runs = env_usize("BENCH_RUNS", 3);
    let names: Vec<String> = match std::env::var("BENCH_MODELS") {
        Ok(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        Err(_) => DEFAULT_MODELS.iter().map(|s| s.to_string()).collect(),
    };
    let device = Device::flex();
    let x = Tensor::<4>::random(
        [BATCH, 3, HEIGHT, WIDTH],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    println!(
        "ReIDZoo CION feature, batch {BATCH} x 3x{HEIGHT}x{WIDTH}, {THREADS} threads, \
         {rounds} rounds x {runs} passes per side (median s; images/s from the median)\n"
    );
    println!(
        "| model | family | params (M) | PyTorch s | burn s | PyTorch img/s | burn img/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in &names {
        let model = match ZooModel::build(name, &device) {
            Ok(m) => m,
            Err(e) => {
                println!("| {name} | – | – | – | – | – | – | {e} |");
                continue;
            }
        };
        // The table's count is the training form's; time the inference form.
        let params = model.num_parameters() as f64 / 1e6;
        let model = model.into_inference();
        let mut burn = Vec::new();
        let mut torch = Vec::new();
        let mut torch_err = None;
        let mut burn_err = None;
        for _ in 0..rounds {
            match burn_round(&model, &x, runs) {
                Ok(t) => burn.extend(t),
                Err(e) => burn_err = Some(e),
            }
            match torch_round(name, runs) {
                Ok(t) => torch.extend(t),
                Err(e) => torch_err = Some(e),
            }
        }
        let b = if burn.is_empty() {
            f64::NAN
        } else {
            median(&mut burn)
        };
        let t = if torch.is_empty() {
            f64::NAN
        } else {
            median(&mut torch)
        };
        let note = match (&burn_err, &torch_err) {
            (Some(e), _) => format!("burn failed: {e}"),
            (None, Some(e)) if torch.is_empty() => format!("no PyTorch: {e}"),
            _ => format!("{:.2}", b / t),
        };
        println!(
            "| {name} | {} | {params:.2} | {t:.3} | {b:.3} | {:.1} | {:.1} | {note} |",
            model.entry.family,
            BATCH as f64 / t,
            BATCH as f64 / b,
        );
    }
}
