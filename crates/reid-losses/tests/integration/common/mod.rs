//! Fixture reading shared by the parity tests (`tests/fixtures/losses/*.json`,
//! written by the generator scripts in `tools/fixtures/`).
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// Tolerance of every value and gradient comparison.
pub const TOL: f32 = 1e-5;

/// Parses `tests/fixtures/losses/<name>` of the repository.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/losses")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The largest absolute difference of two equally long slices.
pub fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

/// A JSON array of numbers as `f32`.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of integers as `i64`.
pub fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// A JSON array of non-negative integers as `usize`.
pub fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// The device the parity tests run on: `Device::flex()`, unless
/// `REID_TEST_BACKEND` names another backend (`cuda`, `wgpu`): then burn's
/// default device, which `BURN_DEVICE` (set to the same name) pins. Build
/// the tests with that backend compiled in (`--features burn/cuda` or
/// `burn/wgpu`); `tools/gpu_check.sh` does both.
pub fn device() -> burn::tensor::Device {
    match std::env::var("REID_TEST_BACKEND") {
        Ok(name) if !name.is_empty() && name != "flex" => {
            let pinned = std::env::var("BURN_DEVICE").unwrap_or_default();
            assert!(
                pinned.eq_ignore_ascii_case(&name),
                "REID_TEST_BACKEND={name} needs BURN_DEVICE={name} (got {pinned:?})"
            );
            burn::tensor::Device::default()
        }
        _ => burn::tensor::Device::flex(),
    }
}
