//! # reid-synth
//!
//! A seeded synthetic ReID world.
//!
//! No public ReID data can be downloaded in every environment, and users want
//! to try the toolkit before fetching millions of images. This crate renders
//! small person-like images procedurally and writes them in the on-disk
//! layouts of the public datasets, each with a ground-truth sidecar
//! (`synth_truth.json`, see [`truth`]):
//!
//! | writer | layout |
//! | --- | --- |
//! | [`write_market1501`] | `Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/0002_c1s1_000451_03.jpg` (junk `-1`, distractors `0000`) |
//! | [`write_dukemtmc`] | `DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/0001_c2_f0046182.jpg` (gallery-only distractor ids) |
//! | [`write_msmt17`] | `MSMT17_V1/{train,test}/0000/0000_000_01_0303morning_0015_0.jpg` + `list_{train,val,query,gallery}.txt` (or `MSMT17_V2/mask_{train,test}_v2`) |
//! | [`write_cuhk03_np`] | `cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/0001_c1_01.png` |
//! | [`write_luperson_nl`] | `LUPerson-NL/country00/city00/vid00000/{pid:06}_{frame:07}_{obj:02}.jpg` (noisy tracklets) |
//! | [`write_luperson`] | `LUPerson/country00/city00/vid00000/{i:02}_{j:02}_{k:04}_{m:08}.jpg` (unlabeled) |
//!
//! The world: each [`Identity`] has stable attributes (clothing colours and
//! patterns, body proportions, skin and hair, accessories); each [`Camera`]
//! its own viewpoint, illumination, background, blur and noise; each image a
//! [`Shot`] (view, walking pose, framing jitter, occlusion). Re-identification
//! is learnable but not trivial: a crude colour descriptor reaches a rank-1
//! clearly above chance and clearly below 100 % on the default Market-style set.
//!
//! Determinism: everything derives from [`WorldConfig::seed`] through
//! `ChaCha8Rng` streams keyed by (seed, layout, purpose, index), so images are
//! rendered in parallel and the same seed always writes the same bytes.
//!
//! For training without files, sample an [`Identity`] and a [`Camera`] and
//! call [`render_person`].
//!
//! Errors are [`SynthError`]; every one names the file or directory
//! involved (`From<SynthError> for reid_data::DataError` for callers that
//! report data errors).
//!
//! # Example
//!
//! A tiny Market-1501-style set (4 training identities, 2 cameras, 32×16
//! crops), written twice from the same seed: the same bytes.
//!
//! ```
//! use reid_synth::{Market1501Config, Span, WorldConfig, write_market1501};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let out = tempfile::tempdir()?;
//!     let world = WorldConfig::default().with_height(32).with_width(16);
//!     let sizes = Market1501Config::default()
//!         .with_train_ids(4)
//!         .with_test_ids(2)
//!         .with_cameras(2)
//!         .with_cams_per_id(Span::new(2, 2))
//!         .with_images_per_cam(Span::new(1, 1))
//!         .with_junk(0)
//!         .with_distractors(0);
//!     let a = write_market1501(&out.path().join("a"), &world, &sizes)?;
//!     let b = write_market1501(&out.path().join("b"), &world, &sizes)?;
//!     let stats = a.dataset_stats().expect("a Market-style report");
//!     assert_eq!(stats.train.ids, 4);
//!     let first_query = |d: &std::path::Path| -> std::io::Result<Vec<u8>> {
//!         let mut files: Vec<_> = std::fs::read_dir(d.join("query"))?.collect::<Result<_, _>>()?;
//!         files.sort_by_key(|e| e.file_name());
//!         std::fs::read(files[0].path())
//!     };
//!     assert_eq!(first_query(&a.dataset_dir)?, first_query(&b.dataset_dir)?);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod camera;
pub mod cuhk03;
pub mod duke;
pub mod error;
pub mod identity;
pub mod luperson;
pub mod market;
pub mod msmt;
mod output;
pub mod render;
mod stills;
pub mod tracker;
pub mod truth;
pub mod video;

use derive_setters::Setters;
use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use error::{Result, SynthError};

pub use camera::{Camera, Texture, View};
pub use cuhk03::{Cuhk03Config, write_cuhk03_np};
pub use duke::{DukeConfig, write_dukemtmc};
pub use identity::{Accessories, Identity, LowerGarment, Pattern, Rgb};
pub use luperson::{LupersonConfig, LupersonNlConfig, write_luperson, write_luperson_nl};
pub use market::{Market1501Config, write_market1501};
pub use msmt::{Msmt17Config, MsmtVersion, write_msmt17};
pub use render::{Occlusion, Shot, render, render_person};
pub use tracker::{NoiseSummary, TrackerNoise};
pub use truth::{PartStats, SynthTruth};
pub use video::VideoConfig;

