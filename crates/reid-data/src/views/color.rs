//! Pixel-exact colour operations of Pillow, as torchvision applies them to
//! PIL images: grayscale, brightness / contrast / saturation (Pillow's
//! `ImageEnhance` blends), hue shift (through Pillow's 8-bit HSV) and
//! solarisation — plus [`ColorJitter`], torchvision's random composition of the
//! first four.
//!
//! Every function takes and returns an 8-bit RGB image (`height × width × 3`)
//! and reproduces Pillow's integer / single-precision arithmetic, so outputs
//! equal Pillow's byte for byte (see `tests/integration/views_parity.rs`).

use image::{Rgb, RgbImage};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};

/// Pillow's `convert('L')` of one RGB pixel: ITU-R 601-2 luma
/// `(19595·R + 38470·G + 7471·B + 2^15) >> 16` (weights 0.299 / 0.587 /
/// 0.114 in 16-bit fixed point, rounded).
#[inline(always)]
pub fn luma(px: [u8; 3]) -> u8 {
    let acc =
        u32::from(px[0]) * 19595 + u32::from(px[1]) * 38470 + u32::from(px[2]) * 7471 + 0x8000;
    (acc >> 16) as u8
}

/// The luma plane of `img` (row-major, `height · width` bytes), as Pillow's
/// `img.convert('L')`.
pub fn luma_plane(img: &RgbImage) -> Vec<u8> {
    img.pixels().map(|p| luma(p.0)).collect()
}

/// torchvision `rgb_to_grayscale(img, num_output_channels=3)` on a PIL image:
/// Pillow's luma replicated into the three channels.
pub fn grayscale(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let l = luma(p.0);
        *p = Rgb([l, l, l]);
    }
    out
}

/// One byte of Pillow's `Image.blend(degenerate, image, alpha)`:
/// `degenerate + alpha · (image − degenerate)` in single precision, truncated
/// to a byte; for `alpha` outside `[0, 1]` the result is clamped to `0..=255`
/// first (Pillow's extrapolation branch). Rust's saturating float → `u8` cast
/// is exactly that truncate-and-clamp (inside `[0, 1]` the value never leaves
/// `0..=255`), so both of Pillow's branches are one expression.
#[inline(always)]
fn blend_byte(degenerate: u8, image: u8, alpha: f32) -> u8 {
    let a = f32::from(degenerate);
    (a + alpha * (f32::from(image) - a)) as u8
}

/// Pillow's factor: parsed as a C double and passed on as a float.
fn blend_alpha(factor: f64) -> f32 {
    factor as f32
}

/// `table[v] = blend_byte(degenerate, v, alpha)` for every byte `v`: the
/// whole blend against a uniform degenerate image as one lookup per byte.
#[inline(always)]
fn blend_table(degenerate: u8, alpha: f32) -> [u8; 256] {
    std::array::from_fn(|v| blend_byte(degenerate, v as u8, alpha))
}

/// Maps every byte of `buf` through `table`.
#[inline(always)]
fn map_bytes(buf: &mut [u8], table: &[u8; 256]) {
    for v in buf.iter_mut() {
        *v = table[usize::from(*v)];
    }
}

/// In place `Image.blend` against a uniform image of `degenerate` bytes,
/// with Pillow's `alpha == 1` shortcut (`alpha == 0` gives `degenerate`
/// through the table as well).
#[inline(always)]
fn blend_uniform_in_place(buf: &mut [u8], degenerate: u8, factor: f64) {
    let alpha = blend_alpha(factor);
    if alpha == 1.0 {
        return;
    }
    map_bytes(buf, &blend_table(degenerate, alpha));
}

/// In place [`adjust_brightness`] of interleaved RGB bytes.
#[inline(always)]
fn brightness_in_place(buf: &mut [u8], factor: f64) {
    blend_uniform_in_place(buf, 0, factor);
}

/// [`mean_luma`] of interleaved RGB bytes.
#[inline(always)]
fn mean_luma_raw(buf: &[u8]) -> u8 {
    let n = buf.len() / 3;
    if n == 0 {
        return 0;
    }
    let sum: u64 = buf
        .chunks_exact(3)
        .map(|p| u64::from(luma([p[0], p[1], p[2]])))
        .sum();
    (sum as f64 / n as f64 + 0.5) as u8
}

/// In place [`adjust_contrast`] of interleaved RGB bytes.
#[inline(always)]
fn contrast_in_place(buf: &mut [u8], factor: f64) {
    if blend_alpha(factor) == 1.0 {
        return;
    }
    let m = mean_luma_raw(buf);
    blend_uniform_in_place(buf, m, factor);
}

