//! What the ResNet, ViT and Swin importers report ([`ImportReport`]):
//! the file, its container and layout, and the tensors written, set aside
//! and allowed. (The other families report a
//! [`FamilyImportReport`](super::FamilyImportReport).)

use std::fmt;
use std::path::{Path, PathBuf};

use super::layout::{Ignored, Layout};
use super::source::Container;
use super::strict_apply::{self, Applied};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Its container.
    pub container: Container,
    /// The layout it was read as.
    pub layout: Layout,
    /// Number of model tensors written from the file.
    pub applied: usize,
    /// Keys set aside by the layout's rules, with the reason.
    pub ignored: Vec<Ignored>,
    /// Unused file keys accepted through the allow-list.
    pub allowed_unexpected: Vec<String>,
    /// Model parameters left at their initialisation through the allow-list.
    pub allowed_missing: Vec<String>,
}

impl Applied {
    /// The report of the strict import of `path` (a `container` file read
    /// as `layout`, `ignored` set aside by rule) that did this.
    pub(crate) fn into_report(
        self,
        path: &Path,
        container: Container,
        layout: Layout,
        ignored: Vec<Ignored>,
    ) -> ImportReport {
        ImportReport {
            path: path.to_path_buf(),
            container,
            layout,
            applied: self.count,
            ignored,
            allowed_unexpected: self.allowed_unexpected,
            allowed_missing: self.allowed_missing,
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} container, {} layout, {} tensors loaded",
            self.path.display(),
            self.container,
            self.layout,
            self.applied
        )?;
        strict_apply::write_report_tail(
            f,
            &self.ignored,
            &self.allowed_unexpected,
            &self.allowed_missing,
        )
    }
}
