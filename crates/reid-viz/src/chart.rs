//! Line charts: axes with "nice" ticks and numeric labels, anti-aliased
//! poly-lines (one per series, several runs overlaid), a legend and a
//! title, on a white background; as PNG or SVG from the same [`Scene`].
//!
//! Degenerate data draw as documented, never panic: non-finite points (and
//! non-positive ones on a log axis) are skipped and the line breaks there; a
//! series of one point is a marker; a flat or one-point range is padded; a
//! series without any drawable point is listed in the legend as
//! "`name` (no data)"; a chart without any drawable point shows "no data" in
//! its plot area. [`LineChart::save`] refuses the last case (and an invalid
//! fixed range) with [`VizError::NoData`] / [`VizError::Invalid`] rather
//! than writing an empty picture.

use image::Rgb;

use crate::font::{text_height, text_width};
use crate::output::{chart_outputs, clamp_size};
use crate::scene::{Item, Scene};
use crate::ticks::ticks_within;
use crate::{Result, VizError};

pub use crate::ticks::{format_tick, nice_ticks};

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
/// Colour of notes such as "no data".
pub(crate) const NOTE: Rgb<u8> = Rgb([120, 120, 120]);

/// Smallest chart, in pixels (`width`, `height`).
pub const MIN_SIZE: (u32, u32) = (160, 120);

/// Stroke width of the series' lines, in pixels.
const LINE_WIDTH: f64 = 2.0;

/// One curve: `(x, y)` points in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label (an empty name is left out of the legend).
    pub name: String,
    /// Points; non-finite ones are skipped and the line breaks there.
    pub points: Vec<(f64, f64)>,
    /// Line colour; `None` takes the series' index in [`PALETTE`].
    pub color: Option<Rgb<u8>>,
    /// A small square at every point, for sparse values such as
    /// evaluations (a lone point always gets one).
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

    /// The same series in `color`.
    pub fn with_color(mut self, color: Rgb<u8>) -> Self {
        self.color = Some(color);
        self
    }
}

/// Draws a chart's `title` centred at the top of `scene` (font scale 2) and
/// its `y_label` at the left margin, 12 pixels above the plot's top edge
/// `top` (in pixels).
pub(crate) fn draw_headings(scene: &mut Scene, title: &str, y_label: &str, top: f64) {
    let tw = f64::from(text_width(title, 2));
    let x = ((f64::from(scene.width) - tw) / 2.0).floor();
    scene.text(x, 6.0, title, BLACK, 2);
    scene.text(4.0, top - 12.0, y_label, BLACK, 1);
}

/// A line chart of one or more series (e.g. several runs of one metric).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label above the y axis.
    pub y_label: String,
    /// The curves, drawn in order; the legend lists the named ones.
    pub series: Vec<Series>,
    /// Fixed y range `(low, high)` in data units; `None` fits the data. It
    /// must be finite, non-empty, and positive on a log axis.
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic y axis (base 10; non-positive values are skipped).
    pub log_y: bool,
}

/// The plot's mapping from data to pixels.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    sx: f64,
    y0: f64,
    sy: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let f = (x - self.x0) / self.sx;
        self.left + f.clamp(-1e4, 1e4) * (self.right - self.left)
    }
    fn py(&self, y: f64) -> f64 {
        let f = (y - self.y0) / self.sy;
        self.bottom - f.clamp(-1e4, 1e4) * (self.bottom - self.top)
    }
}

impl LineChart {
    /// The fixed y range on the drawn axis (log10 on a log axis), when valid.
    fn fixed_range(&self) -> Option<(f64, f64)> {
        let (a, b) = self.y_range?;
        let ok = a.is_finite() && b.is_finite() && a != b && (!self.log_y || (a > 0.0 && b > 0.0));
        ok.then(|| {
            if self.log_y {
                (a.log10(), b.log10())
            } else {
                (a, b)
            }
        })
    }

