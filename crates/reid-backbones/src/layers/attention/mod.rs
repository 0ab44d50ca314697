//! Multi-head self-attention of a fused `qkv` projection on the flex CPU
//! backend, forward and backward as one custom autodiff operation.
//!
//! Through burn's tensor operations, attention splits `qkv` into heads
//! (a narrow, a reshape and a transpose each, all copies), computes
//! `q·kᵀ` and `P·v` as batched products of small matrices, and records a
//! dozen more operations for the backward pass. [`kernels`] reads `q`, `k`
//! and `v` as strided views of the projection and writes every head
//! straight into the output, one pair of GEMMs per image and head, and its
//! backward does the same for the projection's gradient. [`try_attention`]
//! takes this path for `f32` tensors on flex (with or without autodiff);
//! [`crate::layers::self_attention`] falls back to the tensor operations
//! everywhere else, and the tests compare the two, values and gradients.

pub mod kernels;

use burn::tensor::{DType, Tensor};

pub use kernels::Shape;

/// `softmax(q·kᵀ / √head_dim)·v` per head of `qkv` (`[batch, tokens,
/// 3·dim]`, channels `[q | k | v]`, each split into `heads` heads of
/// consecutive channels), the heads concatenated: `[batch, tokens, dim]`.
/// `None` when the fast path does not apply (not `f32`, not on flex, the
/// `fast-cpu` feature off, or `3·heads` not dividing the channels).
pub fn try_attention(qkv: &Tensor<3>, heads: usize) -> Option<Tensor<3>> {
    let [batch, tokens, c3] = qkv.dims();
    if qkv.dtype() != DType::F32 || heads == 0 || c3 % (3 * heads) != 0 {
        return None;
    }
    let shape = Shape {
        batch,
        tokens,
        heads,
        head_dim: c3 / (3 * heads),
    };
    flex::run(qkv, shape)
}

#[cfg(feature = "fast-cpu")]
mod flex;

#[cfg(not(feature = "fast-cpu"))]
mod flex {
    //! Without flex there is no fast path: every call falls back.
    use super::Shape;
    use burn::tensor::Tensor;

    /// Always declines.
    pub fn run(_: &Tensor<3>, _: Shape) -> Option<Tensor<3>> {
        None
    }
}
