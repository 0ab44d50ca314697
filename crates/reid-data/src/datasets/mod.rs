//! Parsers of the public ReID dataset layouts, and a registry by name.
//!
//! | name | module | output |
//! | --- | --- | --- |
//! | `market1501` | [`market1501`] | [`ParsedDataset`] |
//! | `dukemtmc` | [`dukemtmc`] | [`ParsedDataset`] |
//! | `msmt17` | [`msmt17`] (V1 and V2) | [`ParsedDataset`] |
//! | `cuhk03-labeled`, `cuhk03-detected` | [`cuhk03`] (CUHK03-NP, 767/700) | [`ParsedDataset`] |
//! | `luperson` | [`luperson`] | [`Corpus`] |
//! | `luperson-nl` | [`luperson_nl`] | [`Corpus`] |
//! | `cional` | [`cional`] (`annos.json`) | [`ParsedDataset`] (train only) |
//!
//! Common rules:
//! - **Roots**: each parser accepts the dataset's own folder or a folder above
//!   it in the fast-reid (`datasets/`) or torchreid (`<root>/market1501/…`)
//!   convention ([`root`]); a wrong layout is a [`DataError::Layout`] naming
//!   the path expected and every path tried.
//! - **Order**: files are discovered in sorted path order, so results are
//!   deterministic (upstream uses unsorted `glob`).
//! - **Relabelling**: training pids become `0..num_train_ids` in ascending
//!   integer order, or fast-reid's lexicographic order ([`relabel`]); query
//!   and gallery keep raw pids; cameras are 0-based.
//! - **Published counts**: see [`published`] for when a warning is produced.
//!   The library never prints; warnings are returned.
//! - **Names**: an image whose name does not follow the scheme, or whose
//!   camera is out of range, is a [`DataError::Malformed`] naming the file;
//!   non-image files are ignored.
//!
//! [`DataError::Layout`]: crate::DataError::Layout
//! [`DataError::Malformed`]: crate::DataError::Malformed

use derive_setters::Setters;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::record::Splits;

pub mod cional;
pub mod corpus;
pub mod cuhk03;
pub mod dukemtmc;
mod folder;
pub mod inspect;
pub mod lists;
#[cfg(feature = "lmdb")]
pub mod lmdb;
pub mod luperson;
pub mod luperson_nl;
pub mod market1501;
pub mod msmt17;
pub mod naming;
pub mod published;
pub mod relabel;
pub mod root;

pub use corpus::{Corpus, Tracklet, Video};
pub use cuhk03::{Cuhk03Kind, Cuhk03Options};
pub use msmt17::{Msmt17Options, Msmt17Version};
pub use published::ExpectFull;
pub use relabel::RelabelOrder;

/// Options shared by the train/query/gallery parsers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ImageDatasetOptions {
    /// When to compare the counts with the published ones (default: `Auto`,
    /// i.e. only for sets within ±10 % of the published total).
    pub expect_full: ExpectFull,
    /// Order of the training relabelling (default: ascending pids).
    pub relabel: RelabelOrder,
}

/// A parsed train/query/gallery dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDataset {
    /// The records; train pids are relabelled to `0..num_train_ids`.
    pub splits: Splits,
    /// Number of training identities.
    pub num_train_ids: usize,
    /// Count mismatches and other non-fatal findings, one sentence each.
    pub warnings: Vec<String>,
    /// The dataset folder that was resolved and read.
    pub root: PathBuf,
}

/// What a registry entry produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A train/query/gallery dataset.
    Images(ParsedDataset),
    /// A video corpus.
    Corpus(Corpus),
}

impl Loaded {
    /// The warnings of either kind.
    pub fn warnings(&self) -> &[String] {
        match self {
            Self::Images(d) => &d.warnings,
            Self::Corpus(c) => &c.warnings,
        }
    }
}

type LoadFn = fn(&Path, &ImageDatasetOptions) -> Result<Loaded>;

/// One dataset known to the registry.
#[derive(Debug, Clone, Copy)]
pub struct DatasetEntry {
    /// The CLI name (`"market1501"`).
    pub name: &'static str,
    /// Human-readable name (`"Market-1501"`).
    pub display: &'static str,
    /// True for video corpora (statistics: videos / tracklets / images).
    pub is_corpus: bool,
    load: LoadFn,
}

impl DatasetEntry {
    /// Parses the dataset found at or under `root` with the default
    /// dataset-specific options (MSMT17 without val, CUHK03 by kind) and the
    /// given shared options (ignored by corpora).
    pub fn load(&self, root: &Path, options: &ImageDatasetOptions) -> Result<Loaded> {
        (self.load)(root, options)
    }
}

fn cuhk03_with(kind: Cuhk03Kind, root: &Path, common: &ImageDatasetOptions) -> Result<Loaded> {
    let opts = Cuhk03Options {
        kind,
        common: *common,
    };
    cuhk03::parse(root, &opts).map(Loaded::Images)
}

/// Every dataset, in the order of the CLI's help.
pub const REGISTRY: [DatasetEntry; 9] = [
    DatasetEntry {
        name: "market1501",
        display: "Market-1501",
        is_corpus: false,
        load: |r, o| market1501::parse(r, o).map(Loaded::Images),
    },
    DatasetEntry {
        name: "dukemtmc",
        display: "DukeMTMC-reID",
        is_corpus: false,
        load: |r, o| dukemtmc::parse(r, o).map(Loaded::Images),
    },
    DatasetEntry {
        name: "msmt17",
        display: "MSMT17",
        is_corpus: false,
        load: |r, o| {
            let opts = Msmt17Options {
                common: *o,
                ..Msmt17Options::default()
            };
            msmt17::parse(r, &opts).map(Loaded::Images)
        },
    },
    DatasetEntry {
        name: "cuhk03-labeled",
        display: "CUHK03-NP (labeled)",
        is_corpus: false,
        load: |r, o| cuhk03_with(Cuhk03Kind::Labeled, r, o),
    },
    DatasetEntry {
        name: "cuhk03-detected",
        display: "CUHK03-NP (detected)",
        is_corpus: false,
        load: |r, o| cuhk03_with(Cuhk03Kind::Detected, r, o),
    },
    DatasetEntry {
        name: "lists",
        display: "your own (train.txt / query.txt / gallery.txt)",
        is_corpus: false,
        load: |r, o| lists::parse(r, o).map(Loaded::Images),
    },
    DatasetEntry {
        name: "luperson",
        display: "LUPerson",
        is_corpus: true,
        load: |r, _| luperson::parse(r).map(Loaded::Corpus),
    },
    DatasetEntry {
        name: "luperson-nl",
        display: "LUPerson-NL",
        is_corpus: true,
        load: |r, _| luperson_nl::parse(r).map(Loaded::Corpus),
    },
    DatasetEntry {
        name: "cional",
        display: "CION-AL",
        is_corpus: false,
        load: |r, o| cional::parse(r, o).map(Loaded::Images),
    },
];

/// The registry entry called `name` (case-sensitive, as listed in [`REGISTRY`]).
pub fn by_name(name: &str) -> Option<&'static DatasetEntry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// The registry entry called `name`, or an [`DataError::InvalidArgument`]
/// listing the known names.
pub fn entry(name: &str) -> Result<&'static DatasetEntry> {
    by_name(name).ok_or_else(|| {
        DataError::InvalidArgument(format!(
            "unknown dataset `{name}`; known: {}",
            names().join(", ")
        ))
    })
}

/// The registry's names.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}
