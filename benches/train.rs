//! Training-step throughput: one whole optimiser step (forward, backward,
//! update) of the toolkit's recipes on burn (`flex` by default), against the
//! same step in PyTorch on the same threads, in one run.
//!
//! ```sh
//! cargo bench --bench train                 # every row (tens of minutes on 2 cores)
//! cargo bench --bench train -- --quick      # no batch-64 rows, 1 timed step each
//! cargo bench --bench train -- --tiny       # every row at toy sizes (seconds; dry runs)
//! ```
//!
//! Rows: BoT (ResNet50 and ResNet50-IBN-a, last stride 1, at batch 16 = P4×K4
//! and 64 = P16×K4, 256×128; ViT-S (ICS) at batch 16), a CION step (ResNet50,
//! batch 8 = 4 identities × K 2, crops 2×256×128 + 8×128×64, DINO head with
//! 65,336 prototypes as CION releases it) and a LUPerson MoCo v2 step
//! (ResNet50, batch 16 at 256×128, queue 65,536). The PyTorch reference is
//! `tools/bench_train_torch.py` (run with `.venv/bin/python` or
//! `$REID_PYTHON`), which composes the same steps.
//!
//! What is timed, ours (each row in a child process, this binary re-run with
//! `--child ROW`, so that every row's peak memory is its own):
//! - **step**: MoCo and CION: `MocoTrainer::step` / `CionTrainer::step`, the
//!   library's whole step, on fixed random tensors. BoT: there is no
//!   per-step entry besides the recipe, so the step is composed here of the
//!   recipe's public parts (`ReidModel::forward_seeded`, the BNNeck logits,
//!   `cross_entropy_label_smooth` + `triplet_loss` with the recipe's
//!   configurations, Adam with coupled weight decay 5e-4) and is the sum of
//!   the three phases below.
//! - **phases** (a replica of the step on the same networks, each phase
//!   ended by `Device::sync` and the loss read back): `fwd` (up to the loss
//!   on the host), `bwd` (`backward` + gathering the parameters' gradients),
//!   `opt` (the rest: clipping, weight decay, the update, EMA, center,
//!   enqueue, diagnostics).
//! - **input**: what the recipe runs to make the step's tensors from JPEG
//!   files before the step (serially in the recipes today): BoT
//!   `load_train_batch` with `TrainTransform::bot`, MoCo two LUPerson views
//!   and CION's multi-crop through `load_view_batch`, on synthetic
//!   Market-1501 images (128×64 JPEGs) written to a temp folder.
//! - **recipe** (BoT only; `BENCH_RECIPE=0` skips it): the interval between
//!   two steps of `finetune` itself on those images (input
//!   included), as a check of the composed step.
//!
//! PyTorch: the same phases, ended by `loss.item()` / `cuda.synchronize`.
//! "time ratio" = our step median / PyTorch's step median (< 1: ours
//! faster). Every row takes `BENCH_WARMUP` (1) untimed and `BENCH_RUNS` (3;
//! `--quick` 1) timed steps on each side.
//!
//! Options (arguments after `--`, or environment variables):
//! `--quick` (`BENCH_QUICK=1`), `--tiny` (`BENCH_TINY=1`), `--rows a,b`
//! (`BENCH_ROWS`), `--backend flex|wgpu|wgpu-cpu|cuda` (`BENCH_BACKEND`,
//! compiled-in backends only), `--torch-device cpu|cuda`
//! (`BENCH_TORCH_DEVICE`), `--json PATH` (`BENCH_JSON`: every result as one
//! JSON document), `BENCH_THREADS` (2: PyTorch's threads and, on `flex`,
//! rayon's), `BENCH_SKIP_TORCH=1`. A load average above 1.5 at the start or
//! the end is flagged: such timings are not valid on a 2-core machine.
//!
//! PyTorch's OpenMP threads inherit this process's environment. On a shared
//! (oversubscribed) 2-core machine, PyTorch 2.15 with `OMP_WAIT_POLICY`
//! unset took 7.2 s for a step that took 0.1 s with it set to `PASSIVE` or
//! `ACTIVE` (measured 2026-12-06, tiny BoT row): set it there, and report
//! it; the bench prints its value.

#[path = "common/mod.rs"]
mod common;