/// In place [`adjust_saturation`] of interleaved RGB bytes: each pixel blended
/// with its own luma.
#[inline(always)]
fn saturation_in_place(buf: &mut [u8], factor: f64) {
    let alpha = blend_alpha(factor);
    if alpha == 1.0 {
        return;
    }
    // Blocks of pixels: the luma of each pixel spread over its three bytes,
    // then one flat (vectorisable) blend over the block's bytes.
    let mut lum = [0f32; 3 * BLOCK];
    for chunk in buf.chunks_mut(3 * BLOCK) {
        for (p, l) in chunk.chunks_exact(3).zip(lum.chunks_exact_mut(3)) {
            l.fill(f32::from(luma([p[0], p[1], p[2]])));
        }
        for (c, &l) in chunk.iter_mut().zip(&lum) {
            // blend_byte(l, c, alpha), with the luma's conversion hoisted.
            *c = (l + alpha * (f32::from(*c) - l)) as u8;
        }
    }
}

/// Pixels per block of the blocked kernels (saturation, hue).
const BLOCK: usize = 64;

/// torchvision `adjust_brightness` on PIL = `ImageEnhance.Brightness`: blend
/// with a black image, `factor` ≥ 0 (1 = unchanged).
pub fn adjust_brightness(img: &RgbImage, factor: f64) -> RgbImage {
    JitterParams::only(|p| p.brightness = Some(factor)).apply_unchecked(img)
}

/// The rounded mean of the luma plane, as `ImageEnhance.Contrast` computes
/// it: `int(mean + 0.5)`.
pub fn mean_luma(img: &RgbImage) -> u8 {
    mean_luma_raw(img.as_raw())
}

/// torchvision `adjust_contrast` on PIL = `ImageEnhance.Contrast`: blend with
/// a uniform grey image at the rounded mean luma, `factor` ≥ 0.
pub fn adjust_contrast(img: &RgbImage, factor: f64) -> RgbImage {
    JitterParams::only(|p| p.contrast = Some(factor)).apply_unchecked(img)
}

/// torchvision `adjust_saturation` on PIL = `ImageEnhance.Color`: blend with
/// the image's own grayscale, `factor` ≥ 0.
pub fn adjust_saturation(img: &RgbImage, factor: f64) -> RgbImage {
    JitterParams::only(|p| p.saturation = Some(factor)).apply_unchecked(img)
}

/// C's `round()` (half away from zero) of `x ∈ [0, 255]`, branch- and
/// conversion-free: adding 2^52 rounds to the nearest integer, ties to
/// even (exactly; the integer lands in the low mantissa bits), and a tie
/// rounded down (`x − t == 0.5`, exact) is bumped up.
#[inline(always)]
fn round_nonneg(x: f64) -> u8 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let y = x + MAGIC;
    let t = y - MAGIC;
    (y.to_bits() as u32 + u32::from(x - t == 0.5)) as u8
}

/// Which channel `rgb2hsv_row` treats as the maximum: red if it is one,
/// else green if it is one, else blue — the order of Pillow's tests.
#[derive(Clone, Copy)]
enum MaxBranch {
    /// `r == maxc`: `h = bc − gc`.
    Red = 0,
    /// `g == maxc`, `r < maxc`: `h = 2 + rc − bc`.
    Green = 1,
    /// `b == maxc` only: `h = 4 + gc − rc`.
    Blue = 2,
}

/// Pillow's hue byte of a non-grey pixel from its branch and the distances
/// `maxc − c` of the two channels other than the branch's, in RGB order
/// (red: `(g, b)`, green: `(r, b)`, blue: `(r, g)`); `cr = maxc − minc` is
/// the larger of the two. Exactly `rgb2hsv_row`'s arithmetic: float
/// variables, double constants.
#[inline(always)]
fn hue_byte(branch: MaxBranch, d1: u8, d2: u8) -> u8 {
    let cr = f32::from(d1.max(d2));
    let c1 = f32::from(d1) / cr;
    let c2 = f32::from(d2) / cr;
    let h: f32 = match branch {
        // bc − gc
        MaxBranch::Red => c2 - c1,
        // 2 + rc − bc
        MaxBranch::Green => ((2.0 + f64::from(c1)) - f64::from(c2)) as f32,
        // 4 + gc − rc
        MaxBranch::Blue => ((4.0 + f64::from(c2)) - f64::from(c1)) as f32,
    };
    // fmod(h / 6 + 1, 1): h ∈ [−1, 5] puts the dividend in [5/6, 11/6), where
    // the remainder is the dividend, less 1 (exactly, by Sterbenz) when ≥ 1.
    let x = f64::from(h) / 6.0 + 1.0;
    let h = (if x >= 1.0 { x - 1.0 } else { x }) as f32;
    ((f64::from(h) * 255.0) as i32).clamp(0, 255) as u8
}

