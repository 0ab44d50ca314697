//! Multi-head self-attention of a fused `qkv` projection over `f32`
//! slices, forward and backward, with GEMMs that read `q`, `k` and `v`
//! straight out of the `[batch, tokens, 3·dim]` projection (strided views,
//! no split or transposed copies) and write the heads straight into the
//! `[batch, tokens, dim]` output.
//!
//! Per image `b` and head `h`, with `Q`, `K`, `V: [tokens, head_dim]` and
//! `s = head_dim^-1/2`:
//! - forward `P = softmax_rows(s · Q·Kᵀ)`, `O = P·V`;
//! - backward, given `dO`: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`,
//!   `dS = P ∘ (dP − rowsum(dP ∘ P))`, `dQ = s · dS·K`, `dK = s · dSᵀ·Q`.
//!
//! `P` is kept from the forward pass for the backward one (`batch · heads ·
//! tokens²` values). Images run in parallel over rayon's pool, each writing
//! only its own rows, so results do not depend on the thread count.

use crate::layers::gemm::{Operand, gemm_general};
use rayon::prelude::*;

/// The sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Images.
    pub batch: usize,
    /// Tokens per image.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// Channels per head.
    pub head_dim: usize,
}

impl Shape {
    /// `heads · head_dim`.
    pub fn dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Values of one image's `qkv` rows: `tokens · 3·dim`.
    fn qkv_len(&self) -> usize {
        self.tokens * 3 * self.dim()
    }

    /// Values of one image's output rows: `tokens · dim`.
    fn out_len(&self) -> usize {
        self.tokens * self.dim()
    }

    /// Values of one image's attention weights: `heads · tokens²`.
    fn probs_len(&self) -> usize {
        self.heads * self.tokens * self.tokens
    }

    /// The scale `head_dim^-1/2`, as PyTorch's `head_dim ** -0.5` in
    /// double precision rounded to `f32`.
    pub fn scale(&self) -> f32 {
        (self.head_dim as f64).powf(-0.5) as f32
    }

    /// Part `part` (0 = q, 1 = k, 2 = v) of head `h` within one image's
    /// `qkv` rows: `[tokens, head_dim]`, rows `3·dim` apart.
    fn part<'a>(&self, qkv: &'a [f32], part: usize, h: usize) -> Operand<'a> {
        let start = part * self.dim() + h * self.head_dim;
        Operand::strided(&qkv[start..], 3 * self.dim(), 1)
    }

    /// The same, transposed: `[head_dim, tokens]`.
    fn part_t<'a>(&self, qkv: &'a [f32], part: usize, h: usize) -> Operand<'a> {
        let start = part * self.dim() + h * self.head_dim;
        Operand::strided(&qkv[start..], 1, 3 * self.dim())
    }
}

