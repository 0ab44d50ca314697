//! A fused, allocation-light path for the BoT [`TrainTransform`] that gives
//! bit-identical floats to [`TrainTransform::write`] for the same generator
//! (tested): a PIL-exact separable resampler with precomputed padded taps
//! and `i32` accumulators (Pillow's own arithmetic; `transform::resize_pil`
//! computes the same values with per-call tap vectors and `i64`), then flip,
//! pad + crop and normalisation in one pass straight into the output planes.
//! The resampler ([`resize_pil_fast`]) also serves the pre-training views'
//! resized crops (`views::resized_crop`); the BoT path serves the loader
//! (feature `burn`) and PNL's weak view (`views::PnlViews`).

use image::RgbImage;
use rand::Rng;

use crate::augment::TrainTransform;
use crate::transform::{Interpolation, PRECISION_BITS, PilResample, pil_fixed_weight};

/// Taps of a 1-D resize, padded to `ksize` per output sample.
struct Taps {
    ksize: usize,
    /// First source sample of each output sample (shifted so that
    /// `start + ksize <= in_size`).
    start: Vec<usize>,
    /// `out_size · ksize` weights scaled by `2^PRECISION_BITS`.
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
fn taps(in_size: usize, out_size: usize, interp: Interpolation) -> Taps {
    let geometry = PilResample::new(in_size, out_size, interp);
    // Window bounds first (to size the padded table), then the weights.
    let bounds: Vec<(usize, usize, f64)> = (0..out_size).map(|xx| geometry.window(xx)).collect();
    let ksize = bounds
        .iter()
        .map(|&(a, b, _)| b - a)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut start = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut raw = vec![0f64; ksize];
    for (o, &(xmin, xmax, center)) in bounds.iter().enumerate() {
        let n = xmax - xmin;
        for (i, r) in raw[..n].iter_mut().enumerate() {
            *r = geometry.weight(xmin + i, center);
        }
        let total: f64 = raw[..n].iter().sum();
        // ksize <= in_size, so shifting left keeps the window in range.
        let s = xmin.min(in_size.saturating_sub(ksize));
        let shift = xmin - s;
        let dst = &mut weights[o * ksize + shift..o * ksize + shift + n];
        for (d, &w) in dst.iter_mut().zip(&raw[..n]) {
            *d = pil_fixed_weight(w, total);
        }
        start.push(s);
    }
    Taps {
        ksize,
        start,
        weights,
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `img` to `height × width` exactly like
/// [`resize_pil`](crate::transform::resize_pil) (bit-identical, tested), with
/// precomputed padded taps and `i32` accumulators: several times faster.
/// Returns a clone when the size already matches.
pub fn resize_pil_fast(img: &RgbImage, height: u32, width: u32, interp: Interpolation) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    if (in_w, in_h) == (width as usize, height as usize) {
        return img.clone();
    }
    let (out_w, out_h) = (width as usize, height as usize);
    #[cfg(target_arch = "x86_64")]
    let out = if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { resize_rgb_avx2(img.as_raw(), in_w, in_h, out_w, out_h, interp) }
    } else {
        resize_rgb(img.as_raw(), in_w, in_h, out_w, out_h, interp)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let out = resize_rgb(img.as_raw(), in_w, in_h, out_w, out_h, interp);
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// [`resize_rgb`] compiled with AVX2 (the same arithmetic).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resize_rgb_avx2(
    src: &[u8],
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    interp: Interpolation,
) -> Vec<u8> {
    resize_rgb(src, in_w, in_h, out_w, out_h, interp)
}

/// Horizontal pass with a compile-time window of `K` taps.
#[inline(always)]
fn hpass<const K: usize>(src: &[u8], in_w: usize, out_w: usize, t: &Taps, tmp: &mut [u8]) {
    let round = 1i32 << (PRECISION_BITS - 1);
    for (row, dst) in src
        .chunks_exact(in_w * 3)
        .zip(tmp.chunks_exact_mut(out_w * 3))
    {
        for ((px, k), &start) in dst
            .chunks_exact_mut(3)
            .zip(t.weights.chunks_exact(K))
            .zip(&t.start)
        {
            let Some(s) = row.get(start * 3..start * 3 + 3 * K) else {
                continue;
            };
            let (mut r, mut g, mut b) = (round, round, round);
            for i in 0..K {
                let w = k[i];
                r += i32::from(s[3 * i]) * w;
                g += i32::from(s[3 * i + 1]) * w;
                b += i32::from(s[3 * i + 2]) * w;
            }
            px[0] = clip8(r);
            px[1] = clip8(g);
            px[2] = clip8(b);
        }
    }
}

/// Horizontal pass for any window size.
#[inline(always)]
fn hpass_dyn(src: &[u8], in_w: usize, out_w: usize, t: &Taps, tmp: &mut [u8]) {
    let round = 1i32 << (PRECISION_BITS - 1);
    for (row, dst) in src
        .chunks_exact(in_w * 3)
        .zip(tmp.chunks_exact_mut(out_w * 3))
    {
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            let k = &t.weights[x * t.ksize..(x + 1) * t.ksize];
            let s = &row[t.start[x] * 3..(t.start[x] + t.ksize) * 3];
            let (mut r, mut g, mut b) = (round, round, round);
            for (&w, p) in k.iter().zip(s.chunks_exact(3)) {
                r += i32::from(p[0]) * w;
                g += i32::from(p[1]) * w;
                b += i32::from(p[2]) * w;
            }
            px[0] = clip8(r);
            px[1] = clip8(g);
            px[2] = clip8(b);
        }
    }
}

/// PIL-exact resize of packed RGB `src` (`in_w × in_h`) to `out_w × out_h`;
/// returns packed RGB. Equals `transform::resize_pil`.
#[inline(always)]
pub(crate) fn resize_rgb(
    src: &[u8],
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    interp: Interpolation,
) -> Vec<u8> {
    let round = 1i32 << (PRECISION_BITS - 1);
    let horizontal = if in_w != out_w {
        let t = taps(in_w, out_w, interp);
        let mut tmp = vec![0u8; in_h * out_w * 3];
        match t.ksize {
            2 => hpass::<2>(src, in_w, out_w, &t, &mut tmp),
            3 => hpass::<3>(src, in_w, out_w, &t, &mut tmp),
            4 => hpass::<4>(src, in_w, out_w, &t, &mut tmp),
            5 => hpass::<5>(src, in_w, out_w, &t, &mut tmp),
            6 => hpass::<6>(src, in_w, out_w, &t, &mut tmp),
            _ => hpass_dyn(src, in_w, out_w, &t, &mut tmp),
        }
        tmp
    } else {
        src.to_vec()
    };
    if in_h == out_h {
        return horizontal;
    }
    let t = taps(in_h, out_h, interp);
    let len = out_w * 3;
    let mut out = vec![0u8; out_h * len];
    let mut acc = vec![0i32; len];
    for (y, dst) in out.chunks_exact_mut(len).enumerate() {
        acc.fill(round);
        let k = &t.weights[y * t.ksize..(y + 1) * t.ksize];
        for (i, &w) in k.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let r = t.start[y] + i;
            let row = &horizontal[r * len..(r + 1) * len];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * w;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

/// [`TrainTransform::write`] in one pass after the resize; `None` when the
/// fused path does not apply (nearest-neighbour resize, wrong `out` length),
/// and the caller falls back to the plain path.
pub(crate) fn bot_write<R: Rng + ?Sized>(
    t: &TrainTransform,
    img: &RgbImage,
    rng: &mut R,
    out: &mut [f32],
) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { bot_write_avx2(t, img, rng, out) };
    }
    bot_write_body(t, img, rng, out)
}

/// [`bot_write_body`] compiled with AVX2 (wider integer multiplies in the
/// resampler); the same arithmetic, so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bot_write_avx2<R: Rng + ?Sized>(
    t: &TrainTransform,
    img: &RgbImage,
    rng: &mut R,
    out: &mut [f32],
) -> Option<()> {
    bot_write_body(t, img, rng, out)
}

