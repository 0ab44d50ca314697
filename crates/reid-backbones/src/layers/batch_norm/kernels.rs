//! BatchNorm with batch statistics (training mode), optionally followed by
//! a ReLU, forward and backward over `f32` slices in the `[batch,
//! channels, inner]` layout (`inner` = the product of the spatial sizes, 1
//! for `[batch, channels]`).
//!
//! Forward: two reading passes per channel for the statistics (sum, then
//! the centred sum of squares: the biased variance as PyTorch normalises
//! with) and one pass writing `y = (x − mean)·scale + β` (and the ReLU),
//! with `scale = γ / √(var + ε)` per channel (centred first, as PyTorch
//! does: folding the mean into a shift would cancel digits when the mean is
//! large against the spread). Backward: one reading pass for the two
//! per-channel sums the gradients need and one writing `dx`, which is
//! affine in `dy` and `x − mean` per channel.
//! The ReLU's mask is recomputed from `x` in both passes, so nothing but
//! the input and the per-channel statistics is kept between the two.
//!
//! Sums run in 8 `f32` lanes over blocks of 1,024 values and add the
//! blocks in `f64`, so their error does not grow with the batch.

use rayon::prelude::*;

/// Values summed in `f32` before their total joins the `f64` sum.
const BLOCK: usize = 1024;

/// Values per parallel task in the element-wise passes.
const CHUNK: usize = 1 << 14;

/// The layout of a `[batch, channels, d_2, …]` tensor, contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Size of dimension 0.
    pub batch: usize,
    /// Size of dimension 1 (the normalised channels).
    pub channels: usize,
    /// Product of the sizes of dimensions 2 and up (1 when there are none).
    pub inner: usize,
}

impl Layout {
    /// The layout of a tensor of shape `dims`; `None` for fewer than two
    /// dimensions or a tensor without values.
    pub fn of(dims: &[usize]) -> Option<Self> {
        if dims.len() < 2 || dims.contains(&0) {
            return None;
        }
        Some(Self {
            batch: dims[0],
            channels: dims[1],
            inner: dims[2..].iter().product(),
        })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.inner
    }

    /// Whether the tensor has no values (never for a layout from [`Layout::of`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel: `batch · inner`.
    pub fn per_channel(&self) -> usize {
        self.batch * self.inner
    }

    /// The values of channel `c` in sample `n`: `inner` contiguous values.
    fn plane<'a>(&self, x: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        let start = (n * self.channels + c) * self.inner;
        &x[start..start + self.inner]
    }
}

/// Per-channel batch statistics, `[channels]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Mean over the batch and spatial positions.
    pub mean: Vec<f32>,
    /// Biased variance (divided by `batch · inner`), what the normalisation
    /// uses.
    pub var: Vec<f32>,
}

/// Gradients of [`forward`] with respect to its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Grads {
    /// `∂L/∂x`, the layout of `x`.
    pub x: Vec<f32>,
    /// `∂L/∂γ`, `[channels]`.
    pub gamma: Vec<f32>,
    /// `∂L/∂β`, `[channels]`.
    pub beta: Vec<f32>,
}

/// `(Σ f(a_i, b_i).0, Σ f(a_i, b_i).1)` over two slices of the same
/// length: 8 `f32` lanes per block of [`BLOCK`] values (whole lanes, so the
/// loop vectorises), the blocks added in `f64`.
#[inline(always)]
fn pair_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let mut total = (0.0f64, 0.0f64);
    for (ab, bb) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut l0 = [0.0f32; 8];
        let mut l1 = [0.0f32; 8];
        let (ca, cb) = (ab.chunks_exact(8), bb.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (xa, xb) in ca.zip(cb) {
            let (xa, xb): (&[f32; 8], &[f32; 8]) = match (xa.try_into(), xb.try_into()) {
                (Ok(xa), Ok(xb)) => (xa, xb),
                _ => unreachable!("chunks_exact(8) yields 8 values"),
            };
            for l in 0..8 {
                let (u, v) = f(xa[l], xb[l]);
                l0[l] += u;
                l1[l] += v;
            }
        }
        let mut s0: f32 = l0.iter().sum();
        let mut s1: f32 = l1.iter().sum();
        for (&u, &v) in ra.iter().zip(rb) {
            let (u, v) = f(u, v);
            s0 += u;
            s1 += v;
        }
        total.0 += f64::from(s0);
        total.1 += f64::from(s1);
    }
    total
}

