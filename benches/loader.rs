//! Training-loader throughput: JPEG decoding + BoT train transforms +
//! batching to `[64, 3, 256, 128]` f32, ours (`reid_data::loader`) against
//! PIL + torchvision on the same files and cores, in one run.
//!
//! ```sh
//! cargo bench --bench loader
//! ```
//!
//! Files: `BENCH_IMAGES` (default 512) JPEGs rendered by the synthetic
//! Market-1501 world, each resized (PIL-compatible bilinear) to a height
//! between 128 and 256 pixels at a 2:1 aspect (128×64 … 256×128) and saved
//! with the `image` crate's default JPEG quality (75) into a temp dir.
//!
//! Ours: [`TrainLoader`] with [`TrainTransform::bot`]`(256, 128)` over
//! consecutive batches of 64 (the last one shorter), each batch read,
//! decoded, transformed and stacked in one rayon task per image, then moved
//! into a burn tensor (`flex` device); timed on a 1-thread pool and on a pool
//! of every available core. PyTorch: `tools/bench_loader_torch.py` under
//! `.venv/bin/python` (or `$REID_PYTHON`): `Image.open().convert("RGB")` +
//! the same torchvision transforms + `torch.stack`, single-threaded in one
//! process (the per-core figure) and through a `DataLoader` with one worker
//! process per core. Each side runs `BENCH_ROUNDS` (default 3) alternating
//! rounds of one warm-up pass and one timed pass over every file; the table
//! prints the median images per second and the ratio ours / PyTorch at the
//! same core count (> 1: ours faster). Without PyTorch the torch rows say so.
//!
//! Then the pre-training views, each image drawn into every view of its
//! recipe by [`TrainLoader::load_views`] (what the recipes run): MoCo's two
//! LUPerson crops ([`TwoCrops::lup`]), PNL's weak/strong pair
//! ([`PnlViews::new`]) and CION's 2 global + 8 local crops
//! ([`MultiCrop::cion`]), against the upstream pipelines in PIL +
//! torchvision (`bench_loader_torch.py --pipeline moco|pnl|cion`), same
//! rounds and cores (`BENCH_VIEWS=0` skips them).

#[path = "common/mod.rs"]
mod common;

use common::{env_usize, json_times, median, run_python_json};

use std::path::{Path, PathBuf};
use std::time::Instant;

use reid::burn::tensor::Device;
use reid::data::ImageRecord;
use reid::data::augment::TrainTransform;
use reid::data::loader::{ReidDataset, TrainLoader, ViewsTransform, decode_rgb};
use reid::data::transform::{Interpolation, resize};
use reid::data::views::{MultiCrop, PnlViews, TwoCrops};
use reid::synth::{Market1501Config, WorldConfig, write_market1501};

const BATCH: usize = 64;
const HEIGHT: u32 = 256;
const WIDTH: u32 = 128;

