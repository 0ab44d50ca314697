//! Backbone features from a PyTorch checkpoint.
//!
//! ```sh
//! reid extract --arch NAME [--ibn a|b] [--last-stride 1|2] \
//!     --weights W [--weights-format auto|torchvision|lup|cion|fastreid|safetensors] \
//!     (--input-tensor X.npy | --images DIR) --output F.npy [--batch-size N]
//! ```
//!
//! `NAME`: a ResNet trunk (`resnet18` … `resnet152`, optionally `_ibn_a` /
//! `_ibn_b`, CION's `resnet50_ibn` = IBN-a) or any other ReIDZoo model
//! (`ghostnet_0_5`, `convnext_tiny`, `vit_small`, `swin_base`,
//! `fastvit_sa24`, …; `reid_backbones::ZOO` lists them).
//!
//! - `--input-tensor X.npy`: float32 `[N, 3, H, W]`, already normalised;
//!   writes `[N, C]` (float32) in inference mode: for a ResNet the
//!   global-average-pooled backbone feature, for the other families the
//!   feature CION evaluates (`Embed::embed`: GhostNet GAP → `conv_head` →
//!   ReLU, ConvNeXt `LayerNorm(GAP)`, ViT class token, Swin / FastViT GAP).
//! - `--images DIR`: every `.jpg`/`.jpeg`/`.png` directly in `DIR`, sorted by
//!   file name, through the standard test transform (bilinear resize to
//!   256×128, ImageNet mean/std); the feature rows follow that order, which
//!   is also written to `F.npy.txt` (one file name a line).
//!
//! With a fast-reid checkpoint (`--weights-format fastreid`, or recognised as
//! one) the trunk uses fast-reid's stem pooling (padding 0, ceil mode).
//!
//! Inference runs on the fastest equivalent form: `ResNet::fold_batch_norm`'s
//! copy (BatchNorm folded into the convolutions), run by `HostResNet` (NHWC
//! activations, GEMM convolutions) on the CPU backend; FastViT
//! re-parameterised; same outputs.
//!
//! The checkpoint is checked key by key (see `reid_backbones::import`); what
//! was loaded and what was set aside is printed to stderr. Bad arguments,
//! weights or input shapes exit with code 2; other failures with code 1.
//!
//! The `extract` example and `reid extract` run this module.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::exit::{check_output_file, classify, classify_metrics, usage};
use super::images::{OnCorrupt, Skipped, check_images, image_files};
use super::weights::WeightsArgs;
use crate::Backend;
use crate::backbones::{Backbone, GlobalPool};
use crate::burn::tensor::Device;
use crate::data::batch::TestTransform;
use crate::gap_eval::avg_pooled;
use crate::infer::HostResNet;
use crate::train::{
    extract_embeddings, extract_embeddings_from_array, extract_features,
    extract_features_from_array,
};
use anyhow::Context;
use clap::Parser;
use ndarray::{Array2, Array4, Ix4};

/// Extracts global-average-pooled backbone features with PyTorch weights.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
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
    /// An image of `--images` that cannot be decoded: `error` stops (exit
    /// 2), `skip` leaves it out (no feature row, not in `F.npy.txt`) and
    /// names it in the summary.
    #[arg(long, value_enum, default_value_t = OnCorrupt::Error)]
    on_corrupt: OnCorrupt,
}

/// The loaded network: a ResNet trunk (GAP of its map) or a zoo model
/// (its own embedding).
// One model per run: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Model {
    /// On the CPU (`--backend flex`): the host engine, NHWC + GEMM.
    Host(HostResNet),
    /// On a GPU backend: burn's BN-folded network.
    ResNet(crate::backbones::FusedResNet),
    Zoo(crate::backbones::ZooModel),
}

impl Model {
    /// The model's output stride: the smallest input side it accepts.
    fn output_stride(&self) -> usize {
        match self {
            Model::Host(m) => m.output_stride(),
            Model::ResNet(m) => m.output_stride(),
            Model::Zoo(m) => m.output_stride(),
        }
    }
}

/// Reads `--input-tensor`: float32/float64 `[N, 3, H, W]`, every value
/// finite. The header is checked against the file size before anything is
/// allocated.
fn read_input(path: &Path) -> anyhow::Result<Array4<f32>> {
    let input = reid_metrics::npy::read_float_array(path).map_err(classify_metrics)?;
    let shape = input.shape().to_vec();
    let input = input.into_dimensionality::<Ix4>().map_err(|_| {
        usage(format!(
            "{}: expected a float32 array of shape [N, 3, H, W], got shape {shape:?}",
            path.display()
        ))
    })?;
    if input.dim().1 != 3 {
        return Err(usage(format!(
            "{}: expected shape [N, 3, H, W] (3 colour channels), got {shape:?}",
            path.display()
        )));
    }
    Ok(input)
}

