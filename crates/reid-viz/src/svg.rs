//! Renders a [`Scene`] to SVG text: rectangles, poly-lines with round joins
//! and caps, text in a monospace font sized to the bitmap font's cell (each
//! string stretched to the width it has in the PNG), and one `<g>` per group
//! (`data-name` holds the series' name). Numbers are written with two
//! decimals: the same scene gives the same bytes.

use std::fmt::Write;

use image::Rgb;

use crate::font::{CELL_W, text_width};
use crate::scene::{Item, Scene};

/// The SVG document of `scene`.
pub fn to_svg(scene: &Scene) -> String {
    let mut out = String::new();
    let (w, h) = (scene.width, scene.height);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{w}" height="{h}" fill="{}"/>"#,
        hex(scene.background)
    );
    for item in &scene.items {
        write_item(&mut out, item);
    }
    out.push_str("</svg>\n");
    out
}

/// `#rrggbb`.
fn hex(c: Rgb<u8>) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0[0], c.0[1], c.0[2])
}

/// A coordinate with two decimals (non-finite values as 0, far ones clamped).
fn num(v: f64) -> String {
    let v = if v.is_finite() {
        v.clamp(-1e7, 1e7)
    } else {
        0.0
    };
    let s = format!("{v:.2}");
    if s == "-0.00" { "0.00".into() } else { s }
}

/// Text escaped for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn write_item(out: &mut String, item: &Item) {
    match item {
        Item::Rect { x, y, w, h, color } => {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                num(*x),
                num(*y),
                num(w.max(0.0)),
                num(h.max(0.0)),
                hex(*color)
            );
        }
        Item::Polyline {
            points,
            width,
            color,
        } => {
            let pts: Vec<String> = points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{},{}", num(x), num(y)))
                .collect();
            if pts.len() < 2 {
                return;
            }
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round"/>"#,
                pts.join(" "),
                hex(*color),
                num(*width)
            );
        }
        Item::Text {
            x,
            y,
            text,
            color,
            scale,
        } => {
            if text.is_empty() {
                return;
            }
            let s = f64::from((*scale).max(1));
            // The bitmap font's cell is 6 px wide (5 + 1 spacing): a monospace
            // font of size 10 has about that advance; the baseline is row 7.
            let len = f64::from(text_width(text, *scale)) - s * f64::from(CELL_W - 5);
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{}" textLength="{}" lengthAdjust="spacingAndGlyphs" fill="{}">{}</text>"#,
                num(*x),
                num(*y + 7.0 * s),
                num(10.0 * s),
                num(len.max(1.0)),
                hex(*color),
                escape(text)
            );
        }
        Item::Group { name, items } => {
            let _ = writeln!(out, r#"<g class="series" data-name="{}">"#, escape(name));
            for i in items {
                write_item(out, i);
            }
            out.push_str("</g>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_svg_elements_with_escaped_text() {
        let mut s = Scene::new(100, 50, Rgb([255, 255, 255]));
        s.rect(1.0, 2.0, 3.0, 4.0, Rgb([1, 2, 3]));
        s.items.push(Item::Group {
            name: "a<b & \"c\"".into(),
            items: vec![Item::Polyline {
                points: vec![(0.0, 0.0), (f64::NAN, 1.0), (10.5, 20.25)],
                width: 2.0,
                color: Rgb([255, 0, 0]),
            }],
        });
        s.text(5.0, 6.0, "mAP <50%>", Rgb([0, 0, 0]), 1);
        let svg = to_svg(&s);
        assert!(
            svg.starts_with(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\""
            )
        );
        assert!(
            svg.contains(
                r##"<rect x="1.00" y="2.00" width="3.00" height="4.00" fill="#010203"/>"##
            )
        );
        assert!(svg.contains(r#"data-name="a&lt;b &amp; &quot;c&quot;""#));
        assert!(svg.contains(r#"points="0.00,0.00 10.50,20.25""#), "{svg}");
        assert!(svg.contains(">mAP &lt;50%&gt;</text>"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg, to_svg(&s));
    }
}