/// Per-channel mean and biased variance of `x` (`layout.len()` values).
pub fn statistics(x: &[f32], layout: Layout) -> Stats {
    let count = layout.per_channel() as f64;
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..layout.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = (0..layout.batch)
                .map(|n| {
                    let p = layout.plane(x, n, c);
                    pair_sums(p, p, |v, _| (v, 0.0)).0
                })
                .sum();
            let mean = (sum / count) as f32;
            let sq: f64 = (0..layout.batch)
                .map(|n| {
                    let p = layout.plane(x, n, c);
                    pair_sums(p, p, |v, _| {
                        let d = v - mean;
                        (d * d, 0.0)
                    })
                    .0
                })
                .sum();
            (mean, (sq / count) as f32)
        })
        .unzip();
    Stats { mean, var }
}

/// `1 / √(var + ε)` per channel.
pub fn inv_std(stats: &Stats, eps: f64) -> Vec<f32> {
    stats
        .var
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
        .collect()
}

/// Per-channel `scale = γ · inv_std`, with `y = (x − mean) · scale + β`.
fn scales(gamma: &[f32], inv_std: &[f32]) -> Vec<f32> {
    gamma.iter().zip(inv_std).map(|(g, i)| g * i).collect()
}

/// Calls `f(channel, offset, plane)` for every `inner`-long plane of
/// `out` (`offset`: where the plane starts in `out`, and so in the input of
/// the same layout), in parallel tasks of about [`CHUNK`] values.
fn for_planes(out: &mut [f32], layout: Layout, f: impl Fn(usize, usize, &mut [f32]) + Sync) {
    let per_task = (CHUNK / layout.inner).max(1);
    out.par_chunks_mut(layout.inner * per_task)
        .enumerate()
        .for_each(|(task, planes)| {
            for (k, plane) in planes.chunks_mut(layout.inner).enumerate() {
                let index = task * per_task + k;
                f(index % layout.channels, index * layout.inner, plane);
            }
        });
}

/// Training-mode BatchNorm of `x` (`[batch, channels, inner]`), then a
/// ReLU when `relu`: the output (same layout) and the batch statistics.
/// `gamma` and `beta` are `[channels]`; `eps` is added to the variance.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    layout: Layout,
    eps: f64,
    relu: bool,
) -> (Vec<f32>, Stats) {
    let stats = statistics(x, layout);
    let scale = scales(gamma, &inv_std(&stats, eps));
    let mut out = vec![0.0f32; layout.len()];
    for_planes(&mut out, layout, |c, start, plane| {
        let (m, s, b) = (stats.mean[c], scale[c], beta[c]);
        let src = &x[start..start + plane.len()];
        if relu {
            for (o, &v) in plane.iter_mut().zip(src) {
                // `<=` rather than `max`, which would turn NaN into 0.
                let p = (v - m) * s + b;
                *o = if p <= 0.0 { 0.0 } else { p };
            }
        } else {
            for (o, &v) in plane.iter_mut().zip(src) {
                *o = (v - m) * s + b;
            }
        }
    });
    (out, stats)
}

