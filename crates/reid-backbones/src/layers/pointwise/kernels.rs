//! The three products of a 1×1 convolution (no padding, no dilation, one
//! group, any stride) as GEMMs over plain `f32` slices in NCHW order.
//!
//! For each image `n` the input, subsampled by the stride, is a matrix
//! `X_n: [c_in, p]` (`p = out_h · out_w` pixels), the weight is
//! `W: [c_out, c_in]` and the output gradient `G_n: [c_out, p]`:
//! - forward `Y_n = W · X_n`,
//! - input gradient `dX_n = Wᵀ · G_n` (scattered back to the strided
//!   positions, zeros elsewhere),
//! - weight gradient `dW = Σ_n G_n · X_nᵀ`.
//!
//! Images are spread over rayon's pool, one GEMM each; with fewer images
//! than threads the GEMMs themselves run on the pool instead. The weight
//! gradient sums a fixed number of partial sums ([`WGRAD_CHUNKS`]) in a
//! fixed order, so every result is the same for any number of threads.

use rayon::prelude::*;

use crate::layers::gemm::{
    Operand, each_image, gemm, parallelism, partial_sums, per_image, transpose, weight_grad_term,
    wgrad_transposed,
};

/// How many partial sums the weight gradient adds, in order (fewer when
/// the batch is smaller): fixed, so that the result does not depend on the
/// number of threads.
pub const WGRAD_CHUNKS: usize = crate::layers::gemm::PARTIAL_SUMS;

/// The shape of a 1×1 convolution over a batch, in elements.
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
    /// Stride along height and width, pixels.
    pub stride: [usize; 2],
}

impl Geometry {
    /// Output height and width: `⌈input / stride⌉` (no padding, 1×1 kernel).
    pub fn output(&self) -> [usize; 2] {
        [
            self.input[0].div_ceil(self.stride[0]),
            self.input[1].div_ceil(self.stride[1]),
        ]
    }

    /// Output pixels per image.
    fn out_pixels(&self) -> usize {
        let [h, w] = self.output();
        h * w
    }

    /// Input elements per image.
    fn in_len(&self) -> usize {
        self.c_in * self.input[0] * self.input[1]
    }

    /// Whether the input is read as it is (stride 1).
    fn dense(&self) -> bool {
        self.stride == [1, 1]
    }
}

/// Copies the strided pixels of one image `[c_in, h, w]` into `[c_in, p]`.
fn subsample(g: &Geometry, x: &[f32], out: &mut [f32]) {
    let [h, w] = g.input;
    let [oh, ow] = g.output();
    let [sy, sx] = g.stride;
    for c in 0..g.c_in {
        for oy in 0..oh {
            let src = &x[(c * h + oy * sy) * w..][..w];
            let dst = &mut out[(c * oh + oy) * ow..][..ow];
            for (ox, d) in dst.iter_mut().enumerate() {
                *d = src[ox * sx];
            }
        }
    }
}

/// Writes `[c_in, p]` to the strided pixels of one image `[c_in, h, w]`,
/// zeros elsewhere.
fn scatter(g: &Geometry, cols: &[f32], out: &mut [f32]) {
    let [h, w] = g.input;
    let [oh, ow] = g.output();
    let [sy, sx] = g.stride;
    out.fill(0.0);
    for c in 0..g.c_in {
        for oy in 0..oh {
            let dst = &mut out[(c * h + oy * sy) * w..][..w];
            let src = &cols[(c * oh + oy) * ow..][..ow];
            for (ox, v) in src.iter().enumerate() {
                dst[ox * sx] = *v;
            }
        }
    }
}

/// Forward: `x: [batch, c_in, h, w]`, `weight: [c_out, c_in]` →
/// `[batch, c_out, out_h, out_w]`, row-major.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_with(g, x, weight, None, false)
}

/// Adds `bias` to every value of one output row (one image and channel,
/// `p` pixels), then applies GELU when `gelu`: in this order, the same
/// operations as adding the bias and applying GELU to the whole output
/// afterwards.
fn epilogue_row(row: &mut [f32], bias: Option<f32>, gelu: bool) {
    if let Some(b) = bias {
        for v in row.iter_mut() {
            *v += b;
        }
    }
    if gelu {
        crate::layers::gelu::kernels::apply_in_place(row);
    }
}

/// [`forward`], then `+ bias[c]` (`bias: [c_out]`) and GELU when `gelu`,
/// each applied to an image's output right after its GEMM while it is in
/// cache (when images are spread over the pool; in one parallel pass
/// afterwards otherwise). The same values as `gelu(forward(..) + bias)`:
/// every step is the same `f32` operation in the same order. `bias`, when
/// given, must hold `c_out` values, as `x` and `weight` must match `g`
/// (callers check; `flex::run_gelu` declines any other bias shape).
pub fn forward_with(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    gelu: bool,
) -> Vec<f32> {
    let p = g.out_pixels();
    let fused = per_image(g.batch);
    let mut y = vec![0.0; g.batch * g.c_out * p];
    let scratch = if g.dense() { 0 } else { g.c_in * p };
    each_image(g.batch, &mut y, g.c_out * p, scratch, |n, yn, s| {
        let xn = &x[n * g.in_len()..][..g.in_len()];
        let xn: &[f32] = if g.dense() {
            xn
        } else {
            subsample(g, xn, s);
            s
        };
        let lhs = Operand::rows(weight, g.c_in);
        gemm(
            yn,
            [g.c_out, p, g.c_in],
            lhs,
            Operand::rows(xn, p),
            false,
            parallelism(g.batch),
        );
        if fused && (bias.is_some() || gelu) {
            for (c, row) in yn.chunks_mut(p).enumerate() {
                epilogue_row(row, bias.map(|b| b[c]), gelu);
            }
        }
    });
    if !fused && (bias.is_some() || gelu) {
        y.par_chunks_mut(p)
            .enumerate()
            .for_each(|(i, row)| epilogue_row(row, bias.map(|b| b[i % g.c_out]), gelu));
    }
    y
}

