#![allow(dead_code)] // each parity test binary uses a part of these helpers
//! Shared by the family parity tests: reading a family's fixture folder
//! (`tests/fixtures/backbones/<family>/`, written by `tools/gen_*_fixtures.py`)
//! and the relative-error measure of the tolerance.

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

/// A JSON array of 4 unsigned integers (`[1, 2, 1, 1]`).
pub fn four(v: &Value) -> [usize; 4] {
    let a: Vec<usize> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("an unsigned integer") as usize)
        .collect();
    [a[0], a[1], a[2], a[3]]
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

/// The checks every family importer's "not this family / wrong format"
/// test makes: a ResNet checkpoint, `--weights-format safetensors` on a
/// `.pth` (`cion_pth`), `--weights-format cion` on a file without a
/// `teacher` dictionary (`bare_safetensors`) are [`BackboneError::Layout`]
/// errors; a ResNet-only format and a missing file are errors.
pub fn assert_wrong_files_and_formats_are_errors<M, R>(
    model: &mut M,
    load: impl Fn(
        &mut M,
        &std::path::Path,
        &reid_backbones::import::ImportOptions,
    ) -> Result<R, reid_backbones::BackboneError>,
    cion_pth: &std::path::Path,
    bare_safetensors: &std::path::Path,
) {
    use reid_backbones::BackboneError;
    use reid_backbones::import::{ImportOptions, WeightsFormat};
    let with = |format| ImportOptions::default().with_format(format);
    let layout_error = |r: Result<R, BackboneError>, what: &str| match r {
        Err(BackboneError::Layout { .. }) => {}
        Err(e) => panic!("{what}: expected a layout error, got {e}"),
        Ok(_) => panic!("{what}: loaded"),
    };
    let resnet = fixture_dir("bottleneck.pth");
    layout_error(
        load(model, &resnet, &ImportOptions::default()),
        "a ResNet checkpoint",
    );
    layout_error(
        load(model, cion_pth, &with(WeightsFormat::Safetensors)),
        "safetensors format on a .pth",
    );
    layout_error(
        load(model, bare_safetensors, &with(WeightsFormat::Cion)),
        "cion format without a teacher",
    );
    assert!(
        load(model, bare_safetensors, &with(WeightsFormat::Lup)).is_err(),
        "a ResNet-only format"
    );
    assert!(
        load(model, &fixture_dir("nope.pth"), &ImportOptions::default()).is_err(),
        "a missing file"
    );
}

/// A `[n, c, h, w]` fixture array as a tensor on `device`.
pub fn tensor4(a: &ArrayD<f32>, device: &burn::tensor::Device) -> burn::tensor::Tensor<4> {
    let data: Vec<f32> = a.iter().copied().collect();
    burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(data, a.shape().to_vec()),
        device,
    )
}

/// The key lists of an import error that must be a
/// [`reid_backbones::BackboneError::KeyMismatch`]; panics with the error
/// otherwise.
pub fn key_mismatch(err: reid_backbones::BackboneError) -> Box<reid_backbones::KeyMismatch> {
    match err {
        reid_backbones::BackboneError::KeyMismatch(m) => m,
        other => panic!("expected a key mismatch, got {other}"),
    }
}

/// The errors of a tensor against a reference array (see [`rel_err`]).
pub fn tensor_err<const D: usize>(
    ours: burn::tensor::Tensor<D>,
    reference: &ArrayD<f32>,
    what: &str,
) -> f32 {
    let shape = ours.dims().to_vec();
    rel_err(
        ours.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        reference,
        what,
    )
}

/// A head computed from a feature map: `[batch, c, h, w]` → `[batch, dim]`.
pub type FromMap<'a, M> = &'a dyn Fn(&M, burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>;

/// The forward check of every family: `m`'s feature map and embedding
/// (`embedding(m, x)`) on `family`'s `input.npy` against `features.npy`
/// and `embedding.npy`, each within 1e-4 of the reference's magnitude;
/// with `from_map`, the embedding computed from the map must have the
/// end-to-end one's shape. Returns `(map error, embedding error)`.
pub fn check_forward<M: reid_backbones::Backbone>(
    family: &str,
    m: &M,
    what: &str,
    embedding: impl Fn(&M, burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>,
    from_map: Option<FromMap<'_, M>>,
) -> (f32, f32) {
    let x = tensor4(
        &fixture_npy(family, "input.npy"),
        &burn::tensor::Device::flex(),
    );
    let features = m.forward_features(x.clone());
    let emb = embedding(m, x);
    if let Some(f) = from_map {
        assert_eq!(
            f(m, features.clone()).dims(),
            emb.dims(),
            "{what}: embedding from the map"
        );
    }
    let f_err = tensor_err(features, &fixture_npy(family, "features.npy"), what);
    let e_err = tensor_err(emb, &fixture_npy(family, "embedding.npy"), what);
    println!("{what}: feature map rel. error {f_err:.3e}, embedding rel. error {e_err:.3e}");
    assert!(f_err <= 1e-4, "{what}: feature map rel. error {f_err}");
    assert!(e_err <= 1e-4, "{what}: embedding rel. error {e_err}");
    (f_err, e_err)
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
