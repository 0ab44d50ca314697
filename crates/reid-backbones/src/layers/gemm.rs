//! One `f32` matrix product over slices with the gemm crate burn-flex
//! itself uses: the helper the convolution kernels of
//! [`pointwise`](super::pointwise) and [`spatial`](super::spatial) share.

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