/// Every engine (the host engine, burn's ResNet, a zoo model) takes the
/// same inputs: at least one output-stride cell in each direction.
fn check_input_size(model: &Model, h: usize, w: usize, source: &str) -> anyhow::Result<()> {
    let s = model.output_stride();
    if h < s || w < s {
        return Err(usage(format!(
            "{source}: input {h}x{w} (height x width) is smaller than the model's output stride {s}: expected height and width of at least {s}"
        )));
    }
    Ok(())
}

fn features_of_tensor(
    model: &Model,
    path: &Path,
    batch_size: usize,
    device: &Device,
) -> anyhow::Result<Array2<f32>> {
    let input = read_input(path)?;
    let (_, _, h, w) = input.dim();
    check_input_size(model, h, w, &path.display().to_string())?;
    let view = input.view();
    match model {
        Model::Host(m) => {
            extract_features_from_array(m, view, batch_size, GlobalPool::Avg, false, device)
        }
        Model::ResNet(m) => {
            extract_features_from_array(m, view, batch_size, GlobalPool::Avg, false, device)
        }
        Model::Zoo(m) => extract_embeddings_from_array(m, view, batch_size, false, device),
    }
    .map_err(classify)
}

/// The features of the images in `dir` (after `policy`), the files they
/// belong to, and what was skipped.
fn features_of_images(
    model: &Model,
    dir: &Path,
    args: &Args,
    device: &Device,
) -> anyhow::Result<(Array2<f32>, Vec<PathBuf>, Skipped)> {
    let files = image_files(dir, &["jpg", "jpeg", "png"], "--images")?;
    let (kept, skipped) = check_images(&files, args.on_corrupt)?;
    let files: Vec<PathBuf> = kept.into_iter().map(|i| files[i].clone()).collect();
    if files.is_empty() {
        return Err(usage(format!(
            "--images {}: every image is corrupt ({} skipped)",
            dir.display(),
            skipped.count()
        )));
    }
    let transform = TestTransform::new(256, 128);
    check_input_size(
        model,
        transform.height as usize,
        transform.width as usize,
        "the test transform",
    )?;
    let options = avg_pooled(transform, args.batch_size, false);
    let features = match model {
        Model::Host(m) => extract_features(m, &files, &options, device),
        Model::ResNet(m) => extract_features(m, &files, &options, device),
        Model::Zoo(m) => extract_embeddings(m, &files, &options, device),
    }
    .map_err(classify)?;
    Ok((features, files, skipped))
}

/// A NaN or infinite feature is an error: it comes from non-finite weights
/// or an overflow, never from valid input, and must not reach a file that
/// looks normal.
fn check_finite(features: &Array2<f32>, weights: &Path) -> anyhow::Result<()> {
    if let Some(((row, col), v)) = features.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(usage(format!(
            "feature [{row}, {col}] is {v}: the weights {} or the input hold NaN or infinite values, or the network overflows",
            weights.display()
        )));
    }
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        return Err(usage("--batch-size must be positive"));
    }
    check_output_file(&args.output, "--output")?;
    let backend: Backend = args
        .backend
        .parse()
        .map_err(|e| usage(format!("--backend: {e}")))?;
    let device = backend
        .device()
        .map_err(|e| usage(format!("--backend {}: {e}", args.backend)))?;
    // Inference only: fold every BatchNorm into its convolution (same
    // outputs, fewer passes over the activations).
    let model = if args.model.is_resnet()? {
        let folded = args.model.load_resnet(&device)?.fold_batch_norm();
        if backend == Backend::Flex {
            Model::Host(
                HostResNet::from_fused(&folded).map_err(|e| super::exit::usage(e.to_string()))?,
            )
        } else {
            Model::ResNet(folded)
        }
    } else {
        Model::Zoo(args.model.load_zoo(&device)?)
    };
    let weights = args.model.weights.clone().unwrap_or_default();
    let (features, skipped) = match (&args.input_tensor, &args.images) {
        (Some(x), None) => (
            features_of_tensor(&model, x, args.batch_size, &device)?,
            Skipped::default(),
        ),
        (None, Some(dir)) => {
            let (features, files, skipped) = features_of_images(&model, dir, args, &device)?;
            // Before the list is written: nothing is written for NaN.
            check_finite(&features, &weights)?;
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
            (features, skipped)
        }
        _ => return Err(usage("give exactly one of --input-tensor and --images")),
    };
    check_finite(&features, &weights)?;
    reid_metrics::npy::write_matrix(&args.output, features.view())
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} features of dimension {} to {}",
        features.nrows(),
        features.ncols(),
        args.output.display()
    );
    let summary = skipped.summary("--images");
    if !summary.is_empty() {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    execute(<Args as clap::Parser>::parse())
}
