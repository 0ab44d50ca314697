//! Helpers shared by the integration test modules.

use ndarray::Array2;

/// The largest absolute element difference of two matrices of one shape.
pub fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