/// Pillow's saturation byte `trunc(255 · (float)(cr / maxc))` of a non-grey
/// pixel.
#[inline(always)]
fn sat_byte(maxc: u8, cr: u8) -> u8 {
    let s = f32::from(cr) / f32::from(maxc);
    ((f64::from(s) * 255.0) as i32).clamp(0, 255) as u8
}

/// The branch of a pixel and its table index `d1 · 256 + d2` (see
/// [`hue_byte`]); grey pixels get index 0.
#[inline(always)]
fn hue_key(r: u8, g: u8, b: u8, maxc: u8) -> (MaxBranch, usize) {
    let (dr, dg, db) = (
        usize::from(maxc - r),
        usize::from(maxc - g),
        usize::from(maxc - b),
    );
    if r == maxc {
        (MaxBranch::Red, dg << 8 | db)
    } else if g == maxc {
        (MaxBranch::Green, dr << 8 | db)
    } else {
        (MaxBranch::Blue, dr << 8 | dg)
    }
}

/// Pillow's RGB → HSV as lookups: the hue byte of every branch and
/// distance pair (`3 · 65536` bytes), the saturation byte of every
/// `(maxc, cr)` (`65536` bytes); built once per process.
struct HsvTables {
    /// `hue[branch · 65536 + d1 · 256 + d2]` = [`hue_byte`], 0 for grey.
    hue: Box<[u8]>,
    /// `sat[maxc · 256 + cr]` = [`sat_byte`], 0 for `cr == 0`.
    sat: Box<[u8]>,
}

impl HsvTables {
    fn get() -> &'static Self {
        static TABLES: std::sync::OnceLock<HsvTables> = std::sync::OnceLock::new();
        TABLES.get_or_init(|| {
            let mut hue = vec![0u8; 3 << 16].into_boxed_slice();
            for (bi, branch) in [MaxBranch::Red, MaxBranch::Green, MaxBranch::Blue]
                .into_iter()
                .enumerate()
            {
                let table = &mut hue[bi << 16..(bi + 1) << 16];
                for (k, slot) in table.iter_mut().enumerate().skip(1) {
                    *slot = hue_byte(branch, (k >> 8) as u8, k as u8);
                }
            }
            let mut sat = vec![0u8; 1 << 16].into_boxed_slice();
            for (k, slot) in sat.iter_mut().enumerate() {
                let (maxc, cr) = ((k >> 8) as u8, k as u8);
                if cr > 0 && cr <= maxc {
                    *slot = sat_byte(maxc, cr);
                }
            }
            HsvTables { hue, sat }
        })
    }

    /// Pillow's HSV bytes of one pixel (grey pixels give `(0, 0, v)`).
    #[inline(always)]
    fn hsv(&self, r: u8, g: u8, b: u8) -> [u8; 3] {
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let (branch, key) = hue_key(r, g, b, maxc);
        let h = self.hue[(branch as usize) << 16 | key];
        let s = self.sat[usize::from(maxc) << 8 | usize::from(maxc - minc)];
        [h, s, maxc]
    }
}

/// Pillow's 8-bit RGB → HSV of one pixel (`img.convert('HSV')`): hue and
/// saturation scaled to `0..=255` and truncated, value = max channel.
pub fn rgb_to_hsv(px: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = px;
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if maxc == minc {
        return [0, 0, maxc];
    }
    let (branch, key) = hue_key(r, g, b, maxc);
    let h = hue_byte(branch, (key >> 8) as u8, key as u8);
    [h, sat_byte(maxc, maxc - minc), maxc]
}

/// Pillow's HSV → RGB per-hue constants: the sector `i = floor(h·6/255)`
/// (mod 6) and the float fraction `f`.
#[derive(Clone, Copy)]
struct HueSector {
    /// `i % 6`.
    sector: u8,
    /// `f`, as Pillow stores it (a float).
    f: f32,
}

impl HueSector {
    #[inline(always)]
    fn new(h: u8) -> Self {
        let hf = f64::from(f32::from(h)) * 6.0 / 255.0;
        // hf ∈ [0, 6]: truncation is floor.
        let i = hf as i32;
        let f = (hf - f64::from(i as f32)) as f32;
        Self {
            sector: (i % 6) as u8,
            f,
        }
    }
}

