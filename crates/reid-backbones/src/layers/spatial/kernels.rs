//! The three products of a `kh×kw` convolution (any stride, zero padding
//! on each side, dilation 1, one group) as GEMMs over `f32` slices in NCHW
//! order, through the columns of each image ("im2col").
//!
//! For image `n`, the columns `C_n: [c_in·kh·kw, p]` (`p = out_h · out_w`)
//! hold at row `(c, ky, kx)` and column `(oy, ox)` the input value
//! `x[c, oy·sy − py + ky, ox·sx − px + kx]`, or 0 in the padding. With the
//! weight `W: [c_out, c_in·kh·kw]` and the output gradient `G_n: [c_out,
//! p]`:
//! - forward `Y_n = W · C_n`,
//! - input gradient: `dC_n = Wᵀ · G_n`, each entry added back to the input
//!   position it was read from ("col2im"),
//! - weight gradient `dW = Σ_n G_n · C_nᵀ`.
//!
//! Images are spread over rayon's pool, one GEMM each, when there are at
//! least as many as threads; otherwise the GEMMs run on the pool. The
//! weight gradient adds a fixed number of partial sums in a fixed order,
//! so every result is the same for any number of threads.

use crate::layers::gemm::{
    Operand, each_image, gemm, parallelism, partial_sums, transpose, weight_grad_term,
    wgrad_transposed,
};

/// How many partial sums the weight gradient adds, in order (fewer when
/// the batch is smaller): fixed, so that the result does not depend on the
/// number of threads.
pub const WGRAD_CHUNKS: usize = crate::layers::gemm::PARTIAL_SUMS;

/// The shape of a convolution over a batch, in elements and pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height and width, pixels.
    pub input: [usize; 2],
    /// Kernel height and width, pixels.
    pub kernel: [usize; 2],
    /// Stride along height and width, pixels (≥ 1).
    pub stride: [usize; 2],
    /// Zero padding added above and below / left and right, pixels.
    pub padding: [usize; 2],
}

impl Geometry {
    /// Output height and width: `(input + 2·padding − kernel) / stride + 1`
    /// (PyTorch's), or `None` when the kernel is larger than the padded
    /// input or a stride is 0.
    pub fn output(&self) -> Option<[usize; 2]> {
        let dim = |i: usize| {
            let padded = self.input[i] + 2 * self.padding[i];
            (self.stride[i] > 0 && padded >= self.kernel[i])
                .then(|| (padded - self.kernel[i]) / self.stride[i] + 1)
        };
        Some([dim(0)?, dim(1)?])
    }

    /// Output pixels per image.
    fn out_pixels(&self) -> usize {
        self.output().map_or(0, |[h, w]| h * w)
    }