    /// The drawable points of `s` on the drawn axes, split where a point is
    /// not drawable (so the line breaks there).
    fn runs(&self, s: &Series) -> Vec<Vec<(f64, f64)>> {
        let mut runs = vec![Vec::new()];
        for &(x, y) in &s.points {
            let ok = x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0);
            if ok {
                let y = if self.log_y { y.log10() } else { y };
                if let Some(r) = runs.last_mut() {
                    r.push((x, y));
                }
            } else if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
        }
        runs.retain(|r| !r.is_empty());
        runs
    }

    /// Checks that the chart has something to draw and a valid fixed range.
    ///
    /// # Errors
    /// [`VizError::NoData`] when no series has a drawable point (no series,
    /// empty series, or only NaN/infinite values — or non-positive ones on a
    /// log axis); [`VizError::Invalid`] for a fixed range that is not finite,
    /// empty, or not positive on a log axis.
    pub fn check(&self) -> Result<()> {
        let what = format!("line chart {:?}", self.title);
        if self.y_range.is_some() && self.fixed_range().is_none() {
            return Err(VizError::Invalid(format!(
                "{what}: y_range {:?} must be two different finite values{}",
                self.y_range,
                if self.log_y {
                    ", both positive on a log axis"
                } else {
                    ""
                }
            )));
        }
        if self.series.is_empty() {
            return Err(VizError::NoData {
                what,
                reason: "it has no series".into(),
            });
        }
        if self.series.iter().all(|s| self.runs(s).is_empty()) {
            let n: usize = self.series.iter().map(|s| s.points.len()).sum();
            return Err(VizError::NoData {
                what,
                reason: format!(
                    "its {} series hold {n} points, none drawable (each is NaN or infinite{})",
                    self.series.len(),
                    if self.log_y {
                        ", or not positive on the log axis"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(())
    }

    /// The chart as drawing items on a `width × height` picture (at least
    /// [`MIN_SIZE`], at most [`crate::output::MAX_SIDE`] per side).
    pub fn scene(&self, width: u32, height: u32) -> Scene {
        let (w, h) = clamp_size(width, height, MIN_SIZE);
        let mut scene = Scene::new(w, h, WHITE);
        let runs: Vec<Vec<Vec<(f64, f64)>>> = self.series.iter().map(|s| self.runs(s)).collect();
        let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in runs.iter().flatten().flatten() {
            xlo = xlo.min(x);
            xhi = xhi.max(x);
            ylo = ylo.min(y);
            yhi = yhi.max(y);
        }
        let has_data = xlo <= xhi;
        if !has_data {
            (xlo, xhi, ylo, yhi) = (0.0, 1.0, 0.0, 1.0);
        }
        let fixed = self.fixed_range();
        if let Some((a, b)) = fixed {
            (ylo, yhi) = (a, b);
        }
        let xt = nice_ticks(xlo, xhi, 6);
        let yt = if self.log_y {
            let (a, b) = (ylo.min(yhi).floor(), ylo.max(yhi).ceil());
            let b = b.max(a + 1.0);
            let (a, b) = (a.clamp(-400.0, 400.0) as i64, b.clamp(-400.0, 400.0) as i64);
            (a..=b).map(|e| e as f64).collect()
        } else if fixed.is_some() {
            ticks_within(ylo, yhi, 6)
        } else {
            nice_ticks(ylo, yhi, 6)
        };
        let first = |t: &[f64], d: f64| t.first().copied().unwrap_or(d);
        let last = |t: &[f64], d: f64| t.last().copied().unwrap_or(d);
        let (x0, x1) = (first(&xt, 0.0), last(&xt, 1.0));
        let (y0, y1) = match fixed {
            Some(r) if !self.log_y => r,
            _ => (first(&yt, 0.0), last(&yt, 1.0)),
        };
        let label_w = yt
            .iter()
            .map(|v| text_width(&self.y_tick(*v), 1))
            .max()
            .unwrap_or(0);
        let span = |a: f64, b: f64| if (b - a).abs() > 1e-300 { b - a } else { 1.0 };
        let f = Frame {
            left: f64::from(label_w) + 14.0,
            right: f64::from(w) - 16.0,
            top: 34.0,
            bottom: f64::from(h) - 36.0,
            x0,
            sx: span(x0, x1),
            y0,
            sy: span(y0, y1),
        };
        let (left, right) = (f.left as i64, f.right as i64);
        let (top, bottom) = (f.top as i64, f.bottom as i64);
        for &v in &yt {
            let y = f.py(v).floor() as i64;
            scene.hline(left, right, y, GRID);
            let s = self.y_tick(v);
            let tw = f64::from(text_width(&s, 1));
            scene.text(f.left - 6.0 - tw, y as f64 - 3.0, s, BLACK, 1);
        }
        for &v in &xt {
            let x = f.px(v).floor() as i64;
            scene.vline(x, top, bottom, GRID);
            let s = format_tick(v);
            let tw = f64::from(text_width(&s, 1));
            scene.text((x as f64 - tw / 2.0).floor(), f.bottom + 6.0, s, BLACK, 1);
        }
        scene.vline(left, top, bottom, BLACK);
        scene.hline(left, right, bottom, BLACK);
        draw_headings(&mut scene, &self.title, &self.y_label, f.top);
        let xw = f64::from(text_width(&self.x_label, 1));
        scene.text(
            ((f.left + f.right - xw) / 2.0).floor(),
            f.bottom + 20.0,
            &self.x_label,
            BLACK,
            1,
        );
        if !has_data {
            let note = "no data";
            let nw = f64::from(text_width(note, 2));
            let ny = (f.top + f.bottom) / 2.0 - f64::from(text_height(2)) / 2.0;
            scene.text(
                ((f.left + f.right - nw) / 2.0).floor(),
                ny.floor(),
                note,
                NOTE,
                2,
            );
        }
        for (i, (s, runs)) in self.series.iter().zip(&runs).enumerate() {
            let c = s.color.unwrap_or(PALETTE[i % PALETTE.len()]);
            let mut items = Vec::new();
            for run in runs {
                if run.len() >= 2 {
                    items.push(Item::Polyline {
                        points: run.iter().map(|&(x, y)| (f.px(x), f.py(y))).collect(),
                        width: LINE_WIDTH,
                        color: c,
                    });
                }
            }
            let lone = runs.iter().map(Vec::len).sum::<usize>() == 1;
            if s.markers || lone {
                for &(x, y) in runs.iter().flatten() {
                    let (cx, cy) = (f.px(x).floor(), f.py(y).floor());
                    items.push(Item::Rect {
                        x: cx - 2.0,
                        y: cy - 2.0,
                        w: 5.0,
                        h: 5.0,
                        color: c,
                    });
                }
            }
            scene.items.push(Item::Group {
                name: s.name.clone(),
                items,
            });
        }
        self.legend(&mut scene, &runs, &f);
        scene
    }

    /// The legend, top right inside the plot: one row per named series.
    fn legend(&self, scene: &mut Scene, runs: &[Vec<Vec<(f64, f64)>>], f: &Frame) {
        let named: Vec<(usize, String)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .map(|(i, s)| {
                let label = if runs[i].is_empty() {
                    format!("{} (no data)", s.name)
                } else {
                    s.name.clone()
                };
                (i, label)
            })
            .collect();
        if named.is_empty() {
            return;
        }
        let lw = named
            .iter()
            .map(|(_, l)| text_width(l, 1))
            .max()
            .unwrap_or(0)
            + 30;
        let row_h = f64::from(text_height(1) + 4);
        let lh = named.len() as f64 * row_h + 6.0;
        let (lx, ly) = ((f.right - f64::from(lw) - 6.0).floor(), f.top + 6.0);
        let lw = f64::from(lw);
        let border = Rgb([160, 160, 160]);
        scene.rect(lx, ly, lw, lh, WHITE);
        scene.rect(lx, ly, lw, 1.0, border);
        scene.rect(lx, ly + lh - 1.0, lw, 1.0, border);
        scene.rect(lx, ly, 1.0, lh, border);
        scene.rect(lx + lw - 1.0, ly, 1.0, lh, border);
        for (row, (i, label)) in named.iter().enumerate() {
            let c = self.series[*i].color.unwrap_or(PALETTE[i % PALETTE.len()]);
            let y = ly + 5.0 + row as f64 * row_h;
            scene.rect(lx + 5.0, y + 2.0, 16.0, 3.0, c);
            scene.text(lx + 25.0, y, label, BLACK, 1);
        }
    }

    fn y_tick(&self, v: f64) -> String {
        if self.log_y {
            format_tick(10f64.powf(v))
        } else {
            format_tick(v)
        }
    }
}

chart_outputs!(LineChart);
