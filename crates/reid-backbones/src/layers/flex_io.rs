//! Moving `f32` values between burn-flex tensors and the plain slices the
//! CPU kernels of [`pointwise`](super::pointwise) and [`gelu`](super::gelu)
//! work on.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

/// The values of an `f32` flex tensor, contiguous: borrowed when the tensor
/// already is, copied when it is strided.
pub(crate) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => {
            std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap_or(&[]).to_vec())
        }
    }
}

/// A flex tensor of `shape` holding `data` (`data.len()` = the product of
/// `shape`).
pub(crate) fn tensor(data: Vec<f32>, shape: impl Into<Vec<usize>>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.into()))
}

/// A convolution's operands as plain (inference) flex tensors: the input,
/// the weight and the bias.
pub(crate) struct PlainConv {
    /// The input `[batch, c_in, h, w]`.
    pub x: FlexTensor,
    /// The weight.
    pub weight: FlexTensor,
    /// The bias `[c_out]`, if any.
    pub bias: Option<FlexTensor>,
}

impl PlainConv {
    /// The operands when every tensor is on plain flex and the bias (if any)
    /// holds `c_out` values; `None` under autodiff or on another backend,
    /// or for a bias of another shape (the caller falls back to burn).
    pub fn of(
        x: &Tensor<4>,
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        c_out: usize,
    ) -> Option<Self> {
        let bias = match bias {
            Some(b) if b.dims() == [c_out] => Some(b.try_into_primitive::<Flex>().ok()?),
            Some(_) => return None,
            None => None,
        };
        Some(PlainConv {
            x: x.clone().try_into_primitive::<Flex>().ok()?,
            weight: weight.try_into_primitive::<Flex>().ok()?,
            bias,
        })
    }
}

/// A plain flex tensor of `shape` holding `data`.
pub(crate) fn plain(data: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_primitive::<Flex>(tensor(data, shape))
}
