//! Window multi-head self-attention with a relative position bias, and the
//! index / mask tables it needs.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::linear::TorchLinear;
use crate::layers::transformer::split_qkv;

/// The additive mask value of the shifted-window attention between tokens of
/// different shift regions (the official code uses −100, not −∞).
pub const REGION_MASK_VALUE: f32 = -100.0;

/// The relative position index of a `window × window` window:
/// `[window², window²]` flattened row-major (row = query token), each entry
/// `(Δh + window − 1)·(2·window − 1) + (Δw + window − 1)` with
/// `Δ = query − key` coordinates; it indexes the `(2·window − 1)²` rows of
/// the bias table. This is the official `relative_position_index` buffer.
pub fn relative_position_index(window: usize) -> Vec<i64> {
    let n = window * window;
    let side = 2 * window as i64 - 1;
    let w = window as i64;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n as i64 {
        let (hi, wi) = (i / w, i % w);
        for j in 0..n as i64 {
            let (hj, wj) = (j / w, j % w);
            index.push((hi - hj + w - 1) * side + (wi - wj + w - 1));
        }
    }
    index
}

/// The shifted-window attention mask of a padded `padded_h × padded_w` map:
/// `[num_windows, window², window²]` (windows row-major), 0 between tokens of
/// the same shift region and [`REGION_MASK_VALUE`] otherwise.
///
/// Regions along each axis of length `p` are `[0, p − window)`,
/// `[p − window, p − shift)` and `[p − shift, p)`; a token's region is
/// `3·row_region + col_region`. Padded tokens get regions like any other, so
/// they are *not* masked from real tokens of the same region (the official
/// detection code's behaviour).
pub fn shifted_window_mask(
    padded_h: usize,
    padded_w: usize,
    window: usize,
    shift: usize,
) -> Vec<f32> {
    let region = |i: usize, p: usize| -> usize {
        if i + window < p {
            0
        } else if i + shift < p {
            1
        } else {
            2
        }
    };
    let (nh, nw) = (padded_h / window, padded_w / window);
    let n = window * window;
    let mut mask = Vec::with_capacity(nh * nw * n * n);
    for wy in 0..nh {
        for wx in 0..nw {
            let labels: Vec<usize> = (0..n)
                .map(|t| {
                    let (y, x) = (wy * window + t / window, wx * window + t % window);
                    3 * region(y, padded_h) + region(x, padded_w)
                })
                .collect();
            for &a in &labels {
                for &b in &labels {
                    mask.push(if a == b { 0.0 } else { REGION_MASK_VALUE });
                }
            }
        }
    }
    mask
}

/// Window attention (`attn` of a Swin block): `qkv` `[dim → 3·dim]`, scaled
/// dot products plus the relative position bias, optional additive mask,
/// softmax, `proj` `[dim → dim]`.
///
/// PyTorch names: `relative_position_bias_table` `[(2w−1)², heads]`, `qkv`,
/// `proj`; the `relative_position_index` buffer of the official code is not a
/// parameter here (it is recomputed, and checked on import).
#[derive(Module, Debug)]
pub struct WindowAttention {
    /// Learned bias per relative offset and head, `[(2·window − 1)², heads]`.
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// Query/key/value projection, `[3·dim, dim]` (+ bias when `qkv_bias`).
    pub qkv: TorchLinear,
    /// Output projection `[dim, dim]` with bias.
    pub proj: TorchLinear,
    /// Number of heads.
    pub num_heads: usize,
    /// Window side in tokens.
    pub window_size: usize,
    /// [`relative_position_index`] of the window, flattened.
    #[module(skip)]
    pub index: Vec<i64>,
}

impl WindowAttention {
    /// A layer of `dim` channels split into `num_heads` heads over
    /// `window × window` windows; bias table ~ N(0, 0.02²).
    pub fn new(
        dim: usize,
        num_heads: usize,
        window: usize,
        qkv_bias: bool,
        device: &Device,
    ) -> Self {
        let side = 2 * window - 1;
        let table = Tensor::random(
            [side * side, num_heads],
            Distribution::Normal(0.0, 0.02),
            device,
        );
        Self {
            relative_position_bias_table: Param::from_tensor(table),
            qkv: TorchLinear::new(dim, 3 * dim, qkv_bias, device),
            proj: TorchLinear::new(dim, dim, true, device),
            num_heads,
            window_size: window,
            index: relative_position_index(window),
        }
    }

    /// The bias added to the attention logits, `[1, heads, N, N]` with
    /// `N = window²`.
    pub fn position_bias(&self) -> Tensor<4> {
        let table = self.relative_position_bias_table.val();
        let n = self.window_size * self.window_size;
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(self.index.clone(), [n * n]),
            &table.device(),
        );
        table
            .select(0, index)
            .reshape([n, n, self.num_heads])
            .permute([2, 0, 1])
            .unsqueeze()
    }

    /// Attends within each window.
    ///
    /// - `x`: `[batch·num_windows, N, dim]`, windows of one image
    ///   consecutive;
    /// - `mask`: `[num_windows, N, N]` additive mask (shifted blocks) or
    ///   `None`;
    /// - returns `[batch·num_windows, N, dim]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<3>>) -> Tensor<3> {
        let [bw, n, c] = x.dims();
        let heads = self.num_heads;
        let hd = c / heads;
        let [q, k, v] = split_qkv(self.qkv.forward(x), [bw, n, heads, hd]);
        let q = q * (hd as f64).powf(-0.5);
        let mut logits = q.matmul(k.swap_dims(2, 3)) + self.position_bias();
        if let Some(mask) = mask {
            let [nw, _, _] = mask.dims();
            logits = (logits.reshape([bw / nw, nw, heads, n, n]) + mask.reshape([1, nw, 1, n, n]))
                .reshape([bw, heads, n, n]);
        }
        let out = softmax(logits, 3).matmul(v);
        self.proj.forward(out.swap_dims(1, 2).reshape([bw, n, c]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_index_matches_the_official_formula_at_the_corners() {
        let idx = relative_position_index(2);
        // 4 tokens, table side 3: (0,0)-(1,1) offset (-1,-1) → 0; diagonal → 4.
        assert_eq!(idx.len(), 16);
        assert_eq!(idx[0], 4);
        assert_eq!(idx[3], 0);
        assert_eq!(idx[3 * 4], 8);
        assert!(idx.iter().all(|&i| (0..9).contains(&i)));
    }

    #[test]
    fn shifted_mask_separates_regions_of_a_single_window() {
        // One 4×4 window, shift 2: four 2×2 regions.
        let m = shifted_window_mask(4, 4, 4, 2);
        assert_eq!(m.len(), 256);
        // token 0 (0,0) and token 1 (0,1): same region.
        assert_eq!(m[1], 0.0);
        // token 0 and token 2 (0,2): different column region.
        assert_eq!(m[2], REGION_MASK_VALUE);
        // token 0 and token 8 (2,0): different row region.
        assert_eq!(m[8], REGION_MASK_VALUE);
    }
}
