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

/// LUPerson MoCo v2 pre-training statistics (`mean_type='lup'` of the
/// LUPerson repository), RGB on the `[0, 1]` scale.
pub const LUPERSON: Normalization = Normalization {
    mean: [0.3525, 0.3106, 0.3140],
    std: [0.2660, 0.2522, 0.2505],
};

/// LUPerson-NL statistics used by PNL pre-training (the `lmdb_200_20`
/// subset of the LUPerson-NL repository), RGB on the `[0, 1]` scale.
pub const LUPERSON_NL: Normalization = Normalization {
    mean: [0.3452, 0.3070, 0.3114],
    std: [0.2633, 0.2500, 0.2480],
};

impl Default for Normalization {
    fn default() -> Self {
        IMAGENET
    }
}