/// Pillow's `fs = s / 255.0` as a float.
#[inline(always)]
fn sat_fraction(s: u8) -> f32 {
    (f64::from(f32::from(s)) / 255.0) as f32
}

/// `[p, q, t]` of Pillow's `hsv2rgb_row` for one pixel, given the hue's
/// [`HueSector`] fraction `f` and the saturation's [`sat_fraction`] `fs`
/// (`fs == 0` gives `[v, v, v]`, as Pillow's grey shortcut does).
#[inline(always)]
fn pqt(f: f32, fs: f32, v: u8) -> [u8; 3] {
    let vd = f64::from(v);
    let p = round_nonneg(vd * (1.0 - f64::from(fs)));
    let q = round_nonneg(vd * (1.0 - f64::from(fs * f)));
    let t = round_nonneg(vd * (1.0 - f64::from(fs) * (1.0 - f64::from(f))));
    [p, q, t]
}

/// For each sector, where each output channel comes from in `[v, p, q, t]`.
const SECTOR_PICK: [[u8; 3]; 6] = [
    [0, 3, 1], // v, t, p
    [2, 0, 1], // q, v, p
    [1, 0, 3], // p, v, t
    [1, 2, 0], // p, q, v
    [3, 1, 0], // t, p, v
    [0, 1, 2], // v, p, q
];

/// Pillow's 8-bit HSV → RGB of one pixel (`Image.merge('HSV', …)
/// .convert('RGB')`), sector by sector with round-half-away-from-zero.
pub fn hsv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let [h, s, v] = hsv;
    if s == 0 {
        return [v, v, v];
    }
    let hs = HueSector::new(h);
    let [p, q, t] = pqt(hs.f, sat_fraction(s), v);
    let vals = [v, p, q, t];
    SECTOR_PICK[usize::from(hs.sector)].map(|k| vals[usize::from(k)])
}

/// numpy's `np.int32(factor * 255).astype(np.uint8)` (truncation, then
/// wrap), after checking `factor ∈ [-0.5, 0.5]`.
fn hue_shift(factor: f64) -> Result<u8> {
    if !(-0.5..=0.5).contains(&factor) {
        return Err(DataError::InvalidArgument(format!(
            "hue factor must lie in [-0.5, 0.5], got {factor}"
        )));
    }
    Ok(((factor * 255.0) as i32).rem_euclid(256) as u8)
}

/// In place hue shift of interleaved RGB bytes: Pillow RGB → HSV (table
/// lookups), hue byte `+ shift` (wrapping), HSV → RGB with the per-hue and
/// per-saturation constants tabulated once per call. Grey pixels
/// (`s == 0`) come back unchanged either way.
#[inline(always)]
fn hue_in_place(buf: &mut [u8], shift: u8) {
    let tables = HsvTables::get();
    // Indexed by the unshifted hue byte: the shifted hue's fraction `f`,
    // `1 − f` in double, and its sector's `SECTOR_PICK` row.
    let sectors: [(f32, f64, [u8; 3]); 256] = std::array::from_fn(|h| {
        let hs = HueSector::new((h as u8).wrapping_add(shift));
        (
            hs.f,
            1.0 - f64::from(hs.f),
            SECTOR_PICK[usize::from(hs.sector)],
        )
    });
    // Indexed by the saturation byte: `fs` and `fs` in double.
    let fracs: [(f32, f64); 256] = std::array::from_fn(|s| {
        let fs = sat_fraction(s as u8);
        (fs, f64::from(fs))
    });
    // Per block: lookups (scalar), then `hsv2rgb_row`'s three products and
    // roundings over the block (vectorisable), then the sector's shuffle.
    let mut vd = [0f64; BLOCK];
    let mut kp = [0f64; BLOCK];
    let mut kq = [0f64; BLOCK];
    let mut kt = [0f64; BLOCK];
    let mut picks = [[0u8; 3]; BLOCK];
    let mut pqt = [[0u8; BLOCK]; 3];
    for chunk in buf.chunks_mut(3 * BLOCK) {
        for (i, px) in chunk.chunks_exact(3).enumerate() {
            let [h, s, v] = tables.hsv(px[0], px[1], px[2]);
            let (f, one_minus_f, pick) = sectors[usize::from(h)];
            let (fs, fsd) = fracs[usize::from(s)];
            vd[i] = f64::from(v);
            kp[i] = 1.0 - fsd;
            kq[i] = 1.0 - f64::from(fs * f);
            kt[i] = 1.0 - fsd * one_minus_f;
            picks[i] = pick;
        }
        for i in 0..BLOCK {
            pqt[0][i] = round_nonneg(vd[i] * kp[i]);
            pqt[1][i] = round_nonneg(vd[i] * kq[i]);
            pqt[2][i] = round_nonneg(vd[i] * kt[i]);
        }
        for (i, px) in chunk.chunks_exact_mut(3).enumerate() {
            let vals = [px[0].max(px[1]).max(px[2]), pqt[0][i], pqt[1][i], pqt[2][i]];
            let pick = picks[i];
            px[0] = vals[usize::from(pick[0] & 3)];
            px[1] = vals[usize::from(pick[1] & 3)];
            px[2] = vals[usize::from(pick[2] & 3)];
        }
    }
}

