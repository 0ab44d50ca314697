//! Parity against fixtures written by `tools/fixtures/gen_metrics_fixtures.py` (NumPy reference
//! `tools/metrics_reference.py`). No Python is needed to run these tests.

use std::path::PathBuf;

use ndarray::Array2;
use reid_metrics::cuhk03::{Cuhk03Config, single_gallery_shot};
use reid_metrics::flip::flip_average;
use reid_metrics::npy::{read_ids, read_matrix};
use reid_metrics::qe::{AqeConfig, average_query_expansion};
use reid_metrics::rerank::{evaluate_reranked, evaluate_reranked_features};
use reid_metrics::{
    ApKind, EvalConfig, EvalResult, Labels, Metric, RerankConfig, evaluate, evaluate_features,
    pairwise_distance, re_ranking, re_ranking_features,
};
use serde_json::Value;

use crate::common::max_abs_diff;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn mat(name: &str) -> Array2<f32> {
    read_matrix(dir().join(name)).unwrap()
}

fn labels(prefix: &str, side: &str) -> Labels {
    let p = read_ids(dir().join(format!("{prefix}{side}_pids.npy"))).unwrap();
    let c = read_ids(dir().join(format!("{prefix}{side}_camids.npy"))).unwrap();
    Labels::new(p, c).unwrap()
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol,
        "{what}: got {a}, expected {b} (tol {tol})"
    );
}

fn check(res: &EvalResult, exp: &Value, tol: f64, name: &str) {
    assert_eq!(
        res.num_valid_queries as u64,
        exp["num_valid_queries"].as_u64().unwrap(),
        "{name}: valid queries"
    );
    assert_close(
        res.map,
        exp["mAP"].as_f64().unwrap(),
        tol,
        &format!("{name} mAP"),
    );
    if let Some(m) = exp.get("mINP") {
        assert_close(res.minp, m.as_f64().unwrap(), tol, &format!("{name} mINP"));
    }
    let cmc = exp["cmc"].as_array().unwrap();
    assert_eq!(res.cmc.len(), cmc.len(), "{name}: cmc length");
    for (k, (a, b)) in res.cmc.iter().zip(cmc).enumerate() {
        assert_close(*a, b.as_f64().unwrap(), tol, &format!("{name} cmc[{k}]"));
    }
    if let Some(aps) = exp.get("ap").and_then(|v| v.as_array()) {
        assert_eq!(aps.len(), res.per_query.len());
        for (i, (a, b)) in res.per_query.iter().zip(aps).enumerate() {
            match (a, b.as_f64()) {
                (Some(s), Some(e)) => {
                    assert_close(s.ap, e, tol, &format!("{name} AP of query {i}"))
                }
                (None, None) => {}
                _ => panic!("{name}: validity of query {i} differs"),
            }
        }
    }
}

fn market() -> (Labels, Labels) {
    (labels("", "q"), labels("", "g"))
}

/// Evaluates every `(distance matrix file, config, key)` and checks the
/// result against `expected()[key]` (tolerance 1e-9).
fn check_distmats(cases: &[(&str, EvalConfig, &str)]) {
    let (q, g) = market();
    let e = expected();
    for (file, cfg, key) in cases {
        let r = evaluate(mat(file).view(), &q, &g, cfg).unwrap();
        check(&r, &e[*key], 1e-9, key);
    }
}

#[test]
fn evaluate_matches_reference_euclidean_cosine_and_max_rank() {
    check_distmats(&[
        ("distmat_euclidean.npy", EvalConfig::default(), "euclidean"),
        ("distmat_cosine.npy", EvalConfig::default(), "cosine"),
        (
            "distmat_euclidean.npy",
            EvalConfig::default().with_max_rank(10),
            "euclidean_max_rank_10",
        ),
    ]);
}

#[test]
fn evaluate_trapezoid_ap_and_junk_pid_match_reference() {
    check_distmats(&[
        (
            "distmat_euclidean.npy",
            EvalConfig::default().with_ap(ApKind::Trapezoid),
            "trapezoid",
        ),
        (
            "distmat_euclidean.npy",
            EvalConfig::default().with_junk_pid(Some(-1)),
            "junk_minus_one",
        ),
    ]);
}

#[test]
fn ties_are_broken_by_gallery_index_like_a_stable_argsort() {
    check_distmats(&[("distmat_ties.npy", EvalConfig::default(), "ties")]);
}

#[test]
fn distances_and_streaming_evaluation_match_reference() {
    let (q, g) = market();
    let e = expected();
    let qf = mat("q_feats.npy");
    let gf = mat("g_feats.npy");
    for (metric, file) in [
        (Metric::Euclidean, "distmat_euclidean.npy"),
        (Metric::Cosine, "distmat_cosine.npy"),
    ] {
        let ours = pairwise_distance(qf.view(), gf.view(), metric, false).unwrap();
        let worst = max_abs_diff(&ours, &mat(file));
        assert!(
            worst < 1e-4,
            "{metric:?}: max abs distance difference {worst}"
        );
    }
    let cfg = EvalConfig::default();
    for (metric, normalize, key) in [
        (Metric::Euclidean, false, "euclidean"),
        (Metric::Cosine, false, "cosine"),
        (Metric::Euclidean, true, "euclidean_normalized"),
    ] {
        let r = evaluate_features(qf.view(), gf.view(), &q, &g, metric, normalize, &cfg).unwrap();
        check(&r, &e[key], 1e-6, &format!("features {key}"));
    }
}

