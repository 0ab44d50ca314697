#![allow(dead_code)] // each test module uses a part of these helpers
//! Shared by the parity tests: reading a family's fixture folder
//! (`tests/fixtures/backbones/<family>/`, written by `tools/fixtures/gen_*_fixtures.py`),
//! manifest values, and the relative-error measure of the tolerance. The
//! generic harness of the family tests is [`family`].

pub mod conv_path;
#[macro_use]
pub mod family;

use std::path::PathBuf;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use serde_json::Value;

/// The fixture folder of `family` (`"edgenext"`, …).
pub fn fixture_dir(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/backbones")
        .join(family)
}

/// `manifest.json` of `family`'s fixtures.
pub fn fixture_manifest(family: &str) -> Value {
    let path = fixture_dir(family).join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad {}: {e}", path.display()))
}

/// A float32 `.npy` array of `family`'s fixtures.
pub fn fixture_npy(family: &str, name: &str) -> ArrayD<f32> {
    let path = fixture_dir(family).join(name);
    read_npy(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `dir()`, `manifest()` and `npy(name)` for one family's fixtures.
#[macro_export]
macro_rules! fixture_fns {
    ($family:literal) => {
        #[allow(dead_code)]
        fn dir() -> std::path::PathBuf {
            common::fixture_dir($family)
        }

        #[allow(dead_code)]
        fn manifest() -> serde_json::Value {
            common::fixture_manifest($family)
        }

        #[allow(dead_code)]
        fn npy(name: &str) -> ndarray::ArrayD<f32> {
            common::fixture_npy($family, name)
        }
    };
}

/// The tolerance of every parity check: `max |ours − torch| ≤ TOLERANCE ·
/// max |torch|` over each compared output.
pub const TOLERANCE: f32 = 1e-4;

/// A JSON unsigned integer (`"depth": 2`).
pub fn uint(v: &Value) -> usize {
    v.as_u64().expect("an unsigned integer") as usize
}

/// A JSON array of unsigned integers (`[64, 32]`).
pub fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().expect("an array").iter().map(uint).collect()
}

/// A JSON array of 4 unsigned integers (`[1, 2, 1, 1]`).
pub fn four(v: &Value) -> [usize; 4] {
    usizes(v).try_into().expect("4 integers")
}

/// A JSON array of 4 booleans (`[false, false, true, true]`).
pub fn flags(v: &Value) -> [bool; 4] {
    let a = v.as_array().expect("an array").iter();
    let a: Vec<bool> = a.map(|x| x.as_bool().expect("a boolean")).collect();
    a.try_into().expect("4 booleans")
}

/// Max abs error of `ours` (row-major, `shape`) relative to the
/// reference's max magnitude; panics on a shape mismatch or an all-zero
/// reference.
pub fn rel_err(ours: Vec<f32>, shape: &[usize], reference: &ArrayD<f32>, what: &str) -> f32 {
    assert_eq!(shape, reference.shape(), "{what}: shape");
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: degenerate reference");
    let err = ours
        .iter()
        .zip(reference.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    err / scale
}

/// A `[n, c, h, w]` fixture array as a tensor on `device`.
pub fn tensor4(a: &ArrayD<f32>, device: &burn::tensor::Device) -> burn::tensor::Tensor<4> {
    let data: Vec<f32> = a.iter().copied().collect();
    burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(data, a.shape().to_vec()),
        device,
    )
}

/// The values of a float tensor, row-major.
pub fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The error of a tensor against a reference array (see [`rel_err`]).
pub fn tensor_err<const D: usize>(
    ours: burn::tensor::Tensor<D>,
    reference: &ArrayD<f32>,
    what: &str,
) -> f32 {
    let shape = ours.dims().to_vec();
    rel_err(values(ours), &shape, reference, what)
}

/// Prints the relative error `err` of `what` and asserts it is within
/// [`TOLERANCE`]; returns it.
fn within_tolerance(err: f32, what: &str) -> f32 {
    println!("{what}: rel. error {err:.3e}");
    assert!(
        err <= TOLERANCE,
        "{what}: rel. error {err} over {TOLERANCE}"
    );
    err
}

/// [`rel_err`] of `ours` (row-major, `shape`), asserted within
/// [`TOLERANCE`]; returns it.
pub fn assert_close_values(
    ours: Vec<f32>,
    shape: &[usize],
    reference: &ArrayD<f32>,
    what: &str,
) -> f32 {
    within_tolerance(rel_err(ours, shape, reference, what), what)
}

/// [`tensor_err`] of `ours`, asserted within [`TOLERANCE`]; returns it.
pub fn assert_close<const D: usize>(
    ours: burn::tensor::Tensor<D>,
    reference: &ArrayD<f32>,
    what: &str,
) -> f32 {
    within_tolerance(tensor_err(ours, reference, what), what)
}

/// `counts` (per stage) with one more in `stage`: a deeper model than the
/// fixture's, for the wrong-architecture tests.
pub fn one_more(mut counts: [usize; 4], stage: usize) -> [usize; 4] {
    counts[stage] += 1;
    counts
}

/// `model` with `file` loaded by `load` (an importer and its options);
/// panics naming the file on an error.
pub fn load_file<M, R>(
    mut model: M,
    file: &std::path::Path,
    load: impl FnOnce(&mut M, &std::path::Path) -> Result<R, reid_backbones::BackboneError>,
) -> (M, R) {
    let report = load(&mut model, file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    (model, report)
}

/// A file of this process under the temporary folder (`name` made
/// unique by the process id).
pub fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("reid-backbones-{}-{name}", std::process::id()))
}

/// Parameter and buffer tensors of `m`.
pub fn tensor_count<M: burn::store::ModuleSnapshot>(m: &M) -> usize {
    m.collect(None, None, true).len()
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

/// The tensor names in a safetensors file's header (without `__metadata__`).
pub fn safetensors_keys(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}
