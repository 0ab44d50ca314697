//! Learning-rate schedules of the fine-tuning recipes, as plain functions of
//! the iteration counter (no optimiser state).
//!
//! # Semantics (fast-reid's trainer)
//!
//! fast-reid drives two PyTorch schedulers from its training hooks, and
//! [`LrSchedule::lr_at`] reproduces their product in closed form:
//!
//! - **Warm-up, per iteration.** For the 0-based global iteration `i` and
//!   `W` = [`Warmup::iters`], the factor is `f·(1 − i/W) + i/W` for `i < W`
//!   (linear, from `f` = [`Warmup::factor`] up to 1) and 1 afterwards.
//! - **Decay, per epoch.** The decay scheduler is stepped at the end of
//!   epoch `e` (0-based) only when the warm-up is over, `(e + 1)·ipe > W`, and
//!   the delay has passed, `e + 1 > delay_epochs`. So before epoch `e` it has
//!   taken `n(e) = #{e' < e : (e'+1)·ipe > W ∧ e'+1 > delay}` steps, and:
//!   - [`Decay::MultiStep`]: factor `γ^#{m ∈ milestones : m ≤ n(e)}`;
//!   - [`Decay::Cosine`]: `lr = η_min + (base − η_min)·(1 + cos(π·n(e)/T))/2`
//!     with `T = epochs − max(⌈W/ipe⌉, delay)` (fast-reid's `T_max`);
//!   - [`Decay::Constant`]: factor 1.
//!
//! One upstream quirk is reproduced on purpose: because the decay scheduler
//! is not stepped during warm-up, multi-step milestones count epochs *after*
//! warm-up. With BoT on Market-1501 (`ipe` = 12,936 // 64 = 202, `W` = 2,000)
//! the first decay step happens after epoch 10, so milestone 40 takes effect
//! in epoch 50 (0-based 49), not 40.

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Linear warm-up from `factor · base_lr` to `base_lr` over `iters`
/// iterations (fast-reid `WARMUP_FACTOR`, `WARMUP_ITERS`, method `linear`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Warmup {
    /// Warm-up length in iterations; 0 disables the warm-up. BoT: 2,000
    /// (about 10 epochs on Market-1501).
    pub iters: usize,
    /// Starting factor `f` in `(0, 1]`. BoT: 0.1.
    pub factor: f64,
}

impl Default for Warmup {
    /// BoT (fast-reid `Base-bagtricks.yml`): 2,000 iterations from 0.1.
    fn default() -> Self {
        Self {
            iters: 2000,
            factor: 0.1,
        }
    }
}

impl Warmup {
    /// The warm-up factor at 0-based global iteration `iter`, in `[f, 1]`.
    pub fn factor_at(&self, iter: usize) -> f64 {
        if iter >= self.iters {
            return 1.0;
        }
        let alpha = iter as f64 / self.iters as f64;
        self.factor * (1.0 - alpha) + alpha
    }
}

/// How the learning rate decays after warm-up; stepped once per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    /// Multiply by `gamma` at each milestone (in decay steps, i.e. epochs
    /// after warm-up; see the module docs). BoT: `[40, 90]`, `γ` = 0.1.
    MultiStep {
        /// Decay steps at which the factor `gamma` is applied, ascending.
        milestones: Vec<usize>,
        /// Multiplicative factor `γ` in `(0, 1]`.
        gamma: f64,
    },
    /// Cosine annealing to `eta_min` after `delay_epochs` of constant rate
    /// (fast-reid `CosineAnnealingLR` with `DELAY_EPOCHS`, `ETA_MIN_LR`).
    Cosine {
        /// Final learning rate `η_min` (absolute, not a factor).
        eta_min: f64,
        /// Epochs held at the base rate before the decay starts.
        delay_epochs: usize,
    },
    /// No decay.
    Constant,
}

impl Default for Decay {
    /// BoT: multi-step at `[40, 90]` with `γ` = 0.1.
    fn default() -> Self {
        Self::MultiStep {
            milestones: vec![40, 90],
            gamma: 0.1,
        }
    }
}

