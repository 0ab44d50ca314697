//! A picture as a list of drawing items in pixel coordinates, rendered the
//! same way to a PNG (module `raster`) or an SVG (module `svg`): the charts
//! build a [`Scene`] once, so both formats show the same chart.
//!
//! Coordinates are `f64` pixels with `(0, 0)` the top-left corner of the
//! picture; pixel `(i, j)` covers `[i, i + 1) × [j, j + 1)`, so a 1-pixel line
//! through pixel centres (`y = j + 0.5`) is crisp in both formats.

use image::Rgb;

/// One drawing item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A filled axis-aligned rectangle (edges rounded to whole pixels in PNG).
    Rect {
        /// Left edge, pixels.
        x: f64,
        /// Top edge, pixels.
        y: f64,
        /// Width, pixels.
        w: f64,
        /// Height, pixels.
        h: f64,
        /// Fill colour.
        color: Rgb<u8>,
    },
    /// An anti-aliased poly-line with round joins and caps.
    Polyline {
        /// Vertices, pixels (at least two to draw anything).
        points: Vec<(f64, f64)>,
        /// Stroke width, pixels.
        width: f64,
        /// Stroke colour.
        color: Rgb<u8>,
    },
    /// Text in the built-in font (module `font`), top-left corner at `(x, y)`.
    Text {
        /// Left edge, pixels (rounded to a whole pixel in PNG).
        x: f64,
        /// Top edge, pixels.
        y: f64,
        /// The text.
        text: String,
        /// Colour.
        color: Rgb<u8>,
        /// Integer magnification of the 6×8 glyph cell (≥ 1).
        scale: u32,
    },
    /// Items that belong together, e.g. one series (an SVG `<g>` with the name).
    Group {
        /// What the group shows, e.g. the series' legend name.
        name: String,
        /// The items.
        items: Vec<Item>,
    },
}

/// A picture: its size, background and items in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Background colour.
    pub background: Rgb<u8>,
    /// Items, drawn first to last.
    pub items: Vec<Item>,
}

impl Scene {
    /// An empty picture of `width × height` pixels.
    pub fn new(width: u32, height: u32, background: Rgb<u8>) -> Self {
        Self {
            width,
            height,
            background,
            items: Vec::new(),
        }
    }

    /// Adds a filled rectangle.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, color: Rgb<u8>) {
        self.items.push(Item::Rect { x, y, w, h, color });
    }

    /// Adds a straight line from `a` to `b`.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, color: Rgb<u8>) {
        self.items.push(Item::Polyline {
            points: vec![a, b],
            width,
            color,
        });
    }

    /// Adds a 1-pixel horizontal line over pixel row `y` from column `x0` to `x1` (inclusive).
    pub fn hline(&mut self, x0: i64, x1: i64, y: i64, color: Rgb<u8>) {
        self.rect(x0 as f64, y as f64, (x1 - x0 + 1) as f64, 1.0, color);
    }

    /// Adds a 1-pixel vertical line over pixel column `x` from row `y0` to `y1` (inclusive).
    pub fn vline(&mut self, x: i64, y0: i64, y1: i64, color: Rgb<u8>) {
        self.rect(x as f64, y0 as f64, 1.0, (y1 - y0 + 1) as f64, color);
    }

    /// Adds text with its top-left corner at `(x, y)`.
    pub fn text(&mut self, x: f64, y: f64, text: impl Into<String>, color: Rgb<u8>, scale: u32) {
        self.items.push(Item::Text {
            x,
            y,
            text: text.into(),
            color,
            scale: scale.max(1),
        });
    }
}
