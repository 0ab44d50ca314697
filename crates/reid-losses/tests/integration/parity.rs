//! Value and gradient parity with the PyTorch references of
//! `tools/fixtures/gen_loss_fixtures.py` (`tests/fixtures/losses/losses.json`), and the
//! input validation of every loss. Tolerance: 1e-5 absolute.

use crate::common;

use common::{
    TOL, assert_grad_matches_torch, assert_invalid_parameter, assert_loss_matches_torch, fixture,
    floats, ints,
};

use burn::tensor::{Device, Int, Tensor, TensorData};
use reid_losses::{
    CrossEntropyConfig, LossError, Mining, SmoothingConvention, TripletConfig, TripletDistance,
    center_loss, circle_softmax_logits, cross_entropy_label_smooth, pairwise_circle_loss,
    triplet_loss,
};
use serde_json::Value;

fn cases() -> Vec<Value> {
    fixture("losses.json")["cases"].as_array().unwrap().clone()
}

/// The case's matrix `case[data]` of shape `case[shape]`.
fn matrix(case: &Value, data: &str, shape: &str, device: &Device) -> Tensor<2> {
    let shape: Vec<usize> = ints(&case[shape]).iter().map(|&s| s as usize).collect();
    Tensor::<2>::from_data(TensorData::new(floats(&case[data]), shape), device)
}

fn input(case: &Value, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let x = matrix(case, "input", "shape", device);
    let labels = ints(&case["labels"]);
    let n = labels.len();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
    (x, y)
}

/// Runs `f` on an autodiff device and checks loss and input gradient against the case.
fn check(case: &Value, f: impl Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>) {
    let device = common::device().autodiff();
    let name = case["name"].as_str().unwrap();
    let (x, y) = input(case, &device);
    let x = x.require_grad();
    let loss = f(x.clone(), y);
    assert_loss_matches_torch(name, &loss, &case["loss"]);
    let grads = loss.backward();
    assert_grad_matches_torch(&format!("{name} grad"), &x, &grads, &case["grad"]);
}

/// Asserts that the scalar `loss` matches the fixture value `want` within
/// [`TOL`] relative to its size (absolute below 1).
fn assert_loss(what: &str, loss: &Tensor<1>, want: &Value) {
    let value: f32 = loss.to_data().iter::<f32>().next().unwrap();
    let want = want.as_f64().unwrap() as f32;
    assert!(
        (value - want).abs() <= TOL * want.abs().max(1.0),
        "{what}: {value} vs {want}"
    );
}

#[test]
fn cross_entropy_matches_torch() {
    let mut seen = 0;
    for case in cases().iter().filter(|c| c["kind"] == "ce") {
        let config = CrossEntropyConfig::default()
            .with_epsilon(case["epsilon"].as_f64().unwrap())
            .with_convention(match case["convention"].as_str().unwrap() {
                "torchreid" => SmoothingConvention::Torchreid,
                _ => SmoothingConvention::FastReid,
            })
            .with_divide_by_nonzero(case["divide_by_nonzero"].as_bool().unwrap());
        check(case, |x, y| {
            cross_entropy_label_smooth(x, y, &config).unwrap()
        });
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn triplet_matches_torch() {
    let mut seen = 0;
    for case in cases().iter().filter(|c| c["kind"] == "triplet") {
        let config = TripletConfig::default()
            .with_margin(case["margin"].as_f64())
            .with_distance(match case["distance"].as_str().unwrap() {
                "euclidean" => TripletDistance::Euclidean,
                _ => TripletDistance::Cosine,
            })
            .with_normalize_features(case["normalize"].as_bool().unwrap())
            .with_mining(match case["mining"].as_str().unwrap() {
                "hard" => Mining::Hard,
                _ => Mining::SoftmaxWeighted,
            });
        check(case, |x, y| triplet_loss(x, y, &config).unwrap());
        seen += 1;
    }
    assert_eq!(seen, 24);
}

fn labels(v: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

#[test]
fn label_out_of_range_is_an_error() {
    let device = common::device();
    let logits = Tensor::<2>::zeros([3, 4], &device);
    let err = cross_entropy_label_smooth(
        logits.clone(),
        labels(&[0, 4, 1], &device),
        &CrossEntropyConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        LossError::LabelOutOfRange {
            index: 1,
            label: 4,
            num_classes: 4,
            ..
        }
    ));
    let err = cross_entropy_label_smooth(
        logits,
        labels(&[0, -1, 1], &device),
        &CrossEntropyConfig::fast_reid(),
    )
    .unwrap_err();
    assert!(matches!(err, LossError::LabelOutOfRange { label: -1, .. }));
}

#[test]
fn batch_mismatch_is_an_error() {
    let device = common::device();
    let err = cross_entropy_label_smooth(
        Tensor::<2>::zeros([3, 4], &device),
        labels(&[0, 1], &device),
        &CrossEntropyConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, LossError::BatchMismatch { a: 3, b: 2, .. }));
    let err = triplet_loss(
        Tensor::<2>::zeros([3, 4], &device),
        labels(&[0, 1, 1, 0], &device),
        &TripletConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, LossError::BatchMismatch { a: 3, b: 4, .. }));
    let err = triplet_loss(
        Tensor::<2>::zeros([0, 4], &device),
        labels(&[], &device),
        &TripletConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, LossError::Empty { .. }));
}

