//! What the `inspect` example prints: fast-reid's statistics table, or JSON.
//!
//! Table (image datasets), in fast-reid's pipe layout:
//! ```text
//! | subset   | # ids   | # images   | # cameras   |
//! |:---------|:--------|:-----------|:------------|
//! | train    | 751     | 12936      | 6           |
//! ```
//! JSON: `{"train":{"images":…,"ids":…,"cams":…},"query":{…},"gallery":{…}}`,
//! and for corpora `{"videos":…,"tracklets":…,"images":…}`.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::record::{CorpusStats, DatasetStats, SplitStats};

use super::{ImageDatasetOptions, Loaded, entry};

/// The output of one `inspect` run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The text to print on stdout (table or JSON, newline-terminated).
    pub output: String,
    /// Warnings to print on stderr.
    pub warnings: Vec<String>,
}

/// Loads dataset `name` from `root` and renders its statistics.
pub fn inspect(name: &str, root: &Path, as_json: bool) -> Result<Report> {
    let e = entry(name)?;
    let loaded = e.load(root, &ImageDatasetOptions::default())?;
    let output = match (&loaded, as_json) {
        (Loaded::Images(d), false) => {
            let mut s = format!("=> Loaded {} from {}\n", e.display, d.root.display());
            s.push_str(&image_table(&d.splits.stats()));
            s
        }
        (Loaded::Corpus(c), false) => {
            let mut s = format!("=> Loaded {} from {}\n", e.display, c.root.display());
            s.push_str(&corpus_table(&c.stats()));
            s
        }
        (Loaded::Images(d), true) => format!("{}\n", image_json(&d.splits.stats())),
        (Loaded::Corpus(c), true) => format!("{}\n", corpus_json(&c.stats())),
    };
    Ok(Report {
        output,
        warnings: loaded.warnings().to_vec(),
    })
}

/// Process exit code for an error: 2 for a wrong layout or an unknown
/// dataset name (usage errors), 1 otherwise.
pub fn exit_code(err: &DataError) -> i32 {
    match err {
        DataError::Layout { .. } | DataError::InvalidArgument(_) => 2,
        _ => 1,
    }
}

fn pipe_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i).map(String::len))
                .chain([h.len() + 2])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!(" {c:<w$} |"));
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    let mut rule = String::from("|");
    for w in &widths {
        rule.push(':');
        rule.push_str(&"-".repeat(w + 1));
        rule.push('|');
    }
    rule.push('\n');
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// fast-reid's table: subset / # ids / # images / # cameras.
pub fn image_table(stats: &DatasetStats) -> String {
    let rows: Vec<Vec<String>> = [
        ("train", stats.train),
        ("query", stats.query),
        ("gallery", stats.gallery),
    ]
    .iter()
    .map(|(n, s)| {
        vec![
            n.to_string(),
            s.ids.to_string(),
            s.images.to_string(),
            s.cams.to_string(),
        ]
    })
    .collect();
    pipe_table(&["subset", "# ids", "# images", "# cameras"], &rows)
}

/// The corpus table: # videos / # tracklets / # images.
pub fn corpus_table(stats: &CorpusStats) -> String {
    let row = vec![
        stats.videos.to_string(),
        stats.tracklets.to_string(),
        stats.images.to_string(),
    ];
    pipe_table(&["# videos", "# tracklets", "# images"], &[row])
}

/// `{"train":{"images":…,"ids":…,"cams":…},"query":{…},"gallery":{…}}`,
/// keys in this order, on one line.
pub fn image_json(stats: &DatasetStats) -> String {
    let s = |x: SplitStats| {
        format!(
            "{{\"images\":{},\"ids\":{},\"cams\":{}}}",
            x.images, x.ids, x.cams
        )
    };
    format!(
        "{{\"train\":{},\"query\":{},\"gallery\":{}}}",
        s(stats.train),
        s(stats.query),
        s(stats.gallery)
    )
}

/// `{"videos":…,"tracklets":…,"images":…}`, keys in this order, on one line.
pub fn corpus_json(stats: &CorpusStats) -> String {
    format!(
        "{{\"videos\":{},\"tracklets\":{},\"images\":{}}}",
        stats.videos, stats.tracklets, stats.images
    )
}
