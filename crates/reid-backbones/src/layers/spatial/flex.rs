//! The glue to burn-flex and burn's autodiff: the forward product and both
//! gradients through the [`kernels`](super::kernels), as the shared
//! convolution operation ([`conv_op`](crate::layers::conv_op)), and the
//! forward alone for plain (inference) tensors.

use super::{Geometry, kernels};
use crate::layers::conv_op::{self, ConvKernels};
use crate::layers::flex_io::{PlainConv, plain, tensor, values};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

impl ConvKernels for Geometry {
    /// Plain tensors go through [`run_plain`], so that [`run`] (the
    /// training path) declines them.
    const PLAIN: bool = false;

    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        let [oh, ow] = self.output().unwrap_or([0, 0]);
        let y = kernels::forward(self, &values(x), &values(weight));
        tensor(y, [self.batch, self.c_out, oh, ow])
    }

    fn input_grad(&self, weight: &[f32], grad: &[f32]) -> FlexTensor {
        let dx = kernels::input_grad(self, weight, grad);
        tensor(dx, [self.batch, self.c_in, self.input[0], self.input[1]])
    }

    fn weight_grad(&self, x: &[f32], grad: &[f32]) -> FlexTensor {
        let dw = kernels::weight_grad(self, x, grad);
        tensor(dw, [self.c_out, self.c_in, self.kernel[0], self.kernel[1]])
    }
}

/// Runs the convolution on autodiff flex with the GEMM backward; `None`
/// when the tensors live elsewhere, plain flex included.
pub fn run(x: &Tensor<4>, weight: Tensor<4>, g: Geometry) -> Option<Tensor<4>> {
    conv_op::run(x, weight, g)
}

/// The forward product through the [`kernels`] for plain flex tensors;
/// `None` under autodiff or elsewhere.
pub fn run_plain(x: &Tensor<4>, weight: Tensor<4>, g: Geometry) -> Option<Tensor<4>> {
    let op = PlainConv::of(x, weight, None, g.c_out)?;
    let [oh, ow] = g.output()?;
    let y = kernels::forward(&g, &values(&op.x), &values(&op.weight));
    Some(plain(y, [g.batch, g.c_out, oh, ow]))
}
