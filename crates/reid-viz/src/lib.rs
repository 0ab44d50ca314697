//! # reid-viz
//!
//! Small, dependency-light pictures for re-identification runs, drawn with
//! our own rasteriser on `image` buffers (RGB8, sizes in pixels):
//! - [`chart`]: line charts with axes, "nice" ticks, legend and title;
//! - [`bar`]: bar charts with error whiskers (e.g. mean ± std over seeds);
//! - [`cmc`]: CMC curves of several models in one chart;
//! - [`ranklist`]: queries with their top-N gallery images framed green
//!   (same identity) or red;
//! - [`log`]: JSON-lines metrics logs (as written by `reid-train`) to one
//!   PNG curve per metric, and fine-tuning's evaluations (mAP, Rank-k,
//!   mINP) in one chart;
//! - [`font`]: a built-in 5×7 bitmap font for labels.
//!
//! PNGs are written atomically ([`save_png`]).

#![warn(missing_docs)]

pub mod bar;
pub mod chart;
pub mod cmc;
pub mod draw;
pub mod error;
pub mod font;
pub mod log;
pub mod ranklist;

pub use bar::{Bar, BarChart};
pub use chart::{LineChart, Series, nice_ticks};
pub use cmc::cmc_chart;
pub use draw::save_png;
pub use error::VizError;
pub use log::{
    EVAL_METRICS, EVALUATION_FILE, MetricsSeries, evaluation_chart, plot_log, read_log_series,
};
pub use ranklist::{RankListStyle, RankRow, rank_list, rank_list_with};

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, VizError>;