/// Gradients of [`forward`] given `dy` (the output's gradient, the layout
/// of `x`) and the statistics it returned. With `relu`, `dy` is masked
/// where the forward output was not positive (PyTorch's ReLU backward:
/// zero gradient at exactly 0), recomputed from `x`; `beta` is needed for
/// that mask only.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &Stats,
    layout: Layout,
    eps: f64,
    relu: bool,
) -> Grads {
    let inv = inv_std(stats, eps);
    let scale = scales(gamma, &inv);
    // The gradient reaching the BatchNorm's output: dy, masked by the ReLU
    // where the forward output (recomputed the same way) was not positive.
    let mask = |c: usize| {
        let (m, s, b) = (stats.mean[c], scale[c], beta[c]);
        move |xv: f32, dyv: f32| -> f32 {
            if relu && (xv - m) * s + b <= 0.0 {
                0.0
            } else {
                dyv
            }
        }
    };
    // Per channel: Σ g and Σ g · (x − mean), in one pass.
    let (sum_g, sum_gx): (Vec<f64>, Vec<f64>) = (0..layout.channels)
        .into_par_iter()
        .map(|c| {
            let (m, g) = (stats.mean[c], mask(c));
            (0..layout.batch)
                .map(|n| {
                    pair_sums(layout.plane(x, n, c), layout.plane(dy, n, c), |xv, dyv| {
                        let gv = g(xv, dyv);
                        (gv, gv * (xv - m))
                    })
                })
                .fold((0.0, 0.0), |acc, s| (acc.0 + s.0, acc.1 + s.1))
        })
        .unzip();
    let count = layout.per_channel() as f64;
    let dbeta: Vec<f32> = sum_g.iter().map(|&s| s as f32).collect();
    let dgamma: Vec<f32> = (0..layout.channels)
        .map(|c| (sum_gx[c] * f64::from(inv[c])) as f32)
        .collect();
    // dx = γ·inv·(g − Σg/n − (x − mean)·inv²·Σg(x − mean)/n)
    //    = a·g + b·(x − mean) + k.
    let coef: Vec<(f32, f32, f32)> = (0..layout.channels)
        .map(|c| {
            let a = f64::from(gamma[c]) * f64::from(inv[c]);
            let i2 = f64::from(inv[c]) * f64::from(inv[c]);
            let b = -a * i2 * sum_gx[c] / count;
            let k = -a * sum_g[c] / count;
            (a as f32, b as f32, k as f32)
        })
        .collect();
    let mut dx = vec![0.0f32; layout.len()];
    for_planes(&mut dx, layout, |c, start, plane| {
        let (a, b, k, m, g) = (coef[c].0, coef[c].1, coef[c].2, stats.mean[c], mask(c));
        let xs = &x[start..start + plane.len()];
        let ds = &dy[start..start + plane.len()];
        for ((o, &xv), &dyv) in plane.iter_mut().zip(xs).zip(ds) {
            *o = a * g(xv, dyv) + b * (xv - m) + k;
        }
    });
    Grads {
        x: dx,
        gamma: dgamma,
        beta: dbeta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formulas in f64, one value at a time.
    fn reference(
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        beta: &[f32],
        layout: Layout,
        eps: f64,
        relu: bool,
    ) -> (Vec<f64>, Grads) {
        let n = layout.per_channel() as f64;
        let idx = |b: usize, c: usize, i: usize| (b * layout.channels + c) * layout.inner + i;
        let mut y = vec![0.0; layout.len()];
        let mut dx = vec![0.0f32; layout.len()];
        let mut dgamma = vec![0.0f32; layout.channels];
        let mut dbeta = vec![0.0f32; layout.channels];
        for c in 0..layout.channels {
            let vals: Vec<(usize, f64)> = (0..layout.batch)
                .flat_map(|b| (0..layout.inner).map(move |i| idx(b, c, i)))
                .map(|j| (j, f64::from(x[j])))
                .collect();
            let mean = vals.iter().map(|v| v.1).sum::<f64>() / n;
            let var = vals.iter().map(|v| (v.1 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps).sqrt();
            let mut g = vec![0.0; layout.len()];
            for &(j, v) in &vals {
                let pre = (v - mean) * inv * f64::from(gamma[c]) + f64::from(beta[c]);
                y[j] = if relu { pre.max(0.0) } else { pre };
                g[j] = if relu && pre <= 0.0 {
                    0.0
                } else {
                    f64::from(dy[j])
                };
            }
            let sg: f64 = vals.iter().map(|v| g[v.0]).sum();
            let sgh: f64 = vals.iter().map(|v| g[v.0] * (v.1 - mean) * inv).sum();
            dbeta[c] = sg as f32;
            dgamma[c] = sgh as f32;
            for &(j, v) in &vals {
                let h = (v - mean) * inv;
                dx[j] = (f64::from(gamma[c]) * inv * (g[j] - sg / n - h * sgh / n)) as f32;
            }
        }
        (
            y,
            Grads {
                x: dx,
                gamma: dgamma,
                beta: dbeta,
            },
        )
    }

    fn pseudo(len: usize, seed: u32, offset: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 4.0 - 2.0 + offset
            })
            .collect()
    }

    fn max_abs(v: &[f32]) -> f32 {
        v.iter().fold(1e-3f32, |m, v| m.max(v.abs()))
    }

    /// Every `|a − b|` within `tol · scale`.
    fn close_to(a: &[f32], b: &[f32], tol: f32, scale: f32) {
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!(
                (u - v).abs() <= tol * scale,
                "{i}: {u} vs {v} (scale {scale})"
            );
        }
    }

    #[test]
    fn matches_the_textbook_formulas_with_and_without_relu() {
        for (dims, offset) in [
            ([3usize, 5, 7], 0.0f32),
            ([2, 4, 1], 1.5),
            ([4, 3, 2500], 3.0),
            ([1, 2, 9], -0.5),
        ] {
            let layout = Layout::of(&dims).unwrap();
            let x = pseudo(layout.len(), 1, offset);
            let dy = pseudo(layout.len(), 2, 0.0);
            let gamma = pseudo(layout.channels, 3, 1.0);
            let beta = pseudo(layout.channels, 4, 0.0);
            for relu in [false, true] {
                let (y, stats) = forward(&x, &gamma, &beta, layout, 1e-5, relu);
                let grads = backward(&x, &dy, &gamma, &beta, &stats, layout, 1e-5, relu);
                let (y_ref, g_ref) = reference(&x, &dy, &gamma, &beta, layout, 1e-5, relu);
                let y_ref: Vec<f32> = y_ref.iter().map(|&v| v as f32).collect();
                close_to(&y, &y_ref, 2e-6, max_abs(&y_ref));
                // dx is a difference of terms of size γ·inv·|dy|: its
                // error scales with them, not with dx (which cancels to
                // nearly 0 with two values per channel).
                let inv = inv_std(&stats, 1e-5);
                let terms = (0..layout.channels)
                    .map(|c| (gamma[c] * inv[c]).abs())
                    .fold(0.0f32, f32::max)
                    * max_abs(&dy);
                close_to(&grads.x, &g_ref.x, 2e-6, terms);
                close_to(&grads.gamma, &g_ref.gamma, 1e-5, max_abs(&g_ref.gamma));
                close_to(&grads.beta, &g_ref.beta, 1e-5, max_abs(&g_ref.beta));
            }
        }
    }

    #[test]
    fn nan_in_a_channel_stays_in_that_channel() {
        let layout = Layout::of(&[2, 2, 3]).unwrap();
        let mut x = pseudo(layout.len(), 5, 0.0);
        x[1] = f32::NAN; // sample 0, channel 0
        for relu in [false, true] {
            let (y, stats) = forward(&x, &[1.0, 1.0], &[0.0, 0.0], layout, 1e-5, relu);
            assert!(stats.mean[0].is_nan() && stats.var[0].is_nan());
            assert!(stats.mean[1].is_finite());
            assert!(y[0..3].iter().all(|v| v.is_nan()), "relu {relu}");
            assert!(y[3..6].iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn layout_rejects_what_has_no_channels() {
        assert_eq!(Layout::of(&[4]), None);
        assert_eq!(Layout::of(&[0, 3, 2]), None);
        assert_eq!(Layout::of(&[4, 3]).unwrap().inner, 1);
    }
}
