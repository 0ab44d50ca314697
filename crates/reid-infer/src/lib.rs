//! # reid-infer
//!
//! Hand-written CPU inference engines for the models of `reid-backbones`,
//! kept apart from the model crate so that it holds models only.
//!
//! - [`resnet`]: [`HostResNet`], a ResNet trunk (plain, IBN-a, IBN-b) with its
//!   BatchNorms folded, run on host memory in NHWC with every convolution as
//!   one GEMM over the whole batch (`gemm`'s kernels, AVX-512 where the CPU
//!   has it). It computes the function of `reid_backbones::ResNet` in
//!   inference; `reid extract` uses it for ResNets on the CPU, and
//!   `benches/resnet.rs` measures it against PyTorch (`docs/benchmarks.md`).
//!
//! Errors are [`InferError`].
//!
//! # Example
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use reid_backbones::{Backbone, ResNetConfig, ResNetDepth};
//! use reid_infer::HostResNet;
//!
//! let device = Device::flex();
//! let model = ResNetConfig::new()
//!     .with_depth(ResNetDepth::R18)
//!     .with_base_width(8)
//!     .init(&device)
//!     .unwrap();
//! let host = HostResNet::from_resnet(&model).unwrap();
//! let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Default, &device);
//! let (a, b) = (model.forward_pooled(x.clone()), host.forward_pooled(x));
//! let diff: f32 = (a.clone() - b).abs().max().into_scalar();
//! let scale: f32 = a.abs().max().into_scalar();
//! assert!(diff <= 1e-4 * scale.max(1.0));
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod kernels;
pub mod net;
pub mod resnet;

pub use error::InferError;
pub use resnet::HostResNet;
