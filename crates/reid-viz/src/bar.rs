//! Bar charts: one bar per labelled value, with optional error whiskers
//! (e.g. ± one standard deviation over seeds), the value printed above each
//! bar, a y axis with "nice" ticks, on a white background; as PNG or SVG
//! from the same [`Scene`]. Deterministic: the same chart renders to the same
//! pixels and bytes.
//!
//! A bar whose value is not finite draws no bar and prints `n/a`; a whisker
//! that is not finite is left out. [`BarChart::save`] refuses a chart with no
//! bar or no finite value ([`VizError::NoData`]) rather than writing an
//! empty picture; [`BarChart::render`] draws it with "no data" in the plot.

use image::Rgb;

use crate::chart::{
    BLACK, GRID, MIN_SIZE, NOTE, PALETTE, WHITE, draw_headings, format_tick, nice_ticks,
};
use crate::font::{text_height, text_width};
use crate::output::{chart_outputs, clamp_size};
use crate::scene::{Item, Scene};
use crate::ticks::ticks_within;
use crate::{Result, VizError};

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height of the bar, in the chart's y units; a non-finite value draws
    /// no bar and prints `n/a`.
    pub value: f64,
    /// Half-length of the whisker drawn from `value - w` to `value + w`
    /// (same units); `None` or a non-finite value draws none.
    pub whisker: Option<f64>,
    /// Fill colour; `None` takes the palette's colour of the bar's index.
    pub color: Option<Rgb<u8>>,
}

impl Bar {
    /// A bar without whisker, with the palette's colour.
    pub fn new(label: impl Into<String>, value: f64) -> Self {
        Self {
            label: label.into(),
            value,
            whisker: None,
            color: None,
        }
    }

    /// The same bar with a whisker of half-length `w`.
    pub fn with_whisker(mut self, w: f64) -> Self {
        self.whisker = Some(w);
        self
    }
}

/// A bar chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Label above the y axis.
    pub y_label: String,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// Fixed y range; `None` spans 0 (or the lowest value, when negative)
    /// to the highest value or whisker end. Must be finite and non-empty.
    pub y_range: Option<(f64, f64)>,
    /// Decimals of the values printed above the bars.
    pub decimals: usize,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl BarChart {
    /// The fixed range when it is usable.
    fn fixed_range(&self) -> Option<(f64, f64)> {
        self.y_range
            .filter(|(a, b)| a.is_finite() && b.is_finite() && a != b)
    }

    /// Checks that the chart has a bar with a finite value and a valid fixed range.
    ///
    /// # Errors
    /// [`VizError::NoData`] without bars or when every value is NaN or
    /// infinite; [`VizError::Invalid`] for a fixed range that is not finite
    /// or empty.
    pub fn check(&self) -> Result<()> {
        let what = format!("bar chart {:?}", self.title);
        if self.y_range.is_some() && self.fixed_range().is_none() {
            return Err(VizError::Invalid(format!(
                "{what}: y_range {:?} must be two different finite values",
                self.y_range
            )));
        }
        if self.bars.is_empty() {
            return Err(VizError::NoData {
                what,
                reason: "it has no bars".into(),
            });
        }
        if self.bars.iter().all(|b| !b.value.is_finite()) {
            return Err(VizError::NoData {
                what,
                reason: format!("all {} bar values are NaN or infinite", self.bars.len()),
            });
        }
        Ok(())
    }

    /// The chart as drawing items on a `width × height` picture (at least
    /// 160 × 120, at most [`crate::output::MAX_SIDE`] per side).
    pub fn scene(&self, width: u32, height: u32) -> Scene {
        let (w, h) = clamp_size(width, height, MIN_SIZE);
        let mut scene = Scene::new(w, h, WHITE);
        let (mut lo, mut hi) = (0.0f64, f64::MIN);
        for b in &self.bars {
            let Some(v) = finite(b.value) else { continue };
            let wk = b.whisker.and_then(finite).map_or(0.0, f64::abs);
            lo = lo.min(v - wk);
            hi = hi.max(v + wk);
        }
        if hi <= lo || !(hi - lo).is_finite() {
            hi = lo + 1.0;
        }
        let fixed = self.fixed_range();
        let ticks = match fixed {
            Some((a, b)) => ticks_within(a, b, 6),
            None => nice_ticks(lo, hi, 6),
        };
        let (y0, y1) = match fixed {
            Some(r) => r,
            None => (
                ticks.first().copied().unwrap_or(0.0),
                ticks.last().copied().unwrap_or(1.0),
            ),
        };
        let label_w = ticks
            .iter()
            .map(|v| text_width(&format_tick(*v), 1))
            .max()
            .unwrap_or(0);
        let (left, right) = (f64::from(label_w) + 14.0, f64::from(w) - 16.0);
        let (top, bottom) = (40.0f64, f64::from(h) - 30.0);
        let span = if (y1 - y0).abs() > 1e-300 {
            y1 - y0
        } else {
            1.0
        };
        let py = |y: f64| (bottom - ((y - y0) / span).clamp(-1e4, 1e4) * (bottom - top)).floor();
        for &v in &ticks {
            let y = py(v);
            scene.hline(left as i64, right as i64, y as i64, GRID);
            let s = format_tick(v);
            let tw = f64::from(text_width(&s, 1));
            scene.text(left - 6.0 - tw, y - 3.0, s, BLACK, 1);
        }
        let n = self.bars.len().max(1) as f64;
        let slot = ((right - left) / n).floor();
        let bar_w = (slot * 3.0 / 5.0).floor().max(2.0);
        let base = py(0.0f64.clamp(y0.min(y1), y0.max(y1)));
        for (i, b) in self.bars.iter().enumerate() {
            let cx = left + slot * i as f64 + (slot / 2.0).floor();
            let c = b.color.unwrap_or(PALETTE[i % PALETTE.len()]);
            let mut items = Vec::new();
            let (text, text_y) = match finite(b.value) {
                Some(v) => {
                    let y = py(v);
                    let (ya, yb) = (y.min(base), y.max(base));
                    items.push(Item::Rect {
                        x: cx - (bar_w / 2.0).floor(),
                        y: ya,
                        w: bar_w,
                        h: (yb - ya).max(1.0),
                        color: c,
                    });
                    let mut above = ya;
                    if let Some(wk) = b.whisker.and_then(finite).map(f64::abs) {
                        let (ta, tb) = (py(v + wk), py(v - wk));
                        let cap = (bar_w / 4.0).floor().max(2.0);
                        let x = cx + 0.5;
                        for (a, z) in [
                            ((x, ta + 0.5), (x, tb + 0.5)),
                            ((x - cap, ta + 0.5), (x + cap, ta + 0.5)),
                            ((x - cap, tb + 0.5), (x + cap, tb + 0.5)),
                        ] {
                            items.push(Item::Polyline {
                                points: vec![a, z],
                                width: 1.0,
                                color: BLACK,
                            });
                        }
                        above = above.min(ta);
                    }
                    (format!("{v:.*}", self.decimals.min(12)), above)
                }
                None => ("n/a".to_string(), base),
            };
            let tw = f64::from(text_width(&text, 1));
            items.push(Item::Text {
                x: cx - (tw / 2.0).floor(),
                y: text_y - 11.0,
                text,
                color: BLACK,
                scale: 1,
            });
            scene.items.push(Item::Group {
                name: b.label.clone(),
                items,
            });
            let lw = f64::from(text_width(&b.label, 1));
            scene.text(cx - (lw / 2.0).floor(), bottom + 8.0, &b.label, BLACK, 1);
        }
        scene.vline(left as i64, top as i64, bottom as i64, BLACK);
        scene.hline(left as i64, right as i64, base as i64, BLACK);
        draw_headings(&mut scene, &self.title, &self.y_label, top);
        if self.bars.iter().all(|b| !b.value.is_finite()) {
            let note = "no data";
            let nw = f64::from(text_width(note, 2));
            let ny = (top + bottom) / 2.0 - f64::from(text_height(2)) / 2.0;
            scene.text(
                ((left + right - nw) / 2.0).floor(),
                ny.floor(),
                note,
                NOTE,
                2,
            );
        }
        scene
    }
}

