//! The one place `import` names the family importers: each family's
//! checkpoint importer lives in its own folder (`<family>/import.rs`, on
//! the shared machinery of this module) and is re-exported here, so the
//! paths `reid_backbones::import::load_<family>` keep working.
//!
//! The dependency runs one way: a family importer uses the shared modules
//! ([`super::options`], `family`, `renames`, `layout`, `source`,
//! `strict_apply`, `wrapper`, `keys`), never `import`'s root, and only
//! this module looks back at the families.

pub use crate::convnext::{ConvNeXtImportReport, ConvNeXtLayout, load_convnext};
pub use crate::edgenext::{EdgeNeXtImportReport, EdgeNeXtLayout, load_edgenext};
pub use crate::fastvit::{FastVitImportReport, FastVitKeys, FastVitLayout, load_fastvit};
pub use crate::ghostnet::{
    GhostNetImportReport, ghostnet_file_key, ghostnet_model_path, load_ghostnet,
};
pub use crate::repvit::{RepVitImportReport, RepVitKeys, RepVitLayout, load_repvit};
pub use crate::swin::{SwinKeys, load_swin};
pub use crate::vit::load_vit;
pub use crate::volo::{VoloImportReport, load_volo, volo_file_key, volo_model_path};
