//! Collapse diagnostics of DINO-style self-distillation (CION, DINO).
//!
//! Self-distillation has two trivial solutions that its users watch for
//! (Caron et al., 2021, §5.3):
//!
//! - **uniform collapse**: the centred, sharpened teacher output is the
//!   uniform distribution for every image, `H(P_t) → ln D`; the student
//!   copies it and the loss sits at `ln D`;
//! - **one-hot collapse**: one dimension dominates for every image,
//!   `H(P_t) → 0` and the batch-mean distribution is one-hot too,
//!   `H(mean P_t) → 0`.
//!
//! A learning run keeps `H(P_t)` well below `ln D` (sharp per image) while
//! `H(mean P_t)` stays high (images use different dimensions).
//! [`dino_diagnostics`] measures both, the KL divergence between teacher and
//! student on the same image, and the center's norm; [`CollapseMonitor`]
//! flags either collapse when it lasts for a window of steps.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use super::DinoLossConfig;
use crate::LossError;

const NAME: &str = "dino_diagnostics";

/// What [`dino_diagnostics`] measures for one step (all in nats, except the
/// norm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DinoDiagnostics {
    /// Mean over the teacher's rows of the entropy of its targets `P_t`
    /// (`softmax((z_t − c)/τ_t)`, or the Sinkhorn–Knopp targets,
    /// [`super::teacher_targets`]): `ln D` for a uniform teacher, 0 for a
    /// one-hot one.
    pub teacher_entropy: f64,
    /// Entropy of the batch-mean teacher distribution `mean_rows(P_t)`: low
    /// when every image puts its mass on the same dimensions.
    pub teacher_mean_entropy: f64,
    /// Mean `KL(P_t ‖ softmax(z_s/τ_s))` over the pairs of a teacher global
    /// crop and a *different* student crop of the same image (the pairs of
    /// DINO's loss term): how far the student is from its targets.
    pub kl_teacher_student: f64,
    /// L2 norm of the center `c` (`[1, D]`).
    pub center_norm: f64,
    /// `ln D`, the entropy of the uniform distribution over the `D` outputs.
    pub max_entropy: f64,
}

/// Measures [`DinoDiagnostics`] on the outputs of one step (no gradient is
/// recorded).
///
/// - `student`: `[V·B, D]` student head outputs, crop-major (as
///   [`identity_guided_dino_loss`](super::identity_guided_dino_loss));
/// - `teacher`: `[2·B, D]` teacher outputs of the 2 global crops;
/// - `center`: `[1, D]` the center used by the step.
///
/// # Errors
/// [`LossError`] when the shapes or temperatures are as
/// [`identity_guided_dino_loss`](super::identity_guided_dino_loss) rejects
/// them (with `K = 1`).
pub fn dino_diagnostics(
    student: Tensor<2>,
    teacher: Tensor<2>,
    center: Tensor<2>,
    config: &DinoLossConfig,
) -> Result<DinoDiagnostics, LossError> {
    let (batch, dim) = super::loss::validate(&student, &teacher, &center, 1, config)?;
    let v = config.n_crops;
    let center_norm = scalar(center.clone().powf_scalar(2.0).sum().sqrt())?;
    let p = super::loss::teacher_targets(teacher, center.clone(), config);
    let log_p = p.clone().clamp_min(f32::MIN_POSITIVE).log();
    // Σ_d p·ln p per row: [2B, 1].
    let neg_entropy_rows = (p.clone() * log_p).sum_dim(1);
    let teacher_entropy = -scalar(neg_entropy_rows.clone().mean())?;
    let mean_p = p.clone().mean_dim(0);
    let teacher_mean_entropy =
        -scalar((mean_p.clone() * mean_p.clamp_min(f32::MIN_POSITIVE).log()).sum())?;
    // KL(P_g[b] ‖ S_v[b]) = Σ_d p (ln p − ln s), summed over b for every
    // (g, v) at once: cross[g, v] = Σ_{b,d} P_g[b, d]·S_v[b, d].
    let s = log_softmax(student.detach().div_scalar(config.student_temp), 1);
    let cross = p
        .reshape([2, batch * dim])
        .matmul(s.reshape([v, batch * dim]).transpose());
    let cross: Vec<f64> = cross.into_data().iter::<f64>().collect();
    let neg_h: Vec<f64> = neg_entropy_rows
        .reshape([2, batch])
        .sum_dim(1)
        .into_data()
        .iter::<f64>()
        .collect();
    let mut kl_sum = 0.0;
    for g in 0..2 {
        for crop in (0..v).filter(|&c| c != g) {
            kl_sum += neg_h[g] - cross[g * v + crop];
        }
    }
    let kl_teacher_student = kl_sum / ((2 * v - 2) * batch) as f64;
    Ok(DinoDiagnostics {
        teacher_entropy,
        teacher_mean_entropy,
        kl_teacher_student,
        center_norm,
        max_entropy: (dim as f64).ln(),
    })
}

