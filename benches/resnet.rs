//! ResNet50 inference throughput, burn (this crate, `flex` backend) against
//! PyTorch on the same CPU threads, in one run.
//!
//! ```sh
//! cargo bench --bench resnet
//! ```
//!
//! Diagnostics: `BENCH_PROFILE=1` prints the median time per stage (stem,
//! layer1–4) for burn and PyTorch; `BENCH_PROFILE=ops` single convolutions.
//!
//! Workload: the ReID trunk (no pooling/classifier) of ResNet50 with last
//! stride 1, batch 16 × 3×256×128, random weights, inference mode (burn:
//! a plain device, so BatchNorm uses running statistics; PyTorch:
//! `eval()` + `inference_mode`, `torch.set_num_threads(2)`; run by
//! `tools/backbone_bench_torch.py` as a subprocess with `.venv/bin/python`,
//! or `$REID_PYTHON`). Each side is timed in alternating rounds
//! (`BENCH_ROUNDS`, default 3) of `BENCH_RUNS` (default 5) forward passes
//! after one warm-up; a burn time covers the forward pass and the read-back
//! of the output. burn is timed twice: the trainable `ResNet`, and the
//! inference copy with BatchNorm folded into the convolutions
//! (`ResNet::fold_batch_norm`), and thrice: that folded network run by the
//! host engine `HostResNet` (NHWC activations kept across layers, each
//! convolution one GEMM over the whole batch with bias/residual/ReLU fused;
//! what `extract` uses on the CPU). The table prints the median and minimum per batch, the
//! images/s from the median, and the ratio of burn's median time to
//! PyTorch's (< 1 means burn is faster). Without PyTorch the torch row says
//! so and the bench still times burn.

#[path = "common/mod.rs"]
mod common;

use common::{env_usize, json_times, median, python, run_python_json, torch_timing_args};

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use reid::backbones::{Backbone, ResNetConfig, ResNetDepth};
use reid::burn::tensor::{Device, Distribution, Tensor};
use reid::infer::HostResNet;

const BATCH: usize = 16;
const HEIGHT: usize = 256;
const WIDTH: usize = 128;
const THREADS: usize = 2;

/// One PyTorch round: per-batch times in seconds, or why there are none.
fn torch_round(runs: usize, last_stride: usize) -> Result<Vec<f64>, String> {
    let mut args = vec!["--last-stride".into(), last_stride.to_string()];
    args.extend(torch_timing_args(BATCH, HEIGHT, WIDTH, THREADS, runs));
    json_times(&run_python_json("backbone_bench_torch.py", &args)?)
}

fn burn_round(model: &impl Backbone, x: &Tensor<4>, runs: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 1 {
        let t0 = Instant::now();
        let y = model.forward_features(x.clone());
        let v: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap_or_default();
        std::hint::black_box(v);
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times
}

fn row(name: &str, times: &mut [f64], reference: Option<f64>) -> f64 {
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(times);
    let ratio = reference.map_or("1.00 (ref)".to_string(), |r| format!("{:.2}", med / r));
    println!(
        "| {name:<34} | {med:>8.3} | {min:>8.3} | {:>8.1} | {ratio:>10} |",
        BATCH as f64 / med
    );
    med
}

/// Median time of `f` over `runs` calls after one warm-up.
fn time_it(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut t)
}

fn sync(t: Tensor<4>) {
    std::hint::black_box(t.into_data().try_to_vec::<f32>().unwrap_or_default());
}