/// Settings shared by every layout: the seed, the image size, the realism
/// knobs and the output policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct WorldConfig {
    /// The seed every random draw derives from.
    pub seed: u64,
    /// Image height in pixels (at least [`MIN_HEIGHT`]).
    pub height: u32,
    /// Image width in pixels (at least [`MIN_WIDTH`]).
    pub width: u32,
    /// Base probability that an image is partly occluded (each camera scales it by `[0.5, 1.5]`).
    pub occlusion: f32,
    /// JPEG quality, 1–100 (90 by default; CUHK03-NP is written as PNG).
    pub jpeg_quality: u8,
    /// Replace an existing dataset folder. Only folders that hold a
    /// `synth_truth.json` (i.e. were written by this generator) are ever
    /// deleted; anything else is refused. Not recorded in the sidecar.
    #[serde(skip)]
    pub overwrite: bool,
}

/// The smallest image height the renderer accepts, in pixels.
pub const MIN_HEIGHT: u32 = 16;
/// The smallest image width the renderer accepts, in pixels.
pub const MIN_WIDTH: u32 = 8;
/// The largest image side the renderer accepts, in pixels.
pub const MAX_SIDE: u32 = 2048;

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            height: 128,
            width: 64,
            occlusion: 0.2,
            jpeg_quality: 90,
            overwrite: false,
        }
    }
}

impl WorldConfig {
    /// The default world with `seed` and images of `height × width` pixels.
    pub fn sized(seed: u64, height: u32, width: u32) -> Self {
        Self {
            seed,
            height,
            width,
            ..Self::default()
        }
    }

    /// Checks the image size, occlusion probability and JPEG quality.
    pub fn validate(&self) -> Result<()> {
        if self.height < MIN_HEIGHT || self.width < MIN_WIDTH {
            return Err(invalid(format!(
                "image size {}x{} (height x width) is too small: at least {MIN_HEIGHT}x{MIN_WIDTH} is needed",
                self.height, self.width
            )));
        }
        if self.height > MAX_SIDE || self.width > MAX_SIDE {
            return Err(invalid(format!(
                "image size {}x{} (height x width) is too large: at most {MAX_SIDE} per side",
                self.height, self.width
            )));
        }
        if !(0.0..=1.0).contains(&self.occlusion) {
            return Err(invalid(format!(
                "occlusion probability {} is not in [0, 1]",
                self.occlusion
            )));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(invalid(format!(
                "JPEG quality {} is not in 1..=100",
                self.jpeg_quality
            )));
        }
        Ok(())
    }
}

/// An inclusive integer range `min..=max` (e.g. images per identity per camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Smallest value.
    pub min: u32,
    /// Largest value.
    pub max: u32,
}

impl Span {
    /// The range `min..=max`.
    pub const fn new(min: u32, max: u32) -> Self {
        Self { min, max }
    }

    /// Checks `lo <= min <= max <= hi`; `what` names the parameter in the error.
    pub fn check(&self, what: &str, lo: u32, hi: u32) -> Result<()> {
        if self.min > self.max {
            return Err(invalid(format!(
                "{what}: minimum {} is larger than maximum {}",
                self.min, self.max
            )));
        }
        if self.min < lo || self.max > hi {
            return Err(invalid(format!(
                "{what}: {}..={} is outside the allowed {lo}..={hi}",
                self.min, self.max
            )));
        }
        Ok(())
    }

    /// Draws a value uniformly from the range.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        rng.random_range(self.min..=self.max.max(self.min))
    }
}

/// The dataset layouts the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Market-1501.
    Market1501,
    /// DukeMTMC-reID.
    DukeMtmc,
    /// MSMT17 (V1 or V2 folders).
    Msmt17,
    /// CUHK03-NP (labeled and detected).
    Cuhk03Np,
    /// LUPerson-NL (video corpus with noisy tracklet labels).
    LupersonNl,
    /// LUPerson (unlabeled video corpus).
    Luperson,
}

impl Layout {
    /// The layout's name as used on the command line and in the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            Self::Market1501 => "market1501",
            Self::DukeMtmc => "dukemtmc",
            Self::Msmt17 => "msmt17",
            Self::Cuhk03Np => "cuhk03-np",
            Self::LupersonNl => "luperson-nl",
            Self::Luperson => "luperson",
        }
    }

    /// A number that keys this layout's random streams.
    fn stream(self) -> u64 {
        match self {
            Self::Market1501 => 1,
            Self::DukeMtmc => 2,
            Self::Msmt17 => 3,
            Self::Cuhk03Np => 4,
            Self::LupersonNl => 5,
            Self::Luperson => 6,
        }
    }
}

/// One part of a written dataset (CUHK03-NP has two: `labeled` and
/// `detected`; every other layout has one, named after the layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportPart {
    /// The part's name (`"market1501"`, `"labeled"`, `"detected"`, …).
    pub name: String,
    /// The folder a parser should be pointed at for this part.
    pub dir: PathBuf,
    /// What a parser must find there.
    pub stats: PartStats,
}

