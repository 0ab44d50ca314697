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

use super::exit::usage;
use super::weights::WeightsArgs;
use crate::Backend;
use crate::backbones::{Backbone, GlobalPool, HostResNet};
use crate::burn::tensor::Device;
use crate::data::batch::TestTransform;
use crate::train::{
    ExtractOptions, extract_embeddings, extract_embeddings_from_array, extract_features,
    extract_features_from_array,
};
use anyhow::Context;
use clap::Parser;
use ndarray::{Array2, Array4};
use ndarray_npy::{read_npy, write_npy};

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
}

/// The loaded network: a ResNet trunk (GAP of its map) or a zoo model
/// (its own embedding).
// One model per run: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Model {
    /// On the CPU (`--backend flex`): the host engine, NHWC + GEMM.
    Host(crate::backbones::HostResNet),
    /// On a GPU backend: burn's BN-folded network.
    ResNet(crate::backbones::FusedResNet),
    Zoo(crate::backbones::ZooModel),
}

fn read_input(path: &Path) -> anyhow::Result<Array4<f32>> {
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
    Ok(input)
}

fn features_of_tensor(
    model: &Model,
    path: &Path,
    batch_size: usize,
    device: &Device,
) -> anyhow::Result<Array2<f32>> {
    let input = read_input(path)?;
    let view = input.view();
    Ok(match model {
        Model::Host(m) => {
            extract_features_from_array(m, view, batch_size, GlobalPool::Avg, false, device)?
        }
        Model::ResNet(m) => {
            extract_features_from_array(m, view, batch_size, GlobalPool::Avg, false, device)?
        }
        Model::Zoo(m) => {
            check_zoo_input(m, input.dim().2, input.dim().3)?;
            extract_embeddings_from_array(m, input.view(), batch_size, false, device)?
        }
    })
}

/// A ViT needs at least one patch; other sizes are the model's business.
fn check_zoo_input(model: &impl Backbone, h: usize, w: usize) -> anyhow::Result<()> {
    let s = model.output_stride();
    if h < s || w < s {
        return Err(usage(format!(
            "input {h}x{w} is smaller than the model's output stride {s}"
        )));
    }
    Ok(())
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
    let model = if args.model.is_resnet()? {
        let folded = args.model.load_resnet(&device)?.fold_batch_norm();
        if backend == Backend::Flex {
            Model::Host(HostResNet::from_fused(&folded)?)
        } else {
            Model::ResNet(folded)
        }
    } else {
        Model::Zoo(args.model.load_zoo(&device)?)
    };
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
            let features = match &model {
                Model::Host(m) => extract_features(m, &files, &options, &device)?,
                Model::ResNet(m) => extract_features(m, &files, &options, &device)?,
                Model::Zoo(m) => extract_embeddings(m, &files, &options, &device)?,
            };
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

/// Runs the program on parsed arguments; returns its exit code.
pub fn execute(args: Args) -> ExitCode {
    super::exit::exit(run(&args))
}

/// The whole program: parses the process arguments and runs.
pub fn main() -> ExitCode {
    execute(<Args as clap::Parser>::parse())
}
