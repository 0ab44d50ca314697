//! Several runs in one chart: the same metric of each run's log as one named
//! series, with a legend (e.g. a baseline against a pre-trained start, or
//! three seeds).

use std::path::{Path, PathBuf};

use crate::chart::{LineChart, Series};
use crate::log::{
    MetricsSeries, PlotOptions, PlotReport, file_name, moving_average, read_log, wanted_keys,
};
use crate::{Result, VizError};

/// Curves with more points than this are drawn as their moving average.
const SMOOTH_ABOVE: usize = 50;

/// One run: its legend name and its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Legend name (non-empty, unique among the runs of a chart).
    pub name: String,
    /// Its metrics, e.g. from [`crate::read_log_series`].
    pub series: MetricsSeries,
}

impl Run {
    /// A run named `name` with `series`.
    pub fn new(name: impl Into<String>, series: MetricsSeries) -> Self {
        Self {
            name: name.into(),
            series,
        }
    }
}

fn check_names(runs: &[Run]) -> Result<()> {
    if runs.is_empty() {
        return Err(VizError::Invalid(
            "an overlay needs at least one run".into(),
        ));
    }
    for (i, r) in runs.iter().enumerate() {
        if r.name.is_empty() {
            return Err(VizError::Invalid(format!(
                "run {} has an empty name",
                i + 1
            )));
        }
        if runs[..i].iter().any(|o| o.name == r.name) {
            return Err(VizError::Invalid(format!(
                "two runs are named {:?}: the legend could not tell them apart",
                r.name
            )));
        }
    }
    Ok(())
}

/// The metric `key` of every run in one chart: one series per run, in run
/// order (palette colours), x = step. A run without the metric stays in the
/// legend as "`name` (no data)". Curves over 50 points are drawn as their
/// moving average (window `len / 25`, at least 5), named "`name` (mean of w)".
///
/// # Errors
/// [`VizError::Invalid`] without runs, for an empty or repeated run name;
/// [`VizError::NoData`] when no run has the metric.
pub fn overlay_chart(runs: &[Run], key: &str) -> Result<LineChart> {
    check_names(runs)?;
    if !runs.iter().any(|r| r.series.contains_key(key)) {
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        return Err(VizError::NoData {
            what: format!("metric {key:?}"),
            reason: format!("none of the runs {names:?} has it"),
        });
    }
    let series = runs
        .iter()
        .map(|r| {
            let points = r.series.get(key).cloned().unwrap_or_default();
            if points.len() > SMOOTH_ABOVE {
                let w = (points.len() / 25).max(5);
                Series::new(
                    format!("{} (mean of {w})", r.name),
                    moving_average(&points, w),
                )
            } else {
                let markers = points.len() <= 12;
                let s = Series::new(r.name.clone(), points);
                if markers { s.with_markers() } else { s }
            }
        })
        .collect();
    Ok(LineChart {
        title: key.to_string(),
        x_label: "step".into(),
        y_label: key.to_string(),
        series,
        ..LineChart::default()
    })
}

/// What [`plot_runs`] wrote: the files, and each log's torn last line.
pub type RunsReport = Vec<(PathBuf, Option<usize>)>;

/// Reads each `(name, log)` and writes one overlay chart per metric into
/// `out_dir` (`<key>.<png|svg>`, key order): `keys` limits the metrics (each
/// must be in at least one log); without it, every metric of any log but
/// `epoch`. Returns the files written and, per log, a skipped torn last line.
///
/// # Errors
/// As [`overlay_chart`] and [`crate::read_log`]; [`VizError::NoData`] when
/// a log has no complete line.
pub fn plot_runs(
    logs: &[(&str, &Path)],
    out_dir: &Path,
    keys: Option<&[&str]>,
    options: &PlotOptions,
) -> Result<(PlotReport, RunsReport)> {
    let mut runs = Vec::with_capacity(logs.len());
    let mut torn = Vec::with_capacity(logs.len());
    for (name, path) in logs {
        let log = read_log(path)?;
        if log.lines == 0 {
            return Err(VizError::NoData {
                what: path.display().to_string(),
                reason: "the log has no complete line".into(),
            });
        }
        torn.push((path.to_path_buf(), log.torn_last_line));
        runs.push(Run::new(*name, log.series));
    }
    check_names(&runs)?;
    let mut all: Vec<&String> = runs.iter().flat_map(|r| r.series.keys()).collect();
    all.sort();
    all.dedup();
    let what = format!(
        "the logs of {:?}",
        logs.iter().map(|l| l.0).collect::<Vec<_>>()
    );
    let wanted = wanted_keys(&what, all.into_iter(), keys)?;
    let mut report = PlotReport::default();
    for key in wanted {
        let chart = overlay_chart(&runs, &key)?;
        let file = out_dir.join(format!(
            "{}.{}",
            file_name(&key),
            options.format.extension()
        ));
        chart.save(&file, options.format, options.width, options.height)?;
        report.files.push(file);
    }
    Ok((report, torn))
}
