//! Resizing the patch part of a position embedding to another token grid
//! with PyTorch's bicubic interpolation (`F.interpolate(mode="bicubic",
//! align_corners=False)`, cubic convolution with `a = −0.75`, edge taps
//! clamped to the border), written as two interpolation matrices so the
//! result stays differentiable with respect to the embedding.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The cubic-convolution coefficient PyTorch uses (`A = −0.75`).
pub const BICUBIC_A: f64 = -0.75;

/// The offset DINO (and TransReID-SSL / CION after it) adds to the target
/// grid before turning it into a scale factor.
pub const DINO_SCALE_OFFSET: f64 = 0.1;

/// How the position embedding is resized when the token grid of the input
/// differs from the one it was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PosEmbedInterpolation {
    /// The upstream behaviour (DINO's `interpolate_pos_encoding`, used by
    /// TransReID-SSL's and CION's ICS ViT): PyTorch bicubic with
    /// `scale_factor = ((h + 0.1) / H₀, (w + 0.1) / W₀)`. PyTorch then maps
    /// output pixel `o` to source `(o + 0.5)·H₀/(h + 0.1) − 0.5` rather than
    /// `(o + 0.5)·H₀/h − 0.5`, so the result differs slightly from a resize
    /// to the size `(h, w)`. The grid is also resized whenever the input
    /// image size differs from the configured one, even if the token grid
    /// is the same. (`h`, `w` here are the token grid of the stem; upstream
    /// uses `H // 16`, the same number except when `H mod 16 = 15`, where
    /// upstream's shapes do not match and it fails.)
    DinoScaleFactor,
    /// [`PosEmbedInterpolation::DinoScaleFactor`] at **every** input size,
    /// the configured one included: a ViT fine-tuned by CION's TransReID
    /// code (CION_ReIDZoo 7ac6fd7,
    /// `CION_Finetune/TransReID/model/backbones/Vision_Transformer.py`)
    /// gets its `img_size` as yacs' list `[256, 128]`, and its "no resize"
    /// test `self.img_size == (h, w)` compares that list with a tuple, which
    /// is never equal. The resize to the same grid is not the identity (the
    /// scale factor is `(h + 0.1)/h`): the position embedding such a model
    /// was fine-tuned and tested with. [`crate::import::load_vit`] selects
    /// it for TransReID files.
    DinoScaleFactorAlways,
    /// Bicubic resize to the size `(h, w)` (`F.interpolate(size=(h, w),
    /// mode="bicubic", align_corners=False)`); the embedding is used as is
    /// when the token grid matches.
    Size,
}

fn cubic_inner(x: f64, a: f64) -> f64 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic_outer(x: f64, a: f64) -> f64 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// The bicubic interpolation matrix `[out_size, in_size]` (row-major): row
/// `o` holds the weights of the input samples that make output sample `o`.
///
/// `source_scale` maps output to input coordinates (`src = source_scale ·
/// (o + 0.5) − 0.5`): `in_size / out_size` for a resize to a size, `1 / s`
/// for a scale factor `s`. Taps outside `[0, in_size)` use the border
/// sample, as PyTorch does.
pub fn bicubic_matrix(in_size: usize, out_size: usize, source_scale: f64) -> Vec<f64> {
    let mut m = vec![0.0; in_size * out_size];
    if in_size == 0 {
        return m;
    }
    let last = in_size as i64 - 1;
    for o in 0..out_size {
        let real = source_scale * (o as f64 + 0.5) - 0.5;
        let base = real.floor();
        let t = real - base;
        let coeffs = [
            cubic_outer(t + 1.0, BICUBIC_A),
            cubic_inner(t, BICUBIC_A),
            cubic_inner(1.0 - t, BICUBIC_A),
            cubic_outer(2.0 - t, BICUBIC_A),
        ];
        for (k, c) in coeffs.iter().enumerate() {
            let idx = (base as i64 - 1 + k as i64).clamp(0, last) as usize;
            m[o * in_size + idx] += c;
        }
    }
    m
}

/// The source-coordinate scales `(height, width)` of a resize of the grid
/// `from` to `to` under `mode`.
pub fn source_scales(from: [usize; 2], to: [usize; 2], mode: PosEmbedInterpolation) -> [f64; 2] {
    let scale = |f: usize, t: usize| match mode {
        PosEmbedInterpolation::DinoScaleFactor | PosEmbedInterpolation::DinoScaleFactorAlways => {
            // PyTorch receives s = (t + 0.1) / f and uses 1 / s.
            1.0 / ((t as f64 + DINO_SCALE_OFFSET) / f as f64)
        }
        PosEmbedInterpolation::Size => f as f64 / t as f64,
    };
    [scale(from[0], to[0]), scale(from[1], to[1])]
}

