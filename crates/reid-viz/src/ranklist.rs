//! Rank-list pictures: each row shows a query and its top-N gallery images
//! in rank order, framed green when they show the query's identity and red
//! otherwise, with the rank above each cell.

use image::imageops::{FilterType, resize};
use image::{Rgb, RgbImage};

use crate::draw::{fill_rect, frame};
use crate::font::{draw_text, text_height, text_width};

/// Frame colour of a correct match.
pub const MATCH: Rgb<u8> = Rgb([0, 170, 0]);
/// Frame colour of a wrong match.
pub const MISMATCH: Rgb<u8> = Rgb([220, 0, 0]);
/// Frame colour of the query.
pub const QUERY: Rgb<u8> = Rgb([40, 90, 200]);

/// One query and its ranked gallery images (`true` = same identity).
#[derive(Debug, Clone)]
pub struct RankRow {
    /// The query image.
    pub query: RgbImage,
    /// Gallery images in rank order, with whether each is a match.
    pub gallery: Vec<(RgbImage, bool)>,
}

/// Layout of [`rank_list_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankListStyle {
    /// Cell height in pixels (images are resized to it).
    pub cell_h: u32,
    /// Cell width in pixels.
    pub cell_w: u32,
    /// Frame thickness in pixels.
    pub frame: u32,
    /// Space between cells in pixels.
    pub gap: u32,
    /// Extra space between the query and its gallery.
    pub query_gap: u32,
}

impl Default for RankListStyle {
    fn default() -> Self {
        Self {
            cell_h: 128,
            cell_w: 64,
            frame: 3,
            gap: 4,
            query_gap: 16,
        }
    }
}

/// [`rank_list_with`] with the default style (128 × 64 cells, 3-px frames).
pub fn rank_list(rows: &[RankRow]) -> RgbImage {
    rank_list_with(rows, &RankListStyle::default())
}

/// Draws the rows one under another; the width fits the longest row.
/// An empty input gives a small blank image.
pub fn rank_list_with(rows: &[RankRow], style: &RankListStyle) -> RgbImage {
    let (ch, cw) = (style.cell_h.max(8), style.cell_w.max(8));
    let label_h = text_height(1) + 4;
    let row_h = label_h + ch + style.gap;
    let n = rows.iter().map(|r| r.gallery.len()).max().unwrap_or(0) as u32;
    let width = style.gap + cw + style.query_gap + n * (cw + style.gap);
    let height = style.gap + rows.len().max(1) as u32 * row_h;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let cell = |img: &mut RgbImage, src: &RgbImage, x: i64, y: i64, c: Rgb<u8>| {
        let r = resize(src, cw, ch, FilterType::Triangle);
        image::imageops::replace(img, &r, x, y);
        frame(img, x, y, cw, ch, style.frame, c);
    };
    for (ri, row) in rows.iter().enumerate() {
        let y = i64::from(style.gap + ri as u32 * row_h);
        let x = i64::from(style.gap);
        draw_text(&mut img, x, y, "query", QUERY, 1);
        cell(&mut img, &row.query, x, y + i64::from(label_h), QUERY);
        for (k, (g, ok)) in row.gallery.iter().enumerate() {
            let gx = i64::from(style.gap + cw + style.query_gap + k as u32 * (cw + style.gap));
            let label = format!("{}", k + 1);
            let lx = gx + (i64::from(cw) - i64::from(text_width(&label, 1))) / 2;
            draw_text(&mut img, lx, y, &label, Rgb([0, 0, 0]), 1);
            cell(
                &mut img,
                g,
                gx,
                y + i64::from(label_h),
                if *ok { MATCH } else { MISMATCH },
            );
        }
        if row.gallery.is_empty() {
            fill_rect(&mut img, x, y, 1, 1, Rgb([255, 255, 255]));
        }
    }
    img
}