/// torchvision `adjust_hue` on PIL: convert to Pillow's 8-bit HSV, add
/// `trunc(factor · 255)` to the hue byte with wrap-around, convert back.
/// `factor` must lie in `[-0.5, 0.5]`.
pub fn adjust_hue(img: &RgbImage, factor: f64) -> Result<RgbImage> {
    JitterParams::only(|p| p.hue = Some(factor)).apply(img)
}

/// Pillow `ImageOps.solarize(img, threshold)`: every channel value
/// `≥ threshold` becomes `255 − value` (DINO / CION use 128).
pub fn solarize(img: &RgbImage, threshold: u8) -> RgbImage {
    let mut out = img.clone();
    for v in out.iter_mut() {
        if *v >= threshold {
            *v = 255 - *v;
        }
    }
    out
}

/// One of the four colour-jitter operations, in torchvision's numbering
/// (`fn_idx` values 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterOp {
    /// 0: brightness.
    Brightness,
    /// 1: contrast.
    Contrast,
    /// 2: saturation.
    Saturation,
    /// 3: hue.
    Hue,
}

impl JitterOp {
    /// The op with torchvision's index `i` (0–3; larger values map to hue).
    pub fn from_index(i: usize) -> Self {
        match i {
            0 => JitterOp::Brightness,
            1 => JitterOp::Contrast,
            2 => JitterOp::Saturation,
            _ => JitterOp::Hue,
        }
    }
}

/// The parameters of one colour-jitter draw: the order of the four ops and
/// each factor (`None` = that op is disabled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterParams {
    /// Application order (a permutation of the four ops).
    pub order: [JitterOp; 4],
    /// Brightness factor.
    pub brightness: Option<f64>,
    /// Contrast factor.
    pub contrast: Option<f64>,
    /// Saturation factor.
    pub saturation: Option<f64>,
    /// Hue shift in `[-0.5, 0.5]`.
    pub hue: Option<f64>,
}

impl JitterParams {
    /// Applies the ops in `order`, skipping disabled ones (torchvision
    /// `ColorJitter.forward`). Errors when the hue factor is out of range.
    pub fn apply(&self, img: &RgbImage) -> Result<RgbImage> {
        // Checked up front: an out-of-range hue fails whatever the order.
        let shift = self.hue.map(hue_shift).transpose()?;
        Ok(self.with_shift(img, shift))
    }

    /// No op enabled (every factor `None`), in the order brightness,
    /// contrast, saturation, hue, then `set` applied: one op on its own.
    fn only(set: impl FnOnce(&mut Self)) -> Self {
        let mut p = Self {
            order: [0, 1, 2, 3].map(JitterOp::from_index),
            brightness: None,
            contrast: None,
            saturation: None,
            hue: None,
        };
        set(&mut p);
        p
    }

    /// [`JitterParams::apply`] without a hue (which is the only op that
    /// can fail).
    fn apply_unchecked(&self, img: &RgbImage) -> RgbImage {
        debug_assert!(self.hue.is_none());
        self.with_shift(img, None)
    }

