//! A split as a burn [`Dataset`]: [`ReidDataset`] decodes one record per
//! `get` into a [`ReidItem`].

use std::path::PathBuf;
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};
use image::RgbImage;

use crate::error::{DataError, Result};
use crate::record::ImageRecord;

use super::source::ImageSource;

/// One decoded training image with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ReidItem {
    /// Index of the record in its [`ReidDataset`].
    pub index: usize,
    /// The image, 8-bit RGB at its stored size.
    pub image: RgbImage,
    /// Identity label (relabelled `0..num_ids` for training splits).
    pub pid: i64,
    /// Camera index, 0-based.
    pub camid: u32,
}

/// The records of one split (any parser's `Splits::train`, a corpus'
/// images, …) and where to read their bytes. Cloning is cheap (shared).
///
/// Implements burn's [`Dataset<ReidItem, DataError>`](Dataset): `get`
/// reads and decodes one image; a corrupt file or an index out of range is an
/// `Err` (never a panic, unlike the trait's documented convention for the
/// latter). [`TrainLoader`](super::TrainLoader) calls it from rayon workers,
/// so decoding runs in parallel.
#[derive(Debug, Clone)]
pub struct ReidDataset {
    records: Arc<[ImageRecord]>,
    source: ImageSource,
}

impl ReidDataset {
    /// A dataset of `records` read through `source`.
    pub fn new(records: impl Into<Arc<[ImageRecord]>>, source: ImageSource) -> Self {
        Self {
            records: records.into(),
            source,
        }
    }

    /// A dataset of records whose images are files ([`ImageSource::files`]).
    pub fn from_files(records: impl Into<Arc<[ImageRecord]>>) -> Self {
        Self::new(records, ImageSource::files())
    }

    /// The records, in index order.
    pub fn records(&self) -> &[ImageRecord] {
        &self.records
    }

    /// The byte source.
    pub fn source(&self) -> &ImageSource {
        &self.source
    }

    /// The record at `index`, or an error naming the index and the length.
    pub fn record(&self, index: usize) -> Result<&ImageRecord> {
        self.records.get(index).ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "dataset index {index} is out of range (the dataset has {} images)",
                self.records.len()
            ))
        })
    }

    /// How errors name the image at `index` (file path or `<lmdb>/<key>`).
    pub fn name(&self, index: usize) -> Result<PathBuf> {
        Ok(self.source.name(&self.record(index)?.location))
    }

    /// The same dataset with burn's default error type, as
    /// `DataLoaderBuilder::build` requires (see [`BurnReidDataset`]).
    pub fn into_burn(self) -> BurnReidDataset {
        BurnReidDataset(self)
    }

    /// Reads and decodes the image at `index`.
    pub fn load(&self, index: usize) -> Result<ReidItem> {
        let record = self.record(index)?;
        let image = self.source.load(record)?;
        Ok(ReidItem {
            index,
            image,
            pid: record.pid,
            camid: record.camid,
        })
    }
}

impl Dataset<ReidItem, DataError> for ReidDataset {
    fn get(&self, index: usize) -> Result<ReidItem> {
        self.load(index)
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// A [`ReidDataset`] as burn's `Dataset<ReidItem>` with burn's
/// [`DatasetError`] (what burn's `DataLoaderBuilder::build` accepts); the
/// wrapped [`DataError`] is the error's `source()`.
#[derive(Debug, Clone)]
pub struct BurnReidDataset(pub ReidDataset);

impl Dataset<ReidItem> for BurnReidDataset {
    fn get(&self, index: usize) -> std::result::Result<ReidItem, DatasetError> {
        self.0.load(index).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.0.records.len()
    }
}