/// A complete schedule: base rate, warm-up, decay, and the epoch geometry
/// needed to turn iterations into epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate (BoT: 3.5e-4).
    pub base_lr: f64,
    /// Warm-up (per iteration).
    pub warmup: Warmup,
    /// Decay (per epoch).
    pub decay: Decay,
    /// Number of training epochs (fast-reid `MAX_EPOCH`).
    pub epochs: usize,
    /// Iterations per epoch (`ipe`; fast-reid: `len(train) // batch`).
    pub iters_per_epoch: usize,
}

impl LrSchedule {
    /// Checks the values; the error names the offending field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if !(self.base_lr.is_finite() && self.base_lr > 0.0) {
            return bad(format!(
                "learning rate must be finite and > 0, got {}",
                self.base_lr
            ));
        }
        if self.iters_per_epoch == 0 || self.epochs == 0 {
            return bad(format!(
                "schedule needs epochs >= 1 and iters_per_epoch >= 1, got {} and {}",
                self.epochs, self.iters_per_epoch
            ));
        }
        if self.warmup.iters > 0 && !(self.warmup.factor > 0.0 && self.warmup.factor <= 1.0) {
            return bad(format!(
                "warm-up factor must be in (0, 1], got {}",
                self.warmup.factor
            ));
        }
        match &self.decay {
            Decay::MultiStep { milestones, gamma } => {
                if !(*gamma > 0.0 && *gamma <= 1.0) {
                    return bad(format!("multi-step gamma must be in (0, 1], got {gamma}"));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return bad(format!(
                        "multi-step milestones must be strictly ascending, got {milestones:?}"
                    ));
                }
            }
            Decay::Cosine { eta_min, .. } => {
                if !(eta_min.is_finite() && *eta_min >= 0.0 && *eta_min <= self.base_lr) {
                    return bad(format!(
                        "cosine eta_min must be in [0, base lr {}], got {eta_min}",
                        self.base_lr
                    ));
                }
                if self.cosine_period().is_none() {
                    return bad(format!(
                        "cosine decay has no room: {} epochs minus max(warm-up epochs {}, delay) leaves none",
                        self.epochs,
                        self.warmup.iters.div_ceil(self.iters_per_epoch)
                    ));
                }
            }
            Decay::Constant => {}
        }
        Ok(())
    }

    /// fast-reid's cosine `T_max = epochs − max(⌈W/ipe⌉, delay)`, `None`
    /// when it is not positive or the decay is not cosine.
    pub fn cosine_period(&self) -> Option<usize> {
        let Decay::Cosine { delay_epochs, .. } = &self.decay else {
            return None;
        };
        let warm_epochs = self.warmup.iters.div_ceil(self.iters_per_epoch.max(1));
        self.epochs
            .checked_sub(warm_epochs.max(*delay_epochs))
            .filter(|&t| t > 0)
    }

    /// Number of decay steps `n(e)` taken before epoch `epoch` (0-based)
    /// starts; see the module docs.
    pub fn decay_steps_before(&self, epoch: usize) -> usize {
        let delay = match &self.decay {
            Decay::Cosine { delay_epochs, .. } => *delay_epochs,
            _ => 0,
        };
        (0..epoch)
            .filter(|&e| (e + 1) * self.iters_per_epoch > self.warmup.iters && e + 1 > delay)
            .count()
    }

    /// The multi-step milestones that never take effect within the run's
    /// [`epochs`](Self::epochs): those above the number of decay steps taken
    /// before the last epoch starts. Milestones count epochs after the
    /// warm-up (see the module docs), so a milestone `m` with `m +
    /// ⌈W/ipe⌉ ≥ epochs` is never reached; a recipe whose milestones were
    /// meant as absolute epochs runs at its base rate to the end. Empty for
    /// the other decays.
    pub fn unreached_milestones(&self) -> Vec<usize> {
        let Decay::MultiStep { milestones, .. } = &self.decay else {
            return Vec::new();
        };
        let last = self.decay_steps_before(self.epochs.saturating_sub(1));
        milestones.iter().copied().filter(|&m| m > last).collect()
    }

    /// The learning rate after the decay alone at epoch `epoch` (0-based).
    pub fn decayed_lr(&self, epoch: usize) -> f64 {
        let n = self.decay_steps_before(epoch);
        match &self.decay {
            Decay::MultiStep { milestones, gamma } => {
                let hits = milestones.iter().filter(|&&m| m <= n).count();
                self.base_lr * gamma.powi(hits as i32)
            }
            Decay::Cosine { eta_min, .. } => match self.cosine_period() {
                Some(t) => {
                    let c = (std::f64::consts::PI * n as f64 / t as f64).cos();
                    eta_min + (self.base_lr - eta_min) * (1.0 + c) / 2.0
                }
                None => self.base_lr,
            },
            Decay::Constant => self.base_lr,
        }
    }

    /// The learning rate used by the optimiser step of 0-based global
    /// iteration `iter` (epoch `iter / iters_per_epoch`).
    pub fn lr_at(&self, iter: usize) -> f64 {
        let epoch = iter / self.iters_per_epoch.max(1);
        self.decayed_lr(epoch) * self.warmup.factor_at(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn milestones_past_the_run_are_reported() {
        // 13 iterations per epoch and a warm-up of 130 iterations: the decay
        // counter is first stepped at the end of epoch 10 (0-based), so the
        // last epoch (23) runs after 13 steps.
        let s = |milestones: Vec<usize>, epochs| LrSchedule {
            base_lr: 3.5e-4,
            epochs,
            iters_per_epoch: 13,
            warmup: Warmup {
                iters: 130,
                factor: 0.1,
            },
            decay: Decay::MultiStep {
                milestones,
                gamma: 0.1,
            },
        };
        assert_eq!(s(vec![16, 21], 24).unreached_milestones(), vec![16, 21]);
        assert_eq!(
            s(vec![6, 11], 24).unreached_milestones(),
            Vec::<usize>::new()
        );
        assert_eq!(s(vec![6, 15], 24).unreached_milestones(), vec![15]);
        // The last reachable milestone takes effect in the last epoch.
        let last = s(vec![13], 24);
        assert!(last.unreached_milestones().is_empty());
        close(last.lr_at(23 * 13), 3.5e-5);
        close(last.lr_at(23 * 13 - 1), 3.5e-4);
        assert_eq!(s(vec![14], 24).unreached_milestones(), vec![14]);
        close(s(vec![14], 24).lr_at(23 * 13), 3.5e-4);
    }

    #[test]
    fn linear_warmup_matches_hand_values() {
        let w = Warmup {
            iters: 10,
            factor: 0.1,
        };
        close(w.factor_at(0), 0.1);
        close(w.factor_at(5), 0.55);
        close(w.factor_at(9), 0.1 * 0.1 + 0.9);
        close(w.factor_at(10), 1.0);
        close(w.factor_at(1000), 1.0);
        let none = Warmup {
            iters: 0,
            factor: 0.1,
        };
        close(none.factor_at(0), 1.0);
    }

    #[test]
    fn multistep_counts_milestones_after_warmup() {
        // ipe 10, W 20: decay steps after epochs 2, 3, ... so n(e) = max(0, e - 2).
        let s = LrSchedule {
            base_lr: 1.0,
            warmup: Warmup {
                iters: 20,
                factor: 0.1,
            },
            decay: Decay::MultiStep {
                milestones: vec![2, 4],
                gamma: 0.1,
            },
            epochs: 8,
            iters_per_epoch: 10,
        };
        s.validate().unwrap();
        close(s.lr_at(0), 0.1);
        close(s.lr_at(15), 0.1 * 0.25 + 0.75);
        close(s.lr_at(20), 1.0);
        assert_eq!(s.decay_steps_before(2), 0);
        assert_eq!(s.decay_steps_before(3), 1);
        assert_eq!(s.decay_steps_before(4), 2);
        close(s.lr_at(39), 1.0); // epoch 3: n = 1
        close(s.lr_at(40), 0.1); // epoch 4: n = 2, first milestone
        close(s.lr_at(59), 0.1); // epoch 5: n = 3
        close(s.lr_at(60), 0.01); // epoch 6: n = 4
    }

    #[test]
    fn bot_market_geometry_reproduces_the_delayed_milestones() {
        let s = LrSchedule {
            base_lr: 3.5e-4,
            warmup: Warmup::default(),
            decay: Decay::default(),
            epochs: 120,
            iters_per_epoch: 202,
        };
        s.validate().unwrap();
        // Epoch 9 ends at iteration 2020 > 2000: the first decay step.
        assert_eq!(s.decay_steps_before(10), 1);
        close(s.decayed_lr(48), 3.5e-4);
        close(s.decayed_lr(49), 3.5e-5);
        close(s.decayed_lr(98), 3.5e-5);
        close(s.decayed_lr(99), 3.5e-6);
        close(s.lr_at(1000), 3.5e-4 * (0.1 * 0.5 + 0.5));
    }

    #[test]
    fn cosine_with_delay_and_warmup() {
        // ipe 10, W 15: T = 6 - max(ceil(1.5) = 2, 0) = 4; n(e) = max(0, e - 1).
        let s = LrSchedule {
            base_lr: 1.0,
            warmup: Warmup {
                iters: 15,
                factor: 0.01,
            },
            decay: Decay::Cosine {
                eta_min: 0.0,
                delay_epochs: 0,
            },
            epochs: 6,
            iters_per_epoch: 10,
        };
        s.validate().unwrap();
        assert_eq!(s.cosine_period(), Some(4));
        close(s.lr_at(0), 0.01);
        close(s.lr_at(10), 0.01 * (1.0 - 10.0 / 15.0) + 10.0 / 15.0);
        close(s.decayed_lr(1), 1.0);
        close(
            s.decayed_lr(2),
            (1.0 + (std::f64::consts::PI / 4.0).cos()) / 2.0,
        );
        close(s.decayed_lr(3), 0.5);
        close(s.decayed_lr(5), 0.0);
        // A delay of 3 epochs: steps only after epochs 3, 4, ...; T = 6 - 3.
        let d = LrSchedule {
            decay: Decay::Cosine {
                eta_min: 0.1,
                delay_epochs: 3,
            },
            ..s.clone()
        };
        assert_eq!(d.cosine_period(), Some(3));
        close(d.decayed_lr(3), 1.0);
        close(
            d.decayed_lr(4),
            0.1 + 0.9 * (1.0 + (std::f64::consts::PI / 3.0).cos()) / 2.0,
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_field_named() {
        let ok = LrSchedule {
            base_lr: 1.0,
            warmup: Warmup::default(),
            decay: Decay::Constant,
            epochs: 2,
            iters_per_epoch: 3,
        };
        ok.validate().unwrap();
        let cases = [
            (
                LrSchedule {
                    base_lr: f64::NAN,
                    ..ok.clone()
                },
                "learning rate",
            ),
            (
                LrSchedule {
                    iters_per_epoch: 0,
                    ..ok.clone()
                },
                "iters_per_epoch",
            ),
            (
                LrSchedule {
                    warmup: Warmup {
                        iters: 5,
                        factor: 0.0,
                    },
                    ..ok.clone()
                },
                "warm-up factor",
            ),
            (
                LrSchedule {
                    decay: Decay::MultiStep {
                        milestones: vec![3, 2],
                        gamma: 0.1,
                    },
                    ..ok.clone()
                },
                "ascending",
            ),
            (
                LrSchedule {
                    decay: Decay::Cosine {
                        eta_min: 0.0,
                        delay_epochs: 5,
                    },
                    ..ok.clone()
                },
                "no room",
            ),
        ];
        for (s, needle) in cases {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
