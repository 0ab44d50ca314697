//! DukeMTMC-reID (Zheng et al., ICCV 2017 / Ristani et al., 2016).
//!
//! Layout: `DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/` with
//! names such as `0001_c2_f0046182.jpg` (pid, camera 1..=8, frame). There is
//! no junk; the gallery holds 408 distractor identities that never appear in
//! the query. Cameras become 0-based. A negative pid is an error (upstream
//! would keep it).
//!
//! Accepted roots: the dataset folder itself, `<root>/DukeMTMC-reID`
//! (fast-reid), `<root>/dukemtmc-reid/DukeMTMC-reID` (torchreid) and
//! `<root>/dukemtmc-reid`.

use std::path::{Path, PathBuf};

use crate::error::Result;

use super::folder::{self, Scheme};
use super::published::DUKEMTMC;
use super::root::resolve;
use super::{ImageDatasetOptions, ParsedDataset};

/// The folder name of the release.
pub const FOLDER: &str = "DukeMTMC-reID";

/// Root candidates, relative to the user's root.
pub const CANDIDATES: [&str; 4] = ["", FOLDER, "dukemtmc-reid/DukeMTMC-reID", "dukemtmc-reid"];

fn scheme() -> Scheme {
    Scheme {
        cams: 1..=8,
        drop_junk: false,
        example: "0001_c2_f0046182.jpg",
    }
}

/// Finds the DukeMTMC-reID folder under `root`.
pub fn locate(root: &Path) -> Result<PathBuf> {
    resolve(
        root,
        &CANDIDATES,
        "a DukeMTMC-reID folder with bounding_box_train/, query/ and bounding_box_test/",
        folder::is_layout,
    )
}

/// Parses DukeMTMC-reID found at or under `root`.
pub fn parse(root: &Path, options: &ImageDatasetOptions) -> Result<ParsedDataset> {
    let dir = locate(root)?;
    folder::parse_dataset(&dir, &scheme(), &DUKEMTMC, options)
}
