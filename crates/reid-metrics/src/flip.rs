//! Flip-averaged features (fast-reid's `TEST.FLIP`).

use ndarray::{Array2, ArrayView2};

use crate::{MetricsError, Result};

/// Averages the features of images `[n, dim]` and of their horizontal flips
/// `[n, dim]`: `(a + b) / 2` in f32, before any normalisation (as fast-reid does).
/// A NaN in either input propagates to the output (the distance and evaluation
/// functions then refuse it); nothing is dropped.
pub fn flip_average(feats: ArrayView2<f32>, flipped: ArrayView2<f32>) -> Result<Array2<f32>> {
    if feats.dim() != flipped.dim() {
        return Err(MetricsError::ShapeMismatch {
            what: format!(
                "flipped features must have the shape of the features {:?}; elements",
                feats.dim()
            ),
            expected: feats.len(),
            got: flipped.len(),
        });
    }
    Ok((&feats + &flipped).mapv(|v| v / 2.0))
}
