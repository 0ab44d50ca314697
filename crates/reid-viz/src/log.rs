//! JSON-lines metrics logs (one object per line with an integer `"step"`,
//! e.g. `{"step":12,"epoch":0,"loss":3.2,"lr":0.001}`, as `reid-train`
//! writes them) to series and curves (PNG or SVG).
//!
//! A log may mix lines of different keys: fine-tuning writes one line per
//! step and, at the end of an evaluated epoch, one evaluation line
//! (`{"step":8,"epoch":2,"mAP":0.41,"rank1":0.47,…}`, [`EVAL_METRICS`]).
//! Each metric's curve takes the lines that have it and skips the others;
//! the evaluation metrics are also drawn together ([`evaluation_chart`]).

use derive_setters::Setters;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::chart::{LineChart, Series};
use crate::output::Format;
use crate::{Result, VizError};

/// Every numeric key of a log (but `step`) as `(step, value)` points.
pub type MetricsSeries = BTreeMap<String, Vec<(f64, f64)>>;

/// The keys of an evaluation line as `reid-train` writes them (its
/// `metrics_log::EVAL_KEYS`; fractions in `[0, 1]`) and their legend labels,
/// in drawing order.
pub const EVAL_METRICS: [(&str, &str); 5] = [
    ("mAP", "mAP"),
    ("rank1", "Rank-1"),
    ("rank5", "Rank-5"),
    ("rank10", "Rank-10"),
    ("mINP", "mINP"),
];

/// The file [`plot_log`] writes the [`evaluation_chart`] to.
pub const EVALUATION_FILE: &str = "evaluation.png";

/// The evaluation metrics of a log ([`EVAL_METRICS`], those present) in one
/// chart: percent against step, a marker at each evaluation, y from 0 to
/// 100. `None` when the log has none of them.
pub fn evaluation_chart(series: &MetricsSeries) -> Option<LineChart> {
    let curves: Vec<Series> = EVAL_METRICS
        .iter()
        .filter_map(|(key, label)| {
            let points = series.get(*key)?;
            let percent = points.iter().map(|&(x, y)| (x, 100.0 * y)).collect();
            Some(Series::new(*label, percent).with_markers())
        })
        .collect();
    (!curves.is_empty()).then(|| LineChart {
        title: "evaluation".into(),
        x_label: "step".into(),
        y_label: "%".into(),
        series: curves,
        y_range: Some((0.0, 100.0)),
        log_y: false,
    })
}

/// A metrics log as read: its series and whether its last line was torn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogContents {
    /// Every numeric key (but `step`) as `(step, value)` points.
    pub series: MetricsSeries,
    /// 1-based number of a last line that is cut short (no final newline and
    /// not valid JSON: a run stopped while writing it), which was skipped —
    /// as resuming a run tolerates it.
    pub torn_last_line: Option<usize>,
    /// Number of lines read (blank lines and a torn last line not counted).
    pub lines: usize,
}

/// Reads a metrics log. Blank lines are skipped; non-numeric values are
/// ignored; a line that is not a JSON object with a numeric `step` is an
/// error naming the file and line — except a torn last line (see
/// [`LogContents::torn_last_line`]).
pub fn read_log(path: &Path) -> Result<LogContents> {
    let text = std::fs::read_to_string(path).map_err(|e| VizError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = LogContents::default();
    let all: Vec<&str> = text.lines().collect();
    let last_non_blank = all.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in all.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: &str| VizError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message: message.into(),
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if Some(i) == last_non_blank && !text.ends_with('\n') => {
                out.torn_last_line = Some(i + 1);
                continue;
            }
            Err(_) => return Err(bad("expected a JSON object")),
        };
        let obj = value
            .as_object()
            .ok_or_else(|| bad("expected a JSON object"))?;
        let step = obj
            .get("step")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| bad("expected a numeric \"step\""))?;
        out.lines += 1;
        for (k, v) in obj {
            if k == "step" {
                continue;
            }
            if let Some(v) = v.as_f64() {
                out.series.entry(k.clone()).or_default().push((step, v));
            }
        }
    }
    Ok(out)
}

/// The series of a metrics log ([`read_log`] without the line counts).
pub fn read_log_series(path: &Path) -> Result<MetricsSeries> {
    read_log(path).map(|c| c.series)
}

