//! `reid export`: a BoT model for deployment — the whole model (trunk and
//! BNNeck head) in inference form, every BatchNorm folded into the
//! convolution before it where that is exact, as safetensors with fast-reid
//! names and `reid.*` metadata (`reid.form = folded`).
//!
//! ```sh
//! reid export --weights model.safetensors --out deploy.safetensors \
//!     [--form folded|trained] [--input-tensor x.npy --features ours.npy] [--json]
//! ```
//! `--weights` is what `evaluate --dataset` reads: a `finetune
//! --export-model` file, a fast-reid BoT or a TransReID checkpoint (the
//! architecture flags override the file's metadata). With `--input-tensor`
//! (`[batch, 3, H, W]` float32 `.npy`) the exported model's features of it
//! are written to `--features` and compared with the source model's: the
//! folding error is printed. `tools/onnx_export_check.py` takes the export,
//! that input and those features on to ONNX and onnxruntime
//! (`docs/deployment.md`). Bad arguments or input exit with code 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use ndarray::{Array2, Array4, Ix4};

use crate::Backend;
use crate::backbones::{
    Arch, ZooFamily, save_folded_safetensors, save_safetensors_with_metadata, zoo_entry,
};
use crate::burn::module::Module;
use crate::burn::tensor::{Device, Tensor, TensorData};
use crate::train::extract::extract_embeddings_from_array;

use super::exit::{classify_backbone, classify_metrics, usage};
use super::model_file::{Feature, ModelSpec, load_bot};
use super::weights::WeightsArgs;

/// The form of the exported model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// Inference form: BatchNorms folded into their convolutions (a bias
    /// per folded convolution, no BatchNorm after it); IBN-a splits and
    /// InstanceNorms kept.
    Folded,
    /// The training form, as `finetune --export-model` writes it.
    Trained,
}

