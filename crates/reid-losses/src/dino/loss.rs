//! CION's identity-guided DINO loss (released as `GradualIdentityDINOLoss`).
//!
//! Batch layout: the per-device batch holds `B = N·K` images, `N` identities
//! × `K` instances, identity-major (row `b = n·K + k`), as CION's identity
//! sampler builds it. The student sees `V` crops of every image (2 global
//! first, then the local ones) and its output is crop-major: row `v·B + b`.
//! The teacher sees the 2 global crops only: row `g·B + b`, `g ∈ {0, 1}`.
//!
//! With `P_g = softmax((z_t^g − c)/τ_t)` (no gradient), `S_v =
//! log_softmax(z_s^v/τ_s)` and `H(p, s) = −Σ_d p_d·s_d`:
//!
//! ```text
//! L_{g,v} = [ mean_b H(P_g[b], S_v[b])
//!           + Σ_{i≠j ∈ 0..K} mean_n H(P_g[n·K+i], S_v[n·K+j]) ] / (K(K−1) + 1)
//! L = mean over the 2V − 2 pairs (g, v) with v ≠ g
//! ```
//!
//! Pairs with the same crop index (`v == g`) are skipped even for different
//! images of the identity, as upstream. With `K = 1` this is the plain DINO
//! loss. Computed as one batched product `P·Sᵀ` per identity
//! (`[N, 2K, D] × [N, D, V·K]`) weighted by a constant `[2K, V·K]` mask.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Tensor, TensorData};
use derive_setters::Setters;

use crate::LossError;

const NAME: &str = "identity_guided_dino_loss";

/// Settings of [`identity_guided_dino_loss`] and [`dino_loss`]; defaults are
/// CION's.
#[derive(Debug, Clone, Copy, PartialEq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct DinoLossConfig {
    /// Number of student crops `V` per image: 2 global + local ones
    /// (default 10 = 2 + 8). At least 2.
    pub n_crops: usize,
    /// Student temperature `τ_s` (default 0.1).
    pub student_temp: f64,
    /// Teacher temperature `τ_t` (default 0.04; CION has no warm-up of it).
    pub teacher_temp: f64,
    /// How the teacher's targets are normalised: 0 (default, CION and DINO)
    /// centers them, `P = softmax((z_t − c)/τ_t)`; `n > 0` replaces the
    /// centering by `n` Sinkhorn–Knopp iterations over the teacher's `2B`
    /// rows ([`sinkhorn_targets`]; SwAV, DINOv2), which keeps every
    /// prototype's share of the batch equal, so the targets can be neither
    /// the same for every image nor uniform. Not part of CION.
    pub sinkhorn_iterations: usize,
}

impl Default for DinoLossConfig {
    fn default() -> Self {
        Self {
            n_crops: 10,
            student_temp: 0.1,
            teacher_temp: 0.04,
            sinkhorn_iterations: 0,
        }
    }
}

/// The teacher's target distributions `[2B, D]` (no gradient): centered
/// softmax `softmax((z_t − c)/τ_t)` (`center` `[1, D]`), or Sinkhorn–Knopp
/// targets when `config.sinkhorn_iterations > 0` (the center is then
/// unused). Shapes are not checked here; the losses check them.
pub fn teacher_targets(
    teacher: Tensor<2>,
    center: Tensor<2>,
    config: &DinoLossConfig,
) -> Tensor<2> {
    if config.sinkhorn_iterations > 0 {
        sinkhorn_targets(teacher, config.teacher_temp, config.sinkhorn_iterations)
    } else {
        softmax(
            (teacher.detach() - center.detach()).div_scalar(config.teacher_temp),
            1,
        )
    }
}

/// Sinkhorn–Knopp targets of `logits` `[rows, D]` at temperature `temp`,
/// after `iterations` alternating normalisations (SwAV, Caron et al. 2020;
/// DINOv2's `sinkhorn_knopp_teacher`): start from `exp(logits/temp)`
/// (shifted by its maximum, which the normalisations cancel), then
/// repeatedly make every column (prototype) sum to `rows/D` and every row
/// sum to 1. Returns `[rows, D]` with rows summing to 1 (no gradient).
pub fn sinkhorn_targets(logits: Tensor<2>, temp: f64, iterations: usize) -> Tensor<2> {
    let [rows, dim] = logits.dims();
    let logits = logits.detach();
    let max = logits.clone().max();
    let mut q = (logits - max.unsqueeze::<2>()).div_scalar(temp).exp();
    for _ in 0..iterations {
        // Columns: each prototype gets rows/D of the total mass.
        let col = q.clone().sum_dim(0).clamp_min(f32::MIN_POSITIVE);
        q = q.div(col).mul_scalar(rows as f64 / dim as f64);
        // Rows: each sample one unit.
        let row = q.clone().sum_dim(1).clamp_min(f32::MIN_POSITIVE);
        q = q.div(row);
    }
    q
}

