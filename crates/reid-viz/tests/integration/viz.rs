//! Pictures: fonts, ticks, charts, rank lists and metrics logs.

use image::{Rgb, RgbImage};
use reid_viz::chart::format_tick;
use reid_viz::font::{draw_text, has_glyph, text_width};
use reid_viz::ranklist::{MATCH, MISMATCH};
use reid_viz::{
    LineChart, RankListStyle, RankRow, Series, VizError, cmc_chart, nice_ticks, plot_log,
    rank_list_with, read_log_series,
};

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("reid-viz-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_font_covers_labels_and_measures_text() {
    for c in "0123456789abcXYZ .,:%+-_=()[]/".chars() {
        assert!(has_glyph(c), "{c:?}");
    }
    assert!(!has_glyph('€'));
    assert_eq!(text_width("mAP", 1), 18);
    assert_eq!(text_width("mAP", 2), 36);
}

fn text_image(text: &str) -> RgbImage {
    let mut img = RgbImage::from_pixel(80, 10, Rgb([255, 255, 255]));
    draw_text(&mut img, 0, 0, text, Rgb([0, 0, 0]), 1);
    img
}

#[test]
fn lower_case_letters_have_their_own_glyphs() {
    for c in 'a'..='z' {
        let upper = c.to_ascii_uppercase();
        assert_ne!(
            text_image(&c.to_string()),
            text_image(&upper.to_string()),
            "{c} draws as {upper}"
        );
    }
    assert_ne!(text_image("mAP"), text_image("MAP"));
    // Descenders use the cell's eighth row; capitals never do.
    let ink_in_row_7 = |s: &str| (0..6).any(|x| *text_image(s).get_pixel(x, 7) == Rgb([0, 0, 0]));
    for c in ['g', 'j', 'p', 'q', 'y'] {
        assert!(ink_in_row_7(&c.to_string()), "{c}");
        assert!(!ink_in_row_7(&c.to_ascii_uppercase().to_string()), "{c}");
    }
}

#[test]
fn ticks_are_nice_and_cover_the_range() {
    assert_eq!(
        nice_ticks(0.0, 100.0, 5),
        vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    );
    let t = nice_ticks(0.013, 0.087, 6);
    assert!(t[0] <= 0.013 && *t.last().unwrap() >= 0.087);
    let step = t[1] - t[0];
    assert!(
        (step - 0.01).abs() < 1e-12 || (step - 0.02).abs() < 1e-12,
        "{t:?}"
    );
    // Degenerate and non-finite ranges still give ticks.
    assert!(nice_ticks(3.0, 3.0, 5).len() >= 2);
    assert!(nice_ticks(f64::NAN, 1.0, 5).len() >= 2);
    assert_eq!(format_tick(1200.0), "1200");
    assert_eq!(format_tick(0.25), "0.25");
    assert_eq!(format_tick(1e-4), "1e-4");
}

#[test]
fn a_chart_draws_its_series_on_white() {
    let chart = LineChart {
        title: "loss".into(),
        series: vec![Series {
            name: "a".into(),
            points: (0..20)
                .map(|i| (i as f64, (i * i) as f64))
                .chain([(20.0, f64::NAN)])
                .collect(),
            color: Some(Rgb([255, 0, 255])),
            markers: false,
        }],
        ..LineChart::default()
    };
    let img = chart.render(400, 300);
    assert_eq!(img.dimensions(), (400, 300));
    assert_eq!(*img.get_pixel(0, 299), Rgb([255, 255, 255]));
    let magenta = img.pixels().filter(|p| **p == Rgb([255, 0, 255])).count();
    assert!(magenta > 200, "{magenta}");
    // Empty charts, degenerate fixed ranges and the CMC helper render too.
    LineChart::default().render(10, 10);
    LineChart {
        y_range: Some((0.5, 0.5)),
        ..chart.clone()
    }
    .render(200, 150);
    let c = cmc_chart(&[("x", &[10.0, 50.0, 90.0])], 20);
    assert_eq!(
        c.series[0].points,
        vec![(1.0, 10.0), (2.0, 50.0), (3.0, 90.0)]
    );
    c.render(300, 200);
}

#[test]
fn rank_lists_frame_matches_green_and_errors_red() {
    let q = RgbImage::from_pixel(10, 20, Rgb([50, 50, 50]));
    let rows = vec![RankRow {
        query: q.clone(),
        gallery: vec![(q.clone(), true), (q.clone(), false)],
    }];
    let s = RankListStyle {
        cell_h: 40,
        cell_w: 20,
        frame: 2,
        gap: 4,
        query_gap: 10,
    };
    let img = rank_list_with(&rows, &s);
    assert_eq!(img.width(), 4 + 20 + 10 + 2 * 24);
    let label_h = 12;
    let y = 4 + label_h;
    let x1 = 4 + 20 + 10;
    assert_eq!(*img.get_pixel(x1, y), MATCH);
    assert_eq!(*img.get_pixel(x1 + 24, y + 1), MISMATCH);
    // Inside the frame the image shows.
    assert_eq!(*img.get_pixel(x1 + 10, y + 20), Rgb([50, 50, 50]));
}

#[test]
fn logs_parse_and_plot_and_bad_lines_are_named() {
    let d = tmp("log");
    let log = d.join("m.jsonl");
    let mut text = String::new();
    for s in 0..60 {
        text.push_str(&format!(
            "{{\"step\":{s},\"epoch\":0,\"loss\":{},\"tag\":\"x\"}}\n",
            1.0 / (s + 1) as f64
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let series = read_log_series(&log).unwrap();
    assert_eq!(series["loss"].len(), 60);
    assert!(!series.contains_key("tag"));
    let files = plot_log(&log, &d.join("png"), None).unwrap();
    assert_eq!(files.len(), 1);
    let img = image::open(&files[0]).unwrap();
    assert_eq!(img.width(), 800);
    assert!(matches!(
        plot_log(&log, &d, Some(&["nope"])),
        Err(VizError::Invalid(_))
    ));
    std::fs::write(&log, "{\"step\":0,\"loss\":1}\nnot json\n").unwrap();
    let e = read_log_series(&log).unwrap_err();
    assert!(matches!(e, VizError::BadLine { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("m.jsonl"));
    std::fs::remove_dir_all(d).ok();
}
