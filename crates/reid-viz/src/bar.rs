//! Bar charts: one bar per labelled value, with optional error whiskers
//! (e.g. ± one standard deviation over seeds), the value printed above each
//! bar, a y axis with "nice" ticks, on a white background. Deterministic:
//! the same chart renders to the same pixels.

use image::{Rgb, RgbImage};

use crate::chart::{BLACK, GRID, PALETTE, WHITE, format_tick, nice_ticks};
use crate::draw::{fill_rect, line};
use crate::font::{draw_text, text_width};

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
    /// to the highest value or whisker end.
    pub y_range: Option<(f64, f64)>,
    /// Decimals of the values printed above the bars.
    pub decimals: usize,
}

impl BarChart {
    /// Renders the chart into a `width × height` RGB image (at least
    /// 160 × 120 pixels).
    pub fn render(&self, width: u32, height: u32) -> RgbImage {
        let (w, h) = (width.max(160), height.max(120));
        let mut img = RgbImage::from_pixel(w, h, WHITE);
        let finite = |v: f64| v.is_finite().then_some(v);
        let (mut lo, mut hi) = (0.0f64, f64::MIN);
        for b in &self.bars {
            let Some(v) = finite(b.value) else { continue };
            let wk = b.whisker.and_then(finite).map_or(0.0, f64::abs);
            lo = lo.min(v - wk);
            hi = hi.max(v + wk);
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        let ticks = match self.y_range {
            Some((a, b)) => {
                let inside: Vec<f64> = nice_ticks(a, b, 6)
                    .into_iter()
                    .filter(|v| *v >= a.min(b) - 1e-9 && *v <= a.max(b) + 1e-9)
                    .collect();
                if inside.is_empty() {
                    vec![a, b]
                } else {
                    inside
                }
            }
            None => nice_ticks(lo, hi, 6),
        };
        let (y0, y1) = match self.y_range {
            Some((a, b)) => (a, b),
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
        let (left, right) = (i64::from(label_w) + 14, i64::from(w) - 16);
        let (top, bottom) = (40i64, i64::from(h) - 30);
        let span = if (y1 - y0).abs() > 1e-300 {
            y1 - y0
        } else {
            1.0
        };
        let py =
            |y: f64| bottom - ((y - y0) / span * (bottom - top) as f64).clamp(-1e6, 1e6) as i64;
        for &v in &ticks {
            let y = py(v);
            line(&mut img, (left, y), (right, y), 1, GRID);
            let s = format_tick(v);
            draw_text(
                &mut img,
                left - 6 - i64::from(text_width(&s, 1)),
                y - 3,
                &s,
                BLACK,
                1,
            );
        }
        let n = self.bars.len().max(1) as i64;
        let slot = (right - left) / n;
        let bar_w = (slot * 3 / 5).max(2);
        let base = py(0.0f64.clamp(y0.min(y1), y0.max(y1)));
        for (i, b) in self.bars.iter().enumerate() {
            let cx = left + slot * i as i64 + slot / 2;
            let c = b.color.unwrap_or(PALETTE[i % PALETTE.len()]);
            let (text, text_y) = match finite(b.value) {
                Some(v) => {
                    let y = py(v);
                    let (ya, yb) = (y.min(base), y.max(base));
                    let bar_h = (yb - ya).max(1) as u32;
                    fill_rect(&mut img, cx - bar_w / 2, ya, bar_w as u32, bar_h, c);
                    let mut above = ya;
                    if let Some(wk) = b.whisker.and_then(finite).map(f64::abs) {
                        let (ta, tb) = (py(v + wk), py(v - wk));
                        let cap = (bar_w / 4).max(2);
                        line(&mut img, (cx, ta), (cx, tb), 1, BLACK);
                        line(&mut img, (cx - cap, ta), (cx + cap, ta), 1, BLACK);
                        line(&mut img, (cx - cap, tb), (cx + cap, tb), 1, BLACK);
                        above = above.min(ta);
                    }
                    (format!("{v:.*}", self.decimals), above)
                }
                None => ("n/a".to_string(), base),
            };
            let tw = i64::from(text_width(&text, 1));
            draw_text(&mut img, cx - tw / 2, text_y - 11, &text, BLACK, 1);
            let lw = i64::from(text_width(&b.label, 1));
            draw_text(&mut img, cx - lw / 2, bottom + 8, &b.label, BLACK, 1);
        }
        line(&mut img, (left, top), (left, bottom), 1, BLACK);
        line(&mut img, (left, base), (right, base), 1, BLACK);
        let tw = i64::from(text_width(&self.title, 2));
        draw_text(&mut img, (i64::from(w) - tw) / 2, 6, &self.title, BLACK, 2);
        draw_text(&mut img, 4, top - 12, &self.y_label, BLACK, 1);
        img
    }
}

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
    }

    #[test]
    fn empty_and_tiny_charts_do_not_panic() {
        let img = BarChart::default().render(1, 1);
        assert_eq!(img.dimensions(), (160, 120));
        let neg = BarChart {
            bars: vec![Bar::new("a", -3.0).with_whisker(f64::INFINITY)],
            ..BarChart::default()
        };
        let _ = neg.render(200, 150);
    }
}