use common::{env_usize, median, run_python_json, vm_hwm_mb};
use reid::train::RunOptions;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reid::Backend;
use reid::backbones::{
    Arch, EmbeddingHeadConfig, ReidModel, ResNet, TrainBackbone, vit::ViTConfig,
};
use reid::burn::optim::decay::WeightDecayConfig;
use reid::burn::optim::momentum::MomentumConfig;
use reid::burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use reid::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use reid::data::ImageRecord;
use reid::data::augment::TrainTransform;
use reid::data::datasets::{ImageDatasetOptions, market1501};
use reid::data::loader::ViewsTransform;
use reid::data::views::TwoCrops;
use reid::losses::dino::{DinoLossConfig, dino_diagnostics};
use reid::losses::moco::{InfoNceQueue, info_nce, momentum_update};
use reid::losses::schedule::{clip_gradients_per_param, ema_update};
use reid::losses::{cross_entropy_label_smooth, identity_guided_dino_loss, triplet_loss};
use reid::synth::{Market1501Config, WorldConfig, write_market1501};
use reid::train::finetune::{TrainSet, load_train_batch, zoo_from_scratch};
use reid::train::pretrain::cion::{self, CionTrainer};
use reid::train::pretrain::moco::{self, MocoTrainer};
use reid::train::pretrain::optim::decay_weights;
use reid::train::pretrain::views::load_view_batch;
use reid::train::{CionConfig, DataParallel, FinetuneConfig, MocoConfig};
use serde_json::{Value, json};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// What a row trains.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// BoT fine-tuning of a backbone (`Arch` name or `vit_small`).
    Bot(&'static str),
    /// One CION step on a ResNet50.
    Cion,
    /// One MoCo v2 step on a ResNet50.
    Moco,
}

/// One benchmark row, at full or tiny size.
#[derive(Debug, Clone)]
struct Row {
    name: &'static str,
    kind: Kind,
    /// Images per step (`P·K` for BoT and CION).
    batch: usize,
    /// Identities per batch (BoT `P`; CION `batch / K`).
    p: usize,
    /// Images per identity (BoT, CION).
    k: usize,
    height: usize,
    width: usize,
    local: [usize; 2],
    local_crops: usize,
    out_dim: usize,
    queue: usize,
    base_width: usize,
    tiny: bool,
    /// Whether `--quick` keeps it.
    quick: bool,
}

fn rows(tiny: bool) -> Vec<Row> {
    let base = |name, kind, batch, p, k, quick| Row {
        name,
        kind,
        batch,
        p,
        k,
        height: 256,
        width: 128,
        local: [128, 64],
        local_crops: 8,
        out_dim: 65336,
        queue: 65536,
        base_width: 64,
        tiny: false,
        quick,
    };
    let mut rows = vec![
        base("bot-r50-b16", Kind::Bot("resnet50"), 16, 4, 4, true),
        base("bot-r50-b64", Kind::Bot("resnet50"), 64, 16, 4, false),
        base(
            "bot-r50ibn-b16",
            Kind::Bot("resnet50_ibn_a"),
            16,
            4,
            4,
            true,
        ),
        base(
            "bot-r50ibn-b64",
            Kind::Bot("resnet50_ibn_a"),
            64,
            16,
            4,
            false,
        ),
        base("bot-vits-b16", Kind::Bot("vit_small"), 16, 4, 4, true),
        base("cion-r50-b8", Kind::Cion, 8, 4, 2, true),
        base("moco-r50-b16", Kind::Moco, 16, 16, 1, true),
    ];
    if tiny {
        for r in &mut rows {
            // Same code paths, toy sizes: narrow ResNets, 64×32 images,
            // small heads and queue, a 2-block ViT.
            r.tiny = true;
            r.height = 64;
            r.width = 32;
            r.local = [32, 16];
            r.local_crops = 2;
            r.out_dim = 256;
            r.queue = 64;
            r.base_width = 8;
            if r.batch == 64 {
                (r.batch, r.p, r.k) = (8, 4, 2);
            } else if r.kind != Kind::Moco {
                (r.batch, r.p, r.k) = (4, 2, 2);
            } else {
                (r.batch, r.p) = (4, 4);
            }
        }
    }
    rows
}

