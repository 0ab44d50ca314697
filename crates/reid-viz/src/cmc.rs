//! CMC curves (cumulative matching characteristics) of several models.

use crate::chart::{LineChart, Series};

/// A chart of matching rate (%) against rank `1..=max_rank` for each
/// `(name, cmc)` (CMC values in `[0, 100]`, index 0 = Rank-1; curves
/// shorter than `max_rank` stop early).
pub fn cmc_chart(curves: &[(&str, &[f64])], max_rank: usize) -> LineChart {
    LineChart {
        title: "CMC".into(),
        x_label: "rank".into(),
        y_label: "matching rate (%)".into(),
        series: curves
            .iter()
            .map(|(name, cmc)| {
                Series::new(
                    *name,
                    cmc.iter()
                        .take(max_rank)
                        .enumerate()
                        .map(|(i, v)| ((i + 1) as f64, *v))
                        .collect(),
                )
            })
            .collect(),
        y_range: Some((0.0, 100.0)),
        log_y: false,
    }
}
