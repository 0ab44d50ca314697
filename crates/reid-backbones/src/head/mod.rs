//! ReID heads: what turns a backbone's feature map into an embedding and
//! class logits.
//!
//! - [`embedding`]: the BNNeck head of BoT / fast-reid (BN with a frozen
//!   bias, bias-free classifier) and its TransReID variant;
//! - [`classifier`]: linear and circle-softmax logits.

pub mod classifier;
pub mod embedding;

pub use classifier::ClassifierKind;
pub use embedding::{EmbeddingHead, EmbeddingHeadConfig, HeadOutput, HeadPool, NeckFeat};