    /// Rows of the columns matrix: `c_in · kh · kw`.
    fn col_rows(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Input elements per image.
    fn in_len(&self) -> usize {
        self.c_in * self.input[0] * self.input[1]
    }

    /// For kernel offset `k` along axis `i`: the range of output indices
    /// whose input index `o·s − p + k` falls inside the image, and the
    /// input index of the first of them.
    fn valid(&self, i: usize, k: usize, out: usize) -> (usize, usize, usize) {
        let (s, p, n) = (self.stride[i], self.padding[i], self.input[i]);
        // o·s + k ≥ p  ⇔  o ≥ ⌈(p − k) / s⌉ (0 when k ≥ p).
        let lo = p.saturating_sub(k).div_ceil(s).min(out);
        // o·s + k − p ≤ n − 1  ⇔  o ≤ (n − 1 + p − k) / s.
        let hi = if n + p > k {
            ((n - 1 + p - k) / s + 1).min(out)
        } else {
            0
        };
        let hi = hi.max(lo);
        (lo, hi, (lo * s + k).saturating_sub(p))
    }
}

/// Writes the columns `[c_in·kh·kw, p]` of one image `[c_in, h, w]`.
fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    let Some([oh, ow]) = g.output() else { return };
    let sx = g.stride[1];
    for c in 0..g.c_in {
        let plane = &x[c * h * w..][..h * w];
        for ky in 0..kh {
            let (y0, y1, iy0) = g.valid(0, ky, oh);
            for kx in 0..kw {
                let (x0, x1, ix0) = g.valid(1, kx, ow);
                let row = &mut cols[((c * kh + ky) * kw + kx) * oh * ow..][..oh * ow];
                row[..y0 * ow].fill(0.0);
                row[y1 * ow..].fill(0.0);
                for (k, oy) in (y0..y1).enumerate() {
                    let iy = iy0 + k * g.stride[0];
                    let src = &plane[iy * w..][..w];
                    let dst = &mut row[oy * ow..][..ow];
                    dst[..x0].fill(0.0);
                    dst[x1..].fill(0.0);
                    if sx == 1 {
                        dst[x0..x1].copy_from_slice(&src[ix0..ix0 + (x1 - x0)]);
                    } else {
                        for (j, d) in dst[x0..x1].iter_mut().enumerate() {
                            *d = src[ix0 + j * sx];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the columns `[c_in·kh·kw, p]` back into one image `[c_in, h, w]`
/// (which it first sets to zero): the transpose of [`im2col`].
fn col2im(g: &Geometry, cols: &[f32], x: &mut [f32]) {
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    x.fill(0.0);
    let Some([oh, ow]) = g.output() else { return };
    let sx = g.stride[1];
    for c in 0..g.c_in {
        let plane = &mut x[c * h * w..][..h * w];
        for ky in 0..kh {
            let (y0, y1, iy0) = g.valid(0, ky, oh);
            for kx in 0..kw {
                let (x0, x1, ix0) = g.valid(1, kx, ow);
                let row = &cols[((c * kh + ky) * kw + kx) * oh * ow..][..oh * ow];
                for (k, oy) in (y0..y1).enumerate() {
                    let iy = iy0 + k * g.stride[0];
                    let dst = &mut plane[iy * w..][..w];
                    let src = &row[oy * ow..][x0..x1];
                    if sx == 1 {
                        for (d, v) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (j, v) in src.iter().enumerate() {
                            dst[ix0 + j * sx] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Forward: `x: [batch, c_in, h, w]`, `weight: [c_out, c_in, kh, kw]` →
/// `[batch, c_out, out_h, out_w]`, row-major.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let p = g.out_pixels();
    let mut y = vec![0.0; g.batch * g.c_out * p];
    each_image(
        g.batch,
        &mut y,
        g.c_out * p,
        g.col_rows() * p,
        |n, yn, cols| {
            im2col(g, &x[n * g.in_len()..][..g.in_len()], cols);
            gemm(
                yn,
                [g.c_out, p, g.col_rows()],
                Operand::rows(weight, g.col_rows()),
                Operand::rows(cols, p),
                false,
                parallelism(g.batch),
            );
        },
    );
    y
}

/// Input gradient: `weight: [c_out, c_in, kh, kw]`, `grad: [batch, c_out,
/// out_h, out_w]` → `[batch, c_in, h, w]`.
pub fn input_grad(g: &Geometry, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    let p = g.out_pixels();
    let mut dx = vec![0.0; g.batch * g.in_len()];
    let wt = transpose(weight, g.c_out, g.col_rows());
    each_image(
        g.batch,
        &mut dx,
        g.in_len(),
        g.col_rows() * p,
        |n, dxn, cols| {
            gemm(
                cols,
                [g.col_rows(), p, g.c_out],
                Operand::rows(&wt, g.c_out),
                Operand::rows(&grad[n * g.c_out * p..][..g.c_out * p], p),
                false,
                parallelism(g.batch),
            );
            col2im(g, cols, dxn);
        },
    );
    dx
}

/// Weight gradient: `x: [batch, c_in, h, w]`, `grad: [batch, c_out, out_h,
/// out_w]` → `[c_out, c_in, kh, kw]`.
pub fn weight_grad(g: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let p = g.out_pixels();
    let len = g.c_out * g.col_rows();
    // Computed as `[c_out, k]` or as its transpose, whichever the GEMM
    // kernels run faster (`wgrad_transposed`).
    let swap = wgrad_transposed(g.c_out, g.col_rows());
    let sum = partial_sums(g.batch, len, |images, parallelism| {
        let mut acc = vec![0.0; len];
        let mut cols = vec![0.0; g.col_rows() * p];
        let first = images.start;
        for n in images {
            im2col(g, &x[n * g.in_len()..][..g.in_len()], &mut cols);
            weight_grad_term(
                &mut acc,
                [g.c_out, g.col_rows(), p],
                &grad[n * g.c_out * p..][..g.c_out * p],
                &cols,
                swap,
                n > first,
                parallelism,
            );
        }
        acc
    });
    if swap {
        transpose(&sum, g.col_rows(), g.c_out)
    } else {
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three products written as loops over every index, in f64.
    fn reference(g: &Geometry, x: &[f32], w: &[f32], gy: &[f32]) -> [Vec<f64>; 3] {
        let [h, wd] = g.input;
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.output().unwrap();
        let mut y = vec![0.0; g.batch * g.c_out * oh * ow];
        let mut dx = vec![0.0; g.batch * g.c_in * h * wd];
        let mut dw = vec![0.0; g.c_out * g.c_in * kh * kw];
        for n in 0..g.batch {
            for o in 0..g.c_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = ((n * g.c_out + o) * oh + oy) * ow + ox;
                        for c in 0..g.c_in {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy =
                                        (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix =
                                        (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let xi =
                                        ((n * g.c_in + c) * h + iy as usize) * wd + ix as usize;
                                    let wi = ((o * g.c_in + c) * kh + ky) * kw + kx;
                                    y[yi] += f64::from(w[wi]) * f64::from(x[xi]);
                                    dx[xi] += f64::from(w[wi]) * f64::from(gy[yi]);
                                    dw[wi] += f64::from(gy[yi]) * f64::from(x[xi]);
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(7);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn assert_close(name: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let err = (f64::from(*a) - b).abs() / scale;
            assert!(err < 1e-5, "{name}[{i}]: {a} vs {b}");
        }
    }

    #[test]
    fn products_match_loops_for_kernels_strides_paddings_and_batches() {
        let cases = [
            // batch, c_in, c_out, input, kernel, stride, padding
            (3, 4, 5, [7, 6], [3, 3], [1, 1], [1, 1]),
            (2, 3, 4, [9, 8], [3, 3], [2, 2], [1, 1]),
            (1, 3, 2, [11, 9], [7, 7], [2, 2], [3, 3]),
            (5, 2, 3, [5, 4], [3, 1], [1, 2], [0, 0]),
            (2, 2, 2, [3, 3], [5, 5], [1, 1], [2, 2]),
            (4, 1, 1, [1, 1], [3, 3], [1, 1], [1, 1]),
            // More outputs than column rows: the weight gradient as [c_out, k].
            (2, 2, 20, [5, 4], [3, 3], [1, 1], [1, 1]),
        ];
        for (batch, c_in, c_out, input, kernel, stride, padding) in cases {
            let g = Geometry {
                batch,
                c_in,
                c_out,
                input,
                kernel,
                stride,
                padding,
            };
            let [oh, ow] = g.output().unwrap();
            let x = values(batch * c_in * input[0] * input[1], 1);
            let w = values(c_out * c_in * kernel[0] * kernel[1], 2);
            let gy = values(batch * c_out * oh * ow, 3);
            let [y, dx, dw] = reference(&g, &x, &w, &gy);
            let what = format!("{g:?}");
            assert_close(&format!("forward {what}"), &forward(&g, &x, &w), &y);
            assert_close(&format!("input grad {what}"), &input_grad(&g, &w, &gy), &dx);
            assert_close(
                &format!("weight grad {what}"),
                &weight_grad(&g, &x, &gy),
                &dw,
            );
        }
    }

    #[test]
    fn output_size_is_pytorchs_and_refuses_what_does_not_fit() {
        let g = |input, kernel, stride, padding| Geometry {
            batch: 1,
            c_in: 1,
            c_out: 1,
            input,
            kernel,
            stride,
            padding,
        };
        assert_eq!(
            g([256, 128], [7, 7], [2, 2], [3, 3]).output(),
            Some([128, 64])
        );
        assert_eq!(g([64, 32], [3, 3], [2, 2], [1, 1]).output(), Some([32, 16]));
        assert_eq!(g([2, 2], [5, 5], [1, 1], [1, 1]).output(), None);
        assert_eq!(g([4, 4], [3, 3], [0, 1], [1, 1]).output(), None);
    }

    #[test]
    fn nan_propagates() {
        let g = Geometry {
            batch: 2,
            c_in: 2,
            c_out: 2,
            input: [4, 4],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        };
        let mut x = values(2 * 2 * 16, 4);
        x[5] = f32::NAN;
        let w = values(2 * 2 * 9, 5);
        let y = forward(&g, &x, &w);
        assert!(y[..32].iter().any(|v| v.is_nan()));
        assert!(y[32..].iter().all(|v| v.is_finite()));
        let gy = values(2 * 2 * 16, 6);
        assert!(weight_grad(&g, &x, &gy).iter().any(|v| v.is_nan()));
    }
}
