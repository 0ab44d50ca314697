//! Distances between feature vectors and centroids.
//!
//! Features are rows of `[n, dim]` `f32` matrices. With [`FeatureDistance::Cosine`]
//! every feature is L2-normalised when it enters the pipeline, centroids are
//! the L2-normalised means, and the distance is `1 − cos` (range `[0, 2]`).
//! With [`FeatureDistance::Euclidean`] features are used as they are, centroids are
//! plain means and the distance is `‖a − b‖₂`.

use serde::{Deserialize, Serialize};

/// The distance between features (and centroids) used by every level:
/// cosine or Euclidean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureDistance {
    /// `1 − cos(a, b)` on L2-normalised vectors (default).
    #[default]
    Cosine,
    /// `‖a − b‖₂` on raw vectors.
    Euclidean,
}

/// The former name of [`FeatureDistance`], kept so that existing callers
/// (`Metric::Cosine`, `Metric::Euclidean`) keep compiling.
pub type Metric = FeatureDistance;

impl FeatureDistance {
    /// Parses `"cosine"` or `"euclidean"`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cosine" => Some(Self::Cosine),
            "euclidean" => Some(Self::Euclidean),
            _ => None,
        }
    }

    /// Prepares a feature for this metric in place (L2-normalises for cosine;
    /// a zero vector stays zero).
    pub fn prepare(self, x: &mut [f32]) {
        if self == Self::Cosine {
            l2_normalize(x);
        }
    }

    /// The distance between two prepared vectors.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::Cosine => (1.0 - dot(a, b)).max(0.0),
            Self::Euclidean => a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt(),
        }
    }

    /// Turns a sum of `count` prepared vectors into the centroid, written to `out`.
    pub fn centroid_from_sum(self, sum: &[f32], count: usize, out: &mut [f32]) {
        let inv = 1.0 / count.max(1) as f32;
        for (o, s) in out.iter_mut().zip(sum) {
            *o = s * inv;
        }
        if self == Self::Cosine {
            l2_normalize(out);
        }
    }

    /// Distance from a matrix product entry: for cosine, `1 − a·b` given the
    /// dot product of two normalised vectors; for Euclidean, from the dot
    /// product and the squared norms.
    pub fn from_dot(self, dot_ab: f32, sq_a: f32, sq_b: f32) -> f32 {
        match self {
            Self::Cosine => (1.0 - dot_ab).max(0.0),
            Self::Euclidean => (sq_a + sq_b - 2.0 * dot_ab).max(0.0).sqrt(),
        }
    }
}

/// The dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// L2-normalises in place; a zero vector stays zero.
pub fn l2_normalize(x: &mut [f32]) {
    let n = dot(x, x).sqrt();
    if n > 0.0 {
        for v in x.iter_mut() {
            *v /= n;
        }
    }
}

/// Adds `x` to `acc` element-wise.
pub fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// Subtracts `x` from `acc` element-wise.
pub fn sub_from(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a -= v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_euclidean() {
        let mut a = [3.0, 4.0];
        let mut b = [4.0, 3.0];
        FeatureDistance::Cosine.prepare(&mut a);
        FeatureDistance::Cosine.prepare(&mut b);
        assert!((FeatureDistance::Cosine.distance(&a, &b) - (1.0 - 24.0 / 25.0)).abs() < 1e-6);
        assert!((FeatureDistance::Euclidean.distance(&[0.0, 0.0], &[3.0, 4.0]) - 5.0).abs() < 1e-6);
        let d = FeatureDistance::Euclidean.from_dot(0.0, 9.0, 16.0);
        assert!((d - 5.0).abs() < 1e-6);
    }

    #[test]
    fn centroid_normalised_for_cosine() {
        let mut c = [0.0; 2];
        FeatureDistance::Cosine.centroid_from_sum(&[2.0, 0.0], 2, &mut c);
        assert_eq!(c, [1.0, 0.0]);
        FeatureDistance::Euclidean.centroid_from_sum(&[2.0, 0.0], 2, &mut c);
        assert_eq!(c, [1.0, 0.0]);
        FeatureDistance::Euclidean.centroid_from_sum(&[4.0, 2.0], 2, &mut c);
        assert_eq!(c, [2.0, 1.0]);
    }
}