/// CION's identity-guided self-distillation loss (see the module docs).
///
/// - `student`: `[V·B, D]` student head outputs, crop-major;
/// - `teacher`: `[2·B, D]` teacher head outputs of the 2 global crops
///   (no gradient flows into them);
/// - `center`: `[1, D]` the current [`DinoCenter`](super::DinoCenter) value;
/// - `instances`: `K`, images per identity (2, 4, 6, 8 in CION's schedule).
///
/// Returns the loss, shape `[1]` (nats). Does not update the center: call
/// [`DinoCenter::update`](super::DinoCenter::update) with `teacher` after it.
///
/// # Errors
/// [`LossError`] when a temperature is not positive, `n_crops < 2`,
/// `instances` is 0 or does not divide `B`, or the shapes are inconsistent
/// (student rows ≠ `V·B`, widths differ, center not `[1, D]`, teacher rows
/// odd or zero).
pub fn identity_guided_dino_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    center: Tensor<2>,
    instances: usize,
    config: &DinoLossConfig,
) -> Result<Tensor<1>, LossError> {
    let (batch, dim) = validate(&student, &teacher, &center, instances, config)?;
    let v = config.n_crops;
    let k = instances;
    let n = batch / k;
    let device = student.device();

    let p = teacher_targets(teacher, center, config).detach();
    let s = log_softmax(student.div_scalar(config.student_temp), 1);
    // [2, N, K, D] -> [N, 2·K, D]; [V, N, K, D] -> [N, V·K, D].
    let p = p
        .reshape([2, n, k, dim])
        .swap_dims(0, 1)
        .reshape([n, 2 * k, dim]);
    let s = s
        .reshape([v, n, k, dim])
        .swap_dims(0, 1)
        .reshape([n, v * k, dim]);
    // cross[n, g·K + i, v·K + j] = Σ_d P_g[n·K+i, d] · S_v[n·K+j, d]
    let cross = p.matmul(s.swap_dims(1, 2));
    let weights = Tensor::<3>::from_data(
        TensorData::new(pair_weights(batch, k, v), [1, 2 * k, v * k]),
        &device,
    );
    Ok(cross.mul(weights).sum().neg())
}

/// The plain DINO loss (Caron et al., 2021): [`identity_guided_dino_loss`]
/// with `K = 1`, i.e. `mean over (g, v ≠ g) of mean_b H(P_g[b], S_v[b])`.
/// Shapes as there: `student [V·B, D]`, `teacher [2·B, D]`, `center [1, D]`
/// → `[1]`.
///
/// # Errors
/// As [`identity_guided_dino_loss`].
pub fn dino_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    center: Tensor<2>,
    config: &DinoLossConfig,
) -> Result<Tensor<1>, LossError> {
    identity_guided_dino_loss(student, teacher, center, 1, config)
}

/// Weight of each `(g, i, v, j)` entry of the cross-entropy table, row-major
/// `[2K, V·K]`: 0 when `v == g`; otherwise `1/B` on `i == j` (the DINO term,
/// a mean over the batch) and `1/N` off it (a mean over identities), all
/// divided by `(K(K−1)+1)·(2V−2)`.
fn pair_weights(batch: usize, k: usize, v: usize) -> Vec<f32> {
    let n = batch / k;
    let norm = ((k * (k - 1) + 1) * (2 * v - 2)) as f64;
    let mut w = Vec::with_capacity(2 * k * v * k);
    for g in 0..2 {
        for i in 0..k {
            for crop in 0..v {
                for j in 0..k {
                    let value = if crop == g {
                        0.0
                    } else if i == j {
                        1.0 / (batch as f64 * norm)
                    } else {
                        1.0 / (n as f64 * norm)
                    };
                    w.push(value as f32);
                }
            }
        }
    }
    w
}

