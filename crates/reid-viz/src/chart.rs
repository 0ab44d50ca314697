//! Line charts: axes with "nice" ticks and numeric labels, poly-lines,
//! a legend and a title, on a white background.

use image::{Rgb, RgbImage};

use crate::draw::{fill_rect, frame, line};
use crate::font::{draw_text, text_height, text_width};

/// Colours given to series in order when none is set.
pub const PALETTE: [Rgb<u8>; 6] = [
    Rgb([31, 119, 180]),
    Rgb([214, 39, 40]),
    Rgb([44, 160, 44]),
    Rgb([255, 127, 14]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
];

/// Background colour of the charts.
pub(crate) const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// Axes and text colour of the charts.
pub(crate) const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
/// Grid-line colour of the charts.
pub(crate) const GRID: Rgb<u8> = Rgb([225, 225, 225]);

/// One curve: `(x, y)` points in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points; non-finite ones are skipped (the line breaks there).
    pub points: Vec<(f64, f64)>,
    /// Line colour; `None` takes the next colour of [`PALETTE`].
    pub color: Option<Rgb<u8>>,
    /// A small square at every point, for sparse values such as
    /// evaluations (a series of one point always gets one).
    pub markers: bool,
}

impl Series {
    /// A series with the palette's colour, without markers.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            color: None,
            markers: false,
        }
    }

    /// The same series with a marker at every point.
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// A line chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label above the y axis.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Fixed y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic y axis (base 10; non-positive values are skipped).
    pub log_y: bool,
}

/// About `target` "nice" tick values (steps of 1, 2 or 5 × 10ⁿ) covering
/// `[lo, hi]`; the first tick is ≤ `lo` and the last ≥ `hi`. An empty or
/// degenerate range is padded.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / target.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() as i64;
    let end = (hi / step).ceil() as i64;
    (start..=end).map(|i| i as f64 * step).collect()
}