fn scalar(t: Tensor<1>) -> Result<f64, LossError> {
    t.into_data()
        .iter::<f64>()
        .next()
        .ok_or_else(|| LossError::InvalidShape {
            loss: NAME,
            what: "reduction",
            shape: vec![0],
            expected: "a single value".into(),
        })
}

/// Which trivial solution a run has fallen into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collapse {
    /// The teacher is (nearly) uniform for every image.
    Uniform,
    /// The teacher puts (nearly) all its mass on one dimension, the same
    /// for every image.
    OneHot,
}

impl Collapse {
    /// A code for a numeric log: 1 uniform, 2 one-hot (0 stands for none).
    pub fn code(self) -> f64 {
        match self {
            Collapse::Uniform => 1.0,
            Collapse::OneHot => 2.0,
        }
    }

    /// A sentence for a warning.
    pub fn describe(self) -> &'static str {
        match self {
            Collapse::Uniform => {
                "uniform collapse: the teacher's entropy is near ln(out_dim) (every image gets the same flat distribution)"
            }
            Collapse::OneHot => {
                "one-hot collapse: the teacher puts its mass on one dimension for every image"
            }
        }
    }
}

/// Flags a collapse that lasts `window` consecutive steps.
///
/// A step counts as uniform when `H(P_t) ≥ uniform_fraction · ln D`, and as
/// one-hot when `H(mean P_t) ≤ one_hot_nats` (all images on the same few
/// dimensions; a sharp but *diverse* teacher has a low `H(P_t)` and a high
/// `H(mean P_t)`, and is healthy).
#[derive(Debug, Clone, PartialEq)]
pub struct CollapseMonitor {
    /// Consecutive steps a condition must hold before it is reported (50).
    pub window: usize,
    /// Fraction of `ln D` above which the teacher counts as uniform (0.97).
    pub uniform_fraction: f64,
    /// Batch-mean entropy (nats) under which the teacher counts as one-hot
    /// (0.5: fewer than about 2 effective dimensions for the whole batch).
    pub one_hot_nats: f64,
    run: Option<(Collapse, usize)>,
}

impl Default for CollapseMonitor {
    fn default() -> Self {
        Self::new(50)
    }
}

