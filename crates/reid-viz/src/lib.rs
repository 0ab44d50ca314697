//! # reid-viz
//!
//! Small, dependency-light pictures for re-identification runs, drawn by
//! our own code (sizes in pixels), deterministic (the same input gives the
//! same bytes):
//! - [`chart`]: line charts with axes, "nice" ticks, legend and title;
//! - [`bar`]: bar charts with error whiskers (e.g. mean ± std over seeds);
//! - [`cmc`]: CMC curves of several models in one chart;
//! - [`runs`]: one metric of several runs overlaid, with a legend;
//! - [`ranklist`]: queries with their top-N gallery images framed green
//!   (same identity) or red;
//! - [`log`]: JSON-lines metrics logs (as written by `reid-train`) to one
//!   curve per metric, and fine-tuning's evaluations (mAP, Rank-k,
//!   mINP) in one chart;
//! - [`scene`], [`raster`], [`svg`]: charts are built once as drawing items,
//!   then rendered to PNG (anti-aliased lines, RGB8 on `image` buffers) or
//!   to SVG ([`Format`]);
//! - [`font`]: a built-in 5×7 bitmap font with lower case, for labels.
//!
//! Files are written atomically ([`save_png`], [`LineChart::save`]). Charts
//! with nothing to draw are an error when saved ([`VizError::NoData`]),
//! never a silently empty file.
//!
//! # Example
//!
//! A training-loss curve rendered to an in-memory RGB image and to SVG text
//! ([`LineChart::save`] writes either to a file):
//!
//! ```
//! use reid_viz::{LineChart, Series};
//!
//! fn main() -> Result<(), reid_viz::VizError> {
//!     let loss: Vec<(f64, f64)> = (0..20).map(|step| (step as f64, 3.0 / (1.0 + step as f64))).collect();
//!     let chart = LineChart {
//!         title: "BoT fine-tuning".into(),
//!         x_label: "step".into(),
//!         y_label: "loss".into(),
//!         series: vec![Series::new("loss", loss)],
//!         ..Default::default()
//!     };
//!     chart.check()?; // something to draw, valid range
//!
//!     let image = chart.render(320, 200);
//!     assert_eq!(image.dimensions(), (320, 200));
//!     assert!(image.pixels().any(|p| p.0 != [255, 255, 255])); // not blank
//!
//!     let svg = chart.render_svg(320, 200);
//!     assert!(svg.starts_with("<svg") && svg.contains("BoT fine-tuning"));
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod bar;
pub mod chart;
pub mod cmc;
pub mod draw;
pub mod error;
pub mod font;
pub mod log;
pub mod output;
pub mod ranklist;
pub mod raster;
pub mod runs;
pub mod scene;
pub mod svg;
pub mod ticks;

pub use bar::{Bar, BarChart};
pub use chart::{LineChart, Series, nice_ticks};
pub use cmc::cmc_chart;
pub use draw::save_png;
pub use error::VizError;
pub use log::{
    EVAL_METRICS, EVALUATION_FILE, LogContents, MetricsSeries, PlotOptions, PlotReport,
    evaluation_chart, plot_log, plot_log_with, read_log, read_log_series,
};
pub use output::Format;
pub use ranklist::{RankListStyle, RankRow, rank_list, rank_list_with};
pub use runs::{Run, overlay_chart, plot_runs};
pub use scene::Scene;

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, VizError>;