/// Checks the inputs and returns `(B, D)`.
pub(super) fn validate(
    student: &Tensor<2>,
    teacher: &Tensor<2>,
    center: &Tensor<2>,
    instances: usize,
    config: &DinoLossConfig,
) -> Result<(usize, usize), LossError> {
    for (name, value) in [
        ("student_temp", config.student_temp),
        ("teacher_temp", config.teacher_temp),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(LossError::InvalidParameter {
                loss: NAME,
                name,
                value,
                expected: "a positive finite temperature",
            });
        }
    }
    if config.n_crops < 2 {
        return Err(LossError::InvalidParameter {
            loss: NAME,
            name: "n_crops",
            value: config.n_crops as f64,
            expected: "at least 2 crops (the 2 global crops come first)",
        });
    }
    let [t_rows, dim] = teacher.dims();
    if t_rows == 0 || dim == 0 || t_rows % 2 != 0 {
        return Err(LossError::InvalidShape {
            loss: NAME,
            what: "teacher",
            shape: vec![t_rows, dim],
            expected: "[2·B, D] with B ≥ 1, D ≥ 1 (the 2 global crops, crop-major)".into(),
        });
    }
    let batch = t_rows / 2;
    let s_dims = student.dims();
    if s_dims != [config.n_crops * batch, dim] {
        return Err(LossError::InvalidShape {
            loss: NAME,
            what: "student",
            shape: s_dims.to_vec(),
            expected: format!(
                "[n_crops·B, D] = [{}, {dim}] (n_crops = {}, B = {batch} from the teacher)",
                config.n_crops * batch,
                config.n_crops
            ),
        });
    }
    let c_dims = center.dims();
    if c_dims != [1, dim] {
        return Err(LossError::InvalidShape {
            loss: NAME,
            what: "center",
            shape: c_dims.to_vec(),
            expected: format!("[1, {dim}]"),
        });
    }
    if instances == 0 || batch % instances != 0 {
        return Err(LossError::InvalidShape {
            loss: NAME,
            what: "teacher",
            shape: vec![t_rows, dim],
            expected: format!(
                "a per-crop batch B = {batch} divisible by the instances per identity K = {instances}"
            ),
        });
    }
    Ok((batch, dim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn rows(t: Tensor<2>) -> Vec<Vec<f64>> {
        let [r, d] = t.dims();
        let v: Vec<f64> = t.into_data().iter::<f64>().collect();
        (0..r).map(|i| v[i * d..(i + 1) * d].to_vec()).collect()
    }

    /// Sinkhorn–Knopp targets are distributions whose prototype shares are
    /// equal, even when every image has the same logits (where the plain
    /// softmax gives every image the same target) — and they match a
    /// float64 reference of the same iterations.
    #[test]
    fn sinkhorn_targets_balance_prototypes() {
        let device = Device::default();
        let (r, d) = (6, 3);
        let logits: Vec<f32> = (0..r * d)
            .map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3)
            .collect();
        let t = Tensor::<2>::from_data(TensorData::new(logits.clone(), [r, d]), &device);
        let q = rows(sinkhorn_targets(t, 0.5, 50));
        for row in &q {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        }
        for c in 0..d {
            let col: f64 = q.iter().map(|row| row[c]).sum();
            assert!(
                (col - r as f64 / d as f64).abs() < 1e-3,
                "column {c}: {col}"
            );
        }
        // float64 reference, 3 iterations.
        let mut m: Vec<Vec<f64>> = (0..r)
            .map(|i| {
                (0..d)
                    .map(|j| (logits[i * d + j] as f64 / 0.5).exp())
                    .collect()
            })
            .collect();
        for _ in 0..3 {
            for j in 0..d {
                let s: f64 = m.iter().map(|row| row[j]).sum();
                m.iter_mut()
                    .for_each(|row| row[j] *= r as f64 / d as f64 / s);
            }
            for row in m.iter_mut() {
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|x| *x /= s);
            }
        }
        let t = Tensor::<2>::from_data(TensorData::new(logits, [r, d]), &device);
        for (a, b) in rows(sinkhorn_targets(t, 0.5, 3)).iter().zip(&m) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-6, "{x} vs {y}");
            }
        }
    }

    /// With one iteration count of 0 the targets are the centered softmax.
    #[test]
    fn zero_iterations_is_the_centered_softmax() {
        let device = Device::default();
        let t = Tensor::<2>::from_data(
            TensorData::new(vec![0.1f32, 0.5, -0.2, 0.3], [2, 2]),
            &device,
        );
        let c = Tensor::<2>::from_data(TensorData::new(vec![0.05f32, -0.05], [1, 2]), &device);
        let cfg = DinoLossConfig::default();
        let want = softmax((t.clone() - c.clone()).div_scalar(cfg.teacher_temp), 1);
        let got = teacher_targets(t, c, &cfg);
        assert_eq!(rows(got), rows(want));
    }
}