#[test]
fn bad_parameters_are_errors() {
    let device = common::device();
    let bad_eps = CrossEntropyConfig::default().with_epsilon(1.5);
    let err = cross_entropy_label_smooth(
        Tensor::<2>::zeros([2, 3], &device),
        labels(&[0, 1], &device),
        &bad_eps,
    )
    .unwrap_err();
    assert_invalid_parameter(&err, "epsilon");
    let err = cross_entropy_label_smooth(
        Tensor::<2>::zeros([2, 1], &device),
        labels(&[0, 0], &device),
        &CrossEntropyConfig::fast_reid(),
    )
    .unwrap_err();
    assert_invalid_parameter(&err, "classes");
    let bad_margin = TripletConfig::default().with_margin(Some(-0.3));
    let err = triplet_loss(
        Tensor::<2>::ones([2, 3], &device),
        labels(&[0, 1], &device),
        &bad_margin,
    )
    .unwrap_err();
    assert_invalid_parameter(&err, "margin");
}

#[test]
fn fast_reid_divides_by_nonzero_losses() {
    // With ε = 0 and one confidently right sample whose loss underflows to
    // exactly 0, fast-reid divides by 1 instead of 2.
    let device = common::device();
    let logits = Tensor::<2>::from_data(
        TensorData::new(vec![200.0f32, -200.0, 0.0, 0.0], [2, 2]),
        &device,
    );
    let y = labels(&[0, 0], &device);
    let mut config = CrossEntropyConfig::fast_reid().with_epsilon(0.0);
    let quirk: f32 = cross_entropy_label_smooth(logits.clone(), y.clone(), &config)
        .unwrap()
        .into_scalar();
    config.divide_by_nonzero = false;
    let clean: f32 = cross_entropy_label_smooth(logits, y, &config)
        .unwrap()
        .into_scalar();
    let ln2 = std::f32::consts::LN_2;
    assert!((quirk - ln2).abs() < 1e-6, "quirk {quirk}");
    assert!((clean - ln2 / 2.0).abs() < 1e-6, "clean {clean}");
}

/// Runs `f(input, matrix, labels)` on the case of `kind`, whose per-class
/// matrix (centres, classifier weights) is `case[key]` of shape
/// `case[key_shape]`, on an autodiff device; checks the loss and the
/// gradients of the input (`grad`) and of the matrix (`case[grad_key]`).
fn check_with_matrix(
    kind: &str,
    key: &str,
    grad_key: &str,
    f: impl Fn(Tensor<2>, Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
) {
    let all = cases();
    let case = all.iter().find(|c| c["kind"] == kind).unwrap();
    let device = common::device().autodiff();
    let m = matrix(case, key, &format!("{key}_shape"), &device).require_grad();
    let (x, y) = input(case, &device);
    let x = x.require_grad();
    let loss = f(x.clone(), m.clone(), y);
    assert_loss(kind, &loss, &case["loss"]);
    let grads = loss.backward();
    for (t, key) in [(&x, "grad"), (&m, grad_key)] {
        assert_grad_matches_torch(&format!("{kind} {key}"), t, &grads, &case[key]);
    }
}

#[test]
fn center_loss_matches_torch() {
    check_with_matrix("center", "centers", "centers_grad", |x, c, y| {
        center_loss(x, c, y).unwrap()
    });
    let device = common::device();
    let bad = center_loss(
        Tensor::<2>::zeros([2, 4], &device),
        Tensor::<2>::zeros([3, 5], &device),
        labels(&[0, 1], &device),
    );
    assert!(matches!(
        bad,
        Err(LossError::BatchMismatch { a: 4, b: 5, .. })
    ));
    let bad = center_loss(
        Tensor::<2>::zeros([2, 4], &device),
        Tensor::<2>::zeros([3, 4], &device),
        labels(&[0, 3], &device),
    );
    assert!(matches!(
        bad,
        Err(LossError::LabelOutOfRange { label: 3, .. })
    ));
}

#[test]
fn circle_softmax_matches_torch() {
    check_with_matrix("circle_softmax", "weight", "weight_grad", |x, w, y| {
        let logits = circle_softmax_logits(x, w, y.clone(), 64.0, 0.35).unwrap();
        cross_entropy_label_smooth(logits, y, &CrossEntropyConfig::default()).unwrap()
    });
    let device = common::device();
    let bad = circle_softmax_logits(
        Tensor::<2>::zeros([2, 4], &device),
        Tensor::<2>::zeros([3, 4], &device),
        labels(&[0, 7], &device),
        64.0,
        0.35,
    );
    assert!(matches!(
        bad,
        Err(LossError::LabelOutOfRange { label: 7, .. })
    ));
}

#[test]
fn pairwise_circle_matches_torch() {
    let mut seen = 0;
    for case in cases().iter().filter(|c| c["kind"] == "pair_circle") {
        let device = common::device().autodiff();
        let (x, y) = input(case, &device);
        let x = x.require_grad();
        let gamma = case["gamma"].as_f64().unwrap();
        let loss = pairwise_circle_loss(x.clone(), y, 0.25, gamma).unwrap();
        let what = format!("pair circle γ={gamma}");
        assert_loss(&what, &loss, &case["loss"]);
        let grads = loss.backward();
        assert_grad_matches_torch(&format!("{what} grad"), &x, &grads, &case["grad"]);
        seen += 1;
    }
    assert_eq!(seen, 2);
    let device = common::device();
    let bad = pairwise_circle_loss(
        Tensor::<2>::ones([3, 2], &device),
        labels(&[0, 1], &device),
        0.25,
        128.0,
    );
    assert!(matches!(
        bad,
        Err(LossError::BatchMismatch { a: 3, b: 2, .. })
    ));
}