#[inline(always)]
fn bot_write_body<R: Rng + ?Sized>(
    t: &TrainTransform,
    img: &RgbImage,
    rng: &mut R,
    out: &mut [f32],
) -> Option<()> {
    let (w, h) = (t.width as usize, t.height as usize);
    let plane = w * h;
    if t.interpolation == Interpolation::Nearest || out.len() != 3 * plane || plane == 0 {
        return None;
    }
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let resized;
    let px: &[u8] = if (in_w, in_h) == (w, h) {
        img.as_raw()
    } else {
        resized = resize_rgb(img.as_raw(), in_w, in_h, w, h, t.interpolation);
        &resized
    };
    // The same draws, in the same order, as random_hflip + random_pad_crop.
    let flip = rng.random::<f64>() < t.flip_p;
    let pad = t.padding as usize;
    let (top, left) = if pad > 0 {
        let top = rng.random_range(0..=2 * t.padding) as usize;
        let left = rng.random_range(0..=2 * t.padding) as usize;
        (top, left)
    } else {
        (pad, pad)
    };
    let norm = &t.norm;
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    let fill: [f32; 3] = std::array::from_fn(|c| t.pad_fill[c] as f32 * scale[c] - shift[c]);
    // Every byte's normalised value, computed as write_chw_normalized does.
    let lut: [[f32; 256]; 3] =
        std::array::from_fn(|c| std::array::from_fn(|v| v as f32 * scale[c] - shift[c]));
    let (r_out, rest) = out.split_at_mut(plane);
    let (g_out, b_out) = rest.split_at_mut(plane);
    let rows = r_out
        .chunks_exact_mut(w)
        .zip(g_out.chunks_exact_mut(w))
        .zip(b_out.chunks_exact_mut(w));
    for (y, ((r_row, g_row), b_row)) in rows.enumerate() {
        let py = y + top;
        if py < pad || py >= pad + h {
            r_row.fill(fill[0]);
            g_row.fill(fill[1]);
            b_row.fill(fill[2]);
            continue;
        }
        let src = &px[(py - pad) * w * 3..(py - pad + 1) * w * 3];
        // Columns whose padded position falls inside the image.
        let x0 = pad.saturating_sub(left).min(w);
        let x1 = (pad + w).saturating_sub(left).clamp(x0, w);
        for (row, v) in [
            (&mut *r_row, fill[0]),
            (&mut *g_row, fill[1]),
            (&mut *b_row, fill[2]),
        ] {
            row[..x0].fill(v);
            row[x1..].fill(v);
        }
        let n = x1 - x0;
        let s0 = x0 + left - pad;
        let (s_lo, s_hi) = if flip {
            (w - s0 - n, w - s0)
        } else {
            (s0, s0 + n)
        };
        let src = &src[s_lo * 3..s_hi * 3];
        let (rr, gg, bb) = (&mut r_row[x0..x1], &mut g_row[x0..x1], &mut b_row[x0..x1]);
        if src.len() != 3 * n || rr.len() != n || gg.len() != n || bb.len() != n {
            return None;
        }
        for i in 0..n {
            let j = if flip { 3 * (n - 1 - i) } else { 3 * i };
            rr[i] = lut[0][usize::from(src[j])];
            gg[i] = lut[1][usize::from(src[j + 1])];
            bb[i] = lut[2][usize::from(src[j + 2])];
        }
    }
    if let Some(e) = &t.erasing {
        e.apply(out, h, w, rng);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::resize_pil;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A generator per test case (the loader's `item_rng` needs `burn`).
    fn item_rng(seed: u64, a: u64, b: u64, c: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed ^ (a << 8) ^ (b << 16) ^ (c << 24))
    }

    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = item_rng(seed, 0, 0, 0);
        RgbImage::from_fn(w, h, |_, _| {
            image::Rgb([rng.random(), rng.random(), rng.random()])
        })
    }

    #[test]
    fn resize_equals_resize_pil() {
        let sizes = [
            (1, 1),
            (3, 7),
            (24, 48),
            (64, 128),
            (95, 190),
            (128, 256),
            (300, 97),
        ];
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let img = noise(w, h, i as u64);
            for &(ow, oh) in &[(128, 256), (64, 128), (5, 3), (w, 40), (33, h)] {
                for interp in [Interpolation::Bicubic, Interpolation::Bilinear] {
                    let ours = resize_rgb(
                        img.as_raw(),
                        w as usize,
                        h as usize,
                        ow as usize,
                        oh as usize,
                        interp,
                    );
                    let want = if (w, h) == (ow, oh) {
                        img.clone()
                    } else {
                        resize_pil(&img, oh, ow, interp)
                    };
                    let fast = resize_pil_fast(&img, oh, ow, interp);
                    assert_eq!(fast, want, "{w}x{h} -> {ow}x{oh} {interp:?} (dispatch)");
                    assert_eq!(ours, want.into_raw(), "{w}x{h} -> {ow}x{oh} {interp:?}");
                }
            }
        }
    }

    #[test]
    fn fused_bot_equals_train_transform_write() {
        for (i, &(w, h)) in [(64u32, 128u32), (128, 256), (40, 70), (10, 20)]
            .iter()
            .enumerate()
        {
            let img = noise(w, h, 10 + i as u64);
            for (hh, ww) in [(256u32, 128u32), (32, 16), (h, w)] {
                let mut t = TrainTransform::bot(hh, ww);
                for variant in 0..3 {
                    match variant {
                        1 => {
                            t.padding = 0;
                            t.interpolation = Interpolation::Bilinear;
                        }
                        2 => {
                            t.padding = 3;
                            t.pad_fill = [10, 200, 30];
                            t.flip_p = 1.0;
                        }
                        _ => {}
                    }
                    for seed in 0..8 {
                        let n = 3 * (hh * ww) as usize;
                        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                        let (mut ra, mut rb) = (item_rng(seed, 1, 2, 3), item_rng(seed, 1, 2, 3));
                        t.write(&img, &mut ra, &mut a);
                        bot_write(&t, &img, &mut rb, &mut b).unwrap();
                        assert!(
                            a == b,
                            "{w}x{h} -> {ww}x{hh}, variant {variant}, seed {seed}"
                        );
                        // The same draws, so what follows sees the same stream
                        // (PNL's strong view is drawn after its weak one).
                        assert_eq!(ra.random::<u64>(), rb.random::<u64>());
                    }
                }
            }
        }
    }
}
