//! The forward product of a depth-wise `kh×kw` convolution (one group per
//! input channel, one or more output channels per group, any stride, zero
//! padding on each side, dilation 1) plus its bias, over `f32` slices in
//! NCHW order: the inference path.
//!
//! burn-flex's depth-wise forward accumulates each tap as one pass over a
//! row segment (`y_row += w · x_row`), which vectorises well on wide planes
//! but leaves the small planes of mobile networks (RepViT's 16×8 and 8×4
//! maps at 256×128, FastViT's, GhostNet's) with runs of 2–8 elements per
//! tap, and runs one parallel task per plane. Here each plane is copied
//! once into a zero-padded buffer, split by column phase when the stride is
//! above 1, so that every tap of every output reads at one fixed offset;
//! the outputs are then computed as long flat runs, 64 at a time, all taps
//! accumulated in registers before one store. Planes run in parallel in
//! groups of at least [`TASK_ELEMENTS`] elements.
//!
//! Each output is `((0 + x₀·w₀) + x₁·w₁) + …` over the taps in row-major
//! order, a tap in the padding adding `0·w`, then `+ bias`: the operations
//! and order of burn-flex 0.22.1's kernel (`ops/conv.rs`,
//! `conv_plane_accumulate`, which skips padding taps and marks the outputs
//! a non-finite weight would have made NaN), so the result is the same bits
//! as burn's for every input, non-finite weights included (`0·∞ = NaN`
//! here as there). The AVX-512 and AVX2 builds run where the CPU has them
//! and give the same bits as the plain one.

use rayon::prelude::*;

use super::kernels::Build;
use crate::layers::isa::{Isa, widest};
use crate::layers::spatial::Geometry;

/// Outputs accumulated in registers at once.
const BLOCK: usize = 64;

/// The least number of input plus output elements a parallel task handles
/// (whole planes): small planes are grouped so that a task outweighs its
/// scheduling.
pub const TASK_ELEMENTS: usize = 32 * 1024;

/// Where one plane's padded, phase-split copy and its flat outputs live.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Padded rows.
    rows: usize,
    /// Columns per phase: `⌈padded width / stride_x⌉`.
    phase_w: usize,
    /// Output height and width.
    out: [usize; 2],
    /// Flat outputs computed per plane, junk columns included.
    flat: usize,
}

impl Layout {
    fn new(g: &Geometry, out: [usize; 2]) -> Self {
        let rows = g.input[0] + 2 * g.padding[0];
        let padded_w = g.input[1] + 2 * g.padding[1];
        let phase_w = padded_w.div_ceil(g.stride[1]);
        let flat = if out[0] == 0 || out[1] == 0 {
            0
        } else {
            (out[0] - 1) * g.stride[0] * phase_w + out[1]
        };
        Layout {
            rows,
            phase_w,
            out,
            flat,
        }
    }

    /// Elements of the padded, phase-split buffer.
    fn buffer(&self, g: &Geometry) -> usize {
        g.stride[1] * self.rows * self.phase_w
    }

    /// The buffer offset tap `(i, j)` reads at, relative to the output's
    /// flat index.
    fn offsets(&self, g: &Geometry) -> Vec<usize> {
        let sx = g.stride[1];
        (0..g.kernel[0])
            .flat_map(|i| {
                (0..g.kernel[1]).map(move |j| ((j % sx) * self.rows + i) * self.phase_w + j / sx)
            })
            .collect()
    }

    /// The runs of flat outputs to compute: one run over every row when the
    /// vertical stride is 1 (the junk columns between rows are cheaper than
    /// short runs), else one per output row.
    fn runs(&self, g: &Geometry) -> Vec<(usize, usize)> {
        let [oh, ow] = self.out;
        if self.flat == 0 {
            Vec::new()
        } else if g.stride[0] == 1 {
            vec![(0, self.flat)]
        } else {
            (0..oh)
                .map(|oy| (oy * g.stride[0] * self.phase_w, ow))
                .collect()
        }
    }
}

/// Copies one input plane `[h, w]` into `buf` (zeroed padding), column
/// `c` of padded row `r` at phase `c % stride_x`, position `c / stride_x`.
#[inline(always)]
fn fill(g: &Geometry, l: &Layout, x: &[f32], buf: &mut [f32]) {
    buf.fill(0.0);
    let [h, w] = g.input;
    if w == 0 {
        return;
    }
    let [py, px] = g.padding;
    let sx = g.stride[1];
    for (iy, row) in x.chunks_exact(w).take(h).enumerate() {
        let r = iy + py;
        if sx == 1 {
            let start = r * l.phase_w + px;
            buf[start..start + w].copy_from_slice(row);
        } else {
            for (ix, &v) in row.iter().enumerate() {
                let c = ix + px;
                buf[((c % sx) * l.rows + r) * l.phase_w + c / sx] = v;
            }
        }
    }
}

/// `flat[k] = Σ_t buf[k + offsets[t]] · w[t]` for `k` in `start..start+len`,
/// taps in order, [`BLOCK`] outputs at a time in registers.
#[inline(always)]
fn run(buf: &[f32], offsets: &[usize], w: &[f32], flat: &mut [f32], start: usize, len: usize) {
    let mut k = start;
    let end = start + len;
    while k + BLOCK <= end {
        let mut acc = [0f32; BLOCK];
        for (&o, &wt) in offsets.iter().zip(w) {
            let src = &buf[k + o..k + o + BLOCK];
            for l in 0..BLOCK {
                acc[l] += src[l] * wt;
            }
        }
        flat[k..k + BLOCK].copy_from_slice(&acc);
        k += BLOCK;
    }
    let rest = end - k;
    if rest > 0 {
        let mut acc = [0f32; BLOCK];
        for (&o, &wt) in offsets.iter().zip(w) {
            let src = &buf[k + o..k + o + rest];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += s * wt;
            }
        }
        flat[k..end].copy_from_slice(&acc[..rest]);
    }
}

