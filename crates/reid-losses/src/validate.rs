//! Host-side input checks shared by the losses (run before any tensor math).

use burn::tensor::{Int, Tensor};

use crate::LossError;

/// Copies `labels` (`[batch]`) to the host as `i64`.
pub(crate) fn host_labels(labels: &Tensor<1, Int>) -> Vec<i64> {
    labels.to_data().iter::<i64>().collect()
}

/// Checks that the `[batch, _]` tensor and the `[batch]` labels agree and are non-empty.
pub(crate) fn batch_matches(
    loss: &'static str,
    what: &'static str,
    dims: [usize; 2],
    labels: &Tensor<1, Int>,
) -> Result<(), LossError> {
    if dims[0] == 0 || dims[1] == 0 {
        return Err(LossError::Empty {
            loss,
            what,
            shape: dims.to_vec(),
        });
    }
    let n = labels.dims()[0];
    if n != dims[0] {
        return Err(LossError::BatchMismatch {
            loss,
            what_a: what,
            a: dims[0],
            what_b: "labels",
            b: n,
        });
    }
    Ok(())
}

/// Checks that every label lies in `0..num_classes`.
pub(crate) fn labels_in_range(
    loss: &'static str,
    labels: &[i64],
    num_classes: usize,
) -> Result<(), LossError> {
    for (index, &label) in labels.iter().enumerate() {
        if label < 0 || label as u64 >= num_classes as u64 {
            return Err(LossError::LabelOutOfRange {
                loss,
                index,
                label,
                num_classes,
            });
        }
    }
    Ok(())
}

/// Checks that `value` is finite and within `[lo, hi]`.
pub(crate) fn param_in(
    loss: &'static str,
    name: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    expected: &'static str,
) -> Result<(), LossError> {
    if !value.is_finite() || value < lo || value > hi {
        return Err(LossError::InvalidParameter {
            loss,
            name,
            value,
            expected,
        });
    }
    Ok(())
}
