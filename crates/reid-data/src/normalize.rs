//! Per-channel normalisation constants, kept in one place for every recipe.

use serde::{Deserialize, Serialize};

/// Mean and standard deviation per RGB channel, on the `[0, 1]` scale:
/// `x' = (x / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of R, G, B on the `[0, 1]` scale.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B on the `[0, 1]` scale.
    pub std: [f32; 3],
}

/// ImageNet statistics (torchvision, fast-reid and torchreid test transforms).
pub const IMAGENET: Normalization = Normalization {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

impl Default for Normalization {
    fn default() -> Self {
        IMAGENET
    }
}