/// One output plane `[oh, ow]` from one input plane, the channel's taps and
/// bias.
#[inline(always)]
fn plane(
    job: &Job<'_>,
    x: &[f32],
    w: &[f32],
    bias: Option<f32>,
    scratch: &mut Scratch,
    y: &mut [f32],
) {
    let (g, l) = (job.g, &job.l);
    fill(g, l, x, &mut scratch.buf);
    for &(start, len) in &job.runs {
        run(&scratch.buf, &job.offsets, w, &mut scratch.flat, start, len);
    }
    let [_, ow] = l.out;
    let row_step = g.stride[0] * l.phase_w;
    for (oy, yrow) in y.chunks_exact_mut(ow).enumerate() {
        let src = &scratch.flat[oy * row_step..oy * row_step + ow];
        match bias {
            Some(b) => {
                for (d, &s) in yrow.iter_mut().zip(src) {
                    *d = s + b;
                }
            }
            None => yrow.copy_from_slice(src),
        }
    }
}

/// One task's buffers, reused across its planes.
struct Scratch {
    buf: Vec<f32>,
    flat: Vec<f32>,
}

/// One call's inputs and the plan shared by its tasks.
struct Job<'a> {
    g: &'a Geometry,
    l: Layout,
    offsets: Vec<usize>,
    runs: Vec<(usize, usize)>,
    x: &'a [f32],
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
}

impl Job<'_> {
    /// Output planes `first..` (as many as `y` holds), in order.
    #[inline(always)]
    fn planes(&self, first: usize, scratch: &mut Scratch, y: &mut [f32]) {
        let g = self.g;
        let plane_in = g.input[0] * g.input[1];
        let plane_out = self.l.out[0] * self.l.out[1];
        let taps = g.kernel[0] * g.kernel[1];
        let multiplier = g.c_out / g.c_in;
        for (k, yp) in y.chunks_exact_mut(plane_out).enumerate() {
            let p = first + k;
            let (n, o) = (p / g.c_out, p % g.c_out);
            let q = n * g.c_in + o / multiplier;
            plane(
                self,
                &self.x[q * plane_in..(q + 1) * plane_in],
                &self.weight[o * taps..(o + 1) * taps],
                self.bias.map(|b| b[o]),
                scratch,
                yp,
            );
        }
    }
}

/// [`Job::planes`] in one build (plain, AVX2 or AVX-512): the same code,
/// compiled with other target features.
macro_rules! planes {
    ($name:ident $(, $feature:literal)*) => {
        $(#[target_feature(enable = $feature)])*
        fn $name(job: &Job<'_>, first: usize, scratch: &mut Scratch, y: &mut [f32]) {
            job.planes(first, scratch, y)
        }
    };
}

planes!(planes_plain);
#[cfg(target_arch = "x86_64")]
planes!(planes_avx2, "avx2");
#[cfg(target_arch = "x86_64")]
planes!(planes_avx512, "avx512f");

fn isa(build: Build) -> Isa {
    match build {
        Build::Best => widest(),
        Build::Plain => Isa::Plain,
    }
}

/// The forward product plus bias: `x: [batch, c_in, h, w]`, `weight:
/// [c_out, 1, kh, kw]`, `bias: [c_out]` (or none) → `[batch, c_out, oh,
/// ow]`, output channel `o` reading input channel `o / (c_out / c_in)`
/// (PyTorch's `groups = c_in`; `c_out = c_in` for a plain depth-wise
/// convolution). Empty when `g` has no output; `None` when `c_out` is not
/// a multiple of `c_in` or a slice's length does not match `g`.
pub fn forward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    build: Build,
) -> Option<Vec<f32>> {
    let taps = g.kernel[0] * g.kernel[1];
    let fits = g.c_in > 0
        && g.c_out.is_multiple_of(g.c_in)
        && x.len() == g.batch * g.c_in * g.input[0] * g.input[1]
        && weight.len() == g.c_out * taps
        && bias.is_none_or(|b| b.len() == g.c_out);
    if !fits {
        return None;
    }
    let out = g.output().unwrap_or([0, 0]);
    let plane_out = out[0] * out[1];
    let planes = g.batch * g.c_out;
    let mut y = vec![0f32; planes * plane_out];
    if plane_out == 0 || planes == 0 {
        return Some(y);
    }
    let l = Layout::new(g, out);
    let job = Job {
        g,
        offsets: l.offsets(g),
        runs: l.runs(g),
        l,
        x,
        weight,
        bias,
    };
    let per_task = (TASK_ELEMENTS / (g.input[0] * g.input[1] + plane_out).max(1)).max(1);
    let isa = isa(build);
    y.par_chunks_mut(per_task * plane_out)
        .enumerate()
        .for_each(|(t, yt)| {
            let mut scratch = Scratch {
                buf: vec![0f32; job.l.buffer(g)],
                flat: vec![0f32; job.l.flat],
            };
            let first = t * per_task;
            match isa {
                // SAFETY: the CPU supports AVX-512F (`isa`).
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { planes_avx512(&job, first, &mut scratch, yt) },
                // SAFETY: the CPU supports AVX2 (`isa`).
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { planes_avx2(&job, first, &mut scratch, yt) },
                _ => planes_plain(&job, first, &mut scratch, yt),
            }
        });
    Some(y)
}
