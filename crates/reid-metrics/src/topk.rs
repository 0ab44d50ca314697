//! Stable partial selection and numpy-compatible float32 sums.

/// Writes the `k` smallest entries of `v` into `out` as `(value, index)`, sorted by
/// value and then by index (a stable order). `v` must hold no NaN.
pub(crate) fn smallest_k(v: &[f32], k: usize, out: &mut Vec<(f32, u32)>) {
    out.clear();
    if k == 0 {
        return;
    }
    for (j, &d) in v.iter().enumerate() {
        if out.len() < k {
            let at = out.partition_point(|e| e.0 <= d);
            out.insert(at, (d, j as u32));
        } else if d < out[k - 1].0 {
            out.pop();
            let at = out.partition_point(|e| e.0 <= d);
            out.insert(at, (d, j as u32));
        }
    }
}

/// Sum of `v` in `f32` with numpy's pairwise summation (`pairwise_sum` for float32,
/// blocks of 128 with eight partial sums), so that results match `np.sum` bit for bit.
pub(crate) fn np_sum_f32(v: &[f32]) -> f32 {
    let n = v.len();
    if n < 8 {
        let mut res = 0.0f32;
        for &x in v {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += v[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &v[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum_f32(&v[..n2]) + np_sum_f32(&v[n2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_k_is_stable_on_ties() {
        let v = [3.0, 1.0, 2.0, 1.0, 0.5, 2.0];
        let mut out = Vec::new();
        smallest_k(&v, 4, &mut out);
        let idx: Vec<u32> = out.iter().map(|e| e.1).collect();
        assert_eq!(idx, vec![4, 1, 3, 2]);
        smallest_k(&v, 10, &mut out);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn pairwise_sum_matches_plain_sum_on_exact_values() {
        let v: Vec<f32> = (0..300).map(|i| i as f32).collect();
        assert_eq!(np_sum_f32(&v), (0..300).sum::<i32>() as f32);
        assert_eq!(np_sum_f32(&v[..5]), 10.0);
    }
}