/// The flags of `export`.
#[derive(Parser, Debug)]
#[command(
    about = "Export a BoT model for deployment: trunk + BNNeck, BatchNorms folded, fast-reid names",
    after_help = "Example:\n  reid export --weights model.safetensors --out deploy.safetensors \\\n      --input-tensor x.npy --features ours.npy"
)]
pub struct Args {
    /// The model: a `finetune --export-model` file, a fast-reid BoT or a
    /// TransReID checkpoint (.safetensors / .pth).
    #[arg(long)]
    weights: PathBuf,
    /// Checkpoint format: auto, fastreid, transreid, safetensors.
    #[arg(long, default_value = "auto")]
    weights_format: String,
    /// Architecture (default: the file's metadata): resnet18 … resnet152,
    /// optionally suffixed _ibn_a / _ibn_b.
    #[arg(long)]
    arch: Option<String>,
    /// IBN variant, a or b.
    #[arg(long, value_parser = ["a", "b"])]
    ibn: Option<String>,
    /// Stride of the last stage (default: the file's, else 1).
    #[arg(long)]
    last_stride: Option<usize>,
    /// Channels of the stem (default: the file's, else 64).
    #[arg(long)]
    base_width: Option<usize>,
    /// Input height in pixels recorded in the export (default: the file's, else 256).
    #[arg(long)]
    height: Option<u32>,
    /// Input width in pixels (default: the file's, else 128).
    #[arg(long)]
    width: Option<u32>,
    /// The feature the exported model returns (default: the file's, else bnneck).
    #[arg(long, value_enum)]
    feature: Option<Feature>,
    /// Where to write the export (.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Inference form (folded) or training form.
    #[arg(long, value_enum, default_value_t = Form::Folded)]
    form: Form,
    /// Images `[batch, 3, H, W]` (float32 .npy) to compute the exported
    /// model's features of (with --features).
    #[arg(long, requires = "features")]
    input_tensor: Option<PathBuf>,
    /// Where to write those features `[batch, dim]` (float32 .npy).
    #[arg(long, requires = "input_tensor")]
    features: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn read_input(path: &Path) -> Result<Array4<f32>> {
    let input = crate::metrics::npy::read_float_array(path).map_err(classify_metrics)?;
    let shape = input.shape().to_vec();
    let input = input
        .into_dimensionality::<Ix4>()
        .ok()
        .filter(|x| x.dim().1 == 3 && x.dim().0 > 0)
        .ok_or_else(|| {
            usage(format!(
                "{}: expected a float32 array of shape [batch, 3, H, W] with batch > 0, got shape {shape:?}",
                path.display()
            ))
        })?;
    if input.iter().any(|v| !v.is_finite()) {
        return Err(usage(format!(
            "{}: the input holds NaN or infinite values",
            path.display()
        )));
    }
    Ok(input)
}

fn to_array(t: Tensor<2>) -> Result<Array2<f32>> {
    let [n, d] = t.dims();
    let v = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading features: {e:?}"))?;
    Ok(Array2::from_shape_vec((n, d), v)?)
}

/// Max |a − b| over max |b| (|a − b| when b is all zero).
fn max_rel(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    if scale > 0.0 { diff / scale } else { diff }
}

/// A ReIDZoo backbone other than ResNet (`--arch vit_small`, …): its
/// weights in the PyTorch names and orientation of the module the
/// checkpoint came from (CION's model files), with `reid.*` metadata; the
/// feature is the one `extract` computes. FastViT and RepViT are refused:
/// their inference form is re-parameterised and has no PyTorch module of
/// that layout to load into.
fn run_zoo(args: &Args, arch: &str, device: &Device) -> Result<()> {
    let entry = zoo_entry(arch).map_err(|e| usage(e.to_string()))?;
    if matches!(entry.family, ZooFamily::FastViT | ZooFamily::RepViT) {
        return Err(usage(format!(
            "--arch {arch}: {:?} is re-parameterised for inference and is not exported; \
             deploy its checkpoint as it is",
            entry.family
        )));
    }
    if args.ibn.is_some() || args.last_stride.is_some() || args.base_width.is_some() {
        return Err(usage(format!(
            "--ibn, --last-stride and --base-width apply to ResNet models only, not {arch}"
        )));
    }
    if args.form == Form::Folded {
        eprintln!(
            "note: {arch} is exported in its trained form (no BatchNorm to fold after a convolution)"
        );
    }
    let weights = WeightsArgs {
        arch: Some(arch.to_string()),
        ibn: None,
        last_stride: 1,
        base_width: 64,
        weights: Some(args.weights.clone()),
        weights_format: args.weights_format.clone(),
        allow_unexpected: Vec::new(),
    };
    let model = weights.load_zoo(device)?;
    let [h, w] = [args.height.unwrap_or(256), args.width.unwrap_or(128)];
    let metadata = vec![
        ("reid.model", "backbone".to_string()),
        ("reid.arch", entry.name.to_string()),
        ("reid.height", h.to_string()),
        ("reid.width", w.to_string()),
        ("reid.feature", "pool".to_string()),
        ("reid.form", "trained".to_string()),
    ];
    create_parent(&args.out)?;
    save_safetensors_with_metadata(&model.net, &args.out, &metadata)
        .map_err(classify_backbone)
        .with_context(|| format!("exporting the model to {}", args.out.display()))?;
    let mut report = serde_json::json!({
        "weights": args.weights,
        "out": args.out,
        "form": "trained",
        "model": [format!("arch {}", entry.name)],
    });
    if let (Some(path), Some(features)) = (&args.input_tensor, &args.features) {
        let x = read_input(path)?;
        let out = extract_embeddings_from_array(&model, x.view(), 16, false, device)
            .map_err(super::exit::classify)?;
        if out.iter().any(|v| !v.is_finite()) {
            return Err(usage(format!(
                "{}: the model gives NaN or infinite features",
                args.weights.display()
            )));
        }
        crate::metrics::npy::write_matrix(features, out.view())
            .map_err(classify_metrics)
            .with_context(|| format!("writing {}", features.display()))?;
        report["features"] = serde_json::json!(features);
        report["batch"] = serde_json::json!(out.nrows());
        report["dim"] = serde_json::json!(out.ncols());
        report["max_rel_diff_vs_source"] = serde_json::json!(0.0);
    }
    print_report(args, &report);
    Ok(())
}

fn create_parent(out: &Path) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

fn print_report(args: &Args, report: &serde_json::Value) {
    if args.json {
        println!("{report}");
        return;
    }
    println!("Model written to {}", args.out.display());
    if let Some(model) = report["model"].as_array() {
        let parts: Vec<&str> = model.iter().filter_map(|v| v.as_str()).collect();
        println!("  {}", parts.join(", "));
    }
    if let Some(rel) = report.get("max_rel_diff_vs_source") {
        println!(
            "  features of {} images -> {}; exported vs source model: max relative difference {rel}",
            report["batch"],
            args.features
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
}

/// Runs the program; errors carry their exit code (see [`mod@super::exit`]).
pub fn run(args: &Args) -> Result<()> {
    let device: Device = Backend::Flex
        .device()
        .map_err(|e| usage(format!("backend: {e}")))?;
    if let Some(arch) = args.arch.as_deref()
        && Arch::from_name(arch).is_err()
        && zoo_entry(arch).is_ok()
    {
        return run_zoo(args, arch, &device);
    }
    let spec = ModelSpec {
        arch: args.arch.clone(),
        ibn: args.ibn.clone(),
        last_stride: args.last_stride,
        base_width: args.base_width,
        feature: args.feature,
        size: [args.height, args.width],
        format: args.weights_format.clone(),
    };
    let loaded = load_bot(&args.weights, &spec, &device)?;
    let input = args.input_tensor.as_deref().map(read_input).transpose()?;
    let model = loaded.model.valid();
    let mut metadata = loaded.metadata.clone();
    metadata.push((
        "reid.form",
        match args.form {
            Form::Folded => "folded",
            Form::Trained => "trained",
        }
        .to_string(),
    ));
    create_parent(&args.out)?;
    match args.form {
        Form::Folded => save_folded_safetensors(&model, &args.out, &metadata),
        Form::Trained => save_safetensors_with_metadata(&model, &args.out, &metadata),
    }
    .map_err(classify_backbone)
    .with_context(|| format!("exporting the model to {}", args.out.display()))?;

    let mut report = serde_json::json!({
        "weights": args.weights,
        "out": args.out,
        "form": metadata.last().map(|(_, v)| v.clone()),
        "model": loaded.described,
    });
    if let (Some(x), Some(features)) = (input, &args.features) {
        let (b, c, h, w) = x.dim();
        let data = TensorData::new(x.iter().copied().collect::<Vec<f32>>(), [b, c, h, w]);
        let images = Tensor::<4>::from_data(data, &device);
        let source = to_array(model.embed(images.clone()))?;
        let exported = match args.form {
            Form::Folded => to_array(model.fold_batch_norm().embed(images))?,
            Form::Trained => source.clone(),
        };
        if exported.iter().any(|v| !v.is_finite()) {
            return Err(usage(format!(
                "{}: the model gives NaN or infinite features",
                args.weights.display()
            )));
        }
        let rel = max_rel(&exported, &source);
        crate::metrics::npy::write_matrix(features, exported.view())
            .map_err(classify_metrics)
            .with_context(|| format!("writing {}", features.display()))?;
        report["features"] = serde_json::json!(features);
        report["batch"] = serde_json::json!(b);
        report["dim"] = serde_json::json!(exported.ncols());
        report["max_rel_diff_vs_source"] = serde_json::json!(rel);
    }
    print_report(args, &report);
    Ok(())
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args))
}
