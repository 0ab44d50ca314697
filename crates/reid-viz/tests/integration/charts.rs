//! Charts as PNG and SVG: anti-aliased lines, deterministic files, and
//! degenerate inputs (empty, one point, NaN) as errors or documented drawings.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use reid_viz::chart::PALETTE;
use reid_viz::{
    Format, LineChart, PlotOptions, RankRow, Series, VizError, cmc_chart, plot_log_with, rank_list,
};

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reid-viz-charts-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn two_runs() -> LineChart {
    let a = (0..30).map(|i| (i as f64, (i as f64).sqrt())).collect();
    let b = (0..30).map(|i| (i as f64, 0.1 * i as f64)).collect();
    LineChart {
        title: "mAP of two runs".into(),
        x_label: "step".into(),
        y_label: "mAP".into(),
        series: vec![Series::new("pre-trained", a), Series::new("scratch", b)],
        ..LineChart::default()
    }
}

#[test]
fn chart_lines_are_anti_aliased() {
    let img = two_runs().render(400, 300);
    let blue = PALETTE[0];
    // Pixels between the series colour and white (each channel between the
    // two): the partially covered edges of the line.
    let blended = img
        .pixels()
        .filter(|p| {
            *p != &blue
                && p.0 != [255, 255, 255]
                && (0..3).all(|c| (blue.0[c]..=255).contains(&p.0[c]))
                && p.0[2] > p.0[0]
        })
        .count();
    assert!(blended > 50, "{blended} blended pixels");
    assert!(img.pixels().any(|p| *p == blue), "the line's core is solid");
}

