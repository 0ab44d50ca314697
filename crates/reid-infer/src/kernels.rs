//! Host kernels of [`HostResNet`](crate::HostResNet): activations in NHWC, convolution
//! as (im2col +) one GEMM per row tile with bias, residual and ReLU fused
//! into the pass that leaves the tile, NHWC max-pooling and InstanceNorm.
//!
//! Nothing here knows burn: plain `f32` slices, the `gemm` crate's kernels
//! (the ones burn-flex calls, with their AVX-512 variants) and rayon.

use rayon::prelude::*;

/// Floats of one im2col tile (32 MiB): bounds the scratch memory of a
/// convolution whatever the batch size.
const TILE_FLOATS: usize = 8 << 20;

/// Reusable `f32` buffers: activations and im2col tiles are taken from it
/// and given back, so a forward pass (and the next one) does not page-fault
/// fresh allocations in. Buffers come back with stale contents; every
/// kernel overwrites all of what it takes.
#[derive(Debug, Default)]
pub struct Workspace {
    free: Vec<Vec<f32>>,
}

impl Workspace {
    /// A buffer of `len` values (contents unspecified).
    pub fn take(&mut self, len: usize) -> Vec<f32> {
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = match best {
            Some(i) => self.free.swap_remove(i),
            // The largest free buffer is too small: grow it rather than keep
            // both alive.
            None => match self
                .free
                .iter()
                .enumerate()
                .max_by_key(|(_, v)| v.capacity())
            {
                Some((i, _)) => self.free.swap_remove(i),
                None => Vec::new(),
            },
        };
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        v
    }

    /// Returns a buffer for reuse.
    pub fn give(&mut self, v: Vec<f32>) {
        if v.capacity() > 0 {
            self.free.push(v);
        }
    }

    /// Values held by free buffers (their total capacity).
    pub fn held(&self) -> usize {
        self.free.iter().map(Vec::capacity).sum()
    }
}

/// A batch of feature maps in NHWC order: `data[((b·height + y)·width + x)·channels + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    /// Images in the batch.
    pub batch: usize,
    /// Rows of each map.
    pub height: usize,
    /// Columns of each map.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// `batch·height·width·channels` values, NHWC.
    pub data: Vec<f32>,
}

impl Act {
    /// From NCHW values `[batch, channels, height, width]`.
    pub fn from_nchw(
        data: &[f32],
        [batch, channels, height, width]: [usize; 4],
        ws: &mut Workspace,
    ) -> Self {
        let plane = height * width;
        let mut out = ws.take(data.len());
        out.par_chunks_mut(plane * channels)
            .zip(data.par_chunks(plane * channels))
            .for_each(|(dst, src)| {
                for (p, px) in dst.chunks_exact_mut(channels).enumerate() {
                    for (c, v) in px.iter_mut().enumerate() {
                        *v = src[c * plane + p];
                    }
                }
            });
        Self {
            batch,
            height,
            width,
            channels,
            data: out,
        }
    }

    /// The values in NCHW order, `[batch, channels, height, width]`.
    pub fn to_nchw(&self) -> Vec<f32> {
        let plane = self.height * self.width;
        let c = self.channels;
        let mut out = vec![0.0; self.data.len()];
        out.par_chunks_mut(plane * c)
            .zip(self.data.par_chunks(plane * c))
            .for_each(|(dst, src)| {
                for (p, px) in src.chunks_exact(c).enumerate() {
                    for (ch, v) in px.iter().enumerate() {
                        dst[ch * plane + p] = *v;
                    }
                }
            });
        out
    }

    /// Pixels in the batch (`batch·height·width`), the GEMM row count.
    pub fn rows(&self) -> usize {
        self.batch * self.height * self.width
    }

    /// Global average pooling: `[batch, channels]` row-major.
    pub fn mean_pool(&self) -> Vec<f32> {
        let c = self.channels;
        let plane = self.height * self.width;
        let mut out = vec![0.0f32; self.batch * c];
        out.par_chunks_mut(c)
            .zip(self.data.par_chunks(plane * c.max(1)))
            .for_each(|(dst, src)| {
                let mut acc = vec![0.0f64; c];
                for px in src.chunks_exact(c) {
                    for (a, v) in acc.iter_mut().zip(px) {
                        *a += f64::from(*v);
                    }
                }
                for (d, a) in dst.iter_mut().zip(acc) {
                    *d = (a / plane as f64) as f32;
                }
            });
        out
    }
}