    /// The ops on a copy of `img`, `shift` being the checked hue shift: the
    /// AVX2 build where the CPU has it (the same bytes, tested), else the
    /// plain one.
    fn with_shift(&self, img: &RgbImage, shift: Option<u8>) -> RgbImage {
        let mut out = img.clone();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.apply_in_place_avx2(&mut out, shift) };
            return out;
        }
        self.apply_in_place(&mut out, shift);
        out
    }

    /// [`JitterParams::apply_in_place`] compiled with AVX2: the same
    /// arithmetic (Pillow's), wider vectors, rounding without library calls.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_in_place_avx2(&self, buf: &mut [u8], shift: Option<u8>) {
        self.apply_in_place(buf, shift);
    }

    /// The ops in `order` on interleaved RGB bytes; `shift` is the checked
    /// hue shift.
    #[inline(always)]
    fn apply_in_place(&self, buf: &mut [u8], shift: Option<u8>) {
        for op in self.order {
            match op {
                JitterOp::Brightness => {
                    if let Some(f) = self.brightness {
                        brightness_in_place(buf, f);
                    }
                }
                JitterOp::Contrast => {
                    if let Some(f) = self.contrast {
                        contrast_in_place(buf, f);
                    }
                }
                JitterOp::Saturation => {
                    if let Some(f) = self.saturation {
                        saturation_in_place(buf, f);
                    }
                }
                JitterOp::Hue => {
                    if let Some(s) = shift {
                        hue_in_place(buf, s);
                    }
                }
            }
        }
    }
}

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: factors
/// drawn uniformly from `[max(0, 1 − b), 1 + b]` (likewise contrast and
/// saturation) and `[−hue, hue]`, applied in a uniformly random order. A
/// strength of 0 disables that op. Defaults of the DINO / CION recipe:
/// `(0.4, 0.4, 0.2, 0.1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness strength `b` (≥ 0).
    pub brightness: f64,
    /// Contrast strength (≥ 0).
    pub contrast: f64,
    /// Saturation strength (≥ 0).
    pub saturation: f64,
    /// Hue strength, `0 ..= 0.5`.
    pub hue: f64,
}

impl Default for ColorJitter {
    fn default() -> Self {
        Self {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.2,
            hue: 0.1,
        }
    }
}

impl ColorJitter {
    /// Errors when a strength is negative / not finite or `hue > 0.5`.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("hue", self.hue),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(DataError::InvalidArgument(format!(
                    "ColorJitter {name} must be a finite value >= 0, got {v}"
                )));
            }
        }
        if self.hue > 0.5 {
            return Err(DataError::InvalidArgument(format!(
                "ColorJitter hue must be <= 0.5, got {}",
                self.hue
            )));
        }
        Ok(())
    }

    /// Draws one set of parameters (torchvision `ColorJitter.get_params`:
    /// a random permutation of the four ops, then the enabled factors).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> JitterParams {
        let mut idx = [0usize, 1, 2, 3];
        idx.shuffle(rng);
        let factor = |s: f64, rng: &mut R| {
            (s > 0.0).then(|| {
                let lo = (1.0 - s).max(0.0);
                let hi = 1.0 + s;
                lo + (hi - lo) * rng.random::<f64>()
            })
        };
        let brightness = factor(self.brightness, rng);
        let contrast = factor(self.contrast, rng);
        let saturation = factor(self.saturation, rng);
        let hue = (self.hue > 0.0).then(|| self.hue * (2.0 * rng.random::<f64>() - 1.0));
        JitterParams {
            order: idx.map(JitterOp::from_index),
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}

/// The straightforward per-pixel implementation the fast kernels replaced,
/// kept as the reference they must match byte for byte.
#[cfg(test)]
mod reference {
    use image::{Rgb, RgbImage};

    use super::{luma, mean_luma};

