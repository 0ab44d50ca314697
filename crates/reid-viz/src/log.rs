//! JSON-lines metrics logs (one object per line with an integer `"step"`,
//! e.g. `{"step":12,"epoch":0,"loss":3.2,"lr":0.001}`, as `reid-train`
//! writes them) to series and PNG curves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::chart::{LineChart, Series};
use crate::draw::save_png;
use crate::{Result, VizError};

/// Every numeric key of a log (but `step`) as `(step, value)` points.
pub type MetricsSeries = BTreeMap<String, Vec<(f64, f64)>>;

/// Reads a metrics log. Blank lines are skipped; non-numeric values are
/// ignored; a line that is not a JSON object with a numeric `step` is an
/// error naming the file and line.
pub fn read_log_series(path: &Path) -> Result<MetricsSeries> {
    let text = std::fs::read_to_string(path).map_err(|e| VizError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = MetricsSeries::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: &str| VizError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message: message.into(),
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|_| bad("expected a JSON object"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| bad("expected a JSON object"))?;
        let step = obj
            .get("step")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| bad("expected a numeric \"step\""))?;
        for (k, v) in obj {
            if k == "step" {
                continue;
            }
            if let Some(v) = v.as_f64() {
                out.entry(k.clone()).or_default().push((step, v));
            }
        }
    }
    Ok(out)
}

/// Centred moving average over `window` points (shorter at the ends).
fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
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
fn file_name(key: &str) -> String {
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

/// Writes one PNG per metric of the log at `path` into `out_dir`
/// (`<key>.png`); `keys` limits the metrics (an unknown key is an error).
/// Curves with more than 50 points get a moving average beside the raw
/// values. Returns the files written.
pub fn plot_log(path: &Path, out_dir: &Path, keys: Option<&[&str]>) -> Result<Vec<PathBuf>> {
    let series = read_log_series(path)?;
    let wanted: Vec<String> = match keys {
        Some(k) => {
            for key in k {
                if !series.contains_key(*key) {
                    return Err(VizError::Invalid(format!(
                        "{} has no metric {key:?}; it has {:?}",
                        path.display(),
                        series.keys().collect::<Vec<_>>()
                    )));
                }
            }
            k.iter().map(|s| s.to_string()).collect()
        }
        None => series.keys().filter(|k| *k != "epoch").cloned().collect(),
    };
    let mut written = Vec::new();
    for key in wanted {
        let points = &series[&key];
        let mut chart = LineChart {
            title: key.clone(),
            x_label: "step".into(),
            y_label: key.clone(),
            series: vec![Series::new("", points.clone())],
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
        let file = out_dir.join(format!("{}.png", file_name(&key)));
        save_png(&chart.render(800, 480), &file)?;
        written.push(file);
    }
    Ok(written)
}
