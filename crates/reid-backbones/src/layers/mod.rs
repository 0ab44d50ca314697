//! Layers shared by the model families: stochastic depth ([`drop_path()`],
//! its three noise sources, and the per-block rates every family derives
//! the same way), the transformer blocks' attention and MLP
//! ([`transformer`]), the padded convolution ([`conv2d`]) and the dispatch
//! of any convolution to its fastest exact path ([`dispatch::conv2d`]), 1×1
//! convolutions as GEMMs on the CPU ([`pointwise`]), depth-wise ones as
//! direct plane kernels ([`depthwise`]), `k×k` convolutions as per-image
//! column GEMMs (the backward, and the forward at inference:
//! [`spatial`]), a vectorised exact GELU
//! ([`gelu()`]) and training-mode BatchNorm (+ ReLU) as one fused
//! operation ([`batch_norm`]).

pub mod attention;
pub mod batch_norm;
pub mod conv;
#[cfg(feature = "fast-cpu")]
mod conv_op;
pub mod depthwise;
pub mod dispatch;
pub mod drop_path;
#[cfg(feature = "fast-cpu")]
mod flex_io;
pub mod gelu;
mod gemm;
mod isa;
pub mod pointwise;
pub mod spatial;
pub mod transformer;

pub use conv::conv2d;
pub(crate) use drop_path::mix;
pub use drop_path::{
    DropPathRng, drop_path, drop_path_rate, drop_path_rates, drop_path_seeded, drop_path_stream,
};
pub use gelu::gelu;
pub use transformer::{
    Attention, BlockOptions, Mlp, Projection, self_attention, self_attention_reference, split_heads,
};
