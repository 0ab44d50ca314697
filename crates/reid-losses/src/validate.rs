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
    sizes_match(loss, (what, dims[0]), ("labels", labels.dims()[0]))
}

/// Checks that two sizes that must agree do: `a = (what, size)` and `b`.
pub(crate) fn sizes_match(
    loss: &'static str,
    a: (&'static str, usize),
    b: (&'static str, usize),
) -> Result<(), LossError> {
    if a.1 != b.1 {
        return Err(LossError::BatchMismatch {
            loss,
            what_a: a.0,
            a: a.1,
            what_b: b.0,
            b: b.1,
        });
    }
    Ok(())
}

/// Checks that a per-class matrix (`dims = [classes, columns]`, e.g.
/// classifier weights or centres, named `what`) has at least one class and
/// the features' `feature_dim` columns.
pub(crate) fn class_matrix_matches(
    loss: &'static str,
    what: &'static str,
    dims: [usize; 2],
    feature_dim: usize,
) -> Result<(), LossError> {
    if dims[0] == 0 || dims[1] != feature_dim {
        return Err(LossError::BatchMismatch {
            loss,
            what_a: "features (columns)",
            a: feature_dim,
            what_b: what,
            b: dims[1],
        });
    }
    Ok(())
}

/// Checks that every `(name, size)` is at least 1; `expected` describes
/// that in the error.
pub(crate) fn nonzero_sizes(
    loss: &'static str,
    sizes: &[(&'static str, usize)],
    expected: &'static str,
) -> Result<(), LossError> {
    match sizes.iter().find(|s| s.1 == 0) {
        Some(&(name, _)) => Err(LossError::InvalidParameter {
            loss,
            name,
            value: 0.0,
            expected,
        }),
        None => Ok(()),
    }
}

/// Checks that `value` is finite and at least 0; `expected` describes that.
pub(crate) fn non_negative(
    loss: &'static str,
    name: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<(), LossError> {
    param_in(loss, name, value, 0.0, f64::MAX, expected)
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

/// Checks that a saved state's vector `what` holds `len == want` entries;
/// `expected` says what they are (`"values (size × dim)"`).
pub(crate) fn state_len(
    loss: &'static str,
    what: &'static str,
    len: usize,
    want: usize,
    expected: &str,
) -> Result<(), LossError> {
    if len != want {
        return Err(LossError::InvalidShape {
            loss,
            what,
            shape: vec![len],
            expected: format!("{want} {expected}"),
        });
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
