//! Backbone features from a PyTorch checkpoint.
//!
//! ```sh
//! cargo run --release --example extract -- --arch NAME [--ibn a|b] [--last-stride 1|2] \
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

fn main() -> std::process::ExitCode {
    reid::cli::extract::main()
}