#[test]
fn rerank_from_distance_matrices_matches_reference() {
    let (q, g) = market();
    let e = expected();
    let (qg, qq, gg) = (
        mat("distmat_euclidean.npy"),
        mat("distmat_qq.npy"),
        mat("distmat_gg.npy"),
    );
    let ecfg = EvalConfig::default();
    for (cfg, file, key) in [
        (
            RerankConfig::default(),
            Some("rerank_default.npy"),
            "rerank_default",
        ),
        (
            RerankConfig::default()
                .with_k1(7)
                .with_k2(3)
                .with_lambda(0.5),
            Some("rerank_k7_k3.npy"),
            "rerank_k7_k3",
        ),
        (
            RerankConfig::default()
                .with_k1(20)
                .with_k2(1)
                .with_lambda(0.3),
            None,
            "rerank_k2_1",
        ),
    ] {
        let ours = re_ranking(qg.view(), qq.view(), gg.view(), &cfg).unwrap();
        if let Some(f) = file {
            let worst = max_abs_diff(&ours, &mat(f));
            assert!(worst < 1e-6, "{key}: max abs difference {worst}");
        }
        check(
            &evaluate(ours.view(), &q, &g, &ecfg).unwrap(),
            &e[key],
            1e-9,
            key,
        );
        let streamed =
            evaluate_reranked(qg.view(), qq.view(), gg.view(), &q, &g, &cfg, &ecfg).unwrap();
        check(&streamed, &e[key], 1e-9, &format!("{key} streamed"));
    }
}

#[test]
fn rerank_from_features_matches_reference() {
    let (q, g) = market();
    let e = expected();
    let (qf, gf) = (mat("q_feats.npy"), mat("g_feats.npy"));
    let cfg = RerankConfig::default();
    let ecfg = EvalConfig::default();
    let ours = re_ranking_features(qf.view(), gf.view(), Metric::Cosine, false, &cfg).unwrap();
    let worst = max_abs_diff(&ours, &mat("rerank_cosine.npy"));
    assert!(
        worst < 1e-4,
        "cosine features re-ranking: max abs difference {worst}"
    );
    check(
        &evaluate(ours.view(), &q, &g, &ecfg).unwrap(),
        &e["rerank_cosine"],
        1e-4,
        "rerank cosine features",
    );
    let r = evaluate_reranked_features(
        qf.view(),
        gf.view(),
        &q,
        &g,
        Metric::Euclidean,
        false,
        &cfg,
        &ecfg,
    )
    .unwrap();
    check(&r, &e["rerank_default"], 1e-4, "rerank euclidean features");
}

#[test]
fn cuhk03_single_shot_is_exact_with_one_image_per_identity() {
    let d = mat("cuhk03_single_distmat.npy");
    let (q, g) = (labels("cuhk03_single_", "q"), labels("cuhk03_single_", "g"));
    let r = single_gallery_shot(d.view(), &q, &g, &Cuhk03Config::default()).unwrap();
    check(&r, &expected()["cuhk03_single"], 1e-9, "cuhk03 single");
}

#[test]
fn cuhk03_single_shot_matches_reference_in_expectation_and_is_seeded() {
    let d = mat("cuhk03_multi_distmat.npy");
    let (q, g) = (labels("cuhk03_multi_", "q"), labels("cuhk03_multi_", "g"));
    let e = expected();
    let cfg = Cuhk03Config::default().with_num_repeats(2000);
    let r = single_gallery_shot(d.view(), &q, &g, &cfg).unwrap();
    let exp = &e["cuhk03_multi_2000"];
    assert_close(
        r.map,
        exp["mAP"].as_f64().unwrap(),
        1e-9,
        "cuhk03 mAP (full ranking)",
    );
    for (k, (a, b)) in r.cmc.iter().zip(exp["cmc"].as_array().unwrap()).enumerate() {
        assert_close(
            *a,
            b.as_f64().unwrap(),
            0.02,
            &format!("cuhk03 cmc[{k}] (Monte Carlo)"),
        );
    }
    // Single-shot CMC is above the multi-shot one at rank 1 on this data and differs from it.
    let market = evaluate(d.view(), &q, &g, &EvalConfig::default()).unwrap();
    assert!(r.cmc[0] > market.cmc[0]);
    let small = Cuhk03Config::default();
    let a = single_gallery_shot(d.view(), &q, &g, &small).unwrap();
    let b = single_gallery_shot(d.view(), &q, &g, &small).unwrap();
    assert_eq!(a, b, "same seed, same result");
    let c = single_gallery_shot(d.view(), &q, &g, &small.with_seed(7)).unwrap();
    assert_ne!(a.cmc, c.cmc, "another seed draws differently");
}

#[test]
fn aqe_and_flip_match_reference() {
    let (qf, gf) = (mat("q_feats.npy"), mat("g_feats.npy"));
    let (aq, ag) = average_query_expansion(qf.view(), gf.view(), &AqeConfig::default()).unwrap();
    let wq = max_abs_diff(&aq, &mat("aqe_query.npy"));
    let wg = max_abs_diff(&ag, &mat("aqe_gallery.npy"));
    assert!(wq < 1e-4 && wg < 1e-4, "aqe differences {wq} {wg}");
    let f = flip_average(qf.view(), mat("q_feats_flipped.npy").view()).unwrap();
    assert_eq!(max_abs_diff(&f, &mat("flip_average.npy")), 0.0);
}