/// Centred moving average over `window` points (shorter at the ends).
pub(crate) fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let half = window / 2;
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(points.len());
            let mean = points[lo..hi].iter().map(|p| p.1).sum::<f64>() / (hi - lo) as f64;
            (points[i].0, mean)
        })
        .collect()
}

/// File name for a metric: ASCII letters, digits, `-` and `_` kept, others
/// replaced by `_`.
pub(crate) fn file_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Options of [`plot_log_with`] and of `runs::plot_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct PlotOptions {
    /// Picture format (and file extension).
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Default for PlotOptions {
    /// PNG, 800 × 480 pixels.
    fn default() -> Self {
        Self {
            format: Format::Png,
            width: 800,
            height: 480,
        }
    }
}

/// What [`plot_log_with`] wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlotReport {
    /// The files written, in writing order.
    pub files: Vec<PathBuf>,
    /// 1-based number of a torn last line that was skipped, if any.
    pub torn_last_line: Option<usize>,
}

/// The metrics to draw: `keys` (each must exist; at least one), or every
/// metric but `epoch`. `what` names the log(s) in errors.
pub(crate) fn wanted_keys<'a>(
    what: &str,
    available: impl Iterator<Item = &'a String> + Clone,
    keys: Option<&[&str]>,
) -> Result<Vec<String>> {
    match keys {
        Some([]) => Err(VizError::Invalid(format!(
            "{what}: no metric asked for (an empty key list)"
        ))),
        Some(k) => {
            for key in k {
                if !available.clone().any(|a| a == key) {
                    return Err(VizError::Invalid(format!(
                        "{what} has no metric {key:?}; it has {:?}",
                        available.clone().collect::<Vec<_>>()
                    )));
                }
            }
            Ok(k.iter().map(|s| s.to_string()).collect())
        }
        None => {
            let all: Vec<String> = available.filter(|k| *k != "epoch").cloned().collect();
            if all.is_empty() {
                return Err(VizError::NoData {
                    what: what.to_string(),
                    reason: "no numeric metric besides \"step\" and \"epoch\"".into(),
                });
            }
            Ok(all)
        }
    }
}

/// Writes one PNG per metric of the log at `path` into `out_dir`
/// (`<key>.png`, in key order); `keys` limits the metrics (an unknown key is
/// an error). See [`plot_log_with`]; this is it with [`PlotOptions::default`].
pub fn plot_log(path: &Path, out_dir: &Path, keys: Option<&[&str]>) -> Result<Vec<PathBuf>> {
    plot_log_with(path, out_dir, keys, &PlotOptions::default()).map(|r| r.files)
}

/// Writes one picture per metric of the log at `path` into `out_dir`
/// (`<key>.<png|svg>`, in key order); `keys` limits the metrics (an unknown
/// key or an empty list is an error). Each curve has the lines holding its
/// metric; curves with more than 50 points get a moving average beside the
/// raw values, and a metric on fewer lines than the most frequent one (an
/// evaluation every few epochs) a marker at every point. Without `keys`, a
/// log with evaluation lines also gets the [`evaluation_chart`]
/// ([`EVALUATION_FILE`] with the format's extension, written last).
///
/// # Errors
/// [`VizError::NoData`] for a log without lines or without any metric
/// besides `step` and `epoch` (nothing is written); [`VizError::BadLine`]
/// for a malformed line; [`VizError::Io`] naming the file.
pub fn plot_log_with(
    path: &Path,
    out_dir: &Path,
    keys: Option<&[&str]>,
    options: &PlotOptions,
) -> Result<PlotReport> {
    let log = read_log(path)?;
    let what = path.display().to_string();
    if log.lines == 0 {
        return Err(VizError::NoData {
            what,
            reason: "the log has no complete line".into(),
        });
    }
    let series = &log.series;
    let wanted = wanted_keys(&what, series.keys(), keys)?;
    let most = series.values().map(Vec::len).max().unwrap_or(0);
    let ext = options.format.extension();
    let mut written = Vec::new();
    for key in wanted {
        let points = &series[&key];
        let mut curve = Series::new("", points.clone());
        curve.markers = points.len() < most;
        let mut chart = LineChart {
            title: key.clone(),
            x_label: "step".into(),
            y_label: key.clone(),
            series: vec![curve],
            ..LineChart::default()
        };
        if points.len() > 50 {
            chart.series[0].name = "raw".into();
            chart.series[0].color = Some(image::Rgb([170, 190, 220]));
            let w = (points.len() / 25).max(5);
            chart.series.push(Series::new(
                format!("mean of {w}"),
                moving_average(points, w),
            ));
        }
        let file = out_dir.join(format!("{}.{ext}", file_name(&key)));
        chart.save(&file, options.format, options.width, options.height)?;
        written.push(file);
    }
    if keys.is_none()
        && let Some(chart) = evaluation_chart(series)
    {
        let stem = EVALUATION_FILE.trim_end_matches(".png");
        let file = out_dir.join(format!("{stem}.{ext}"));
        chart.save(&file, options.format, options.width, options.height)?;
        written.push(file);
    }
    Ok(PlotReport {
        files: written,
        torn_last_line: log.torn_last_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fine-tuning log: 3 epochs of 3 steps, an evaluation after epochs
    /// 1 and 3 (the second without `rank10`, a `null` mINP).
    fn mixed_log(dir: &Path) -> PathBuf {
        let mut text = String::new();
        for step in 0..9 {
            let epoch = step / 3;
            text.push_str(&format!(
                "{{\"step\":{step},\"epoch\":{epoch},\"loss\":{},\"lr\":0.001}}\n",
                5.0 - step as f64 * 0.25
            ));
            if step == 2 {
                text.push_str(
                    "{\"step\":2,\"epoch\":0,\"mAP\":0.2,\"rank1\":0.25,\"rank5\":0.5,\"rank10\":0.6,\"mINP\":0.1}\n",
                );
            }
            if step == 8 {
                text.push_str(
                    "{\"step\":8,\"epoch\":2,\"mAP\":0.4,\"rank1\":0.5,\"rank5\":0.75,\"mINP\":null}\n",
                );
            }
        }
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join("metrics.jsonl");
        std::fs::write(&log, text).unwrap();
        log
    }

    fn tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("reid-viz-log-{tag}-{}", std::process::id()))
    }

    #[test]
    fn each_curve_takes_the_lines_that_have_its_metric() {
        let dir = tmp("series");
        let series = read_log_series(&mixed_log(&dir)).unwrap();
        assert_eq!(series["loss"].len(), 9);
        assert_eq!(series["epoch"].len(), 11);
        assert_eq!(series["mAP"], vec![(2.0, 0.2), (8.0, 0.4)]);
        assert_eq!(series["rank10"], vec![(2.0, 0.6)]);
        assert_eq!(series["mINP"], vec![(2.0, 0.1)], "null is no point");

        let chart = evaluation_chart(&series).unwrap();
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["mAP", "Rank-1", "Rank-5", "Rank-10", "mINP"]);
        assert_eq!(chart.series[1].points, vec![(2.0, 25.0), (8.0, 50.0)]);
        assert!(chart.series.iter().all(|s| s.markers));
        assert_eq!(chart.y_range, Some((0.0, 100.0)));

        // Only the metrics that are there; none at all: no chart.
        let mut partial = series.clone();
        partial.retain(|k, _| k == "loss" || k == "rank1");
        let chart = evaluation_chart(&partial).unwrap();
        assert_eq!(chart.series.len(), 1);
        partial.remove("rank1");
        assert!(evaluation_chart(&partial).is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn plots_of_a_log_with_evaluations_are_deterministic() {
        let dir = tmp("plot");
        let log = mixed_log(&dir);
        let files = plot_log(&log, &dir.join("a"), None).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "loss.png",
                "lr.png",
                "mAP.png",
                "mINP.png",
                "rank1.png",
                "rank10.png",
                "rank5.png",
                EVALUATION_FILE
            ]
        );
        let again = plot_log(&log, &dir.join("b"), None).unwrap();
        for (a, b) in files.iter().zip(&again) {
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        }
        // The evaluation picture marks its points.
        let chart = evaluation_chart(&read_log_series(&log).unwrap()).unwrap();
        let mut plain = chart.clone();
        plain.series.iter_mut().for_each(|s| s.markers = false);
        assert_ne!(chart.render(800, 480), plain.render(800, 480));
        let written = image::open(files.last().unwrap()).unwrap().to_rgb8();
        assert_eq!(written, chart.render(800, 480));
        // Asked-for keys only: no evaluation picture.
        let some = plot_log(&log, &dir.join("c"), Some(&["mAP"])).unwrap();
        assert_eq!(some.len(), 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
