//! Small pieces of every optimiser step: reading a loss back to the host
//! and refusing non-finite values.

use burn::tensor::Tensor;

use crate::error::TrainError;

/// Fails with [`TrainError::NonFiniteStep`] when any value is not finite.
pub(crate) fn check_finite(
    recipe: &'static str,
    epoch: usize,
    step: usize,
    values: &[(&str, f64)],
) -> Result<(), TrainError> {
    if values.iter().all(|(_, v)| v.is_finite()) {
        return Ok(());
    }
    let detail = values
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(TrainError::NonFiniteStep {
        recipe,
        epoch,
        step,
        detail,
    })
}

/// Reads a `[1]` loss tensor back to the host.
pub(crate) fn scalar(t: &Tensor<1>) -> Result<f64, TrainError> {
    let v: Vec<f32> = t
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Readback(format!("{e:?}")))?;
    v.first()
        .map(|&x| f64::from(x))
        .ok_or_else(|| TrainError::Readback("empty loss tensor".into()))
}