/// Run settings shared by the parent and its children.
#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    tiny: bool,
    rows: Option<Vec<String>>,
    backend: String,
    torch_device: String,
    json: Option<PathBuf>,
    warmup: usize,
    runs: usize,
    threads: usize,
    recipe: bool,
    skip_torch: bool,
    child: Option<String>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, env: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
    };
    let quick = args.iter().any(|a| a == "--quick") || env_flag("BENCH_QUICK");
    let tiny = args.iter().any(|a| a == "--tiny") || env_flag("BENCH_TINY");
    let runs_default = if quick || tiny { 1 } else { 3 };
    Opts {
        quick,
        tiny,
        rows: value("--rows", "BENCH_ROWS").map(|s| s.split(',').map(str::to_string).collect()),
        backend: value("--backend", "BENCH_BACKEND").unwrap_or_else(|| "flex".into()),
        torch_device: value("--torch-device", "BENCH_TORCH_DEVICE").unwrap_or_else(|| "cpu".into()),
        json: value("--json", "BENCH_JSON").map(PathBuf::from),
        warmup: value("--warmup", "BENCH_WARMUP")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        runs: value("--runs", "BENCH_RUNS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(runs_default)
            .max(1),
        threads: env_usize("BENCH_THREADS", 2),
        recipe: std::env::var("BENCH_RECIPE").map_or(true, |v| v != "0"),
        skip_torch: env_flag("BENCH_SKIP_TORCH"),
        child: value("--child", "BENCH_CHILD_ROW"),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn load_1min() -> f64 {
    load_average()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

// ------------------------------------------------------------------ child

/// Per-phase times of one side of a row.
#[derive(Default)]
struct Phases {
    fwd: Vec<f64>,
    bwd: Vec<f64>,
    opt: Vec<f64>,
}

impl Phases {
    fn push(&mut self, t: [f64; 3]) {
        self.fwd.push(t[0]);
        self.bwd.push(t[1]);
        self.opt.push(t[2]);
    }

    /// Records step `i`'s forward, backward and optimizer phases, between
    /// the instants `t`, unless it is a warm-up step.
    fn record(&mut self, o: &Opts, i: usize, t: [Instant; 4]) {
        if i >= o.warmup {
            self.push([
                (t[1] - t[0]).as_secs_f64(),
                (t[2] - t[1]).as_secs_f64(),
                (t[3] - t[2]).as_secs_f64(),
            ]);
        }
    }

    fn steps(&self) -> Vec<f64> {
        (0..self.fwd.len())
            .map(|i| self.fwd[i] + self.bwd[i] + self.opt[i])
            .collect()
    }
}

/// Seconds of each measured `run(i)`, after `o.warmup` unmeasured runs;
/// with `settle`, that device is synced before each clock starts.
fn time_runs(
    o: &Opts,
    settle: Option<&Device>,
    mut run: impl FnMut(usize) -> AnyResult<()>,
) -> AnyResult<Vec<f64>> {
    let mut times = Vec::with_capacity(o.runs);
    for i in 0..o.warmup + o.runs {
        if let Some(device) = settle {
            sync(device)?;
        }
        let t0 = Instant::now();
        run(i)?;
        if i >= o.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

fn sync(device: &Device) -> AnyResult<()> {
    device.sync().map_err(|e| format!("device sync: {e:?}"))?;
    Ok(())
}

/// Reads a `[1]` loss back to the host (ends the forward phase).
fn host_loss(loss: &Tensor<1>) -> AnyResult<f32> {
    let v: Vec<f32> = loss
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let v = v.first().copied().ok_or("empty loss")?;
    if !v.is_finite() {
        return Err(format!("non-finite loss {v}").into());
    }
    Ok(v)
}

/// Synthetic Market-1501 training images (128×64 JPEGs, 64×32 for tiny
/// rows) with at least `ids` identities of 4 images each.
fn synth_records(row: &Row, ids: usize) -> AnyResult<(PathBuf, Vec<ImageRecord>)> {
    let dir = std::env::temp_dir().join(format!(
        "reid-bench-train-{}-{}",
        std::process::id(),
        row.name
    ));
    let (h, w) = if row.tiny { (64, 32) } else { (128, 64) };
    let world = WorldConfig::sized(3, h, w).with_overwrite(true);
    let market = Market1501Config::two_camera(ids.max(4) as u32, 2);
    let report = write_market1501(&dir, &world, &market)?;
    let records = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default())?
        .splits
        .train;
    Ok((dir, records))
}

fn times_json(v: &[f64]) -> Value {
    json!(v)
}

fn phases_json(p: &Phases, input: &[f64]) -> Value {
    json!({"forward": p.fwd, "backward": p.bwd, "optimizer": p.opt, "input": input})
}

/// The ResNet `arch` (last stride `last_stride`) with the recipes' seeded
/// initialisation.
fn resnet(arch: &str, row: &Row, last_stride: usize, device: &Device) -> AnyResult<ResNet> {
    let net = Arch::from_name(arch)?
        .config()
        .with_base_width(row.base_width)
        .with_last_stride(last_stride)
        .init(device)?;
    Ok(reid::train::finetune::reinit_weights(net, 0, 0.01))
}

fn bot_child(row: &Row, o: &Opts, device: &Device) -> AnyResult<Value> {
    match row.kind {
        Kind::Bot("vit_small") if row.tiny => {
            let vit = ViTConfig::new()
                .with_embed_dim(32)
                .with_depth(2)
                .with_num_heads(2)
                .with_stem_hidden(8)
                .with_img_size([row.height, row.width])
                .init(device)?;
            bot_steps(row, o, device, vit)
        }
        Kind::Bot("vit_small") => {
            bot_steps(row, o, device, zoo_from_scratch("vit_small", 0, device)?)
        }
        Kind::Bot(arch) => bot_steps(row, o, device, resnet(arch, row, 1, device)?),
        _ => Err("not a BoT row".into()),
    }
}

const BOT_CLASSES: usize = 751;

fn bot_steps<M: TrainBackbone>(
    row: &Row,
    o: &Opts,
    device: &Device,
    backbone: M,
) -> AnyResult<Value> {
    let ad = device.clone().autodiff();
    let cfg = FinetuneConfig::default()
        .with_height(row.height as u32)
        .with_width(row.width as u32)
        .with_p(row.p)
        .with_k(row.k);
    let recipe_backbone = backbone.clone();
    let bb = backbone.to_device(&ad).train();
    let heads = EmbeddingHeadConfig::fastreid(bb.out_channels(), BOT_CLASSES).init(&ad)?;
    let mut model = ReidModel::new(bb, heads);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init();
    let (ce_cfg, tri_cfg) = (cfg.ce_config(), cfg.triplet_config());
    let images = Tensor::<4>::random(
        [row.batch, 3, row.height, row.width],
        Distribution::Normal(0.0, 1.0),
        &ad,
    );
    let labels: Vec<i64> = (0..row.batch).map(|i| (i / row.k) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [row.batch]), &ad);
    let mut phases = Phases::default();
    for i in 0..o.warmup + o.runs {
        sync(&ad)?;
        let t0 = Instant::now();
        let out = model.forward_seeded(images.clone(), i as u64);
        let logits = model.heads.logits(&out, targets.clone())?;
        let ce = cross_entropy_label_smooth(logits, targets.clone(), &ce_cfg)?;
        let tri = triplet_loss(out.before_neck, targets.clone(), &tri_cfg)?;
        let loss = ce.add(tri);
        host_loss(&loss)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(&ad)?;
        let t2 = Instant::now();
        model = optim.step(cfg.lr, model, grads);
        sync(&ad)?;
        let t3 = Instant::now();
        phases.record(o, i, [t0, t1, t2, t3]);
    }
    drop(model);

    // The recipe's input path, then the recipe itself on the same images.
    let (dir, records) = synth_records(row, row.p)?;
    let set = TrainSet::new(&records)?;
    let transform = TrainTransform::bot(row.height as u32, row.width as u32);
    let indices: Vec<usize> = (0..row.batch).map(|i| i % records.len()).collect();
    let input = time_runs(o, None, |i| {
        let (x, _) = load_train_batch(&set, &indices, &transform, 0, i, &ad)?;
        sync(&ad)?;
        drop(x);
        Ok(())
    })?;
    let mut recipe = Vec::new();
    if o.recipe {
        let steps = o.warmup + o.runs + 1;
        let rcfg = cfg
            .clone()
            .with_epochs(1)
            .with_iters_per_epoch(Some(steps))
            .with_eval_every(0);
        let mut stamps = Vec::with_capacity(steps);
        reid::train::finetune(
            &rcfg,
            recipe_backbone,
            &records,
            device,
            &RunOptions::default(),
            |e| {
                if let reid::train::finetune::RunEvent::Iteration(_) = e {
                    stamps.push(Instant::now());
                }
            },
        )?;
        recipe = stamps
            .windows(2)
            .skip(o.warmup)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
    }
    std::fs::remove_dir_all(dir).ok();
    Ok(json!({
        "step_s": times_json(&phases.steps()),
        "step_source": "composed (fwd + bwd + opt)",
        "phases_s": phases_json(&phases, &input),
        "recipe_s": recipe,
    }))
}

fn moco_child(row: &Row, o: &Opts, device: &Device) -> AnyResult<Value> {
    let ad = device.clone().autodiff();
    let cfg = MocoConfig::default()
        .with_base_width(row.base_width)
        .with_size([row.height as u32, row.width as u32])
        .with_batch_size(row.batch)
        .with_bn_groups(1)
        .with_queue_size(row.queue)
        .with_mlp_hidden_dim(if row.tiny { 64 } else { 2048 })
        .with_dim(if row.tiny { 16 } else { 128 });
    let query = moco::encoder_with(&cfg, resnet("resnet50", row, cfg.last_stride, device)?, &ad);
    let queue = InfoNceQueue::new(cfg.queue_size, cfg.dim, 0, &ad)?;
    let mut trainer = MocoTrainer::new(&cfg, query, queue, &ad)?;
    let shape = [row.batch, 3, row.height, row.width];
    let xq = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    let xk = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    // The library's step.
    let step = time_runs(o, Some(&ad), |i| {
        trainer.step(0, i, xq.clone(), xk.clone())?;
        sync(&ad)
    })?;
    // Its phases, replicated on the trainer's networks and queue.
    let mut sgd = SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: cfg.momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init();
    let dp = DataParallel::single(&ad);
    let mut phases = Phases::default();
    for i in 0..o.warmup + o.runs {
        sync(&ad)?;
        let t0 = Instant::now();
        momentum_update(&mut trainer.key, &trainer.query, cfg.key_momentum)?;
        let k = dp
            .shuffled_forward(
                &trainer.key,
                xk.clone(),
                cfg.bn_groups,
                i as u64,
                |key, x| key.forward(x),
            )?
            .detach();
        let q = trainer.query.forward_seeded(xq.clone(), i as u64);
        let loss = info_nce(q, k.clone(), trainer.queue.keys(), cfg.temperature)?;
        host_loss(&loss)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &trainer.query);
        sync(&ad)?;
        let t2 = Instant::now();
        trainer.query = sgd.step(cfg.lr, trainer.query.clone(), grads);
        trainer.queue.enqueue(k, None)?;
        sync(&ad)?;
        let t3 = Instant::now();
        phases.record(o, i, [t0, t1, t2, t3]);
    }
    drop(trainer);
    // Input: two LUPerson views of each image.
    let two_views = TwoCrops { view: cfg.view() };
    let ids = row.batch.div_ceil(4);
    let input = time_view_input(row, o, ids, two_views, &ad)?;
    Ok(pretrain_json(step, "MocoTrainer::step", &phases, &input))
}

fn cion_child(row: &Row, o: &Opts, device: &Device) -> AnyResult<Value> {
    let ad = device.clone().autodiff();
    let cfg = CionConfig::default()
        .with_arch("resnet50".into())
        .with_base_width(row.base_width)
        .with_global_size([row.height as u32, row.width as u32])
        .with_local_size([row.local[0] as u32, row.local[1] as u32])
        .with_local_crops(row.local_crops)
        .with_batch_size(row.batch)
        .with_out_dim(row.out_dim)
        .with_head_hidden_dim(if row.tiny { 64 } else { 2048 })
        .with_head_bottleneck_dim(if row.tiny { 32 } else { 256 });
    let student = cion::student_with(&cfg, resnet("resnet50", row, cfg.last_stride, device)?, &ad)?;
    let spe = 1000;
    let mut trainer = CionTrainer::new(&cfg, student, vec![spe; cfg.epochs], &ad)?;
    let mut crops: Vec<Tensor<4>> = (0..2)
        .map(|_| {
            Tensor::<4>::random(
                [row.batch, 3, row.height, row.width],
                Distribution::Normal(0.0, 1.0),
                &ad,
            )
        })
        .collect();
    for _ in 0..row.local_crops {
        crops.push(Tensor::<4>::random(
            [row.batch, 3, row.local[0], row.local[1]],
            Distribution::Normal(0.0, 1.0),
            &ad,
        ));
    }
    // Epoch 1: past the head's last-layer freeze, so every parameter moves.
    let epoch = 1;
    let step = time_runs(o, Some(&ad), |i| {
        trainer.step(epoch, spe * epoch + i, &crops, row.k)?;
        sync(&ad)
    })?;
    // Its phases, replicated on the trainer's networks and center.
    let loss_cfg = DinoLossConfig::default()
        .with_n_crops(crops.len())
        .with_student_temp(cfg.student_temp)
        .with_teacher_temp(cfg.teacher_temp)
        .with_sinkhorn_iterations(0);
    let mut adamw = AdamConfig::new().with_epsilon(1e-8).init();
    let (lr, wd, m) = (cfg.peak_lr(), cfg.weight_decay, cfg.momentum_teacher);
    let mut phases = Phases::default();
    for i in 0..o.warmup + o.runs {
        sync(&ad)?;
        let t0 = Instant::now();
        let t_out = trainer.teacher.forward(&crops[..2])?.detach();
        let s_out = trainer.student.forward_seeded(&crops, i as u64)?;
        let loss = identity_guided_dino_loss(
            s_out.clone(),
            t_out.clone(),
            trainer.center.value(),
            row.k,
            &loss_cfg,
        )?;
        host_loss(&loss)?;
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &trainer.student);
        sync(&ad)?;
        let t2 = Instant::now();
        let grads = clip_gradients_per_param(&trainer.student, grads, cfg.clip_grad)?;
        let student = decay_weights(trainer.student.clone(), &grads, lr * wd);
        trainer.student = adamw.step(lr, student, grads);
        dino_diagnostics(
            s_out.detach(),
            t_out.clone(),
            trainer.center.value(),
            &loss_cfg,
        )?;
        ema_update(&mut trainer.teacher, &trainer.student, m)?;
        trainer.center.update(t_out)?;
        sync(&ad)?;
        let t3 = Instant::now();
        phases.record(o, i, [t0, t1, t2, t3]);
    }
    drop(trainer);
    // Input: CION's multi-crop (2 global + local crops) of each image.
    let input = time_view_input(row, o, row.p, cfg.multi_crop(), &ad)?;
    Ok(pretrain_json(step, "CionTrainer::step", &phases, &input))
}

/// Seconds per measured load of a pre-training batch: `row.batch` images
/// of a synthetic set of `ids` identities, rendered into views of `sizes`
/// by `views`, on `ad`.
fn time_view_input<T: ViewsTransform + Clone>(
    row: &Row,
    o: &Opts,
    ids: usize,
    views: T,
    ad: &Device,
) -> AnyResult<Vec<f64>> {
    let (dir, records) = synth_records(row, ids)?;
    let set = TrainSet::new(&records)?;
    let indices: Vec<usize> = (0..row.batch).map(|i| i % records.len()).collect();
    let input = time_runs(o, None, |i| {
        let vs = load_view_batch(&set, &indices, views.clone(), 0, i, ad)?;
        sync(ad)?;
        drop(vs);
        Ok(())
    })?;
    std::fs::remove_dir_all(dir).ok();
    Ok(input)
}

/// A pre-training row's result: the library step's times (`source`), the
/// replicated phases and the input times.
fn pretrain_json(step: Vec<f64>, source: &str, phases: &Phases, input: &[f64]) -> Value {
    json!({
        "step_s": step,
        "step_source": source,
        "phases_s": phases_json(phases, input),
        "phases_sum_s": phases.steps(),
    })
}

fn child(name: &str, o: &Opts) -> AnyResult<Value> {
    let row = rows(o.tiny)
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("no row {name}"))?;
    let backend: Backend = o.backend.parse()?;
    let device = backend.device()?;
    device.seed(0);
    let mut out = match row.kind {
        Kind::Bot(_) => bot_child(&row, o, &device)?,
        Kind::Moco => moco_child(&row, o, &device)?,
        Kind::Cion => cion_child(&row, o, &device)?,
    };
    out["images_per_step"] = json!(row.batch);
    out["peak_rss_mb"] = json!(vm_hwm_mb());
    out["backend"] = json!(backend.to_string());
    Ok(out)
}

