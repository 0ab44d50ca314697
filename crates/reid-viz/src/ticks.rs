//! Axis ticks: "nice" values (1, 2 or 5 × 10ⁿ steps) and compact labels.

/// About `target` "nice" tick values (steps of 1, 2 or 5 × 10ⁿ) covering
/// `[lo, hi]`; the first tick is ≤ `lo` and the last ≥ `hi`. An empty or
/// degenerate range is padded.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / target.max(2) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        // A span beyond f64 (e.g. -1e308 to 1e308): the ends themselves.
        return vec![lo, hi];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() as i64;
    let end = ((hi / step).ceil() as i64).clamp(start + 1, start.saturating_add(1000));
    (start..=end).map(|i| i as f64 * step).collect()
}

/// The [`nice_ticks`] (about `target`) that fall inside a fixed axis range
/// `a..b` (either order), or the range's two ends when none does.
pub(crate) fn ticks_within(a: f64, b: f64, target: usize) -> Vec<f64> {
    let (lo, hi) = (a.min(b) - 1e-9, a.max(b) + 1e-9);
    let inside: Vec<f64> = nice_ticks(a, b, target)
        .into_iter()
        .filter(|v| *v >= lo && *v <= hi)
        .collect();
    if inside.is_empty() {
        vec![a, b]
    } else {
        inside
    }
}

/// A compact label for a tick value: integers plainly, small or large
/// magnitudes in `1e-4` form, others with up to 3 decimals.
pub fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        if (m - m.round()).abs() < 1e-9 {
            return format!("{}e{e}", m.round());
        }
        return format!("{m:.1}e{e}");
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
