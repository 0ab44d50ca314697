//! What the unit tests of the families share.

use burn::store::ModuleSnapshot;
use burn::tensor::Tensor;

use crate::backbone::Backbone;

/// Module paths of `model`'s tensors (`stages.0.blocks.1.dwconv.weight`).
pub(crate) fn tensor_names<M: ModuleSnapshot>(model: &M) -> Vec<String> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|t| t.name.clone())
        .collect()
}

/// Asserts that `model` has a tensor at each of `paths`.
pub(crate) fn assert_has_tensors<M: ModuleSnapshot>(model: &M, paths: &[&str]) {
    let names = tensor_names(model);
    for want in paths {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

/// Asserts `max |a − b| ≤ 1e-4 · max |a|`; `what` names the output.
pub(crate) fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
    let scale: f32 = a.clone().abs().max().into_scalar();
    let err: f32 = (a - b).abs().max().into_scalar();
    assert!(err <= 1e-4 * scale, "{what}: {err} vs {scale}");
}

/// Asserts that `fused`, the inference form of `model`, has no tensor whose
/// path `gone` picks (the branches folded away) and gives the same feature
/// map and pooled feature on `images` (within [`assert_close`]).
pub(crate) fn assert_same_outputs<B: Backbone + ModuleSnapshot>(
    model: &B,
    fused: &B,
    images: Tensor<4>,
    gone: impl Fn(&str) -> bool,
) {
    let names = tensor_names(fused);
    assert!(!names.iter().any(|n| gone(n)), "{names:?}");
    let map = model.forward_features(images.clone());
    assert_close(map, fused.forward_features(images.clone()), "map");
    let pooled = model.forward_pooled(images.clone());
    assert_close(pooled, fused.forward_pooled(images), "embedding");
}

/// Asserts that each file key `keys[i]` maps to the module path
/// `paths[i]` (`to_model`) and back (`to_file`).
pub(crate) fn assert_maps_both_ways(
    keys: &[&str],
    paths: &[&str],
    to_model: impl Fn(&str) -> Option<String>,
    to_file: impl Fn(&str) -> String,
) {
    assert_eq!(keys.len(), paths.len());
    for (key, path) in keys.iter().zip(paths) {
        assert_eq!(to_model(key).as_deref(), Some(*path), "{key}");
        assert_eq!(to_file(path), *key, "{path}");
    }
}

/// Asserts that `detect` reads each key list of `cases` as its layout
/// (`None`: in no naming the family knows).
pub(crate) fn assert_detects<L: PartialEq + std::fmt::Debug>(
    detect: impl Fn(&[String]) -> Option<L>,
    cases: &[(&[&str], Option<L>)],
) {
    for (keys, layout) in cases {
        assert_eq!(&detect(&owned(keys)), layout, "{keys:?}");
    }
}

/// `keys` as owned strings (what the layouts' `detect` reads).
pub(crate) fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}
