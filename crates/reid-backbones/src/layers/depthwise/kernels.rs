//! The two backward products of a depth-wise `kh×kw` convolution (one
//! group per channel, one output channel per group, any stride, zero
//! padding on each side, dilation 1) over `f32` slices in NCHW order,
//! computed plane by plane.
//!
//! For plane `(n, c)` of the forward `y[oy, ox] = Σ_{i,j} w_c[i, j] ·
//! x[oy·sy − py + i, ox·sx − px + j]` (0 outside the input), with weight
//! `w_c: [kh, kw]` and output gradient `g`:
//! - input gradient `dx[iy, ix] = Σ w_c[i, j] · g[oy, ox]` over the taps that
//!   read `(iy, ix)`;
//! - weight gradient `dw_c[i, j] = Σ_n Σ_{oy,ox} g[oy, ox] · x[oy·sy − py + i,
//!   ox·sx − px + j]`.
//!
//! Each tap is one pass over a row (`dx_row += w · g_row` shifted, or a dot
//! product of a gradient row with a shifted input row), so the loops run
//! over contiguous memory and vectorise; the AVX2 build runs where
//! the CPU has it and gives the same bits as the plain one (the same
//! operations in the same order). Planes run in parallel; every output
//! element is summed in a fixed order, so results do not depend on the
//! number of threads.

use rayon::prelude::*;

use crate::layers::spatial::Geometry;

/// The output columns `ox` whose tap `j` reads inside a row of `width`
/// pixels: `0 ≤ ox·stride + j − pad < width`, as a range `lo..hi` (empty
/// when none does).
fn columns(out_w: usize, width: usize, stride: usize, j: usize, pad: usize) -> (usize, usize) {
    // ox·stride ≥ pad − j
    let lo = if pad > j {
        (pad - j).div_ceil(stride)
    } else {
        0
    };
    // ox·stride ≤ width − 1 + pad − j
    let hi = if width + pad > j {
        ((width - 1 + pad - j) / stride + 1).min(out_w)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// For each kernel column `j`: the output columns `lo..hi` whose tap `j`
/// reads inside the input, and the input column `off` the first of them
/// reads. The same for every row and plane, so computed once per call.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: usize,
    hi: usize,
    off: usize,
}

fn spans(g: &Geometry, out_w: usize) -> Vec<Span> {
    (0..g.kernel[1])
        .map(|j| {
            let (lo, hi) = columns(out_w, g.input[1], g.stride[1], j, g.padding[1]);
            let off = if lo < hi {
                lo * g.stride[1] + j - g.padding[1]
            } else {
                0
            };
            Span { lo, hi, off }
        })
        .collect()
}

/// The input row tap `i` of output row `oy` reads, or `None` in the padding.
fn input_row(oy: usize, i: usize, g: &Geometry) -> Option<usize> {
    (oy * g.stride[0] + i)
        .checked_sub(g.padding[0])
        .filter(|&iy| iy < g.input[0])
}

/// `Σ_k a[k] · b[off + k·stride]` in 16 partial sums added in a fixed order.
#[inline(always)]
fn dot(a: &[f32], b: &[f32], off: usize, stride: usize) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    if stride == 1 {
        let b = &b[off..off + a.len()];
        let mut ca = a.chunks_exact(LANES);
        let mut cb = b.chunks_exact(LANES);
        for (xa, xb) in (&mut ca).zip(&mut cb) {
            for l in 0..LANES {
                acc[l] += xa[l] * xb[l];
            }
        }
        for (l, (&p, &q)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
            acc[l] += p * q;
        }
    } else {
        for (k, &p) in a.iter().enumerate() {
            acc[k % LANES] += p * b[off + k * stride];
        }
    }
    acc.iter().sum()
}

/// One input-gradient plane `dx: [h, w]` (zeroed) from one output-gradient
/// plane and the channel's weights.
#[inline(always)]
fn input_grad_plane(
    g: &Geometry,
    [oh, ow]: [usize; 2],
    cols: &[Span],
    w: &[f32],
    grad: &[f32],
    dx: &mut [f32],
) {
    let [kh, kw] = g.kernel;
    let sx = g.stride[1];
    let width = g.input[1];
    for oy in 0..oh {
        let grow = &grad[oy * ow..(oy + 1) * ow];
        for i in 0..kh {
            let Some(iy) = input_row(oy, i, g) else {
                continue;
            };
            let drow = &mut dx[iy * width..(iy + 1) * width];
            for (j, &Span { lo, hi, off }) in cols.iter().enumerate() {
                if lo >= hi {
                    continue;
                }
                let wv = w[i * kw + j];
                if sx == 1 {
                    for (a, &b) in drow[off..off + hi - lo].iter_mut().zip(&grow[lo..hi]) {
                        *a += wv * b;
                    }
                } else {
                    for (k, &b) in grow[lo..hi].iter().enumerate() {
                        drow[off + k * sx] += wv * b;
                    }
                }
            }
        }
    }
}

