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

use crate::LossError;

const NAME: &str = "identity_guided_dino_loss";

/// Settings of [`identity_guided_dino_loss`] and [`dino_loss`]; defaults are
/// CION's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DinoLossConfig {
    /// Number of student crops `V` per image: 2 global + local ones
    /// (default 10 = 2 + 8). At least 2.
    pub n_crops: usize,
    /// Student temperature `τ_s` (default 0.1).
    pub student_temp: f64,
    /// Teacher temperature `τ_t` (default 0.04; CION has no warm-up of it).
    pub teacher_temp: f64,
}

impl Default for DinoLossConfig {
    fn default() -> Self {
        Self {
            n_crops: 10,
            student_temp: 0.1,
            teacher_temp: 0.04,
        }
    }
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

    let p = softmax((teacher - center).div_scalar(config.teacher_temp), 1).detach();
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
