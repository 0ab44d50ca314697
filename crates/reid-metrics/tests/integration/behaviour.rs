//! Behaviour tests: the exact scorer against a brute-force stable-sort evaluator,
//! streaming vs dense paths, and error handling.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_metrics::rerank::evaluate_reranked_features;
use reid_metrics::{
    ApKind, EvalConfig, Labels, Metric, MetricsError, RerankConfig, evaluate, evaluate_features,
    pairwise_distance, re_ranking, re_ranking_features,
};

use crate::common::max_abs_diff;

/// Brute force: full stable argsort per query, as the torchreid protocol with `kind="stable"`.
fn brute(d: &Array2<f32>, q: &Labels, g: &Labels, cfg: &EvalConfig) -> (Vec<f64>, f64, f64, usize) {
    let ng = d.ncols();
    let max_rank = cfg.max_rank.min(ng);
    let (mut cmc, mut ap_sum, mut inp_sum, mut nv) = (vec![0f64; max_rank], 0.0, 0.0, 0usize);
    for (qi, row) in d.outer_iter().enumerate() {
        let mut order: Vec<usize> = (0..ng).collect();
        order.sort_by(|&a, &b| row[a].partial_cmp(&row[b]).unwrap().then(a.cmp(&b)));
        let (qp, qc) = (q.pids()[qi], q.camids()[qi]);
        let raw: Vec<bool> = order
            .iter()
            .filter(|&&j| {
                !(g.pids()[j] == qp && g.camids()[j] == qc) && Some(g.pids()[j]) != cfg.junk_pid
            })
            .map(|&j| g.pids()[j] == qp)
            .collect();
        let hits: Vec<usize> = raw
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(r, _)| r)
            .collect();
        if hits.is_empty() {
            continue;
        }
        nv += 1;
        for (k, c) in cmc.iter_mut().enumerate() {
            if hits[0] <= k {
                *c += 1.0;
            }
        }
        let n = hits.len() as f64;
        let mut ap = 0.0;
        for (k, &r) in hits.iter().enumerate() {
            let prec = (k + 1) as f64 / (r + 1) as f64;
            ap += match cfg.ap {
                ApKind::NonInterpolated => prec,
                ApKind::Trapezoid => {
                    ((if r != 0 { k as f64 / r as f64 } else { 1.0 }) + prec) / 2.0
                }
            };
        }
        ap_sum += ap / n;
        inp_sum += n / (hits[hits.len() - 1] + 1) as f64;
    }
    cmc.iter_mut().for_each(|c| *c /= nv as f64);
    (cmc, ap_sum / nv as f64, inp_sum / nv as f64, nv)
}

fn random_problem(
    rng: &mut ChaCha8Rng,
    nq: usize,
    ng: usize,
    ids: i64,
    cams: i64,
    levels: Option<f32>,
) -> (Array2<f32>, Labels, Labels) {
    let d = Array2::from_shape_simple_fn((nq, ng), || {
        let v: f32 = rng.random_range(-1.0..3.0);
        match levels {
            Some(l) => (v * l).round() / l,
            None => v,
        }
    });
    let mut lab = |n: usize| {
        Labels::new(
            (0..n).map(|_| rng.random_range(-1..ids)).collect(),
            (0..n).map(|_| rng.random_range(0..cams)).collect(),
        )
        .unwrap()
    };
    let q = lab(nq);
    let g = lab(ng);
    (d, q, g)
}