/// Adds one plane's contribution to the channel's weight gradient
/// `dw: [kh·kw]` (in `f64`).
///
/// The row walk is written out here and in [`input_grad_plane`] on purpose:
/// shared through a closure, the loop bodies are not compiled with the AVX2
/// build's target feature (closures do not inherit it), which measured
/// slower (a 5×5 stride-2 layer's forward + backward: 5.5 against 3.2–4.1
/// ms).
#[inline(always)]
fn weight_grad_plane(
    g: &Geometry,
    [oh, ow]: [usize; 2],
    cols: &[Span],
    x: &[f32],
    grad: &[f32],
    dw: &mut [f64],
) {
    let [kh, kw] = g.kernel;
    let width = g.input[1];
    for oy in 0..oh {
        let grow = &grad[oy * ow..(oy + 1) * ow];
        for i in 0..kh {
            let Some(iy) = input_row(oy, i, g) else {
                continue;
            };
            let xrow = &x[iy * width..(iy + 1) * width];
            for (j, c) in cols.iter().enumerate() {
                if c.lo < c.hi {
                    dw[i * kw + j] += f64::from(dot(&grow[c.lo..c.hi], xrow, c.off, g.stride[1]));
                }
            }
        }
    }
}

/// The kernels of one build (plain or AVX2): the same code, compiled with
/// other target features.
macro_rules! planes {
    ($input_grad:ident, $weight_grad:ident $(, $feature:literal)?) => {
        $(#[target_feature(enable = $feature)])?
        fn $input_grad(g: &Geometry, out: [usize; 2], cols: &[Span], w: &[f32], grad: &[f32], dx: &mut [f32]) {
            input_grad_plane(g, out, cols, w, grad, dx)
        }
        $(#[target_feature(enable = $feature)])?
        fn $weight_grad(g: &Geometry, out: [usize; 2], cols: &[Span], x: &[f32], grad: &[f32], dw: &mut [f64]) {
            weight_grad_plane(g, out, cols, x, grad, dw)
        }
    };
}

planes!(input_grad_plain, weight_grad_plain);
#[cfg(target_arch = "x86_64")]
planes!(input_grad_avx2, weight_grad_avx2, "avx2");

/// Which build the kernels run: AVX2 where the CPU has it, unless `plain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// The AVX2 build where the CPU supports it, else the plain one.
    Best,
    /// The plain build (for tests of both).
    Plain,
}

impl Build {
    fn avx2(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self == Build::Best && std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Output height and width of `g`; `[0, 0]` when it has none (callers check
/// [`Geometry::output`] first).
fn out_dims(g: &Geometry) -> [usize; 2] {
    g.output().unwrap_or([0, 0])
}

/// The input gradient: `weight: [c, 1, kh, kw]`, `grad: [batch, c, oh, ow]`
/// → `[batch, c, h, w]`.
pub fn input_grad(g: &Geometry, weight: &[f32], grad: &[f32], build: Build) -> Vec<f32> {
    let out = out_dims(g);
    let (plane_in, plane_out, taps) = sizes(g, out);
    let mut dx = vec![0f32; g.batch * g.c_in * plane_in];
    if plane_in == 0 {
        return dx;
    }
    let avx2 = build.avx2();
    let cols = spans(g, out[1]);
    dx.par_chunks_mut(plane_in).enumerate().for_each(|(p, dp)| {
        let c = p % g.c_in;
        let gp = &grad[p * plane_out..(p + 1) * plane_out];
        let wp = &weight[c * taps..(c + 1) * taps];
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU supports AVX2 (checked by `Build::avx2`).
            unsafe { input_grad_avx2(g, out, &cols, wp, gp, dp) };
            return;
        }
        let _ = avx2;
        input_grad_plain(g, out, &cols, wp, gp, dp);
    });
    dx
}

/// The weight gradient: `x: [batch, c, h, w]`, `grad: [batch, c, oh, ow]`
/// → `[c, 1, kh, kw]`, each channel's sum over the batch in `f64`, images
/// in order.
pub fn weight_grad(g: &Geometry, x: &[f32], grad: &[f32], build: Build) -> Vec<f32> {
    let out = out_dims(g);
    let (plane_in, plane_out, taps) = sizes(g, out);
    let mut dw = vec![0f32; g.c_out * taps];
    if taps == 0 {
        return dw;
    }
    let avx2 = build.avx2();
    let cols = spans(g, out[1]);
    dw.par_chunks_mut(taps).enumerate().for_each(|(c, dwc)| {
        let mut acc = vec![0f64; taps];
        for n in 0..g.batch {
            let p = n * g.c_in + c;
            let xp = &x[p * plane_in..(p + 1) * plane_in];
            let gp = &grad[p * plane_out..(p + 1) * plane_out];
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU supports AVX2 (checked by `Build::avx2`).
                unsafe { weight_grad_avx2(g, out, &cols, xp, gp, &mut acc) };
                continue;
            }
            let _ = avx2;
            weight_grad_plain(g, out, &cols, xp, gp, &mut acc);
        }
        for (d, a) in dwc.iter_mut().zip(acc) {
            *d = a as f32;
        }
    });
    dw
}

/// Elements per input plane, per output plane, and taps per channel.
fn sizes(g: &Geometry, [oh, ow]: [usize; 2]) -> (usize, usize, usize) {
    (g.input[0] * g.input[1], oh * ow, g.kernel[0] * g.kernel[1])
}
