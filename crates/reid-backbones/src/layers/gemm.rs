//! `f32` matrix products over slices with the gemm crate burn-flex itself
//! uses, and the two ways the convolution kernels of
//! [`pointwise`](super::pointwise) and [`spatial`](super::spatial) spread
//! a batch over rayon's pool: one output chunk per image
//! ([`each_image`]) and a fixed number of partial sums ([`partial_sums`]).

use rayon::prelude::*;
use std::ops::Range;

/// One row-major operand of a GEMM: its data and its row and column strides.
pub(crate) struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A `[rows, cols]` row-major matrix.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Operand {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a `[rows, cols]` row-major matrix.
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Operand {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// A matrix whose entry `[i, j]` is `data[i · row_stride + j ·
    /// col_stride]` (a strided view: a column block of a wider matrix, or a
    /// transposed one).
    pub(crate) fn strided(data: &'a [f32], row_stride: usize, col_stride: usize) -> Self {
        Operand {
            data,
            row_stride,
            col_stride,
        }
    }

    /// The largest index `[m, n]` reads, plus one.
    fn extent(&self, m: usize, n: usize) -> usize {
        if m == 0 || n == 0 {
            0
        } else {
            (m - 1) * self.row_stride + (n - 1) * self.col_stride + 1
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major with `n` columns;
/// accumulates into `dst` when `accumulate`.
pub(crate) fn gemm(
    dst: &mut [f32],
    [m, n, k]: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    gemm_general(dst, n, [m, n, k], lhs, rhs, accumulate, 1.0, parallelism);
}

/// `dst[m, n] (+)= scale · lhs[m, k] · rhs[k, n]`, row `i` of `dst`
/// starting at `i · dst_row_stride` (`≥ n`), its columns contiguous;
/// accumulates into `dst` when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_general(
    dst: &mut [f32],
    dst_row_stride: usize,
    [m, n, k]: [usize; 3],
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    scale: f32,
    parallelism: gemm::Parallelism,
) {
    assert!(dst_row_stride >= n, "GEMM destination rows overlap");
    let dst_extent = if m == 0 || n == 0 {
        0
    } else {
        (m - 1) * dst_row_stride + n
    };
    assert!(dst.len() >= dst_extent, "GEMM destination too small");
    assert!(
        lhs.data.len() >= lhs.extent(m, k),
        "GEMM left operand too small"
    );
    assert!(
        rhs.data.len() >= rhs.extent(k, n),
        "GEMM right operand too small"
    );
    // SAFETY: the asserts above keep every index the strides describe inside
    // the three slices (rows of `dst` do not overlap: stride ≥ n); `dst` is a
    // unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The transpose `[cols, rows]` of a row-major `[rows, cols]` matrix.
///
/// The backward products read a weight transposed once per image; the gemm
/// crate packs a strided operand far slower than a contiguous one when the
/// weight outgrows the caches (about half the speed for ResNet-50's
/// 512×4608 weight; docs/benchmarks.md), so the kernels transpose it once
/// per call.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut dst = vec![0.0; rows * cols];
    if rows == 0 || cols == 0 {
        return dst;
    }
    // Each task writes TILE rows of the result (TILE columns of `src`),
    // walking `src` in TILE × TILE blocks.
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(block, out)| {
            let c0 = block * TILE;
            let width = out.len() / rows;
            for r0 in (0..rows).step_by(TILE) {
                for r in r0..(r0 + TILE).min(rows) {
                    let row = &src[r * cols + c0..][..width];
                    for (j, v) in row.iter().enumerate() {
                        out[j * rows + r] = *v;
                    }
                }
            }
        });
    dst
}

/// Whether a weight gradient `[c_out, k]` is better computed as its
/// transpose `[k, c_out]` (then transposed back): the gemm crate's kernels
/// run at about half speed when the output has few rows (`[64, 576]`
/// against `[576, 64]`; docs/benchmarks.md).
pub(crate) fn wgrad_transposed(c_out: usize, k: usize) -> bool {
    c_out < k
}

/// One image's term of a weight gradient, `dst (+)= g · cᵀ` for `g: [c_out,
/// p]` and `c: [k, p]` (both row-major): into `dst` as `[c_out, k]`, or as
/// its transpose `[k, c_out]` when `transposed` ([`wgrad_transposed`]).
pub(crate) fn weight_grad_term(
    dst: &mut [f32],
    [c_out, k, p]: [usize; 3],
    g: &[f32],
    c: &[f32],
    transposed: bool,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    if transposed {
        let (lhs, rhs) = (Operand::rows(c, p), Operand::transposed(g, p));
        gemm(dst, [k, c_out, p], lhs, rhs, accumulate, parallelism);
    } else {
        let (lhs, rhs) = (Operand::rows(g, p), Operand::transposed(c, p));
        gemm(dst, [c_out, k, p], lhs, rhs, accumulate, parallelism);
    }
}

/// How many partial sums [`partial_sums`] adds, in order (fewer when the
/// batch is smaller): fixed, so that the result does not depend on the
/// number of threads.
pub(crate) const PARTIAL_SUMS: usize = 4;

/// Whether a batch of `batch` images is spread over the pool one image per
/// task (else each image's GEMMs use the pool).
pub(crate) fn per_image(batch: usize) -> bool {
    batch >= rayon::current_num_threads()
}

/// The GEMM parallelism that goes with [`per_image`]: none inside a task
/// when images are spread, the pool otherwise.
pub(crate) fn parallelism(batch: usize) -> gemm::Parallelism {
    if per_image(batch) {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
}

/// Runs `f(image, its output chunk, scratch)` for the `out_len`-long
/// chunks of `out`, one per image of a batch of `batch`, over the pool or in
/// order as [`per_image`] says; `scratch` holds `scratch_len` values, one
/// buffer per task.
pub(crate) fn each_image(
    batch: usize,
    out: &mut [f32],
    out_len: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
) {
    if out_len == 0 {
        return;
    }
    if per_image(batch) {
        out.par_chunks_mut(out_len)
            .enumerate()
            .for_each_init(|| vec![0.0; scratch_len], |s, (n, o)| f(n, o, s));
    } else {
        let mut s = vec![0.0; scratch_len];
        for (n, o) in out.chunks_mut(out_len).enumerate() {
            f(n, o, &mut s);
        }
    }
}

/// `Σ part(range)` over [`PARTIAL_SUMS`] consecutive ranges of the images
/// `0..batch` (fewer for a smaller batch), each `part` a `len`-long sum
/// over its images, added in range order: the same result for any number
/// of threads. `part` gets the GEMM parallelism to use inside it.
pub(crate) fn partial_sums(
    batch: usize,
    len: usize,
    part: impl Fn(Range<usize>, gemm::Parallelism) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let chunks = PARTIAL_SUMS.min(batch).max(1);
    let per = batch.div_ceil(chunks);
    let range = |c: usize| c * per..((c + 1) * per).min(batch);
    let parts: Vec<Vec<f32>> = if chunks >= rayon::current_num_threads() {
        (0..chunks)
            .into_par_iter()
            .map(|c| part(range(c), gemm::Parallelism::None))
            .collect()
    } else {
        (0..chunks)
            .map(|c| part(range(c), gemm::Parallelism::Rayon(0)))
            .collect()
    };
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0.0; len]);
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_every_element_across_tile_edges() {
        for (rows, cols) in [(1, 1), (3, 70), (33, 65), (64, 32)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&src, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} [{r}, {c}]"
                    );
                }
            }
        }
    }
}