/// A 2-D convolution (no groups, no dilation) with a bias, weights laid out
/// for `[pixels, kh·kw·in] × [kh·kw·in, out]`.
#[derive(Debug, Clone)]
pub struct Conv {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sy, sx]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]` zero padding.
    pub padding: [usize; 4],
    /// `[kh·kw·in, out]` row-major, rows in `(ky, kx, ci)` order.
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

impl Conv {
    /// From PyTorch/burn weights `[out, in, kh, kw]` (row-major) and an
    /// optional bias `[out]` (zeros when `None`).
    pub fn from_oihw(
        weight: &[f32],
        bias: Option<&[f32]>,
        [out_c, in_c, kh, kw]: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> Self {
        let k = kh * kw * in_c;
        let mut w = vec![0.0; k * out_c];
        for o in 0..out_c {
            for i in 0..in_c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = (ky * kw + kx) * in_c + i;
                        w[row * out_c + o] = weight[((o * in_c + i) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        Self {
            in_channels: in_c,
            out_channels: out_c,
            kernel: [kh, kw],
            stride,
            padding,
            weight: w,
            bias: bias.map_or_else(|| vec![0.0; out_c], <[f32]>::to_vec),
        }
    }

    /// Output `[height, width]` for an input of `[height, width]`.
    pub fn out_hw(&self, h: usize, w: usize) -> [usize; 2] {
        let [top, left, bottom, right] = self.padding;
        [
            (h + top + bottom - self.kernel[0]) / self.stride[0] + 1,
            (w + left + right - self.kernel[1]) / self.stride[1] + 1,
        ]
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0; 4]
    }

    /// `conv(x) + bias (+ residual)`, then ReLU when `relu`. `residual`
    /// must have the output's shape. `x.channels` must be `in_channels`.
    pub fn forward(&self, x: &Act, residual: Option<&Act>, relu: bool, ws: &mut Workspace) -> Act {
        self.forward_tiled(x, residual, relu, ws, TILE_FLOATS)
    }

    fn forward_tiled(
        &self,
        x: &Act,
        residual: Option<&Act>,
        relu: bool,
        ws: &mut Workspace,
        tile_floats: usize,
    ) -> Act {
        debug_assert_eq!(x.channels, self.in_channels);
        let [oh, ow] = self.out_hw(x.height, x.width);
        let m = x.batch * oh * ow;
        let n = self.out_channels;
        let k = self.kernel[0] * self.kernel[1] * self.in_channels;
        let mut out = ws.take(m * n);
        if let Some(r) = residual {
            debug_assert_eq!(r.data.len(), out.len());
        }
        let tile_rows = if self.is_pointwise() {
            m.max(1)
        } else {
            (tile_floats / k.max(1)).clamp(1, m.max(1))
        };
        let mut col = if self.is_pointwise() {
            Vec::new()
        } else {
            ws.take(tile_rows.min(m) * k)
        };
        let mut start = 0;
        while start < m {
            let rows = tile_rows.min(m - start);
            let lhs: &[f32] = if self.is_pointwise() {
                &x.data[start * k..(start + rows) * k]
            } else {
                let col = &mut col[..rows * k];
                self.im2col(x, [oh, ow], start, col);
                col
            };
            let dst = &mut out[start * n..(start + rows) * n];
            gemm_rows(lhs, &self.weight, dst, rows, n, k);
            let res = residual.map(|r| &r.data[start * n..(start + rows) * n]);
            epilogue(dst, &self.bias, res, relu);
            start += rows;
        }
        ws.give(col);
        Act {
            batch: x.batch,
            height: oh,
            width: ow,
            channels: n,
            data: out,
        }
    }

    /// Fills `col` (`[rows, kh·kw·in]`) with the receptive fields of output
    /// pixels `start..start + rows`; zeros outside the input.
    fn im2col(&self, x: &Act, [oh, ow]: [usize; 2], start: usize, col: &mut [f32]) {
        let cin = self.in_channels;
        let [kh, kw] = self.kernel;
        let [sy, sx] = self.stride;
        let [top, left, _, _] = self.padding;
        let k = kh * kw * cin;
        col.par_chunks_mut(k).enumerate().for_each(|(r, row)| {
            let p = start + r;
            let b = p / (oh * ow);
            let oy = (p / ow) % oh;
            let ox = p % ow;
            for ky in 0..kh {
                let iy = (oy * sy + ky) as isize - top as isize;
                for kx in 0..kw {
                    let ix = (ox * sx + kx) as isize - left as isize;
                    let dst = &mut row[(ky * kw + kx) * cin..(ky * kw + kx + 1) * cin];
                    if iy < 0 || ix < 0 || iy as usize >= x.height || ix as usize >= x.width {
                        dst.fill(0.0);
                    } else {
                        let src = ((b * x.height + iy as usize) * x.width + ix as usize) * cin;
                        dst.copy_from_slice(&x.data[src..src + cin]);
                    }
                }
            }
        });
    }
}

/// `dst[rows, n] = lhs[rows, k] × rhs[k, n]`, all row-major, on rayon's pool.
fn gemm_rows(lhs: &[f32], rhs: &[f32], dst: &mut [f32], rows: usize, n: usize, k: usize) {
    assert!(lhs.len() >= rows * k && rhs.len() >= k * n && dst.len() >= rows * n);
    // SAFETY: the three buffers hold at least the `rows×k`, `k×n` and
    // `rows×n` row-major matrices the strides describe (asserted above), and
    // `dst` is not aliased by the inputs (it is a unique borrow).
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

/// ReLU as PyTorch computes it: negative values become 0, NaN stays NaN
/// (`f32::max` would turn it into 0 and hide it).
#[inline]
pub fn relu(y: f32) -> f32 {
    if y < 0.0 { 0.0 } else { y }
}

/// The larger of `acc` and `x` as PyTorch's max-pooling takes it: NaN wins
/// (`f32::max` would drop it).
#[inline]
fn max_nan(acc: f32, x: f32) -> f32 {
    if x > acc || x.is_nan() { x } else { acc }
}

/// `dst[r, j] += bias[j] (+ residual[r, j])`, then [`relu`] when `relu`.
fn epilogue(dst: &mut [f32], bias: &[f32], residual: Option<&[f32]>, relu: bool) {
    let n = bias.len();
    let rows_per_task = (16384 / n.max(1)).max(1);
    match residual {
        Some(res) => dst
            .par_chunks_mut(rows_per_task * n)
            .zip(res.par_chunks(rows_per_task * n))
            .for_each(|(d, r)| {
                for (drow, rrow) in d.chunks_exact_mut(n).zip(r.chunks_exact(n)) {
                    for ((v, b), x) in drow.iter_mut().zip(bias).zip(rrow) {
                        let y = *v + b + x;
                        *v = if relu { self::relu(y) } else { y };
                    }
                }
            }),
        None => dst.par_chunks_mut(rows_per_task * n).for_each(|d| {
            for drow in d.chunks_exact_mut(n) {
                for (v, b) in drow.iter_mut().zip(bias) {
                    let y = *v + b;
                    *v = if relu { self::relu(y) } else { y };
                }
            }
        }),
    }
}

/// Max-pooling in PyTorch's convention (`-inf` padding, optional ceil mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sy, sx]`.
    pub stride: [usize; 2],
    /// `[top, left]`; bottom/right padding equals it, as in PyTorch.
    pub padding: [usize; 2],
    /// Ceil instead of floor for the output size (windows starting in the
    /// right/bottom padding are dropped).
    pub ceil_mode: bool,
}

