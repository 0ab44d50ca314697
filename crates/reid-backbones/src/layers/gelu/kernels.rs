//! The exact (erf) GELU and its derivative over `f32` slices, with a
//! rational approximation of erf evaluated in double precision: no library
//! call per element, so the loops vectorise (AVX-512 or AVX2 where the CPU has it).
//!
//! erf(x) ≈ x·P(x²) / Q(x²) on `|x| ≤ 4` (erf rounds to ±1 in `f32` beyond
//! 3.92), `P` of degree 6 and `Q` of degree 4 in `x²` — the published
//! rational fit that Eigen and XLA use for `f32` erf (coefficients below).
//! Evaluated in `f64`, its largest error against the exact erf is 6.5e-8
//! over `[-6, 6]` (about one `f32` ulp at 1; measured with PyTorch's
//! double-precision erf on 2,000,001 points), so the `f32` results are
//! within one or two ulps of libm's `erff`, which burn-flex calls per
//! element.

use rayon::prelude::*;

// The builds of the loops (`layers::isa`): every build does the same IEEE
// operations in the same order (no fused multiply-add), so they give
// bit-identical results; the wider ones take 8 (AVX-512) or 4 (AVX2)
// doubles per instruction.
use crate::layers::isa::{Isa as Build, widest as build};

/// Numerator coefficients in `x²`, highest degree first (`x·P(x²)`).
const P: [f64; 7] = [
    -2.726_142_258_013_06e-10,
    2.770_681_424_959_02e-8,
    -2.101_024_020_825_08e-6,
    -5.692_506_394_623_46e-5,
    -7.349_906_303_268_55e-4,
    -2.954_599_808_540_25e-3,
    -1.609_603_332_624_15e-2,
];

/// Denominator coefficients in `x²`, highest degree first.
const Q: [f64; 5] = [
    -1.456_607_184_649_96e-5,
    -2.133_740_552_789_05e-4,
    -1.682_826_974_382_03e-3,
    -7.373_329_167_204_68e-3,
    -1.426_473_905_141_89e-2,
];

/// `1 / √2`.
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// `1 / √(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// erf(x) by the rational fit, in double precision; `x` is clamped to
/// `[-4, 4]` and the result to `[-1, 1]` (the fit overshoots 1 by about
/// 1e-7 at 4); NaN stays NaN.
#[inline(always)]
pub fn erf(x: f64) -> f64 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * x2 + c;
    }
    let mut q = Q[0];
    for c in &Q[1..] {
        q = q * x2 + c;
    }
    (x * p / q).clamp(-1.0, 1.0)
}

/// GELU of one value: `0.5 · x · (1 + erf(x / √2))`.
#[inline(always)]
fn gelu1(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))) as f32
}

/// GELU's derivative times the incoming gradient:
/// `g · (Φ(x) + x · φ(x))`, `Φ` the normal CDF and `φ` its density.
#[inline(always)]
fn gelu_grad1(x: f32, g: f32) -> f32 {
    let x = f64::from(x);
    let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
    let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
    (f64::from(g) * (cdf + x * pdf)) as f32
}

#[inline(always)]
fn forward_chunk(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = gelu1(v);
    }
}

#[inline(always)]
fn in_place_chunk(xs: &mut [f32]) {
    for v in xs {
        *v = gelu1(*v);
    }
}

#[inline(always)]
fn backward_chunk(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &v), &gv) in out.iter_mut().zip(x).zip(g) {
        *o = gelu_grad1(v, gv);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_chunk_avx2(x: &[f32], out: &mut [f32]) {
    forward_chunk(x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_chunk_avx2(x: &[f32], g: &[f32], out: &mut [f32]) {
    backward_chunk(x, g, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn in_place_chunk_avx2(xs: &mut [f32]) {
    in_place_chunk(xs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn in_place_chunk_avx512(xs: &mut [f32]) {
    in_place_chunk(xs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn forward_chunk_avx512(x: &[f32], out: &mut [f32]) {
    forward_chunk(x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn backward_chunk_avx512(x: &[f32], g: &[f32], out: &mut [f32]) {
    backward_chunk(x, g, out);
}

/// GELU of one chunk in `build`.
fn forward_in(build: Build, x: &[f32], out: &mut [f32]) {
    match build {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX-512F.
        Build::Avx512 => unsafe { forward_chunk_avx512(x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX2.
        Build::Avx2 => unsafe { forward_chunk_avx2(x, out) },
        _ => forward_chunk(x, out),
    }
}

/// GELU of every element of `xs`, in place, on this thread, in the
/// widest build the CPU runs: the same values as [`forward`] (for a kernel
/// that applies GELU to its own output while it is in cache).
pub fn apply_in_place(xs: &mut [f32]) {
    match build() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX-512F.
        Build::Avx512 => unsafe { in_place_chunk_avx512(xs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX2.
        Build::Avx2 => unsafe { in_place_chunk_avx2(xs) },
        _ => in_place_chunk(xs),
    }
}

/// GELU's input gradient of one chunk in `build`.
fn backward_in(build: Build, x: &[f32], g: &[f32], out: &mut [f32]) {
    match build {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX-512F.
        Build::Avx512 => unsafe { backward_chunk_avx512(x, g, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `build()` returned it, so the CPU supports AVX2.
        Build::Avx2 => unsafe { backward_chunk_avx2(x, g, out) },
        _ => backward_chunk(x, g, out),
    }
}

/// GELU of every element of `x` (any shape, flat), in parallel chunks.
pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let build = build();
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, xs)| forward_in(build, xs, o));
    out
}

/// The input gradient of GELU: `grad · GELU'(x)` element-wise, `x` and
/// `grad` of the same length.
pub fn backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let build = build();
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|(o, (xs, gs))| backward_in(build, xs, gs, o));
    out
}

/// The plain (no AVX2, no AVX-512) build of [`forward`], for tests that
/// the builds agree.
#[doc(hidden)]
pub fn forward_plain(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    forward_chunk(x, &mut out);
    out
}

/// The plain build of [`backward`], for tests that the builds agree.
#[doc(hidden)]
pub fn backward_plain(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    backward_chunk(x, grad, &mut out);
    out
}