/// A compact label for a tick value: integers plainly, small or large
/// magnitudes in `1e-4` form, others with up to 3 decimals.
pub fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        if (m - m.round()).abs() < 1e-9 {
            return format!("{}e{e}", m.round());
        }
        return format!("{m:.1}e{e}");
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl LineChart {
    /// Renders the chart into a `width × height` RGB image (at least
    /// 160 × 120 pixels).
    pub fn render(&self, width: u32, height: u32) -> RgbImage {
        let (w, h) = (width.max(160), height.max(120));
        let mut img = RgbImage::from_pixel(w, h, WHITE);
        let ty = |v: f64| if self.log_y { v.log10() } else { v };
        let pts: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
                    .map(|&(x, y)| (x, ty(y)))
                    .collect()
            })
            .collect();
        let all = pts.iter().flatten();
        let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in all {
            xlo = xlo.min(x);
            xhi = xhi.max(x);
            ylo = ylo.min(y);
            yhi = yhi.max(y);
        }
        if xlo > xhi {
            (xlo, xhi, ylo, yhi) = (0.0, 1.0, 0.0, 1.0);
        }
        if let Some((a, b)) = self.y_range {
            (ylo, yhi) = (ty(a), ty(b));
        }
        let xt = nice_ticks(xlo, xhi, 6);
        let yt = if self.log_y {
            let (a, b) = (ylo.floor() as i64, yhi.ceil().max(ylo.floor() + 1.0) as i64);
            (a..=b).map(|e| e as f64).collect()
        } else if self.y_range.is_some() {
            let inside: Vec<f64> = nice_ticks(ylo, yhi, 6)
                .into_iter()
                .filter(|v| *v >= ylo.min(yhi) - 1e-9 && *v <= ylo.max(yhi) + 1e-9)
                .collect();
            if inside.is_empty() {
                vec![ylo, yhi]
            } else {
                inside
            }
        } else {
            nice_ticks(ylo, yhi, 6)
        };
        let (x0, x1) = (xt[0], *xt.last().unwrap_or(&1.0));
        let (y0, y1) = if self.y_range.is_some() && !self.log_y {
            (ylo, yhi)
        } else {
            (yt[0], *yt.last().unwrap_or(&1.0))
        };
        let label_w = yt
            .iter()
            .map(|v| text_width(&self.y_tick(*v), 1))
            .max()
            .unwrap_or(0);
        let (left, right) = (i64::from(label_w) + 14, i64::from(w) - 16);
        let (top, bottom) = (34i64, i64::from(h) - 36);
        // Offsets are clamped so that degenerate ranges never overflow.
        let span = |a: f64, b: f64| if (b - a).abs() > 1e-300 { b - a } else { 1.0 };
        let (sx, sy) = (span(x0, x1), span(y0, y1));
        let off = |f: f64| f.clamp(-1e6, 1e6) as i64;
        let px = |x: f64| left + off((x - x0) / sx * (right - left) as f64);
        let py = |y: f64| bottom - off((y - y0) / sy * (bottom - top) as f64);
        for &v in &yt {
            let y = py(v);
            line(&mut img, (left, y), (right, y), 1, GRID);
            let s = self.y_tick(v);
            draw_text(
                &mut img,
                left - 6 - i64::from(text_width(&s, 1)),
                y - 3,
                &s,
                BLACK,
                1,
            );
        }
        for &v in &xt {
            let x = px(v);
            line(&mut img, (x, top), (x, bottom), 1, GRID);
            let s = format_tick(v);
            draw_text(
                &mut img,
                x - i64::from(text_width(&s, 1)) / 2,
                bottom + 6,
                &s,
                BLACK,
                1,
            );
        }
        line(&mut img, (left, top), (left, bottom), 1, BLACK);
        line(&mut img, (left, bottom), (right, bottom), 1, BLACK);
        let tw = i64::from(text_width(&self.title, 2));
        draw_text(&mut img, (i64::from(w) - tw) / 2, 6, &self.title, BLACK, 2);
        draw_text(&mut img, 4, top - 12, &self.y_label, BLACK, 1);
        let xw = i64::from(text_width(&self.x_label, 1));
        draw_text(
            &mut img,
            (left + right - xw) / 2,
            bottom + 20,
            &self.x_label,
            BLACK,
            1,
        );
        for (i, (s, p)) in self.series.iter().zip(&pts).enumerate() {
            let c = s.color.unwrap_or(PALETTE[i % PALETTE.len()]);
            for pair in p.windows(2) {
                line(
                    &mut img,
                    (px(pair[0].0), py(pair[0].1)),
                    (px(pair[1].0), py(pair[1].1)),
                    2,
                    c,
                );
            }
            if s.markers || p.len() == 1 {
                for &(x, y) in p {
                    fill_rect(&mut img, px(x) - 2, py(y) - 2, 5, 5, c);
                }
            }
        }
        // Legend, top right inside the plot.
        let named: Vec<_> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .collect();
        if !named.is_empty() {
            let lw = named
                .iter()
                .map(|(_, s)| text_width(&s.name, 1))
                .max()
                .unwrap_or(0)
                + 30;
            let lh = named.len() as u32 * (text_height(1) + 4) + 6;
            let lx = right - i64::from(lw) - 6;
            let ly = top + 6;
            fill_rect(&mut img, lx, ly, lw, lh, WHITE);
            frame(&mut img, lx, ly, lw, lh, 1, Rgb([160, 160, 160]));
            for (row, (i, s)) in named.iter().enumerate() {
                let c = s.color.unwrap_or(PALETTE[i % PALETTE.len()]);
                let y = ly + 5 + row as i64 * i64::from(text_height(1) + 4);
                fill_rect(&mut img, lx + 5, y + 2, 16, 3, c);
                draw_text(&mut img, lx + 25, y, &s.name, BLACK, 1);
            }
        }
        img
    }

    fn y_tick(&self, v: f64) -> String {
        if self.log_y {
            format_tick(10f64.powf(v))
        } else {
            format_tick(v)
        }
    }
}
