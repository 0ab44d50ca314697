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

/// Asserts that `got` matches the fixture array `want` element by element
/// within [`TOL`]; prints the largest difference under `what`.
pub fn assert_matches_torch<const D: usize>(
    what: &str,
    got: burn::tensor::Tensor<D>,
    want: &Value,
) {
    let got: Vec<f32> = got.to_data().iter::<f32>().collect();
    let worst = max_diff(&got, &floats(want));
    assert!(worst <= TOL, "{what}: max |rust − torch| = {worst}");
    eprintln!("{what}: max |diff| = {worst:e}");
}

/// Asserts that the gradient `grads` holds for `x` matches the fixture
/// gradient `want` (see [`assert_matches_torch`]).
pub fn assert_grad_matches_torch<const D: usize>(
    what: &str,
    x: &burn::tensor::Tensor<D>,
    grads: &burn::tensor::Gradients,
    want: &Value,
) {
    assert_matches_torch(what, x.grad(grads).unwrap(), want);
}

/// Asserts that `err` is a [`reid_losses::LossError::InvalidParameter`]
/// about the parameter `name`.
pub fn assert_invalid_parameter(err: &reid_losses::LossError, name: &str) {
    assert!(
        matches!(err, reid_losses::LossError::InvalidParameter { name: got, .. } if *got == name),
        "expected an invalid {name}, got {err}"
    );
}

/// Asserts that the scalar `loss` (`[1]`) is within [`TOL`] of the fixture
/// value `want`.
pub fn assert_loss_matches_torch(what: &str, loss: &burn::tensor::Tensor<1>, want: &Value) {
    let value: f32 = loss.to_data().iter::<f32>().next().unwrap();
    let want = want.as_f64().unwrap() as f32;
    assert!(
        (value - want).abs() <= TOL,
        "{what}: loss {value} vs torch {want}"
    );
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