/// What a writer produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthReport {
    /// The layout written.
    pub layout: Layout,
    /// The dataset folder (`<out>/Market-1501-v15.09.15`, …), which holds `synth_truth.json`.
    pub dataset_dir: PathBuf,
    /// The parts and their statistics.
    pub parts: Vec<ReportPart>,
    /// Number of image files written (junk included).
    pub images_written: usize,
    /// Label-noise figures of a LUPerson-NL corpus.
    pub noise: Option<NoiseSummary>,
}

impl SynthReport {
    /// The statistics of the first part, if it is an image dataset.
    pub fn dataset_stats(&self) -> Option<reid_data::record::DatasetStats> {
        match self.parts.first()?.stats {
            PartStats::Images(s) => Some(s),
            PartStats::Corpus(_) => None,
        }
    }

    /// The statistics of the first part, if it is a video corpus.
    pub fn corpus_stats(&self) -> Option<reid_data::record::CorpusStats> {
        match self.parts.first()?.stats {
            PartStats::Corpus(s) => Some(s),
            PartStats::Images(_) => None,
        }
    }
}

/// What a random stream is used for (part of its key).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// The layout's plan (split assignment, names, counts).
    Plan = 1,
    /// Identity `i`.
    Identity = 2,
    /// Camera `c` (or the camera of video `c`).
    Camera = 3,
    /// Image `i` (its shot and its sensor noise).
    Image = 4,
    /// The detector jitter of image `i`.
    Detector = 5,
    /// Video `v`'s simulation (tracks, tracker noise).
    Video = 6,
    /// Distractor or junk subject `i`.
    Extra = 7,
    /// A video's street: track `i`'s position on it, or the backdrop of a segment.
    Street = 8,
    /// Which new persons are look-alikes, and of whom.
    Lookalike = 9,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `ChaCha8Rng` keyed by `(seed, layout, purpose, index)`: independent of
/// the order in which streams are created, so rendering can run in parallel.
pub(crate) fn stream_rng(seed: u64, layout: Layout, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut h = splitmix(seed);
    for part in [layout.stream(), purpose as u64, index] {
        h = splitmix(h ^ splitmix(part));
    }
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        h = splitmix(h ^ i as u64);
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

pub(crate) fn invalid(msg: String) -> SynthError {
    SynthError::InvalidArgument(msg)
}

/// Checks an identity count: at least 1, at most `max`.
pub(crate) fn check_count(what: &str, n: u32, min: u32, max: u32) -> Result<()> {
    if n < min || n > max {
        return Err(invalid(format!(
            "{what} is {n}; it must be in {min}..={max}"
        )));
    }
    Ok(())
}

/// `value` must lie in `[lo, hi]` (NaN never does); the error says
/// "`what` `value` is not in [lo, hi]`unit`".
pub(crate) fn check_range(what: &str, value: f32, lo: f32, hi: f32, unit: &str) -> Result<()> {
    if !(lo..=hi).contains(&value) {
        return Err(invalid(format!(
            "{what} {value} is not in [{lo}, {hi}]{unit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: u64 = stream_rng(1, Layout::Market1501, Purpose::Image, 5).random();
        let b: u64 = stream_rng(1, Layout::Market1501, Purpose::Image, 5).random();
        let c: u64 = stream_rng(1, Layout::Market1501, Purpose::Image, 6).random();
        let d: u64 = stream_rng(1, Layout::DukeMtmc, Purpose::Image, 5).random();
        let e: u64 = stream_rng(2, Layout::Market1501, Purpose::Image, 5).random();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e && c != d);
    }

    /// DukeMTMC-reID's names hold 8 cameras, MSMT17's 15: more are refused.
    #[test]
    fn too_many_cameras_are_refused() {
        for refused in [
            DukeConfig::default().with_cameras(9).validate(),
            Msmt17Config::default().with_cameras(16).validate(),
        ] {
            assert!(refused.unwrap_err().to_string().contains("cameras"));
        }
    }

    #[test]
    fn world_config_validation() {
        assert!(WorldConfig::default().validate().is_ok());
        let small = WorldConfig {
            height: 15,
            ..WorldConfig::default()
        };
        let msg = small.validate().unwrap_err().to_string();
        assert!(msg.contains("too small"), "{msg}");
        let q = WorldConfig {
            jpeg_quality: 0,
            ..WorldConfig::default()
        };
        assert!(q.validate().is_err());
        let o = WorldConfig {
            occlusion: 1.5,
            ..WorldConfig::default()
        };
        assert!(o.validate().is_err());
    }

    #[test]
    fn span_checks() {
        assert!(Span::new(1, 3).check("x", 1, 5).is_ok());
        assert!(Span::new(3, 1).check("x", 1, 5).is_err());
        assert!(Span::new(0, 3).check("x", 1, 5).is_err());
        assert!(Span::new(1, 6).check("x", 1, 5).is_err());
    }
}
