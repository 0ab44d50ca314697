//! The unit the pipeline streams: one video's crops and their features.

use ndarray::Array2;

use crate::distance::FeatureDistance;
use crate::error::{DenoiseError, Result};

/// One video: its crops in corpus order, their tracker labels and features.
///
/// Rows are global and contiguous: crop `i` of the block is row
/// `first_row + i` of the corpus-wide feature matrix (and of the output).
#[derive(Debug, Clone)]
pub struct VideoBlock {
    /// Video index in corpus order.
    pub video: u32,
    /// Global row of the first crop.
    pub first_row: u64,
    /// The tracker's tracklet label of each crop (`None`: untracked).
    pub tracklets: Vec<Option<u64>>,
    /// The frame index of each crop (used to forbid two crops of one frame in
    /// one identity; use distinct values when unknown).
    pub frames: Vec<u64>,
    /// Features `[crops, dim]`, as extracted (prepared by [`VideoBlock::prepare`]).
    pub features: Array2<f32>,
}

impl VideoBlock {
    /// Number of crops.
    pub fn len(&self) -> usize {
        self.tracklets.len()
    }

    /// Whether the video has no crops.
    pub fn is_empty(&self) -> bool {
        self.tracklets.is_empty()
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.features.ncols()
    }

    /// Checks the lengths and values, then prepares every row for `metric`
    /// (L2 normalisation for cosine).
    pub fn prepare(&mut self, metric: FeatureDistance) -> Result<()> {
        let n = self.tracklets.len();
        if self.frames.len() != n || self.features.nrows() != n {
            return Err(DenoiseError::Inconsistent(format!(
                "video {}: {} tracklet labels, {} frames, {} feature rows (expected equal counts)",
                self.video,
                n,
                self.frames.len(),
                self.features.nrows()
            )));
        }
        if !self.features.is_standard_layout() {
            self.features = self.features.as_standard_layout().into_owned();
        }
        for (i, mut row) in self.features.rows_mut().into_iter().enumerate() {
            let slice = row.as_slice_mut().ok_or_else(|| {
                DenoiseError::Inconsistent("feature rows must be contiguous".into())
            })?;
            if let Some(col) = slice.iter().position(|v| !v.is_finite()) {
                return Err(DenoiseError::NonFinite {
                    row: self.first_row + i as u64,
                    col,
                });
            }
            // Under the cosine distance a row of zeros has no direction:
            // it would stay zero and sit at distance 1 from everything,
            // and whatever it joined would be made up.
            if metric == FeatureDistance::Cosine && slice.iter().all(|&v| v == 0.0) {
                return Err(DenoiseError::Inconsistent(format!(
                    "feature row {} (video {}) is all zeros: under the cosine distance a feature needs a direction (use the Euclidean distance, or check how the features were made)",
                    self.first_row + i as u64,
                    self.video
                )));
            }
            metric.prepare(slice);
        }
        Ok(())
    }

    /// Feature row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        // Rows of a standard-layout Array2 are contiguous; `prepare` checked it.
        let d = self.features.ncols();
        let all = self.features.as_slice().unwrap_or(&[]);
        &all[i * d..(i + 1) * d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(features: Array2<f32>) -> VideoBlock {
        let n = features.nrows();
        VideoBlock {
            video: 4,
            first_row: 100,
            tracklets: vec![Some(1); n],
            frames: (0..n as u64).collect(),
            features,
        }
    }

    #[test]
    fn a_zero_row_has_no_direction_under_cosine_but_is_a_point_under_euclidean() {
        let x = Array2::from_shape_vec((3, 2), vec![1.0, 0.0, 0.0, 0.0, 0.5, 0.5]).unwrap();
        let e = block(x.clone())
            .prepare(FeatureDistance::Cosine)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("feature row 101 (video 4) is all zeros"),
            "{text}"
        );
        block(x).prepare(FeatureDistance::Euclidean).unwrap();
    }
}