#[test]
fn exact_scorer_equals_brute_force_stable_sort_with_ties_and_junk() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for trial in 0..40 {
        let ng = [3usize, 7, 30, 120, 400][trial % 5];
        let levels = [None, Some(2.0), Some(8.0), Some(0.5)][trial % 4];
        let (d, q, g) = random_problem(&mut rng, 25, ng, 6, 3, levels);
        for cfg in [
            EvalConfig::default(),
            EvalConfig::default()
                .with_max_rank(5)
                .with_ap(ApKind::Trapezoid)
                .with_junk_pid(Some(-1)),
            EvalConfig::default().with_max_rank(1),
        ] {
            let (cmc, map, minp, nv) = brute(&d, &q, &g, &cfg);
            match evaluate(d.view(), &q, &g, &cfg) {
                Ok(r) => {
                    assert_eq!(r.num_valid_queries, nv, "trial {trial}");
                    assert!(
                        (r.map - map).abs() < 1e-12,
                        "trial {trial} cfg {cfg:?} ng {ng}: mAP {} vs {map} {:?}",
                        r.map,
                        r.per_query
                    );
                    assert!((r.minp - minp).abs() < 1e-12, "trial {trial}: mINP");
                    assert_eq!(r.cmc.len(), cmc.len());
                    for (a, b) in r.cmc.iter().zip(&cmc) {
                        assert!((a - b).abs() < 1e-12, "trial {trial}: cmc");
                    }
                }
                Err(MetricsError::NoValidQuery) => assert_eq!(nv, 0),
                Err(e) => panic!("trial {trial} cfg {cfg:?}: {e}"),
            }
        }
    }
}

#[test]
fn transposed_distance_view_gives_the_same_result() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (d, q, g) = random_problem(&mut rng, 30, 80, 5, 3, None);
    let dt = d.t().to_owned();
    let a = evaluate(d.view(), &q, &g, &EvalConfig::default()).unwrap();
    let b = evaluate(dt.t(), &q, &g, &EvalConfig::default()).unwrap();
    assert_eq!(a, b);
}

fn feature_problem(
    seed: u64,
    nq: usize,
    ng: usize,
    dim: usize,
) -> (Array2<f32>, Array2<f32>, Labels, Labels) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids = 12i64;
    let centres =
        Array2::from_shape_simple_fn((ids as usize, dim), || rng.random_range(-1.0f32..1.0));
    let mut side = |n: usize| {
        let pids: Vec<i64> = (0..n).map(|_| rng.random_range(0..ids)).collect();
        let cams: Vec<i64> = (0..n).map(|_| rng.random_range(0..4)).collect();
        let f = Array2::from_shape_fn((n, dim), |(i, k)| {
            centres[[pids[i] as usize, k]] + rng.random_range(-0.8f32..0.8)
        });
        (f, Labels::new(pids, cams).unwrap())
    };
    let (qf, ql) = side(nq);
    let (gf, gl) = side(ng);
    (qf, gf, ql, gl)
}

#[test]
fn streaming_feature_paths_equal_dense_paths() {
    // More queries than one tile, to cross tile boundaries.
    let (qf, gf, ql, gl) = feature_problem(11, 70, 150, 24);
    let cfg = EvalConfig::default();
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let d = pairwise_distance(qf.view(), gf.view(), metric, false).unwrap();
        let dense = evaluate(d.view(), &ql, &gl, &cfg).unwrap();
        let streamed =
            evaluate_features(qf.view(), gf.view(), &ql, &gl, metric, false, &cfg).unwrap();
        assert_eq!(dense, streamed, "{metric:?}");
    }
    let rcfg = RerankConfig::default();
    let rr = re_ranking_features(qf.view(), gf.view(), Metric::Euclidean, false, &rcfg).unwrap();
    let dense = evaluate(rr.view(), &ql, &gl, &cfg).unwrap();
    let streamed = evaluate_reranked_features(
        qf.view(),
        gf.view(),
        &ql,
        &gl,
        Metric::Euclidean,
        false,
        &rcfg,
        &cfg,
    )
    .unwrap();
    assert_eq!(dense, streamed);
    // Re-ranking from dense matrices of the same features agrees closely.
    let all_q = pairwise_distance(qf.view(), qf.view(), Metric::Euclidean, false).unwrap();
    let all_g = pairwise_distance(gf.view(), gf.view(), Metric::Euclidean, false).unwrap();
    let qg = pairwise_distance(qf.view(), gf.view(), Metric::Euclidean, false).unwrap();
    let rd = re_ranking(qg.view(), all_q.view(), all_g.view(), &rcfg).unwrap();
    let worst = max_abs_diff(&rd, &rr);
    assert!(
        worst < 1e-4,
        "dense vs feature re-ranking differ by {worst}"
    );
}