impl MaxPool {
    fn out_len(&self, len: usize, axis: usize) -> usize {
        let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
        let span = len + 2 * p - k;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= len + p {
            out -= 1;
        }
        out
    }

    /// `[batch, h, w, c]` → `[batch, h', w', c]`.
    pub fn forward(&self, x: &Act, ws: &mut Workspace) -> Act {
        let (oh, ow) = (self.out_len(x.height, 0), self.out_len(x.width, 1));
        let c = x.channels;
        let mut out = ws.take(x.batch * oh * ow * c);
        out.fill(f32::NEG_INFINITY);
        out.par_chunks_mut(ow * c)
            .enumerate()
            .for_each(|(row, dst)| {
                let b = row / oh;
                let oy = row % oh;
                let y0 = (oy * self.stride[0]) as isize - self.padding[0] as isize;
                for ox in 0..ow {
                    let x0 = (ox * self.stride[1]) as isize - self.padding[1] as isize;
                    let d = &mut dst[ox * c..(ox + 1) * c];
                    for iy in y0..y0 + self.kernel[0] as isize {
                        if iy < 0 || iy as usize >= x.height {
                            continue;
                        }
                        for ix in x0..x0 + self.kernel[1] as isize {
                            if ix < 0 || ix as usize >= x.width {
                                continue;
                            }
                            let s = ((b * x.height + iy as usize) * x.width + ix as usize) * c;
                            for (v, s) in d.iter_mut().zip(&x.data[s..s + c]) {
                                *v = max_nan(*v, *s);
                            }
                        }
                    }
                }
            });
        Act {
            batch: x.batch,
            height: oh,
            width: ow,
            channels: c,
            data: out,
        }
    }
}

