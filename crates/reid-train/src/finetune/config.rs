//! [`FinetuneConfig`]: every hyper-parameter of the BoT fine-tuning recipe,
//! serialisable (TOML / JSON), with fast-reid's `Base-bagtricks.yml` values
//! as defaults.

use derive_setters::Setters;
use reid_losses::{CrossEntropyConfig, Mining, TripletConfig, TripletDistance};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::schedule::{Decay, LrSchedule, Warmup};

/// The BoT recipe (Luo et al. 2019, as configured in fast-reid's
/// `Base-bagtricks.yml`). Every field has a default, so a config file only
/// needs the values it changes. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Backbone name for [`reid_backbones::build_backbone`] (`resnet50`).
    pub arch: String,
    /// Channels of the backbone's stem (64 in the published models).
    pub base_width: usize,
    /// Stride of the last stage: 1 (ReID, BoT) or 2.
    pub last_stride: usize,
    /// Input height in pixels (256).
    pub height: u32,
    /// Input width in pixels (128).
    pub width: u32,
    /// Identities per batch, `P` (16).
    pub p: usize,
    /// Images per identity, `K` (4); the batch is `P·K` = 64.
    pub k: usize,
    /// Training epochs (fast-reid `MAX_EPOCH`, 120).
    pub epochs: usize,
    /// Iterations per epoch; `None` = fast-reid's `len(train) // (P·K)`.
    pub iters_per_epoch: Option<usize>,
    /// Peak learning rate of Adam (3.5e-4).
    pub lr: f64,
    /// Coupled L2 weight decay of Adam, on every trained parameter (5e-4).
    pub weight_decay: f64,
    /// Linear warm-up, per iteration (2,000 iterations from 0.1).
    pub warmup: Warmup,
    /// Per-epoch decay after warm-up (multi-step `[40, 90]`, γ = 0.1).
    pub decay: Decay,
    /// Label smoothing `ε` of the cross-entropy (0.1, fast-reid convention).
    pub ce_epsilon: f64,
    /// Margin of the batch-hard triplet loss (0.3); `<= 0` selects
    /// fast-reid's soft margin `log(1 + exp(d_ap − d_an))`.
    pub triplet_margin: f64,
    /// Seed of the weights, the PK sampler and the augmentations.
    pub seed: u64,
    /// Flag an evaluation in the epoch-end callback every this many epochs
    /// (fast-reid `EVAL_PERIOD`, 30); 0 = never.
    pub eval_every: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            arch: "resnet50".into(),
            base_width: 64,
            last_stride: 1,
            height: 256,
            width: 128,
            p: 16,
            k: 4,
            epochs: 120,
            iters_per_epoch: None,
            lr: 3.5e-4,
            weight_decay: 5e-4,
            warmup: Warmup::default(),
            decay: Decay::default(),
            ce_epsilon: 0.1,
            triplet_margin: 0.3,
            seed: 0,
            eval_every: 30,
        }
    }
}

impl FinetuneConfig {
    /// The BoT defaults (same as [`Default`]).
    pub fn bot() -> Self {
        Self::default()
    }

    /// Batch size `P·K`.
    pub fn batch_size(&self) -> usize {
        self.p * self.k
    }

    /// Checks every field that does not depend on the data; the error names
    /// the field and the expected range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.p < 2 || self.k < 2 {
            return bad(format!(
                "the PK sampler needs p >= 2 identities and k >= 2 images per identity for the triplet loss, got p={} k={}",
                self.p, self.k
            ));
        }
        if self.height < 16 || self.width < 8 {
            return bad(format!(
                "input size {}x{} (height x width) is too small: at least 16x8",
                self.height, self.width
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be >= 1".into());
        }
        if self.iters_per_epoch == Some(0) {
            return bad("iters_per_epoch must be >= 1 (or omitted for len // batch)".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be finite and >= 0, got {}",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.ce_epsilon) {
            return bad(format!(
                "ce_epsilon must be in [0, 1), got {}",
                self.ce_epsilon
            ));
        }
        if !self.triplet_margin.is_finite() {
            return bad(format!(
                "triplet_margin must be finite, got {}",
                self.triplet_margin
            ));
        }
        // The schedule's own checks, with a placeholder epoch length.
        self.schedule(self.iters_per_epoch.unwrap_or(1)).validate()
    }

    /// The learning-rate schedule for `iters_per_epoch` iterations per epoch.
    pub fn schedule(&self, iters_per_epoch: usize) -> LrSchedule {
        LrSchedule {
            base_lr: self.lr,
            warmup: self.warmup,
            decay: self.decay.clone(),
            epochs: self.epochs,
            iters_per_epoch,
        }
    }

    /// The cross-entropy settings: fast-reid's convention (`1 − ε` on the
    /// true class, `ε/(K−1)` elsewhere).
    pub fn ce_config(&self) -> CrossEntropyConfig {
        CrossEntropyConfig::fast_reid().with_epsilon(self.ce_epsilon)
    }

    /// The triplet settings: batch-hard, Euclidean, no feature
    /// normalisation (fast-reid `NORM_FEAT: False`).
    pub fn triplet_config(&self) -> TripletConfig {
        TripletConfig::default()
            .with_margin((self.triplet_margin > 0.0).then_some(self.triplet_margin))
            .with_distance(TripletDistance::Euclidean)
            .with_normalize_features(false)
            .with_mining(Mining::Hard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bot_and_partial_json_keeps_them() {
        let c = FinetuneConfig::default();
        assert_eq!(c.batch_size(), 64);
        c.validate().unwrap();
        let parsed: FinetuneConfig = serde_json::from_str(
            r#"{"epochs": 3, "warmup": {"iters": 10}, "decay": {"kind": "cosine", "eta_min": 1e-6, "delay_epochs": 0}}"#,
        )
        .unwrap();
        assert_eq!(parsed.epochs, 3);
        assert_eq!(parsed.warmup.iters, 10);
        assert_eq!(parsed.warmup.factor, 0.1);
        assert_eq!(parsed.lr, 3.5e-4);
        assert!(matches!(parsed.decay, Decay::Cosine { .. }));
        let round: FinetuneConfig =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(round, parsed);
        assert!(serde_json::from_str::<FinetuneConfig>(r#"{"epoch": 3}"#).is_err());
    }

    #[test]
    fn invalid_fields_are_named() {
        let e = FinetuneConfig {
            p: 1,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("p >= 2"), "{e}");
        let e = FinetuneConfig {
            lr: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("learning rate"), "{e}");
        assert_eq!(
            FinetuneConfig {
                triplet_margin: 0.0,
                ..Default::default()
            }
            .triplet_config()
            .margin,
            None
        );
    }
}