    fn blend_byte(degenerate: u8, image: u8, alpha: f32) -> u8 {
        let a = f32::from(degenerate);
        let v = a + alpha * (f32::from(image) - a);
        if (0.0..=1.0).contains(&alpha) {
            v as u8
        } else if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            v as u8
        }
    }

    fn blend_with(img: &RgbImage, alpha: f64, degenerate: impl Fn([u8; 3]) -> [u8; 3]) -> RgbImage {
        let alpha = alpha as f32;
        let mut out = img.clone();
        if alpha == 1.0 {
            return out;
        }
        for p in out.pixels_mut() {
            let d = degenerate(p.0);
            if alpha == 0.0 {
                *p = Rgb(d);
            } else {
                *p = Rgb(std::array::from_fn(|c| blend_byte(d[c], p.0[c], alpha)));
            }
        }
        out
    }

    pub fn adjust_brightness(img: &RgbImage, factor: f64) -> RgbImage {
        blend_with(img, factor, |_| [0; 3])
    }

    pub fn adjust_contrast(img: &RgbImage, factor: f64) -> RgbImage {
        let m = mean_luma(img);
        blend_with(img, factor, |_| [m; 3])
    }

    pub fn adjust_saturation(img: &RgbImage, factor: f64) -> RgbImage {
        blend_with(img, factor, |p| [luma(p); 3])
    }

    pub fn rgb_to_hsv(px: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = px;
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        if maxc == minc {
            return [0, 0, maxc];
        }
        let cr = f32::from(maxc - minc);
        let s = cr / f32::from(maxc);
        let rc = f32::from(maxc - r) / cr;
        let gc = f32::from(maxc - g) / cr;
        let bc = f32::from(maxc - b) / cr;
        let h: f32 = if r == maxc {
            bc - gc
        } else if g == maxc {
            ((2.0 + f64::from(rc)) - f64::from(bc)) as f32
        } else {
            ((4.0 + f64::from(gc)) - f64::from(rc)) as f32
        };
        let h = ((f64::from(h) / 6.0 + 1.0) % 1.0) as f32;
        let uh = ((f64::from(h) * 255.0) as i32).clamp(0, 255) as u8;
        let us = ((f64::from(s) * 255.0) as i32).clamp(0, 255) as u8;
        [uh, us, maxc]
    }

    pub fn hsv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
        let [h, s, v] = hsv;
        if s == 0 {
            return [v, v, v];
        }
        let hf = f64::from(f32::from(h)) * 6.0 / 255.0;
        let i = hf.floor() as i32;
        let f = (hf - f64::from(i as f32)) as f32;
        let fs = (f64::from(f32::from(s)) / 255.0) as f32;
        let vd = f64::from(f32::from(v));
        let clip = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
        let p = clip(vd * (1.0 - f64::from(fs)));
        let q = clip(vd * (1.0 - f64::from(fs * f)));
        let t = clip(vd * (1.0 - f64::from(fs) * (1.0 - f64::from(f))));
        match i % 6 {
            0 => [v, t, p],
            1 => [q, v, p],
            2 => [p, v, t],
            3 => [p, q, v],
            4 => [t, p, v],
            _ => [v, p, q],
        }
    }

    pub fn adjust_hue(img: &RgbImage, factor: f64) -> RgbImage {
        assert!((-0.5..=0.5).contains(&factor));
        let shift = ((factor * 255.0) as i32).rem_euclid(256) as u8;
        let mut out = img.clone();
        for p in out.pixels_mut() {
            let [h, s, v] = rgb_to_hsv(p.0);
            *p = Rgb(hsv_to_rgb([h.wrapping_add(shift), s, v]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random image: uniform noise, a smooth gradient or few-valued
    /// (grey-heavy, saturated, near-grey) pixels, to hit every branch.
    fn random_image(rng: &mut impl Rng, kind: u32) -> RgbImage {
        let w = rng.random_range(1..40u32);
        let h = rng.random_range(1..40u32);
        let base: [u8; 3] = rng.random();
        RgbImage::from_fn(w, h, |x, y| match kind % 4 {
            0 => Rgb(rng.random()),
            1 => Rgb(std::array::from_fn(|c| {
                (u32::from(base[c]) + x * (c as u32 + 1) + y * 3) as u8
            })),
            2 => {
                let v: u8 = rng.random();
                let d: [u8; 3] = std::array::from_fn(|_| rng.random_range(0..3u8));
                Rgb(d.map(|e| v.saturating_add(e)))
            }
            _ => Rgb(std::array::from_fn(|_| {
                [0u8, 1, 127, 128, 254, 255][rng.random_range(0..6)]
            })),
        })
    }

    /// Factors covering Pillow's shortcuts (0, 1), the interpolation and the
    /// extrapolation branches, and big values.
    fn random_factor(rng: &mut impl Rng) -> f64 {
        match rng.random_range(0..6) {
            0 => 0.0,
            1 => 1.0,
            2 => rng.random::<f64>(),
            3 => 1.0 + rng.random::<f64>(),
            4 => rng.random::<f64>() * 20.0,
            _ => [0.5, 1.5, 2.0, 1e-7, 1.0 + 1e-7, 255.0][rng.random_range(0..6)],
        }
    }

    /// Runs `check` on every one of the 2^24 byte triples.
    fn every_triple(check: impl Fn([u8; 3])) {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    check([a, b, c]);
                }
            }
        }
    }

    #[test]
    fn rgb_to_hsv_matches_reference_everywhere() {
        every_triple(|px| assert_eq!(rgb_to_hsv(px), reference::rgb_to_hsv(px), "{px:?}"));
    }

    #[test]
    fn hsv_tables_match_reference_everywhere() {
        let tables = HsvTables::get();
        every_triple(|[r, g, b]| {
            assert_eq!(
                tables.hsv(r, g, b),
                reference::rgb_to_hsv([r, g, b]),
                "{r} {g} {b}"
            );
        });
    }

    #[test]
    fn hsv_to_rgb_matches_reference_everywhere() {
        every_triple(|hsv| assert_eq!(hsv_to_rgb(hsv), reference::hsv_to_rgb(hsv), "{hsv:?}"));
    }

    #[test]
    fn hue_matches_reference_for_every_shift() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // Every reachable shift byte, plus the range ends and 0.
        let mut factors: Vec<f64> = (-127..=127).map(|k| f64::from(k) / 255.0).collect();
        factors.extend([-0.5, 0.5, 0.0, -0.0, 0.1, -0.1, 0.4999, -0.4999]);
        for (i, &fac) in factors.iter().enumerate() {
            let img = random_image(&mut rng, i as u32);
            let ours = adjust_hue(&img, fac).unwrap();
            assert_eq!(ours, reference::adjust_hue(&img, fac), "hue {fac}");
        }
    }

    #[test]
    fn blends_match_reference() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        for i in 0..600u32 {
            let img = random_image(&mut rng, i);
            let fac = random_factor(&mut rng);
            assert_eq!(
                adjust_brightness(&img, fac),
                reference::adjust_brightness(&img, fac),
                "brightness {fac}"
            );
            assert_eq!(
                adjust_contrast(&img, fac),
                reference::adjust_contrast(&img, fac),
                "contrast {fac}"
            );
            assert_eq!(
                adjust_saturation(&img, fac),
                reference::adjust_saturation(&img, fac),
                "saturation {fac}"
            );
        }
    }

    #[test]
    fn jitter_matches_reference_composition() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let strong = ColorJitter {
            brightness: 0.8,
            contrast: 3.0,
            saturation: 5.0,
            hue: 0.5,
        };
        for i in 0..400u32 {
            let img = random_image(&mut rng, i);
            let mut p = if i % 2 == 0 {
                ColorJitter::default().sample(&mut rng)
            } else {
                strong.sample(&mut rng)
            };
            if i % 7 == 0 {
                p.contrast = None;
            }
            if i % 5 == 0 {
                p.hue = Some(0.0);
            }
            let mut want = img.clone();
            for op in p.order {
                want = match (op, p.brightness, p.contrast, p.saturation, p.hue) {
                    (JitterOp::Brightness, Some(f), ..) => reference::adjust_brightness(&want, f),
                    (JitterOp::Contrast, _, Some(f), ..) => reference::adjust_contrast(&want, f),
                    (JitterOp::Saturation, _, _, Some(f), _) => {
                        reference::adjust_saturation(&want, f)
                    }
                    (JitterOp::Hue, _, _, _, Some(f)) => reference::adjust_hue(&want, f),
                    _ => want,
                };
            }
            assert_eq!(p.apply(&img).unwrap(), want, "{p:?}");
            // The plain build too (`apply` takes the AVX2 one where it can).
            let mut plain = img.clone();
            p.apply_in_place(&mut plain, p.hue.map(|h| hue_shift(h).unwrap()));
            assert_eq!(plain, want, "plain build, {p:?}");
        }
    }

    #[test]
    fn jitter_with_bad_hue_fails_in_any_order() {
        let img = RgbImage::new(3, 2);
        let p = JitterParams {
            order: [
                JitterOp::Hue,
                JitterOp::Brightness,
                JitterOp::Contrast,
                JitterOp::Saturation,
            ],
            brightness: Some(1.2),
            contrast: None,
            saturation: None,
            hue: Some(-0.7),
        };
        assert!(p.apply(&img).is_err());
    }

    #[test]
    fn luma_of_primaries() {
        assert_eq!(luma([255, 255, 255]), 255);
        assert_eq!(luma([0, 0, 0]), 0);
        assert_eq!(luma([255, 0, 0]), 76);
        assert_eq!(luma([0, 255, 0]), 150);
        assert_eq!(luma([0, 0, 255]), 29);
    }

    #[test]
    fn hsv_round_trip_of_grey_and_primaries() {
        for px in [[7, 7, 7], [255, 0, 0], [0, 255, 0], [0, 0, 255]] {
            assert_eq!(hsv_to_rgb(rgb_to_hsv(px)), px);
        }
    }

    #[test]
    fn hue_out_of_range_is_an_error() {
        let img = RgbImage::new(2, 2);
        assert!(adjust_hue(&img, 0.6).is_err());
        assert!(adjust_hue(&img, -0.5).is_ok());
    }

    #[test]
    fn jitter_factors_stay_in_range() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cj = ColorJitter::default();
        for _ in 0..200 {
            let p = cj.sample(&mut rng);
            let b = p.brightness.unwrap();
            assert!((0.6..=1.4).contains(&b));
            let s = p.saturation.unwrap();
            assert!((0.8..=1.2).contains(&s));
            let h = p.hue.unwrap();
            assert!((-0.1..=0.1).contains(&h));
            let mut ids: Vec<u8> = p.order.iter().map(|o| *o as u8).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![0, 1, 2, 3]);
        }
    }
}