/// Input gradient: `weight: [c_out, c_in]`, `grad: [batch, c_out, out_h,
/// out_w]` → `[batch, c_in, h, w]`.
pub fn input_grad(g: &Geometry, weight: &[f32], grad: &[f32]) -> Vec<f32> {
    let p = g.out_pixels();
    let mut dx = vec![0.0; g.batch * g.in_len()];
    let scratch = if g.dense() { 0 } else { g.c_in * p };
    let wt = transpose(weight, g.c_out, g.c_in);
    each_image(g.batch, &mut dx, g.in_len(), scratch, |n, dxn, s| {
        let gn = &grad[n * g.c_out * p..][..g.c_out * p];
        let lhs = Operand::rows(&wt, g.c_out);
        let rhs = Operand::rows(gn, p);
        if g.dense() {
            gemm(
                dxn,
                [g.c_in, p, g.c_out],
                lhs,
                rhs,
                false,
                parallelism(g.batch),
            );
        } else {
            gemm(
                s,
                [g.c_in, p, g.c_out],
                lhs,
                rhs,
                false,
                parallelism(g.batch),
            );
            scatter(g, s, dxn);
        }
    });
    dx
}

/// Weight gradient: `x: [batch, c_in, h, w]`, `grad: [batch, c_out, out_h,
/// out_w]` → `[c_out, c_in]`.
pub fn weight_grad(g: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let p = g.out_pixels();
    let len = g.c_out * g.c_in;
    // Computed as `[c_out, c_in]` or as its transpose, whichever the GEMM
    // kernels run faster (`wgrad_transposed`).
    let swap = wgrad_transposed(g.c_out, g.c_in);
    let sum = partial_sums(g.batch, len, |images, parallelism| {
        let mut acc = vec![0.0; len];
        let mut s = vec![0.0; if g.dense() { 0 } else { g.c_in * p }];
        let first = images.start;
        for n in images {
            let xn = &x[n * g.in_len()..][..g.in_len()];
            let xn: &[f32] = if g.dense() {
                xn
            } else {
                subsample(g, xn, &mut s);
                &s
            };
            weight_grad_term(
                &mut acc,
                [g.c_out, g.c_in, p],
                &grad[n * g.c_out * p..][..g.c_out * p],
                xn,
                swap,
                n > first,
                parallelism,
            );
        }
        acc
    });
    if swap {
        transpose(&sum, g.c_in, g.c_out)
    } else {
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three products written as loops, in f64.
    fn reference(g: &Geometry, x: &[f32], w: &[f32], gy: &[f32]) -> [Vec<f64>; 3] {
        let [h, wd] = g.input;
        let [oh, ow] = g.output();
        let [sy, sx] = g.stride;
        let mut y = vec![0.0; g.batch * g.c_out * oh * ow];
        let mut dx = vec![0.0; g.batch * g.c_in * h * wd];
        let mut dw = vec![0.0; g.c_out * g.c_in];
        for n in 0..g.batch {
            for o in 0..g.c_out {
                for i in 0..g.c_in {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let xi = ((n * g.c_in + i) * h + oy * sy) * wd + ox * sx;
                            let yi = ((n * g.c_out + o) * oh + oy) * ow + ox;
                            let wv = w[o * g.c_in + i] as f64;
                            y[yi] += wv * x[xi] as f64;
                            dx[xi] += wv * gy[yi] as f64;
                            dw[o * g.c_in + i] += gy[yi] as f64 * x[xi] as f64;
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(97));
                (v % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn assert_close(name: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{name}[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn products_match_loops_for_strides_and_batches() {
        for (batch, c_in, c_out, input, stride) in [
            (1, 3, 5, [4, 6], [1, 1]),
            (3, 8, 4, [5, 3], [2, 2]),
            (6, 4, 7, [7, 5], [2, 1]),
            (2, 16, 16, [8, 4], [1, 1]),
        ] {
            let g = Geometry {
                batch,
                c_in,
                c_out,
                input,
                stride,
            };
            let [oh, ow] = g.output();
            let x = values(batch * c_in * input[0] * input[1], 1);
            let w = values(c_out * c_in, 2);
            let gy = values(batch * c_out * oh * ow, 3);
            let [y, dx, dw] = reference(&g, &x, &w, &gy);
            assert_close("forward", &forward(&g, &x, &w), &y);
            assert_close("input grad", &input_grad(&g, &w, &gy), &dx);
            assert_close("weight grad", &weight_grad(&g, &x, &gy), &dw);
        }
    }

    #[test]
    fn nan_propagates() {
        let g = Geometry {
            batch: 2,
            c_in: 2,
            c_out: 2,
            input: [2, 2],
            stride: [1, 1],
        };
        let mut x = values(16, 1);
        x[0] = f32::NAN;
        let w = values(4, 2);
        let y = forward(&g, &x, &w);
        assert!(y[0].is_nan() && y[4].is_nan(), "{y:?}");
        let dw = weight_grad(&g, &x, &values(16, 3));
        assert!(
            dw[0].is_nan() && dw[2].is_nan() && dw[1].is_finite(),
            "{dw:?}"
        );
    }
}