#[test]
fn reranking_improves_or_keeps_a_clustered_problem_and_is_bounded() {
    let (qf, gf, ql, gl) = feature_problem(21, 40, 200, 16);
    let cfg = EvalConfig::default();
    let rr = re_ranking_features(
        qf.view(),
        gf.view(),
        Metric::Euclidean,
        true,
        &RerankConfig::default(),
    )
    .unwrap();
    assert!(
        rr.iter()
            .all(|v| v.is_finite() && *v >= -1e-6 && *v <= 1.0 + 1e-6),
        "final distances are in [0, 1]"
    );
    let before = evaluate_features(
        qf.view(),
        gf.view(),
        &ql,
        &gl,
        Metric::Euclidean,
        true,
        &cfg,
    )
    .unwrap();
    let after = evaluate(rr.view(), &ql, &gl, &cfg).unwrap();
    assert!(
        after.map >= before.map - 0.02,
        "re-ranking mAP {} vs plain {}",
        after.map,
        before.map
    );
}

#[test]
fn bad_inputs_give_errors_not_panics() {
    let (d, q, g) = random_problem(&mut ChaCha8Rng::seed_from_u64(1), 4, 10, 3, 2, None);
    let cfg = EvalConfig::default();
    // Label lengths.
    let short = Labels::new(vec![0; 9], vec![0; 9]).unwrap();
    assert!(matches!(
        evaluate(d.view(), &q, &short, &cfg),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    assert!(Labels::new(vec![0; 3], vec![0; 2]).is_err());
    // NaN.
    let mut dn = d.clone();
    dn[[2, 3]] = f32::NAN;
    assert!(matches!(
        evaluate(dn.view(), &q, &g, &cfg),
        Err(MetricsError::NonFinite { .. })
    ));
    // Empty gallery.
    let empty = Array2::<f32>::zeros((4, 0));
    let none = Labels::new(vec![], vec![]).unwrap();
    assert!(matches!(
        evaluate(empty.view(), &q, &none, &cfg),
        Err(MetricsError::Empty(_))
    ));
    // No valid query.
    let ql = Labels::new(vec![100; 4], vec![0; 4]).unwrap();
    assert!(matches!(
        evaluate(d.view(), &ql, &g, &cfg),
        Err(MetricsError::NoValidQuery)
    ));
    // Bad parameters.
    let bad = EvalConfig::default().with_max_rank(0);
    assert!(evaluate(d.view(), &q, &g, &bad).is_err());
    let qq = Array2::<f32>::zeros((4, 4));
    let gg = Array2::<f32>::zeros((9, 9));
    assert!(matches!(
        re_ranking(d.view(), qq.view(), gg.view(), &RerankConfig::default()),
        Err(MetricsError::ShapeMismatch { .. })
    ));
    let gg = Array2::<f32>::ones((10, 10));
    let bad_r = RerankConfig::default().with_lambda(1.5);
    assert!(re_ranking(d.view(), qq.view(), gg.view(), &bad_r).is_err());
    // Feature dimension mismatch.
    let a = Array2::<f32>::zeros((4, 3));
    let b = Array2::<f32>::zeros((10, 5));
    assert!(evaluate_features(a.view(), b.view(), &q, &g, Metric::Euclidean, false, &cfg).is_err());
}

#[test]
fn npy_reader_accepts_both_dtypes_and_names_the_file_on_errors() {
    use reid_metrics::npy::{read_ids, read_matrix};
    let dir = std::env::temp_dir().join(format!("reid-metrics-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f64m = ndarray::arr2(&[[1.0f64, 2.0], [3.0, 4.5]]);
    ndarray_npy::write_npy(dir.join("m64.npy"), &f64m).unwrap();
    assert_eq!(
        read_matrix(dir.join("m64.npy")).unwrap(),
        ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.5]])
    );
    ndarray_npy::write_npy(dir.join("i32.npy"), &ndarray::arr1(&[1i32, -1, 7])).unwrap();
    assert_eq!(read_ids(dir.join("i32.npy")).unwrap(), vec![1, -1, 7]);
    ndarray_npy::write_npy(dir.join("u8.npy"), &ndarray::arr1(&[1u8, 2])).unwrap();
    let e = read_ids(dir.join("u8.npy")).unwrap_err().to_string();
    assert!(e.contains("u8.npy") && e.contains("int64 or int32"), "{e}");
    let nan = ndarray::arr2(&[[1.0f32, f32::NAN]]);
    ndarray_npy::write_npy(dir.join("nan.npy"), &nan).unwrap();
    let e = read_matrix(dir.join("nan.npy")).unwrap_err().to_string();
    assert!(e.contains("nan.npy") && e.contains("[0, 1]"), "{e}");
    let e = read_matrix(dir.join("i32.npy")).unwrap_err().to_string();
    assert!(e.contains("i32.npy"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Zero-dimensional or empty features and NaN are errors in every entry point
/// that takes features or distances: never metrics computed from nothing, never
/// a NaN silently ranked last.
#[test]
fn empty_zero_dimensional_and_nan_inputs_are_errors_everywhere() {
    use reid_metrics::cuhk03::{Cuhk03Config, single_gallery_shot};
    use reid_metrics::qe::{AqeConfig, average_query_expansion};
    use reid_metrics::top_matches;

    let q = Labels::new(vec![0, 1, 2, 3], vec![0; 4]).unwrap();
    let g = Labels::new((0..10).map(|i| i % 4).collect(), vec![1; 10]).unwrap();
    let cfg = EvalConfig::default();
    let rcfg = RerankConfig::default();
    let empty_err = |r: reid_metrics::Result<_>, what: &str| match r {
        Err(MetricsError::Empty(m)) => assert!(m.contains(what), "{m}"),
        Err(e) => panic!("expected an empty-input error about {what}, got {e}"),
        Ok(_) => panic!("expected an empty-input error about {what}, got a result"),
    };

    // Feature dimension 0: every distance would be 0 and every ranking a tie.
    let (q0, g0) = (Array2::<f32>::zeros((4, 0)), Array2::<f32>::zeros((10, 0)));
    for metric in [Metric::Euclidean, Metric::Cosine] {
        empty_err(
            evaluate_features(q0.view(), g0.view(), &q, &g, metric, false, &cfg).map(|_| ()),
            "feature dimension 0",
        );
        empty_err(
            pairwise_distance(q0.view(), g0.view(), metric, true).map(|_| ()),
            "feature dimension 0",
        );
        empty_err(
            re_ranking_features(q0.view(), g0.view(), metric, false, &rcfg).map(|_| ()),
            "feature dimension 0",
        );
        empty_err(
            evaluate_reranked_features(q0.view(), g0.view(), &q, &g, metric, false, &rcfg, &cfg)
                .map(|_| ()),
            "feature dimension 0",
        );
    }
    empty_err(
        average_query_expansion(q0.view(), g0.view(), &AqeConfig::default()).map(|_| ()),
        "feature dimension 0",
    );
    // No rows.
    let (qf, gf) = (Array2::<f32>::ones((4, 3)), Array2::<f32>::ones((10, 3)));
    let none = Array2::<f32>::zeros((0, 3));
    empty_err(
        pairwise_distance(none.view(), gf.view(), Metric::Euclidean, false).map(|_| ()),
        "query features: 0 rows",
    );
    empty_err(
        re_ranking_features(none.view(), gf.view(), Metric::Euclidean, false, &rcfg).map(|_| ()),
        "query features: 0 rows",
    );
    let no_labels = Labels::new(vec![], vec![]).unwrap();
    empty_err(
        evaluate_features(
            none.view(),
            gf.view(),
            &no_labels,
            &g,
            Metric::Cosine,
            false,
            &cfg,
        )
        .map(|_| ()),
        "query",
    );

    // NaN in features: an error naming the input, from every path.
    let mut qn = qf.clone();
    qn[[2, 1]] = f32::NAN;
    let nonfinite = |r: reid_metrics::Result<()>, what: &str| match r {
        Err(MetricsError::NonFinite { what: w, .. }) => assert!(w.contains(what), "{w}"),
        Err(e) => panic!("expected a non-finite error about {what}, got {e}"),
        Ok(()) => panic!("expected a non-finite error about {what}, got a result"),
    };
    nonfinite(
        evaluate_features(qn.view(), gf.view(), &q, &g, Metric::Cosine, true, &cfg).map(|_| ()),
        "query features",
    );
    nonfinite(
        pairwise_distance(gf.view(), qn.view(), Metric::Euclidean, false).map(|_| ()),
        "gallery features",
    );
    nonfinite(
        re_ranking_features(qn.view(), gf.view(), Metric::Euclidean, false, &rcfg).map(|_| ()),
        "query features",
    );
    nonfinite(
        average_query_expansion(qf.view(), qn.view(), &AqeConfig::default()).map(|_| ()),
        "gallery features",
    );
    // NaN in distances: evaluation, CUHK03 and rank lists refuse it.
    let mut d = Array2::<f32>::from_shape_fn((4, 10), |(i, j)| (i * 10 + j) as f32);
    d[[1, 7]] = f32::NAN;
    nonfinite(evaluate(d.view(), &q, &g, &cfg).map(|_| ()), "query row 1");
    nonfinite(
        single_gallery_shot(d.view(), &q, &g, &Cuhk03Config::default()).map(|_| ()),
        "query row 1",
    );
    nonfinite(top_matches(d.view(), &q, &g, 3).map(|_| ()), "query row 1");
    // Flip averaging propagates NaN rather than dropping it.
    let avg = reid_metrics::flip::flip_average(qn.view(), qf.view()).unwrap();
    assert!(avg[[2, 1]].is_nan());
}

/// `Distance` says what it computes; the former `Metric` / `Metric::Euclidean`
/// names and the configuration strings keep working.
#[test]
fn the_distance_keeps_its_former_names() {
    use reid_metrics::Distance;
    assert_eq!(Metric::Euclidean, Distance::SquaredEuclidean);
    assert_eq!(Metric::default(), Distance::SquaredEuclidean);
    // The former variant name still works as a pattern.
    let describe = |m: Metric| match m {
        Metric::Euclidean => "squared",
        Metric::Cosine => "cosine",
    };
    assert_eq!(describe(Distance::SquaredEuclidean), "squared");
    for (text, want) in [
        ("euclidean", Distance::SquaredEuclidean),
        ("squared_euclidean", Distance::SquaredEuclidean),
        ("cosine", Distance::Cosine),
    ] {
        assert_eq!(text.parse::<Distance>().unwrap(), want);
        let json: Distance = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        assert_eq!(json, want);
    }
    assert_eq!(
        serde_json::to_string(&Distance::SquaredEuclidean).unwrap(),
        "\"euclidean\""
    );
    assert_eq!(Distance::Cosine.to_string(), "cosine");
    let e = "l2".parse::<Distance>().unwrap_err().to_string();
    assert!(
        e.contains("squared Euclidean") && e.contains("\"l2\""),
        "{e}"
    );
    // It is the squared distance: (3, 4) is 25 from the origin.
    let q = ndarray::arr2(&[[3.0f32, 4.0]]);
    let g = ndarray::arr2(&[[0.0f32, 0.0]]);
    let d = pairwise_distance(q.view(), g.view(), Distance::SquaredEuclidean, false).unwrap();
    assert_eq!(d[[0, 0]], 25.0);
}
