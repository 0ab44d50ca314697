//! Several runs in one chart: one named series per run, with a legend.

use std::path::{Path, PathBuf};

use reid_viz::{Format, PlotOptions, Run, VizError, overlay_chart, plot_runs, read_log};

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reid-viz-runs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_log(path: &Path, loss_scale: f64, steps: usize, with_map: bool) {
    let mut text = String::new();
    for s in 0..steps {
        text.push_str(&format!(
            "{{\"step\":{s},\"epoch\":0,\"loss\":{}}}\n",
            loss_scale / (s + 1) as f64
        ));
    }
    if with_map {
        text.push_str(&format!("{{\"step\":{steps},\"mAP\":0.4}}\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn several_runs_share_one_chart_with_a_legend() {
    let d = tmp("runs");
    let (a, b) = (d.join("a.jsonl"), d.join("b.jsonl"));
    write_log(&a, 5.0, 20, true);
    write_log(&b, 3.0, 80, false);
    let opts = PlotOptions::default().with_format(Format::Svg);
    let (report, torn) = plot_runs(
        &[("moco", &a), ("scratch", &b)],
        &d.join("out"),
        None,
        &opts,
    )
    .unwrap();
    let names: Vec<String> = report
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["loss.svg", "mAP.svg"]);
    assert_eq!(torn, vec![(a.clone(), None), (b.clone(), None)]);
    let loss = std::fs::read_to_string(&report.files[0]).unwrap();
    assert!(loss.contains("data-name=\"moco\""));
    // 80 points: drawn as the moving average, named so.
    assert!(loss.contains("data-name=\"scratch (mean of 5)\""), "{loss}");
    // The run without an evaluation stays in the legend, marked.
    let map = std::fs::read_to_string(&report.files[1]).unwrap();
    assert!(map.contains(">scratch (no data)</text>"), "{map}");

    let runs = vec![
        Run::new("a", read_log(&a).unwrap().series),
        Run::new("b", read_log(&b).unwrap().series),
    ];
    let chart = overlay_chart(&runs, "loss").unwrap();
    assert_eq!(chart.series.len(), 2);
    assert_eq!(chart.series[0].points.len(), 20);
    assert!(matches!(
        overlay_chart(&runs, "lr"),
        Err(VizError::NoData { .. })
    ));
    let twice = vec![runs[0].clone(), runs[0].clone()];
    let e = overlay_chart(&twice, "loss").unwrap_err().to_string();
    assert!(e.contains("two runs are named \"a\""), "{e}");
    assert!(matches!(
        overlay_chart(&[], "loss"),
        Err(VizError::Invalid(_))
    ));
    std::fs::remove_dir_all(d).ok();
}