// ------------------------------------------------------------------ parent

fn run_child(row: &Row, o: &Opts) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(["--child", row.name])
        .args(["--backend", &o.backend])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--runs", &o.runs.to_string()]);
    if o.tiny {
        cmd.arg("--tiny");
    }
    if o.backend == "flex" && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        cmd.env("RAYON_NUM_THREADS", o.threads.to_string());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the child: {e}"))?;
    if !out.status.success() {
        // The child's own error line, or the panic message.
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        let msg = match lines.iter().position(|l| l.contains("panicked at")) {
            Some(i) => lines[i..lines.len().min(i + 2)].join(" "),
            None => lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&"child failed")
                .to_string(),
        };
        return Err(msg);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("bad child output {text:?}: {e}"))
}

fn torch_row(row: &Row, o: &Opts) -> Result<Value, String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |k: &str, v: String| {
        args.push(k.into());
        args.push(v);
    };
    match row.kind {
        Kind::Bot(arch) => {
            push("--row", "bot".into());
            push("--arch", arch.into());
        }
        Kind::Cion => push("--row", "cion".into()),
        Kind::Moco => push("--row", "moco".into()),
    }
    push("--batch", row.batch.to_string());
    push("--p", row.p.to_string());
    push("--k", row.k.to_string());
    push("--classes", BOT_CLASSES.to_string());
    push("--height", row.height.to_string());
    push("--width", row.width.to_string());
    push("--local-height", row.local[0].to_string());
    push("--local-width", row.local[1].to_string());
    push("--local-crops", row.local_crops.to_string());
    push("--out-dim", row.out_dim.to_string());
    push("--queue", row.queue.to_string());
    push("--base-width", row.base_width.to_string());
    push("--threads", o.threads.to_string());
    push("--warmup", o.warmup.to_string());
    push("--runs", o.runs.to_string());
    push("--device", o.torch_device.clone());
    if row.tiny {
        args.push("--tiny".into());
    }
    run_python_json("bench_train_torch.py", &args)
}

