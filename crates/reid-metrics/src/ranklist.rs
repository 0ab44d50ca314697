//! The top of each query's ranking, for rank-list pictures and inspection.

use ndarray::ArrayView2;

use crate::{Labels, MetricsError, Result};

/// One gallery entry of a query's ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedMatch {
    /// Row of the gallery.
    pub gallery_index: usize,
    /// Distance to the query (units of the distance matrix).
    pub distance: f32,
    /// Whether it shows the query's identity.
    pub is_match: bool,
}

/// The `k` nearest gallery entries of each query in `dist` (`[queries,
/// gallery]`, smaller = closer), ties broken by gallery index, with the
/// Market-1501 protocol's filter: gallery entries of the query's identity
/// taken by the query's camera are skipped (they are not counted as
/// matches or errors by the evaluation either).
///
/// # Errors
/// [`MetricsError::ShapeMismatch`] when the labels do not fit `dist`;
/// [`MetricsError::NonFinite`] when a distance is NaN (it has no place in a
/// ranking; infinite distances sort last).
pub fn top_matches(
    dist: ArrayView2<f32>,
    query: &Labels,
    gallery: &Labels,
    k: usize,
) -> Result<Vec<Vec<RankedMatch>>> {
    let (nq, ng) = dist.dim();
    for (what, expected, got) in [
        ("query labels vs distance rows", nq, query.len()),
        ("gallery labels vs distance columns", ng, gallery.len()),
    ] {
        if expected != got {
            return Err(MetricsError::ShapeMismatch {
                what: what.into(),
                expected,
                got,
            });
        }
    }
    let mut out = Vec::with_capacity(nq);
    for (qi, row) in dist.outer_iter().enumerate() {
        if let Some(j) = row.iter().position(|v| v.is_nan()) {
            return Err(MetricsError::NonFinite {
                what: format!("distance matrix, query row {qi}"),
                index: j,
            });
        }
        let (qp, qc) = (query.pids()[qi], query.camids()[qi]);
        let mut order: Vec<usize> = (0..ng)
            .filter(|&j| !(gallery.pids()[j] == qp && gallery.camids()[j] == qc))
            .collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]).then(a.cmp(&b)));
        out.push(
            order
                .into_iter()
                .take(k)
                .map(|j| RankedMatch {
                    gallery_index: j,
                    distance: row[j],
                    is_match: gallery.pids()[j] == qp,
                })
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn same_camera_matches_are_skipped_and_order_is_by_distance() {
        let dist = array![[0.5f32, 0.1, 0.3, 0.2]];
        let q = Labels::new(vec![1], vec![0]).unwrap();
        let g = Labels::new(vec![1, 1, 2, 1], vec![1, 0, 1, 2]).unwrap();
        let top = top_matches(dist.view(), &q, &g, 3).unwrap();
        let idx: Vec<usize> = top[0].iter().map(|m| m.gallery_index).collect();
        // Gallery 1 is the same identity from the same camera: skipped.
        assert_eq!(idx, vec![3, 2, 0]);
        let hits: Vec<bool> = top[0].iter().map(|m| m.is_match).collect();
        assert_eq!(hits, vec![true, false, true]);
        assert!(top_matches(dist.view(), &q, &q, 1).is_err());
    }
}
