//! The glue to burn-flex and burn's autodiff: the forward product through
//! burn-flex's own depth-wise convolution and the gradients through the
//! [`kernels`](super::kernels), as the shared convolution operation
//! ([`conv_op`](crate::layers::conv_op)).

use super::{Depthwise, forward, kernels, reference};
use crate::layers::conv_op::{self, ConvKernels};
use crate::layers::flex_io::{PlainConv, plain, tensor, values};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use kernels::Build;

impl ConvKernels for Depthwise {
    /// Without autodiff there is no backward to speed up, and the caller's
    /// burn path is the same forward.
    const PLAIN: bool = false;

    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
        conv_op::burn_forward(x, weight, |x, w| reference(x, w, self))
    }

    fn input_grad(&self, weight: &[f32], grad: &[f32]) -> FlexTensor {
        let g = &self.0;
        let dx = kernels::input_grad(g, weight, grad, Build::Best);
        tensor(dx, [g.batch, g.c_in, g.input[0], g.input[1]])
    }

    fn weight_grad(&self, x: &[f32], grad: &[f32]) -> FlexTensor {
        let g = &self.0;
        let dw = kernels::weight_grad(g, x, grad, Build::Best);
        tensor(dw, [g.c_out, 1, g.kernel[0], g.kernel[1]])
    }
}

/// Runs the convolution on autodiff flex with the plane-by-plane backward;
/// `None` when the tensors live elsewhere, plain flex included.
pub fn run(x: &Tensor<4>, weight: Tensor<4>, g: Depthwise) -> Option<Tensor<4>> {
    conv_op::run(x, weight, g)
}

/// The forward product plus bias through [`forward`]'s kernel for plain
/// flex tensors; `None` under autodiff or elsewhere, or when `bias` is not
/// `[c_out]`.
pub fn run_plain(
    x: &Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    g: Depthwise,
) -> Option<Tensor<4>> {
    let g = g.0;
    let op = PlainConv::of(x, weight, bias, g.c_out)?;
    let bv = op.bias.as_ref().map(values);
    let [oh, ow] = g.output()?;
    let y = forward::forward(
        &g,
        &values(&op.x),
        &values(&op.weight),
        bv.as_deref(),
        Build::Best,
    )?;
    Some(plain(y, [g.batch, g.c_out, oh, ow]))
}
