//! The glue to burn-flex and burn's autodiff: the [`kernels`](super::kernels)
//! as the three products of the shared convolution operation
//! ([`conv_op`](crate::layers::conv_op)).

use super::{Geometry, kernels};
use crate::layers::conv_op::{self, ConvKernels};
use crate::layers::flex_io::{PlainConv, plain, tensor, values};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

impl ConvKernels for Geometry {
    const PLAIN: bool = true;

    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        let [oh, ow] = self.output();
        let y = kernels::forward(self, &values(x), &values(weight));
        tensor(y, [self.batch, self.c_out, oh, ow])
    }

    fn input_grad(&self, weight: &[f32], grad: &[f32]) -> FlexTensor {
        let dx = kernels::input_grad(self, weight, grad);
        tensor(dx, [self.batch, self.c_in, self.input[0], self.input[1]])
    }

    fn weight_grad(&self, x: &[f32], grad: &[f32]) -> FlexTensor {
        tensor(
            kernels::weight_grad(self, x, grad),
            [self.c_out, self.c_in, 1, 1],
        )
    }
}

/// Runs the convolution on flex (plain or autodiff); `None` when the
/// tensors live elsewhere.
pub fn run(x: &Tensor<4>, weight: Tensor<4>, g: Geometry) -> Option<Tensor<4>> {
    conv_op::run(x, weight, g)
}

/// `gelu(conv(x) + bias)` in one pass over the output
/// ([`kernels::forward_with`]) for plain flex tensors; `None` under
/// autodiff or elsewhere, or when `bias` is not `[c_out]`.
pub fn run_gelu(
    x: &Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    g: Geometry,
) -> Option<Tensor<4>> {
    let op = PlainConv::of(x, weight, bias, g.c_out)?;
    let bv = op.bias.as_ref().map(values);
    let [oh, ow] = g.output();
    let y = kernels::forward_with(&g, &values(&op.x), &values(&op.weight), bv.as_deref(), true);
    Some(plain(y, [g.batch, g.c_out, oh, ow]))
}
