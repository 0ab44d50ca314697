//! Market-1501 (Zheng et al., ICCV 2015).
//!
//! Layout: `Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/`
//! with names such as `0002_c1s1_000451_03.jpg` (pid, camera 1..=6, sequence,
//! frame, box). Pid `-1` (junk) is dropped from every split; pid `0`
//! (distractors) is kept in the gallery as an ordinary negative. Cameras
//! become 0-based. Non-image files (`Thumbs.db`, `synth_truth.json`) are
//! ignored; an image whose name does not match is an error naming it.
//!
//! Accepted roots (first match wins): the dataset folder itself,
//! `<root>/Market-1501-v15.09.15` (fast-reid's `datasets/`),
//! `<root>/market1501/Market-1501-v15.09.15` (torchreid) and
//! `<root>/market1501` (torchreid's fallback without the versioned folder).
//! Unlike upstream, the pid is not required to be ≤ 1501 so that larger
//! synthetic sets in this layout parse.

use std::path::Path;

use crate::error::Result;

use super::folder::{self, Scheme};
use super::published::MARKET1501;
use super::root::resolve;
use super::{ImageDatasetOptions, ParsedDataset};

/// The versioned folder name of the release.
pub const FOLDER: &str = "Market-1501-v15.09.15";

/// Root candidates, relative to the user's root.
pub const CANDIDATES: [&str; 4] = ["", FOLDER, "market1501/Market-1501-v15.09.15", "market1501"];

fn scheme() -> Scheme {
    Scheme {
        cams: 1..=6,
        drop_junk: true,
        example: "0002_c1s1_000451_03.jpg",
    }
}

/// Finds the Market-1501 folder under `root` (see the module doc).
pub fn locate(root: &Path) -> Result<std::path::PathBuf> {
    resolve(
        root,
        &CANDIDATES,
        "a Market-1501 folder with bounding_box_train/, query/ and bounding_box_test/",
        folder::is_layout,
    )
}

/// Parses Market-1501 found at or under `root`.
pub fn parse(root: &Path, options: &ImageDatasetOptions) -> Result<ParsedDataset> {
    let dir = locate(root)?;
    folder::parse_dataset(&dir, &scheme(), &MARKET1501, options)
}
