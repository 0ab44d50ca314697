//! Backbone features from a PyTorch checkpoint.
//!
//! ```sh
//! cargo run --release --example extract -- --arch resnet50 [--ibn a|b] [--last-stride 1|2] \
//!     --weights W [--weights-format auto|torchvision|lup|cion|fastreid|safetensors] \
//!     (--input-tensor X.npy | --images DIR) --output F.npy [--batch-size N]
//! ```
//!
//! - `--input-tensor X.npy`: float32 `[N, 3, H, W]`, already normalised;
//!   writes the global-average-pooled backbone feature `[N, C]` (float32) in
//!   inference mode.
//! - `--images DIR`: every `.jpg`/`.jpeg`/`.png` directly in `DIR`, sorted by
//!   file name, through the standard test transform (bilinear resize to
//!   256×128, ImageNet mean/std); the feature rows follow that order, which
//!   is also written to `F.npy.txt` (one file name a line).
//!
//! With a fast-reid checkpoint (`--weights-format fastreid`, or recognised as
//! one) the trunk uses fast-reid's stem pooling (padding 0, ceil mode).
//!
//! Inference runs on `ResNet::fold_batch_norm`'s copy (BatchNorm folded into
//! the convolutions; same outputs).
//!
//! The checkpoint is checked key by key (see `reid_backbones::import`); what
//! was loaded and what was set aside is printed to stderr. Bad arguments,
//! weights or input shapes exit with code 2; other failures with code 1.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/weights.rs"]
mod weights;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::usage;
use ndarray::{Array2, Array4};
use ndarray_npy::{read_npy, write_npy};
use reid::Backend;
use reid::backbones::{Backbone, GlobalPool};
use reid::burn::tensor::Device;
use reid::data::batch::TestTransform;
use reid::train::{ExtractOptions, extract_features, extract_features_from_array};
use weights::WeightsArgs;

/// Extracts global-average-pooled backbone features with PyTorch weights.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    model: WeightsArgs,
    /// float32 `[N, 3, H, W]` input, already normalised.
    #[arg(long, conflicts_with = "images", required_unless_present = "images")]
    input_tensor: Option<PathBuf>,
    /// Folder of images.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Output `.npy` (float32 `[N, C]`).
    #[arg(long)]
    output: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Compute backend: flex, wgpu, wgpu-cpu or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: String,
}

fn features_of_tensor(
    model: &impl Backbone,
    path: &Path,
    batch_size: usize,
    device: &Device,
) -> anyhow::Result<Array2<f32>> {
    let input: Array4<f32> = read_npy(path).map_err(|e| {
        usage(format!(
            "{}: expected a float32 .npy of shape [N, 3, H, W]: {e}",
            path.display()
        ))
    })?;
    let (_, c, h, w) = input.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(usage(format!(
            "{}: expected shape [N, 3, H, W], got {:?}",
            path.display(),
            input.shape()
        )));
    }
    Ok(extract_features_from_array(
        model,
        input.view(),
        batch_size,
        GlobalPool::Avg,
        false,
        device,
    )?)
}

fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| usage(format!("--images {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_file() && matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(usage(format!(
            "--images {}: no .jpg/.jpeg/.png files",
            dir.display()
        )));
    }
    Ok(files)
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        return Err(usage("--batch-size must be positive"));
    }
    let backend: Backend = args.backend.parse().map_err(|e| usage(format!("{e}")))?;
    let device = backend.device().map_err(|e| usage(format!("{e}")))?;
    // Inference only: fold every BatchNorm into its convolution (same
    // outputs, fewer passes over the activations).
    let model = args.model.load_resnet(&device)?.fold_batch_norm();
    let features = match (&args.input_tensor, &args.images) {
        (Some(x), None) => features_of_tensor(&model, x, args.batch_size, &device)?,
        (None, Some(dir)) => {
            let files = image_files(dir)?;
            let options = ExtractOptions {
                transform: TestTransform::new(256, 128),
                batch_size: args.batch_size,
                pool: GlobalPool::Avg,
                normalize: false,
            };
            let features = extract_features(&model, &files, &options, &device)?;
            let names: Vec<String> = files
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let list = PathBuf::from(format!("{}.txt", args.output.display()));
            std::fs::write(&list, names.join("\n") + "\n")
                .with_context(|| format!("writing {}", list.display()))?;
            features
        }
        _ => return Err(usage("give exactly one of --input-tensor and --images")),
    };
    write_npy(&args.output, &features)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} features of dimension {} to {}",
        features.nrows(),
        features.ncols(),
        args.output.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    cli::exit(run(&Args::parse()))
}