/// `BENCH_PROFILE=1`: median time per stage, burn (plain and folded) and
/// PyTorch, to see where the difference comes from.
fn profile(model: &reid::backbones::ResNet, x: &Tensor<4>, runs: usize) {
    use reid::burn::tensor::activation::relu;
    let fused = model.fold_batch_norm();
    let stem = |x: Tensor<4>| {
        model
            .maxpool
            .forward(relu(model.bn1.forward(model.conv1.forward(x))))
    };
    let mut inputs = vec![x.clone()];
    let mut h = stem(x.clone());
    for layer in [&model.layer1, &model.layer2, &model.layer3] {
        inputs.push(h.clone());
        for b in layer.iter() {
            h = b.forward(h);
        }
    }
    inputs.push(h);
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    rows.push((
        "stem".into(),
        time_it(runs, || sync(stem(x.clone()))),
        time_it(runs, || {
            sync(fused.maxpool.forward(relu(fused.stem_forward(x.clone()))))
        }),
    ));
    let stages = [&model.layer1, &model.layer2, &model.layer3, &model.layer4];
    let mut offset = 0;
    for (i, layer) in stages.iter().enumerate() {
        let input = &inputs[i + 1];
        let plain = time_it(runs, || {
            let mut h = input.clone();
            for b in layer.iter() {
                h = b.forward(h);
            }
            sync(h)
        });
        let blocks = &fused.blocks[offset..offset + layer.len()];
        let folded = time_it(runs, || {
            let mut h = input.clone();
            for b in blocks {
                h = b.forward(h);
            }
            sync(h)
        });
        offset += layer.len();
        rows.push((format!("layer{}", i + 1), plain, folded));
    }
    let torch: Option<serde_json::Value> = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/backbone_bench_torch.py"))
        .args(["--profile", "--runs", &runs.to_string(), "--warmup", "1"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    println!("\n| stage  | burn s | burn folded s | torch s | folded / torch |");
    println!("|--------|--------|---------------|---------|----------------|");
    for (name, plain, folded) in rows {
        let t = torch
            .as_ref()
            .and_then(|j| j["stages_s"][&name].as_f64())
            .unwrap_or(f64::NAN);
        println!(
            "| {name:<6} | {plain:>6.3} | {folded:>13.3} | {t:>7.3} | {:>14.2} |",
            folded / t
        );
    }
}

/// `BENCH_PROFILE=ops`: single convolutions of ResNet50's stages, burn's
/// `Conv2d` against a 1×1 convolution written as one matmul over
/// `[batch·h·w, c_in]`.
fn profile_ops(runs: usize) {
    use reid::burn::nn::PaddingConfig2d;
    use reid::burn::nn::conv::Conv2dConfig;
    let device = Device::flex();
    let cases: [(&str, usize, usize, usize, [usize; 2]); 6] = [
        ("l1 1x1 256->64", 256, 64, 1, [64, 32]),
        ("l1 3x3 64->64", 64, 64, 3, [64, 32]),
        ("l3 1x1 1024->256", 1024, 256, 1, [16, 8]),
        ("l3 3x3 256->256", 256, 256, 3, [16, 8]),
        ("l4 1x1 2048->512", 2048, 512, 1, [16, 8]),
        ("l4 3x3 512->512", 512, 512, 3, [16, 8]),
    ];
    println!("\n| conv (batch {BATCH}) | burn Conv2d s | 1x1 as matmul s |");
    println!("|---|---|---|");
    for (name, cin, cout, k, [h, w]) in cases {
        let p = k / 2;
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([BATCH, cin, h, w], Distribution::Normal(0.0, 1.0), &device);
        let t_conv = time_it(runs, || sync(conv.forward(x.clone())));
        let t_mm = if k == 1 {
            let wt = conv.weight.val().reshape([cout, cin]).transpose();
            time_it(runs, || {
                let y = x
                    .clone()
                    .permute([0, 2, 3, 1])
                    .reshape([BATCH * h * w, cin])
                    .matmul(wt.clone())
                    .reshape([BATCH, h, w, cout])
                    .permute([0, 3, 1, 2]);
                sync(y)
            })
        } else {
            f64::NAN
        };
        println!("| {name} | {t_conv:.4} | {t_mm:.4} |");
    }
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let runs = env_usize("BENCH_RUNS", 5);
    let last_stride = env_usize("BENCH_LAST_STRIDE", 1);
    let device = Device::flex();
    device.seed(0);
    let model = match ResNetConfig::new()
        .with_depth(ResNetDepth::R50)
        .with_last_stride(last_stride)
        .init(&device)
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("cannot build ResNet50: {e}");
            std::process::exit(1);
        }
    };
    let x = Tensor::<4>::random(
        [BATCH, 3, HEIGHT, WIDTH],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    if std::env::var("BENCH_PROFILE").is_ok_and(|v| v == "ops") {
        profile_ops(runs);
        return;
    }
    if std::env::var("BENCH_PROFILE").is_ok_and(|v| v == "1") {
        profile(&model, &x, runs);
        return;
    }
    let fused = model.fold_batch_norm();
    let host = match HostResNet::from_fused(&fused) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot build HostResNet: {e}");
            std::process::exit(1);
        }
    };
    let mut burn_times = Vec::new();
    let mut fused_times = Vec::new();
    let mut host_times = Vec::new();
    let mut torch_times = Vec::new();
    let mut torch_error = None;
    for round in 0..rounds {
        burn_times.extend(burn_round(&model, &x, runs));
        fused_times.extend(burn_round(&fused, &x, runs));
        host_times.extend(burn_round(&host, &x, runs));
        if torch_error.is_none() {
            match torch_round(runs, last_stride) {
                Ok(t) => torch_times.extend(t),
                Err(e) => torch_error = Some(e),
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    println!(
        "\nResNet50 trunk, last stride {last_stride}, batch {BATCH} x 3x{HEIGHT}x{WIDTH}, \
         inference, {THREADS} threads; {rounds} rounds x {runs} runs each side\n"
    );
    println!(
        "| {:<34} | {:>8} | {:>8} | {:>8} | {:>10} |",
        "implementation", "median s", "min s", "img/s", "time ratio"
    );
    println!(
        "|{:-<36}|{:-<10}|{:-<10}|{:-<10}|{:-<12}|",
        "", "", "", "", ""
    );
    let torch_med = if let Some(e) = &torch_error {
        println!("| {:<34} | unavailable: {e}", "PyTorch");
        None
    } else {
        Some(row(
            "PyTorch (MKL-DNN, inference_mode)",
            &mut torch_times,
            None,
        ))
    };
    let burn_med = row("burn flex, ResNet", &mut burn_times, torch_med);
    let fused_med = row(
        "burn flex, BN folded (FusedResNet)",
        &mut fused_times,
        torch_med,
    );
    let host_med = row("HostResNet (NHWC + GEMM)", &mut host_times, torch_med);
    if let Some(t) = torch_med {
        for (name, m) in [
            ("ResNet", burn_med),
            ("FusedResNet", fused_med),
            ("HostResNet", host_med),
        ] {
            println!(
                "\nburn {name} / PyTorch time ratio: {:.3} (throughput {:.2}x PyTorch's)",
                m / t,
                t / m
            );
        }
    }
}