/// Renders the synthetic set and writes `n` JPEGs of varied sizes into `dir`.
fn make_images(dir: &Path, n: usize) -> Result<Vec<PathBuf>, String> {
    let world = WorldConfig::default();
    let ids = (n as u32 / 10).clamp(10, 4000);
    let cfg = Market1501Config::default()
        .with_train_ids(ids)
        .with_test_ids(ids);
    let report = write_market1501(dir, &world, &cfg).map_err(|e| e.to_string())?;
    let mut src = Vec::new();
    for part in ["bounding_box_train", "bounding_box_test", "query"] {
        let rd = std::fs::read_dir(report.dataset_dir.join(part)).map_err(|e| e.to_string())?;
        for entry in rd.flatten() {
            src.push(entry.path());
        }
    }
    src.sort();
    if src.len() < n {
        return Err(format!("only {} synthetic images for {n}", src.len()));
    }
    let out = dir.join("bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut files = Vec::with_capacity(n);
    for (i, p) in src.iter().take(n).enumerate() {
        let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
        let img = decode_rgb(&bytes, p).map_err(|e| e.to_string())?;
        let h = 128 + (i as u32 * 37) % 129;
        let small = resize(&img, h, h / 2, Interpolation::Bilinear);
        let path = out.join(format!("{i:05}.jpg"));
        small.save(&path).map_err(|e| e.to_string())?;
        files.push(path);
    }
    Ok(files)
}

/// One pass of ours over every file: seconds.
fn ours_pass<T: ViewsTransform>(
    loader: &TrainLoader<T>,
    n: usize,
    epoch: u64,
    device: &Device,
) -> f64 {
    let indices: Vec<usize> = (0..n).collect();
    let t0 = Instant::now();
    for (b, chunk) in indices.chunks(BATCH).enumerate() {
        match loader.load_views(chunk, epoch, b as u64) {
            Ok(batch) => {
                let views = batch.into_tensors(device);
                std::hint::black_box(views[0].dims());
            }
            Err(e) => {
                eprintln!("loader failed: {e}");
                std::process::exit(1);
            }
        }
    }
    t0.elapsed().as_secs_f64()
}

/// One PyTorch pass of `pipeline` (after its warm-up): seconds, or why
/// there is none.
fn torch_pass(list: &Path, pipeline: &str, workers: Option<usize>) -> Result<f64, String> {
    let mut args: Vec<String> = vec!["--list".into(), list.display().to_string()];
    args.extend(["--pipeline".to_string(), pipeline.to_string()]);
    for (flag, value) in [
        ("--batch", BATCH.to_string()),
        ("--height", HEIGHT.to_string()),
        ("--width", WIDTH.to_string()),
    ] {
        args.extend([flag.to_string(), value]);
    }
    args.extend(["--warmup", "1", "--runs", "1"].map(String::from));
    match workers {
        None => args.extend(["--mode", "single"].map(String::from)),
        Some(w) => args.extend([
            "--mode".into(),
            "workers".into(),
            "--workers".into(),
            w.to_string(),
        ]),
    }
    let json = run_python_json("bench_loader_torch.py", &args)?;
    if let Some(v) = json["torch"].as_str().filter(|_| workers.is_none()) {
        eprintln!(
            "torch {v}, torchvision {}, pillow {}",
            json["torchvision"].as_str().unwrap_or("?"),
            json["pillow"].as_str().unwrap_or("?")
        );
    }
    json_times(&json)?
        .first()
        .copied()
        .ok_or_else(|| format!("no time in {json}"))
}

/// `BENCH_PROFILE=1`: mean time per image of each stage, one thread.
fn profile(files: &[PathBuf]) {
    use reid::data::loader::{ItemTransform, item_rng};
    let time = |name: &str, f: &mut dyn FnMut(usize)| {
        let t0 = Instant::now();
        for i in 0..files.len() {
            f(i);
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
        println!("| {name:<36} | {us:>8.1} |");
    };
    let bytes: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let imgs: Vec<_> = files
        .iter()
        .zip(&bytes)
        .filter_map(|(p, b)| decode_rgb(b, p).ok())
        .collect();
    let bot = TrainTransform::bot(HEIGHT, WIDTH);
    let resized: Vec<_> = imgs
        .iter()
        .map(|im| resize(im, HEIGHT, WIDTH, Interpolation::Bicubic))
        .collect();
    let mut out = vec![0f32; 3 * (HEIGHT * WIDTH) as usize];
    println!("\n| stage (1 thread, per image)          | µs       |");
    println!("|--------------------------------------|----------|");
    time("read file", &mut |i| {
        std::hint::black_box(std::fs::read(&files[i]).ok());
    });
    time("decode (image crate + check)", &mut |i| {
        std::hint::black_box(decode_rgb(&bytes[i], &files[i]).ok());
    });
    time("resize bicubic to 256x128", &mut |i| {
        std::hint::black_box(resize(&imgs[i], HEIGHT, WIDTH, Interpolation::Bicubic));
    });
    time("resize_pil_fast bicubic to 256x128", &mut |i| {
        std::hint::black_box(reid::data::loader::resize_pil_fast(
            &imgs[i],
            HEIGHT,
            WIDTH,
            Interpolation::Bicubic,
        ));
    });
    time("ItemTransform::write (from 256x128)", &mut |i| {
        let mut rng = item_rng(0, 0, 0, i as u64);
        let _ = ItemTransform::write(&bot, &resized[i], &mut rng, &mut out);
    });
    let mut no_erase = bot.clone();
    no_erase.erasing = None;
    time("  same, no erasing", &mut |i| {
        let mut rng = item_rng(0, 0, 0, i as u64);
        let _ = ItemTransform::write(&no_erase, &resized[i], &mut rng, &mut out);
    });
    time("  out.fill(0.5) only", &mut |_| {
        out.fill(0.5);
        std::hint::black_box(&mut out);
    });
    time("TrainTransform::write (from decoded)", &mut |i| {
        let mut rng = item_rng(0, 0, 0, i as u64);
        bot.write(&imgs[i], &mut rng, &mut out);
    });
    time("ItemTransform::write (from decoded)", &mut |i| {
        let mut rng = item_rng(0, 0, 0, i as u64);
        let _ = ItemTransform::write(&bot, &imgs[i], &mut rng, &mut out);
    });
    let records: Vec<ImageRecord> = files.iter().map(|p| ImageRecord::new(p, 0, 0)).collect();
    let loader = TrainLoader::new(ReidDataset::from_files(records), bot.clone(), 0)
        .with_threads(1)
        .ok();
    let device = Device::flex();
    let idx: Vec<usize> = (0..files.len()).collect();
    // The loader's plumbing against a plain loop doing the same work (read +
    // decode + fused BoT into one batch buffer), alternated twice.
    for _ in 0..2 {
        let Some(l) = &loader else { break };
        let per = 3 * (HEIGHT * WIDTH) as usize;
        let t0 = Instant::now();
        for (b, chunk) in idx.chunks(BATCH).enumerate() {
            let mut data = vec![0f32; per * chunk.len()];
            for ((pos, &i), out) in chunk.iter().enumerate().zip(data.chunks_mut(per)) {
                if let Ok(item) = l.dataset().load(i) {
                    let mut rng = item_rng(0, 0, b as u64, pos as u64);
                    let _ = ItemTransform::write(&bot, &item.image, &mut rng, out);
                }
            }
            std::hint::black_box(&data);
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
        println!("| {:<36} | {us:>8.1} |", "plain loop, same batches");
        let t0 = Instant::now();
        for (b, chunk) in idx.chunks(BATCH).enumerate() {
            if let Ok(h) = l.load(chunk, 0, b as u64) {
                std::hint::black_box(h.len());
            }
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
        println!("| {:<36} | {us:>8.1} |", "TrainLoader::load, same batches");
    }
    for (name, tensors) in [
        ("TrainLoader::load (batches of 64)", false),
        ("  + into_tensors", true),
    ] {
        let Some(l) = &loader else { break };
        let t0 = Instant::now();
        for (b, chunk) in idx.chunks(BATCH).enumerate() {
            if let Ok(h) = l.load(chunk, 0, b as u64) {
                if tensors {
                    std::hint::black_box(h.into_tensors(&device).images.dims());
                } else {
                    std::hint::black_box(h.len());
                }
            }
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
        println!("| {name:<36} | {us:>8.1} |");
    }
    // The pre-training views' stages, in `ViewPipeline::render_image`'s
    // order, each on every decoded image (the whole image as the crop box).
    {
        use reid::data::views::{ColorJitter, CropBox, gaussian_blur, resized_crop};
        let full = |i: usize| CropBox {
            top: 0,
            left: 0,
            height: imgs[i].height(),
            width: imgs[i].width(),
        };
        let crops: Vec<_> = (0..imgs.len())
            .filter_map(|i| {
                resized_crop(&imgs[i], full(i), HEIGHT, WIDTH, Interpolation::Bicubic).ok()
            })
            .collect();
        if crops.len() == imgs.len() {
            time("view: resized crop, bicubic 256x128", &mut |i| {
                std::hint::black_box(
                    resized_crop(&imgs[i], full(i), HEIGHT, WIDTH, Interpolation::Bicubic).ok(),
                );
            });
            let jitter = ColorJitter {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.2,
                hue: 0.1,
            };
            time("view: colour jitter (CION's)", &mut |i| {
                let mut rng = item_rng(0, 0, 0, i as u64);
                std::hint::black_box(jitter.sample(&mut rng).apply(&crops[i]).ok());
            });
            time("view: grayscale", &mut |i| {
                std::hint::black_box(reid::data::views::color::grayscale(&crops[i]));
            });
            time("view: Gaussian blur, radius 1", &mut |i| {
                std::hint::black_box(gaussian_blur(&crops[i], 1.0));
            });
        }
    }
    let mut flat = TrainTransform::bot(HEIGHT, WIDTH);
    flat.interpolation = Interpolation::Nearest;
    time("BoT after resize (same size input)", &mut |i| {
        let mut rng = item_rng(0, 0, 0, i as u64);
        flat.write(&resized[i], &mut rng, &mut out);
    });
}

fn main() {
    // What the programs run with (`reid::allocator`).
    reid::allocator::keep_freed_memory();
    let n = env_usize("BENCH_IMAGES", 512);
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let tmp = std::env::temp_dir().join(format!("reid-bench-loader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let files = match make_images(&tmp, n) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot write the benchmark images: {e}");
            std::process::exit(1);
        }
    };
    if std::env::var("BENCH_PROFILE").is_ok_and(|v| v == "1") {
        profile(&files);
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    let list = tmp.join("files.txt");
    let text: String = files.iter().map(|p| format!("{}\n", p.display())).collect();
    if let Err(e) = std::fs::write(&list, text) {
        eprintln!("cannot write {}: {e}", list.display());
        std::process::exit(1);
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let records: Vec<ImageRecord> = files.iter().map(|p| ImageRecord::new(p, 0, 0)).collect();
    let dataset = ReidDataset::from_files(records);
    let device = Device::flex();
    let loader = |t: usize| {
        TrainLoader::new(dataset.clone(), TrainTransform::bot(HEIGHT, WIDTH), 0)
            .with_threads(t)
            .unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            })
    };
    let (one, all) = (loader(1), loader(cores));

    let (mut ours1, mut ours_n, mut torch1, mut torch_n) = (vec![], vec![], vec![], vec![]);
    let mut torch_error: Option<String> = None;
    // Warm the page cache and the allocator.
    ours_pass(&all, n, 0, &device);
    for round in 0..rounds {
        let e = round as u64 + 1;
        ours1.push(ours_pass(&one, n, e, &device));
        if torch_error.is_none() {
            match torch_pass(&list, "bot", None) {
                Ok(t) => torch1.push(t),
                Err(err) => torch_error = Some(err),
            }
        }
        ours_n.push(ours_pass(&all, n, e, &device));
        if torch_error.is_none() {
            match torch_pass(&list, "bot", Some(cores)) {
                Ok(t) => torch_n.push(t),
                Err(err) => torch_error = Some(err),
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let view_rows = if std::env::var("BENCH_VIEWS").is_ok_and(|v| v == "0") {
        Vec::new()
    } else {
        view_benches(&dataset, &list, n, rounds, cores, &device)
    };
    let _ = std::fs::remove_dir_all(&tmp);

    println!(
        "\nLoader: {n} JPEGs (128x64 .. 256x128, {:.1} KiB mean) -> decode + BoT train transforms \
         -> batches of {BATCH} x 3x{HEIGHT}x{WIDTH} f32; {rounds} rounds, {cores} cores\n",
        bytes as f64 / n as f64 / 1024.0
    );
    println!(
        "| {:<44} | {:>7} | {:>8} | {:>10} |",
        "pipeline", "threads", "img/s", "ours/torch"
    );
    println!("|{:-<46}|{:-<9}|{:-<10}|{:-<12}|", "", "", "", "");
    let rate = |t: &mut Vec<f64>| n as f64 / median(t);
    let (o1, on) = (rate(&mut ours1), rate(&mut ours_n));
    let (t1, tn) = (rate(&mut torch1), rate(&mut torch_n));
    let ratio = |o: f64, t: f64| {
        if t.is_finite() {
            format!("{:.2}", o / t)
        } else {
            "-".to_string()
        }
    };
    println!(
        "| {:<44} | {:>7} | {o1:>8.1} | {:>10} |",
        "ours (reid_data::loader)",
        1,
        ratio(o1, t1)
    );
    println!(
        "| {:<44} | {:>7} | {on:>8.1} | {:>10} |",
        "ours (reid_data::loader)",
        cores,
        ratio(on, tn)
    );
    match &torch_error {
        Some(e) => println!("| {:<44} | unavailable: {e}", "PIL + torchvision"),
        None => {
            println!(
                "| {:<44} | {:>7} | {t1:>8.1} | {:>10} |",
                "PIL + torchvision (one process)", 1, "1.00 (ref)"
            );
            println!(
                "| {:<44} | {:>7} | {tn:>8.1} | {:>10} |",
                "PIL + torchvision (DataLoader workers)", cores, "1.00 (ref)"
            );
        }
    }
    println!(
        "\nper core: ours {:.1} img/s, PyTorch {:.1} img/s, ratio {}",
        o1,
        t1,
        ratio(o1, t1)
    );
    if !view_rows.is_empty() {
        println!(
            "\nPre-training views (load_views, batches of {BATCH}), images/s and ours / PyTorch at the same cores:\n"
        );
        println!(
            "| {:<8} | {:>10} | {:>10} | {:>10} | {:>10} | {:>10} | {:>10} |",
            "views", "ours 1", "torch 1", "ratio 1", "ours n", "torch n", "ratio n"
        );
        println!(
            "|{:-<10}|{:-<12}|{:-<12}|{:-<12}|{:-<12}|{:-<12}|{:-<12}|",
            "", "", "", "", "", "", ""
        );
        for r in &view_rows {
            println!(
                "| {:<8} | {:>10.1} | {:>10.1} | {:>10} | {:>10.1} | {:>10.1} | {:>10} |",
                r.name,
                r.ours1,
                r.torch1,
                ratio(r.ours1, r.torch1),
                r.ours_n,
                r.torch_n,
                ratio(r.ours_n, r.torch_n)
            );
        }
    }
}

/// Images per second of one view pipeline on both sides (NaN without
/// PyTorch).
struct ViewRow {
    name: &'static str,
    ours1: f64,
    torch1: f64,
    ours_n: f64,
    torch_n: f64,
}

/// Our loader over `dataset` with the views of `views` (written straight
/// into the batch, as the recipes load them), on `threads` threads.
fn views_loader<T: ViewsTransform>(
    dataset: &ReidDataset,
    views: T,
    threads: usize,
) -> TrainLoader<T> {
    TrainLoader::new(dataset.clone(), views, 0)
        .with_threads(threads)
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        })
}

/// Times ours and PyTorch on one view pipeline: `rounds` alternating
/// rounds at 1 thread and at `cores`.
fn time_views<T: ViewsTransform>(
    name: &'static str,
    make: impl Fn(usize) -> TrainLoader<T>,
    list: &Path,
    n: usize,
    rounds: usize,
    cores: usize,
    device: &Device,
) -> ViewRow {
    let (one, all) = (make(1), make(cores));
    ours_pass(&all, n.min(BATCH), 0, device);
    let (mut o1, mut on, mut t1, mut tn) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let e = round as u64 + 1;
        o1.push(ours_pass(&one, n, e, device));
        on.push(ours_pass(&all, n, e, device));
        t1.push(torch_pass(list, name, None).unwrap_or(f64::NAN));
        tn.push(torch_pass(list, name, Some(cores)).unwrap_or(f64::NAN));
        eprintln!("{name} views: round {}/{rounds} done", round + 1);
    }
    let rate = |t: &mut Vec<f64>| n as f64 / median(t);
    ViewRow {
        name,
        ours1: rate(&mut o1),
        torch1: rate(&mut t1),
        ours_n: rate(&mut on),
        torch_n: rate(&mut tn),
    }
}

/// The three pre-training view pipelines, ours and PyTorch's.
fn view_benches(
    dataset: &ReidDataset,
    list: &Path,
    n: usize,
    rounds: usize,
    cores: usize,
    device: &Device,
) -> Vec<ViewRow> {
    let moco = TwoCrops::lup();
    let pnl = PnlViews::new();
    let cion = MultiCrop::cion(8);
    vec![
        time_views(
            "moco",
            |t| views_loader(dataset, moco.clone(), t),
            list,
            n,
            rounds,
            cores,
            device,
        ),
        time_views(
            "pnl",
            |t| views_loader(dataset, pnl.clone(), t),
            list,
            n,
            rounds,
            cores,
            device,
        ),
        time_views(
            "cion",
            |t| views_loader(dataset, cion.clone(), t),
            list,
            n,
            rounds,
            cores,
            device,
        ),
    ]
}