chart_outputs!(BarChart);

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        BarChart {
            title: "mAP".into(),
            y_label: "%".into(),
            bars: vec![
                Bar::new("scratch", 41.3).with_whisker(2.0),
                Bar::new("moco", 39.0),
                Bar::new("none", f64::NAN),
            ],
            y_range: None,
            decimals: 1,
        }
    }

    #[test]
    fn renders_deterministically_with_bars_in_their_colours() {
        let a = chart().render(400, 240);
        let b = chart().render(400, 240);
        assert_eq!(a, b);
        assert_eq!(a.dimensions(), (400, 240));
        for colour in &PALETTE[..2] {
            assert!(a.pixels().any(|p| p == colour), "{colour:?} missing");
        }
        // The third bar has no value: its colour is not drawn.
        assert!(!a.pixels().any(|p| *p == PALETTE[2]));
        let svg = chart().render_svg(400, 240);
        assert!(svg.contains(r#"data-name="scratch""#) && svg.contains(">n/a</text>"));
        assert_eq!(svg, chart().render_svg(400, 240));
    }

    #[test]
    fn empty_and_tiny_charts_do_not_panic_and_are_not_saved() {
        let img = BarChart::default().render(1, 1);
        assert_eq!(img.dimensions(), (160, 120));
        let neg = BarChart {
            bars: vec![Bar::new("a", -3.0).with_whisker(f64::INFINITY)],
            ..BarChart::default()
        };
        let _ = neg.render(200, 150);
        assert!(neg.check().is_ok());
        assert!(matches!(
            BarChart::default().check(),
            Err(VizError::NoData { .. })
        ));
        let all_nan = BarChart {
            bars: vec![Bar::new("a", f64::NAN), Bar::new("b", f64::INFINITY)],
            ..BarChart::default()
        };
        let e = all_nan.check().unwrap_err().to_string();
        assert!(e.contains("all 2 bar values are NaN or infinite"), "{e}");
        let bad_range = BarChart {
            y_range: Some((f64::NAN, 1.0)),
            ..chart()
        };
        assert!(matches!(bad_range.check(), Err(VizError::Invalid(_))));
        let _ = bad_range.render(200, 150);
        let huge = BarChart {
            bars: vec![
                Bar::new("a", 1e308).with_whisker(1e308),
                Bar::new("b", -1e308),
            ],
            decimals: usize::MAX,
            ..BarChart::default()
        };
        assert_eq!(huge.render(u32::MAX, 10).dimensions(), (8192, 120));
    }
}