fn matrix_tensor(m: Vec<f64>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = m.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// The bilinear interpolation matrix `[out_size, in_size]` of a resize to
/// a size with `align_corners=False` (PyTorch `F.interpolate(size=…,
/// mode="bilinear")`): source `max(0, (o + 0.5)·in/out − 0.5)`, the upper
/// neighbour clamped to the border.
pub fn bilinear_matrix(in_size: usize, out_size: usize) -> Vec<f64> {
    let mut m = vec![0.0; in_size * out_size];
    if in_size == 0 || out_size == 0 {
        return m;
    }
    let scale = in_size as f64 / out_size as f64;
    for o in 0..out_size {
        let src = (scale * (o as f64 + 0.5) - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(in_size - 1);
        let i1 = (i0 + 1).min(in_size - 1);
        let l1 = src - i0 as f64;
        m[o * in_size + i0] += 1.0 - l1;
        m[o * in_size + i1] += l1;
    }
    m
}

/// Applies the separable interpolation matrices `wh` `[to_h, from_h]` and
/// `ww` `[to_w, from_w]` to a grid `[from_h · from_w, dim]` (row-major).
fn resize_grid(
    patch_pos: Tensor<2>,
    from: [usize; 2],
    to: [usize; 2],
    wh: Vec<f64>,
    ww: Vec<f64>,
) -> Tensor<2> {
    let [_, dim] = patch_pos.dims();
    let device = patch_pos.device();
    let [fh, fw] = from;
    let [th, tw] = to;
    let wh = matrix_tensor(wh, th, fh, &device);
    let ww = matrix_tensor(ww, tw, fw, &device);
    // Rows: [th, fw·dim].
    let rows = wh.matmul(patch_pos.reshape([fh, fw * dim]));
    // Columns: [th·dim, fw] × [fw, tw].
    let cols = rows
        .reshape([th, fw, dim])
        .swap_dims(1, 2)
        .reshape([th * dim, fw])
        .matmul(ww.transpose());
    cols.reshape([th, dim, tw])
        .swap_dims(1, 2)
        .reshape([th * tw, dim])
}

/// Resizes a patch position embedding `[from_h · from_w, dim]` (row-major
/// grid) to `[to_h · to_w, dim]` bicubically with the given
/// source-coordinate scales (see [`source_scales`]).
pub fn resize_patch_pos_embed(
    patch_pos: Tensor<2>,
    from: [usize; 2],
    to: [usize; 2],
    scales: [f64; 2],
) -> Tensor<2> {
    let wh = bicubic_matrix(from[0], to[0], scales[0]);
    let ww = bicubic_matrix(from[1], to[1], scales[1]);
    resize_grid(patch_pos, from, to, wh, ww)
}

/// Resizes a patch position embedding `[from_h · from_w, dim]` to
/// `[to_h · to_w, dim]` bilinearly (`F.interpolate(size=(to_h, to_w),
/// mode="bilinear", align_corners=False)`), as CION's and TransReID's
/// fine-tuning code does when loading a checkpoint into a model built for
/// another image size.
pub fn resize_patch_pos_embed_bilinear(
    patch_pos: Tensor<2>,
    from: [usize; 2],
    to: [usize; 2],
) -> Tensor<2> {
    let wh = bilinear_matrix(from[0], to[0]);
    let ww = bilinear_matrix(from[1], to[1]);
    resize_grid(patch_pos, from, to, wh, ww)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_scale_gives_identity_matrix_and_rows_sum_to_one() {
        let m = bicubic_matrix(5, 5, 1.0);
        for o in 0..5 {
            for i in 0..5 {
                let want = if o == i { 1.0 } else { 0.0 };
                assert!((m[o * 5 + i] - want).abs() < 1e-12, "{o} {i}");
            }
        }
        let m = bicubic_matrix(4, 7, 4.0 / 7.0);
        for o in 0..7 {
            let s: f64 = m[o * 4..(o + 1) * 4].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn dino_scale_differs_from_size_scale() {
        let [a, _] = source_scales([16, 8], [8, 4], PosEmbedInterpolation::DinoScaleFactor);
        let [b, _] = source_scales([16, 8], [8, 4], PosEmbedInterpolation::Size);
        assert!((a - 16.0 / 8.1).abs() < 1e-12);
        assert_eq!(b, 2.0);
    }
}
