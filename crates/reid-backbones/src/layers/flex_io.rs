//! Moving `f32` values between burn-flex tensors and the plain slices the
//! CPU kernels of [`pointwise`](super::pointwise) and [`gelu`](super::gelu)
//! work on.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

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