fn arr(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn med(v: &Value) -> f64 {
    median(&mut arr(v))
}

/// Seconds with three significant digits (at least three decimals).
fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 0.1 || v == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// Images per second.
fn fmt_rate(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "—".into()
    }
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    let o = parse_opts();
    if let Some(name) = &o.child {
        match child(name, &o) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("row {name}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let selected: Vec<Row> = rows(o.tiny)
        .into_iter()
        .filter(|r| match &o.rows {
            Some(names) => names.iter().any(|n| n == r.name),
            None => !o.quick || r.quick,
        })
        .collect();
    if selected.is_empty() {
        eprintln!("no rows selected (names: {})", row_names());
        std::process::exit(2);
    }
    let load_start = load_average();
    let omp_wait = std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "unset".into());
    eprintln!(
        "train bench: backend {}, torch device {}, {} warm-up + {} timed steps per side, OMP_WAIT_POLICY {omp_wait}, load {load_start}",
        o.backend, o.torch_device, o.warmup, o.runs
    );
    let mut results = Vec::new();
    let mut failed = false;
    for row in &selected {
        let t = Instant::now();
        let ours = run_child(row, &o);
        let torch = if o.skip_torch {
            Err("skipped (BENCH_SKIP_TORCH)".to_string())
        } else {
            torch_row(row, &o)
        };
        eprintln!(
            "{}: done in {:.0} s (load {})",
            row.name,
            t.elapsed().as_secs_f64(),
            load_average()
        );
        if ours.is_err() {
            failed = true;
        }
        results.push((row.clone(), ours, torch));
    }
    let load_end = load_average();
    print_tables(&o, &results, &load_start, &load_end);
    if let Some(path) = &o.json {
        let doc = json!({
            "backend": o.backend,
            "torch_device": o.torch_device,
            "tiny": o.tiny,
            "warmup": o.warmup,
            "runs": o.runs,
            "threads": o.threads,
            "load_start": load_start,
            "load_end": load_end,
            "rows": results.iter().map(|(r, ours, torch)| json!({
                "row": r.name,
                "ours": ours.as_ref().map_or_else(|e| json!({"error": e}), Clone::clone),
                "torch": torch.as_ref().map_or_else(|e| json!({"error": e}), Clone::clone),
            })).collect::<Vec<_>>(),
        });
        if let Err(e) = write_json(path, &doc) {
            eprintln!("cannot write {}: {e}", path.display());
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn row_names() -> String {
    rows(false)
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_json(path: &Path, doc: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(doc)? + "\n")
}

type RowResult = (Row, Result<Value, String>, Result<Value, String>);

fn print_tables(o: &Opts, results: &[RowResult], load_start: &str, load_end: &str) {
    println!(
        "\nTraining steps, backend {} vs PyTorch on {} ({} threads, OMP_WAIT_POLICY {}); {} warm-up + {} timed steps per side{}; load average {load_start} at the start, {load_end} at the end\n",
        o.backend,
        o.torch_device,
        o.threads,
        std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "unset".into()),
        o.warmup,
        o.runs,
        if o.tiny { "; TINY sizes (dry run)" } else { "" }
    );
    println!(
        "| row | images | PyTorch s/step | PyTorch img/s | ours s/step | ours img/s | time ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (row, ours, torch) in results {
        let n = row.batch as f64;
        let t = torch.as_ref().map_or(f64::NAN, |v| med(&v["times_s"]));
        let s = ours.as_ref().map_or(f64::NAN, |v| med(&v["step_s"]));
        let ratio = if t.is_finite() && s.is_finite() {
            format!("{:.2}", s / t)
        } else {
            "—".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {ratio} |",
            row.name,
            row.batch,
            fmt(t),
            fmt_rate(n / t),
            fmt(s),
            fmt_rate(n / s)
        );
    }
    println!(
        "\nWhere the time goes (median s per step; ours: fwd / bwd / opt of the replicated step, input = the recipe's decode + augmentation of the step's images, run before the step; recipe = interval between steps of `finetune`, input included; peak RSS of each side's process, MB)\n"
    );
    println!(
        "| row | ours fwd | ours bwd | ours opt | ours input | recipe step | torch fwd | torch bwd | torch opt | ours MB | torch MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (row, ours, torch) in results {
        let (f, b, p, i, r, mb) = match ours {
            Ok(v) => {
                let ph = &v["phases_s"];
                (
                    med(&ph["forward"]),
                    med(&ph["backward"]),
                    med(&ph["optimizer"]),
                    med(&ph["input"]),
                    med(&v["recipe_s"]),
                    v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
                )
            }
            Err(_) => (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        let (tf, tb, tp, tmb) = match torch {
            Ok(v) => {
                let ph = &v["phases_s"];
                (
                    ph["forward"].as_f64().unwrap_or(f64::NAN),
                    ph["backward"].as_f64().unwrap_or(f64::NAN),
                    ph["optimizer"].as_f64().unwrap_or(f64::NAN),
                    v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
                )
            }
            Err(_) => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            row.name,
            fmt(f),
            fmt(b),
            fmt(p),
            fmt(i),
            fmt(r),
            fmt(tf),
            fmt(tb),
            fmt(tp),
            mb,
            tmb
        );
    }
    for (row, ours, torch) in results {
        if let Err(e) = ours {
            println!("\n{}: ours failed: {e}", row.name);
        }
        if let Err(e) = torch {
            println!("\n{}: PyTorch unavailable: {e}", row.name);
        }
        if let Ok(v) = ours
            && let Some(sum) = v.get("phases_sum_s")
        {
            println!(
                "\n{}: {} median {} s; its replicated phases sum to {} s",
                row.name,
                v["step_source"].as_str().unwrap_or("step"),
                fmt(med(&v["step_s"])),
                fmt(med(sum))
            );
        }
    }
    let high = [load_start, load_end]
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .any(|l| l > 1.5)
        || load_1min() > 1.5;
    if high {
        println!(
            "\nWARNING: load average above 1.5 during the run: on a 2-core machine these timings are not valid measurements."
        );
    }
}