#[test]
fn png_and_svg_files_are_deterministic_and_show_the_same_series() {
    let d = tmp("files");
    let chart = two_runs();
    for format in [Format::Png, Format::Svg] {
        let (a, b) = (
            d.join(format!("a.{}", format.extension())),
            d.join(format!("b.{}", format.extension())),
        );
        chart.save(&a, format, 500, 320).unwrap();
        chart.save(&b, format, 500, 320).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
    let png = image::open(d.join("a.png")).unwrap().to_rgb8();
    assert_eq!(png, chart.render(500, 320));
    let svg = std::fs::read_to_string(d.join("a.svg")).unwrap();
    assert_eq!(svg, chart.render_svg(500, 320));
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"500\" height=\"320\"")
    );
    for (i, name) in ["pre-trained", "scratch"].iter().enumerate() {
        assert!(
            svg.contains(&format!("<g class=\"series\" data-name=\"{name}\">")),
            "{name}"
        );
        let c = PALETTE[i].0;
        let stroke = format!("stroke=\"#{:02x}{:02x}{:02x}\"", c[0], c[1], c[2]);
        assert!(svg.contains(&stroke), "{stroke}");
        assert!(
            svg.contains(&format!(">{name}</text>")),
            "legend entry {name}"
        );
    }
    assert!(svg.contains(">mAP of two runs</text>"));
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert_eq!(Format::from_path(Path::new("x/y.SVG")), Some(Format::Svg));
    assert_eq!(Format::from_path(Path::new("y.jpg")), None);
    assert_eq!("png".parse::<Format>().unwrap(), Format::Png);
    assert!("gif".parse::<Format>().is_err());
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn charts_without_data_are_errors_when_saved_and_say_so_when_drawn() {
    let d = tmp("empty");
    let file = d.join("nothing.png");
    // No series at all, and series of NaN only: an error naming the file, no file written.
    let e = LineChart::default()
        .save(&file, Format::Png, 300, 200)
        .unwrap_err();
    assert!(matches!(e, VizError::NoData { .. }), "{e}");
    assert!(e.to_string().contains("nothing.png"), "{e}");
    let nan = LineChart {
        title: "loss".into(),
        series: vec![Series::new(
            "a",
            vec![(0.0, f64::NAN), (f64::INFINITY, 1.0)],
        )],
        ..LineChart::default()
    };
    let e = nan
        .save(&file, Format::Svg, 300, 200)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NaN or infinite") && e.contains("2 points"),
        "{e}"
    );
    assert!(!file.exists());
    // Drawn anyway (render never fails): "no data" in grey, not a blank plot.
    let img = nan.render(300, 200);
    assert!(img.pixels().any(|p| *p == Rgb([120, 120, 120])));
    assert!(nan.render_svg(300, 200).contains(">no data</text>"));
    let empty_cmc = cmc_chart(&[], 20);
    assert!(empty_cmc.save(&file, Format::Png, 300, 200).is_err());
    // Log axis: non-positive values are not drawable.
    let log0 = LineChart {
        log_y: true,
        series: vec![Series::new("lr", vec![(0.0, 0.0), (1.0, -1.0)])],
        ..LineChart::default()
    };
    assert!(matches!(log0.check(), Err(VizError::NoData { .. })));
    // A fixed range must be usable.
    for bad in [(1.0, 1.0), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
        let c = LineChart {
            y_range: Some(bad),
            ..two_runs()
        };
        assert!(matches!(c.check(), Err(VizError::Invalid(_))), "{bad:?}");
        c.render(200, 150);
    }
    let c = LineChart {
        y_range: Some((0.0, 1.0)),
        log_y: true,
        ..two_runs()
    };
    assert!(c.check().is_err());
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn one_point_and_nan_gaps_are_drawn_as_documented() {
    let d = tmp("degenerate");
    let red = Rgb([200, 0, 0]);
    // One point: a marker in the series' colour, on a padded range.
    let one = LineChart {
        series: vec![Series::new("eval", vec![(5.0, 0.3)]).with_color(red)],
        ..LineChart::default()
    };
    one.save(&d.join("one.png"), Format::Png, 300, 200).unwrap();
    let img = image::open(d.join("one.png")).unwrap().to_rgb8();
    assert_eq!(
        img.pixels().filter(|p| **p == red).count(),
        25 + 16 * 3,
        "5×5 marker + legend swatch"
    );
    // A NaN in the middle breaks the line in two.
    let mut pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64)).collect();
    pts[4].1 = f64::NAN;
    let gap = LineChart {
        series: vec![Series::new("loss", pts)],
        ..LineChart::default()
    };
    assert_eq!(gap.render_svg(300, 200).matches("<polyline").count(), 2);
    // Extreme values and sizes: no panic, sizes clamped.
    let wild = LineChart {
        series: vec![Series::new(
            "w",
            vec![(-1e308, 1e308), (1e308, -1e308), (0.0, f64::MIN_POSITIVE)],
        )],
        ..LineChart::default()
    };
    assert_eq!(wild.render(0, 0).dimensions(), (160, 120));
    assert_eq!(wild.render(100_000, 130).dimensions(), (8192, 130));
    wild.render_svg(300, 200);
    // A rank list with an empty image and no gallery: drawn, no panic.
    let rows = [RankRow {
        query: RgbImage::new(0, 0),
        gallery: vec![(RgbImage::new(0, 3), true)],
    }];
    rank_list(&rows);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn logs_with_nothing_to_plot_are_errors_and_a_torn_last_line_is_reported() {
    let d = tmp("logs");
    let log = d.join("m.jsonl");
    let out = d.join("out");
    let opts = PlotOptions::default();
    for (text, want) in [
        ("", "no complete line"),
        ("\n\n", "no complete line"),
        ("{\"step\":0}\n{\"step\":1}\n", "no numeric metric besides"),
        ("{\"step\":0,\"epoch\":0}\n", "no numeric metric besides"),
        ("{\"step\":0,\"loss\":1", "no complete line"),
    ] {
        std::fs::write(&log, text).unwrap();
        let e = plot_log_with(&log, &out, None, &opts).unwrap_err();
        assert!(matches!(e, VizError::NoData { .. }), "{text:?}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("m.jsonl") && msg.contains(want),
            "{text:?}: {msg}"
        );
    }
    assert!(!out.exists(), "nothing was written");
    // A torn last line (no newline, cut JSON) is skipped and reported.
    std::fs::write(
        &log,
        "{\"step\":0,\"loss\":2}\n{\"step\":1,\"loss\":1}\n{\"step\":2,\"lo",
    )
    .unwrap();
    let report = plot_log_with(&log, &out, None, &opts).unwrap();
    assert_eq!(report.torn_last_line, Some(3));
    assert_eq!(report.files, vec![out.join("loss.png")]);
    // A broken line elsewhere is still an error.
    std::fs::write(&log, "{\"step\":0,\"lo\n{\"step\":1,\"loss\":1}\n").unwrap();
    assert!(matches!(
        plot_log_with(&log, &out, None, &opts),
        Err(VizError::BadLine { line: 1, .. })
    ));
    std::fs::write(&log, "{\"step\":0,\"loss\":2}\n").unwrap();
    assert!(matches!(
        plot_log_with(&log, &out, Some(&[]), &opts),
        Err(VizError::Invalid(_))
    ));
    // SVG output of a log: same names with the svg extension.
    let svg = opts.with_format(Format::Svg);
    let report = plot_log_with(&log, &d.join("svg"), None, &svg).unwrap();
    assert_eq!(report.files, vec![d.join("svg").join("loss.svg")]);
    std::fs::remove_dir_all(d).ok();
}