impl CollapseMonitor {
    /// A monitor with a window of `window` steps and the default thresholds.
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            uniform_fraction: 0.97,
            one_hot_nats: 0.5,
            run: None,
        }
    }

    /// The state of one step alone.
    pub fn classify(&self, d: &DinoDiagnostics) -> Option<Collapse> {
        if d.teacher_entropy >= self.uniform_fraction * d.max_entropy {
            Some(Collapse::Uniform)
        } else if d.teacher_mean_entropy <= self.one_hot_nats {
            Some(Collapse::OneHot)
        } else {
            None
        }
    }

    /// Records a step; returns the collapse once it has lasted `window`
    /// consecutive steps (and on every further step while it lasts).
    pub fn observe(&mut self, d: &DinoDiagnostics) -> Option<Collapse> {
        let now = self.classify(d);
        self.run = match (now, self.run) {
            (Some(c), Some((prev, n))) if c == prev => Some((c, n + 1)),
            (Some(c), _) => Some((c, 1)),
            (None, _) => None,
        };
        match self.run {
            Some((c, n)) if n >= self.window => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(rows: usize, dim: usize, f: impl Fn(usize, usize) -> f32) -> Tensor<2> {
        let v: Vec<f32> = (0..rows * dim).map(|i| f(i / dim, i % dim)).collect();
        Tensor::from_data(TensorData::new(v, [rows, dim]), &Device::default())
    }

    fn cfg() -> DinoLossConfig {
        DinoLossConfig {
            n_crops: 3,
            ..DinoLossConfig::default()
        }
    }

    #[test]
    fn uniform_teacher_has_maximal_entropy_and_is_flagged() {
        let (b, d) = (4, 16);
        let zero = |r| t(r, d, |_, _| 0.0);
        let diag = dino_diagnostics(zero(3 * b), zero(2 * b), zero(1), &cfg()).unwrap();
        let ln_d = (d as f64).ln();
        assert!((diag.teacher_entropy - ln_d).abs() < 1e-5);
        assert!((diag.teacher_mean_entropy - ln_d).abs() < 1e-5);
        assert!(diag.kl_teacher_student.abs() < 1e-5);
        assert_eq!(diag.center_norm, 0.0);
        let mut m = CollapseMonitor::new(3);
        assert_eq!(m.observe(&diag), None);
        assert_eq!(m.observe(&diag), None);
        assert_eq!(m.observe(&diag), Some(Collapse::Uniform));
    }

    #[test]
    fn one_hot_teacher_on_one_dimension_is_flagged_diverse_is_not() {
        let (b, d) = (4, 16);
        let same = t(2 * b, d, |_, c| if c == 3 { 10.0 } else { 0.0 });
        let student = t(3 * b, d, |_, _| 0.0);
        let diag = dino_diagnostics(student.clone(), same, t(1, d, |_, _| 0.0), &cfg()).unwrap();
        assert!(diag.teacher_entropy < 1e-3);
        assert!(diag.teacher_mean_entropy < 1e-3);
        // KL(one-hot ‖ uniform) = ln D.
        assert!((diag.kl_teacher_student - (d as f64).ln()).abs() < 1e-3);
        let m = CollapseMonitor::new(1);
        assert_eq!(m.classify(&diag), Some(Collapse::OneHot));
        // Sharp per image, but each image on its own dimension: healthy.
        let diverse = t(2 * b, d, |r, c| if c == r % b { 10.0 } else { 0.0 });
        let diag = dino_diagnostics(student, diverse, t(1, d, |_, _| 0.0), &cfg()).unwrap();
        assert!(diag.teacher_entropy < 1e-3);
        assert!((diag.teacher_mean_entropy - (b as f64).ln()).abs() < 1e-3);
        assert_eq!(m.classify(&diag), None);
    }

    #[test]
    fn an_interrupted_condition_restarts_the_window() {
        let zero = DinoDiagnostics {
            teacher_entropy: 2.0,
            teacher_mean_entropy: 2.0,
            kl_teacher_student: 0.0,
            center_norm: 0.0,
            max_entropy: 2.0,
        };
        let healthy = DinoDiagnostics {
            teacher_entropy: 0.5,
            ..zero
        };
        let mut m = CollapseMonitor::new(2);
        assert_eq!(m.observe(&zero), None);
        assert_eq!(m.observe(&healthy), None);
        assert_eq!(m.observe(&zero), None);
        assert_eq!(m.observe(&zero), Some(Collapse::Uniform));
    }

    #[test]
    fn shapes_are_checked() {
        let e = dino_diagnostics(
            t(5, 4, |_, _| 0.0),
            t(4, 4, |_, _| 0.0),
            t(1, 4, |_, _| 0.0),
            &cfg(),
        );
        assert!(e.is_err());
    }
}