/// An affine InstanceNorm over channels `first..first + gamma.len()`:
/// per image and channel, `(x − mean)/√(var + eps)·γ + β` with the biased
/// variance over the map's pixels.
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    /// First normalised channel.
    pub first: usize,
    /// `[channels normalised]`.
    pub gamma: Vec<f32>,
    /// `[channels normalised]`.
    pub beta: Vec<f32>,
    /// Added to the variance.
    pub eps: f64,
}

impl InstanceNorm {
    /// Normalises in place, then applies ReLU to every channel when `relu`.
    pub fn apply(&self, x: &mut Act, relu: bool) {
        let c = x.channels;
        let plane = x.height * x.width;
        let range = self.first..self.first + self.gamma.len();
        x.data.par_chunks_mut(plane * c).for_each(|img| {
            let len = range.len();
            let mut sum = vec![0.0f64; len];
            for px in img.chunks_exact(c) {
                for (s, v) in sum.iter_mut().zip(&px[range.clone()]) {
                    *s += f64::from(*v);
                }
            }
            let mean: Vec<f64> = sum.iter().map(|s| s / plane as f64).collect();
            let mut sq = vec![0.0f64; len];
            for px in img.chunks_exact(c) {
                for ((s, v), m) in sq.iter_mut().zip(&px[range.clone()]).zip(&mean) {
                    let d = f64::from(*v) - m;
                    *s += d * d;
                }
            }
            let scale: Vec<f32> = sq
                .iter()
                .zip(&self.gamma)
                .map(|(s, g)| (f64::from(*g) / (s / plane as f64 + self.eps).sqrt()) as f32)
                .collect();
            let shift: Vec<f32> = mean
                .iter()
                .zip(&scale)
                .zip(&self.beta)
                .map(|((m, s), b)| b - (*m as f32) * s)
                .collect();
            for px in img.chunks_exact_mut(c) {
                for ((v, s), b) in px[range.clone()].iter_mut().zip(&scale).zip(&shift) {
                    *v = *v * s + b;
                }
                if relu {
                    for v in px.iter_mut() {
                        *v = self::relu(*v);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A square `k×k` max pooling with stride `s` and padding `pad`.
    fn square_pool(k: usize, s: usize, pad: usize, ceil_mode: bool) -> MaxPool {
        MaxPool {
            kernel: [k, k],
            stride: [s, s],
            padding: [pad, pad],
            ceil_mode,
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Direct NCHW convolution, the textbook loop.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        [b, c, h, w]: [usize; 4],
        wt: &[f32],
        bias: &[f32],
        [o, kh, kw]: [usize; 3],
        [sy, sx]: [usize; 2],
        [top, left, bottom, right]: [usize; 4],
    ) -> (Vec<f32>, [usize; 2]) {
        let oh = (h + top + bottom - kh) / sy + 1;
        let ow = (w + left + right - kw) / sx + 1;
        let mut out = vec![0.0; b * o * oh * ow];
        for bi in 0..b {
            for oc in 0..o {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = f64::from(bias[oc]);
                        for ic in 0..c {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * sy + ky) as isize - top as isize;
                                    let ix = (xx * sx + kx) as isize - left as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                        continue;
                                    }
                                    let xv = x[((bi * c + ic) * h + iy as usize) * w + ix as usize];
                                    let wv = wt[((oc * c + ic) * kh + ky) * kw + kx];
                                    acc += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        out[((bi * o + oc) * oh + y) * ow + xx] = acc as f32;
                    }
                }
            }
        }
        (out, [oh, ow])
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).fold(0.0, |m, (p, q)| m.max((p - q).abs()))
    }

    #[test]
    fn conv_matches_the_direct_loop_for_any_tiling() {
        let mut ws = Workspace::default();
        // (in, out, kernel, stride, padding, input h×w): stem-like, 3×3,
        // strided 1×1, asymmetric padding and a rectangular kernel.
        type Case = (usize, usize, [usize; 2], [usize; 2], [usize; 4], [usize; 2]);
        let cases: [Case; 5] = [
            (3, 5, [7, 7], [2, 2], [3, 3, 3, 3], [13, 9]),
            (4, 6, [3, 3], [1, 1], [1, 1, 1, 1], [6, 5]),
            (6, 3, [1, 1], [2, 2], [0, 0, 0, 0], [7, 6]),
            (5, 4, [1, 1], [1, 1], [0, 0, 0, 0], [4, 3]),
            (2, 3, [3, 2], [2, 1], [0, 1, 2, 0], [8, 5]),
        ];
        for (i, (cin, cout, [kh, kw], stride, pad, [h, w])) in cases.into_iter().enumerate() {
            let b = 2;
            let x = values(b * cin * h * w, i as u32);
            let wt = values(cout * cin * kh * kw, 100 + i as u32);
            let bias = values(cout, 200 + i as u32);
            let (want, [oh, ow]) =
                naive(&x, [b, cin, h, w], &wt, &bias, [cout, kh, kw], stride, pad);
            let conv = Conv::from_oihw(&wt, Some(&bias), [cout, cin, kh, kw], stride, pad);
            assert_eq!(conv.out_hw(h, w), [oh, ow]);
            let xa = Act::from_nchw(&x, [b, cin, h, w], &mut ws);
            let residual =
                Act::from_nchw(&values(b * cout * oh * ow, 300), [b, cout, oh, ow], &mut ws);
            // One tile, a tile per few rows, a tile per row.
            for tile in [1 << 20, 3 * kh * kw * cin, 1] {
                let y = conv.forward_tiled(&xa, None, false, &mut ws, tile);
                assert!(
                    max_diff(&y.to_nchw(), &want) < 1e-5,
                    "case {i}, tile {tile}"
                );
                let y = conv.forward_tiled(&xa, Some(&residual), true, &mut ws, tile);
                let r = residual.to_nchw();
                let fused: Vec<f32> = want.iter().zip(&r).map(|(a, b)| (a + b).max(0.0)).collect();
                assert!(
                    max_diff(&y.to_nchw(), &fused) < 1e-5,
                    "case {i}, tile {tile}, residual"
                );
                ws.give(y.data);
            }
        }
    }

    #[test]
    fn max_pool_follows_pytorch_floor_and_ceil_modes() {
        let mut ws = Workspace::default();
        // One 5×5 channel holding 0..25: PyTorch's 3×3/2 pooling gives
        // padding 1 floor mode → 3×3; padding 0 ceil mode → 2×2.
        let x: Vec<f32> = (0..25).map(|v| v as f32).collect();
        let a = Act::from_nchw(&x, [1, 1, 5, 5], &mut ws);
        let tv = square_pool(3, 2, 1, false);
        assert_eq!(
            tv.forward(&a, &mut ws).data,
            vec![6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]
        );
        let fr = square_pool(3, 2, 0, true);
        assert_eq!(fr.forward(&a, &mut ws).data, vec![12.0, 14.0, 22.0, 24.0]);
        // 6 wide: ceil mode adds a clipped last window (out 3, not 2).
        let x6: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let a6 = Act::from_nchw(&x6, [1, 1, 6, 6], &mut ws);
        let y = fr.forward(&a6, &mut ws);
        assert_eq!((y.height, y.width), (3, 3));
        assert_eq!(y.data[8], 35.0);
    }

    #[test]
    fn relu_and_max_pooling_keep_nan_as_pytorch_does() {
        assert!(relu(f32::NAN).is_nan());
        assert_eq!(relu(-2.0), 0.0);
        assert_eq!(relu(3.0), 3.0);
        let mut ws = Workspace::default();
        // A NaN anywhere in a window makes that window's maximum NaN, wherever
        // it comes in the scan (first, middle, last).
        for at in [0usize, 12, 24] {
            let mut x: Vec<f32> = (0..25).map(|v| v as f32).collect();
            x[at] = f32::NAN;
            let a = Act::from_nchw(&x, [1, 1, 5, 5], &mut ws);
            let pool = square_pool(5, 1, 0, false);
            assert!(pool.forward(&a, &mut ws).data[0].is_nan(), "NaN at {at}");
        }
        // The fused epilogue: bias + ReLU keeps NaN too.
        let mut dst = vec![f32::NAN, -1.0];
        epilogue(&mut dst, &[0.5, 0.5], None, true);
        assert!(dst[0].is_nan());
        assert_eq!(dst[1], 0.0);
    }

    #[test]
    fn layout_round_trip_pooling_and_instance_norm() {
        let mut ws = Workspace::default();
        let x = values(2 * 3 * 4 * 5, 7);
        let a = Act::from_nchw(&x, [2, 3, 4, 5], &mut ws);
        assert_eq!(a.to_nchw(), x);
        let pooled = a.mean_pool();
        for (bc, p) in pooled.iter().enumerate() {
            let mean = x[bc * 20..(bc + 1) * 20].iter().sum::<f32>() / 20.0;
            assert!((p - mean).abs() < 1e-6);
        }
        // InstanceNorm on channels 1..3 only, then ReLU everywhere.
        let mut b = a.clone();
        let norm = InstanceNorm {
            first: 1,
            gamma: vec![2.0, 0.5],
            beta: vec![0.1, -0.2],
            eps: 1e-5,
        };
        norm.apply(&mut b, true);
        let y = b.to_nchw();
        for img in 0..2 {
            let base = img * 60;
            for i in 0..20 {
                assert_eq!(
                    y[base + i],
                    x[base + i].max(0.0),
                    "channel 0 only gets ReLU"
                );
            }
            for (c, (g, be)) in [(1, (2.0f64, 0.1f64)), (2, (0.5, -0.2))] {
                let ch = &x[base + c * 20..base + (c + 1) * 20];
                let m = ch.iter().map(|v| f64::from(*v)).sum::<f64>() / 20.0;
                let var = ch.iter().map(|v| (f64::from(*v) - m).powi(2)).sum::<f64>() / 20.0;
                for (j, v) in ch.iter().enumerate() {
                    let want = ((f64::from(*v) - m) / (var + 1e-5).sqrt() * g + be).max(0.0);
                    assert!((f64::from(y[base + c * 20 + j]) - want).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn workspace_reuses_and_grows_buffers() {
        let mut ws = Workspace::default();
        let a = ws.take(100);
        assert_eq!(a.len(), 100);
        ws.give(a);
        let b = ws.take(40);
        assert_eq!(b.len(), 40);
        assert!(b.capacity() >= 100, "reused the free buffer");
        assert_eq!(ws.held(), 0);
        ws.give(b);
        let c = ws.take(500);
        assert_eq!(c.len(), 500);
        assert_eq!(ws.held(), 0, "grew the only buffer instead of keeping both");
    }
}