/// Softmax of each row of `s` (`rows × cols`, row-major) in place: the
/// row's maximum subtracted first; NaN anywhere in a row spreads over it.
fn softmax_rows(s: &mut [f32], cols: usize) {
    for row in s.chunks_mut(cols) {
        let max = row.iter().fold(
            f32::NEG_INFINITY,
            |m, &v| {
                if v > m || v.is_nan() { v } else { m }
            },
        );
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Forward: `qkv: [batch, tokens, 3·dim]` (channels `[q | k | v]`, heads of
/// consecutive channels) → the output `[batch, tokens, dim]` (heads
/// concatenated) and the attention weights `[batch, heads, tokens,
/// tokens]`.
pub fn forward(qkv: &[f32], s: Shape) -> (Vec<f32>, Vec<f32>) {
    let (n, hd, scale) = (s.tokens, s.head_dim, s.scale());
    let mut out = vec![0.0f32; s.batch * s.out_len()];
    let mut probs = vec![0.0f32; s.batch * s.probs_len()];
    if out.is_empty() || probs.is_empty() {
        return (out, probs);
    }
    out.par_chunks_mut(s.out_len())
        .zip(probs.par_chunks_mut(s.probs_len()))
        .enumerate()
        .for_each(|(b, (ob, pb))| {
            let qb = &qkv[b * s.qkv_len()..][..s.qkv_len()];
            for h in 0..s.heads {
                let p = &mut pb[h * n * n..][..n * n];
                let (q, kt) = (s.part(qb, 0, h), s.part_t(qb, 1, h));
                let none = gemm::Parallelism::None;
                gemm_general(p, n, [n, n, hd], q, kt, false, scale, none);
                softmax_rows(p, n);
                let o = &mut ob[h * hd..];
                let (pr, v) = (Operand::rows(p, n), s.part(qb, 2, h));
                gemm_general(o, s.dim(), [n, hd, n], pr, v, false, 1.0, none);
            }
        });
    (out, probs)
}

/// Backward: the gradient of `qkv` (`[batch, tokens, 3·dim]`) given the
/// forward's input, its attention weights and the output's gradient
/// `[batch, tokens, dim]`.
pub fn backward(qkv: &[f32], probs: &[f32], d_out: &[f32], s: Shape) -> Vec<f32> {
    let (n, hd, scale) = (s.tokens, s.head_dim, s.scale());
    let mut d_qkv = vec![0.0f32; s.batch * s.qkv_len()];
    if d_qkv.is_empty() || n == 0 {
        return d_qkv;
    }
    let dim = s.dim();
    d_qkv.par_chunks_mut(s.qkv_len()).enumerate().for_each_init(
        || vec![0.0f32; n * n],
        |ds, (b, dqb)| {
            let qb = &qkv[b * s.qkv_len()..][..s.qkv_len()];
            let pb = &probs[b * s.probs_len()..][..s.probs_len()];
            let gb = &d_out[b * s.out_len()..][..s.out_len()];
            let none = gemm::Parallelism::None;
            for h in 0..s.heads {
                let p = &pb[h * n * n..][..n * n];
                let d_o = Operand::strided(&gb[h * hd..], dim, 1);
                // dV = Pᵀ · dO, into the v columns of head h.
                let dv = &mut dqb[2 * dim + h * hd..];
                let pt = Operand::transposed(p, n);
                gemm_general(dv, 3 * dim, [n, hd, n], pt, d_o, false, 1.0, none);
                // dP = dO · Vᵀ.
                let d_o = Operand::strided(&gb[h * hd..], dim, 1);
                let vt = s.part_t(qb, 2, h);
                gemm_general(ds, n, [n, n, hd], d_o, vt, false, 1.0, none);
                // dS = P ∘ (dP − rowsum(dP ∘ P)).
                for (dsr, pr) in ds.chunks_mut(n).zip(p.chunks(n)) {
                    let dot: f32 = dsr.iter().zip(pr).map(|(a, b)| a * b).sum();
                    for (d, &pv) in dsr.iter_mut().zip(pr) {
                        *d = pv * (*d - dot);
                    }
                }
                // dQ = s · dS · K, dK = s · dSᵀ · Q.
                let dq = &mut dqb[h * hd..];
                let (dsr, k) = (Operand::rows(ds, n), s.part(qb, 1, h));
                gemm_general(dq, 3 * dim, [n, hd, n], dsr, k, false, scale, none);
                let dk = &mut dqb[dim + h * hd..];
                let (dst, q) = (Operand::transposed(ds, n), s.part(qb, 0, h));
                gemm_general(dk, 3 * dim, [n, hd, n], dst, q, false, scale, none);
            }
        },
    );
    d_qkv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention and its gradient written as loops in f64.
    fn reference(qkv: &[f32], d_out: &[f32], s: Shape) -> (Vec<f64>, Vec<f64>) {
        let (n, hd, dim) = (s.tokens, s.head_dim, s.dim());
        let at = |b: usize, t: usize, part: usize, h: usize, d: usize| {
            (b * n + t) * 3 * dim + part * dim + h * hd + d
        };
        let scale = f64::from(s.scale());
        let mut out = vec![0.0; s.batch * n * dim];
        let mut dqkv = vec![0.0; qkv.len()];
        for b in 0..s.batch {
            for h in 0..s.heads {
                let mut p = vec![vec![0.0f64; n]; n];
                for i in 0..n {
                    for j in 0..n {
                        p[i][j] = (0..hd)
                            .map(|d| {
                                f64::from(qkv[at(b, i, 0, h, d)])
                                    * f64::from(qkv[at(b, j, 1, h, d)])
                            })
                            .sum::<f64>()
                            * scale;
                    }
                    let m = p[i].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = p[i].iter().map(|v| (v - m).exp()).sum();
                    for v in p[i].iter_mut() {
                        *v = (*v - m).exp() / z;
                    }
                }
                let go = |i: usize, d: usize| f64::from(d_out[(b * n + i) * dim + h * hd + d]);
                for i in 0..n {
                    for d in 0..hd {
                        out[(b * n + i) * dim + h * hd + d] = (0..n)
                            .map(|j| p[i][j] * f64::from(qkv[at(b, j, 2, h, d)]))
                            .sum();
                    }
                }
                // dP, dS
                let mut ds = vec![vec![0.0f64; n]; n];
                for i in 0..n {
                    let dp: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..hd)
                                .map(|d| go(i, d) * f64::from(qkv[at(b, j, 2, h, d)]))
                                .sum()
                        })
                        .collect();
                    let dot: f64 = (0..n).map(|j| dp[j] * p[i][j]).sum();
                    for j in 0..n {
                        ds[i][j] = p[i][j] * (dp[j] - dot);
                    }
                }
                for j in 0..n {
                    for d in 0..hd {
                        dqkv[at(b, j, 2, h, d)] = (0..n).map(|i| p[i][j] * go(i, d)).sum();
                        dqkv[at(b, j, 0, h, d)] = scale
                            * (0..n)
                                .map(|i| ds[j][i] * f64::from(qkv[at(b, i, 1, h, d)]))
                                .sum::<f64>();
                        dqkv[at(b, j, 1, h, d)] = scale
                            * (0..n)
                                .map(|i| ds[i][j] * f64::from(qkv[at(b, i, 0, h, d)]))
                                .sum::<f64>();
                    }
                }
            }
        }
        (out, dqkv)
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(3);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) * 4.0 - 2.0
            })
            .collect()
    }

    fn assert_close(name: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() / scale < 1e-5,
                "{name}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn forward_and_backward_match_loops() {
        for s in [
            Shape {
                batch: 2,
                tokens: 5,
                heads: 3,
                head_dim: 4,
            },
            Shape {
                batch: 3,
                tokens: 9,
                heads: 2,
                head_dim: 8,
            },
            Shape {
                batch: 1,
                tokens: 1,
                heads: 1,
                head_dim: 2,
            },
        ] {
            let qkv = values(s.batch * s.qkv_len(), 1);
            let d_out = values(s.batch * s.out_len(), 2);
            let (out, probs) = forward(&qkv, s);
            let d_qkv = backward(&qkv, &probs, &d_out, s);
            let (out_ref, d_ref) = reference(&qkv, &d_out, s);
            assert_close(&format!("output {s:?}"), &out, &out_ref);
            assert_close(&format!("d_qkv {s:?}"), &d_qkv, &d_ref);
        }
    }

    #[test]
    fn nan_stays_in_its_image() {
        let s = Shape {
            batch: 2,
            tokens: 3,
            heads: 2,
            head_dim: 2,
        };
        let mut qkv = values(s.batch * s.qkv_len(), 3);
        qkv[0] = f32::NAN;
        let (out, _) = forward(&qkv, s);
        assert!(out[..s.out_len()].iter().any(|v| v.is_nan()));
        assert!(out[s.out_len()..].iter().all(|v| v.is_finite()));
    }
}
