#!/usr/bin/env python3
"""Generates the parity fixtures of the `reid-metrics` crate.

    /work/main/.venv/bin/python tools/gen_metrics_fixtures.py

Writes small .npy inputs and `expected.json` (reference numbers from
tools/metrics_reference.py) into crates/reid-metrics/tests/fixtures/metrics/. Deterministic (seeded).
"""
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics_reference as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-metrics", "tests", "fixtures", "metrics")


def save(name, arr):
    np.save(os.path.join(OUT, name), arr)


def problem(rng, nq_ids, ng_ids, per_id, n_cams, dim, spread):
    """Random identities with per-identity centres; returns feats and ids."""
    centres = rng.normal(size=(ng_ids + 5, dim)).astype(np.float32)
    g_pids, g_cams, g_feats = [], [], []
    for pid in range(ng_ids):
        for _ in range(rng.integers(1, per_id + 1)):
            g_pids.append(pid)
            g_cams.append(int(rng.integers(0, n_cams)))
            g_feats.append(centres[pid] + spread * rng.normal(size=dim))
    q_pids, q_cams, q_feats = [], [], []
    for pid in list(range(nq_ids)) + [ng_ids + 1, ng_ids + 2]:  # two queries absent from gallery
        q_pids.append(pid)
        q_cams.append(int(rng.integers(0, n_cams)))
        q_feats.append(centres[pid] + spread * rng.normal(size=dim))
    return (np.asarray(q_feats, np.float32), np.asarray(g_feats, np.float32),
            np.asarray(q_pids, np.int64), np.asarray(q_cams, np.int64),
            np.asarray(g_pids, np.int64), np.asarray(g_cams, np.int64))


def metrics(res):
    return {k: res[k] for k in ("cmc", "mAP", "mINP", "num_valid_queries", "ap") if k in res}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20260522)
    expected = {"meta": {"numpy": np.__version__, "python": platform.python_version(),
                         "generator": "tools/gen_metrics_fixtures.py"}}

    # ---- Market-style problem (tie-free random features).
    qf, gf, qp, qc, gp, gc = problem(rng, 38, 54, 7, 6, 16, 0.9)
    gp[rng.random(len(gp)) < 0.05] = -1  # a few "junk" identities
    save("q_feats.npy", qf)
    save("g_feats.npy", gf.astype(np.float64))  # f64 on purpose: readers must accept it
    save("q_pids.npy", qp)                      # int64
    save("q_camids.npy", qc.astype(np.int32))   # int32 on purpose
    save("g_pids.npy", gp.astype(np.int32))
    save("g_camids.npy", gc)
    ids = (qp, gp, qc, gc)
    d_euc = ref.compute_distance(qf, gf, "euclidean")
    d_cos = ref.compute_distance(qf, gf, "cosine")
    d_euc_n = ref.compute_distance(qf, gf, "euclidean", normalize=True)
    save("distmat_euclidean.npy", d_euc)
    save("distmat_cosine.npy", d_cos)
    expected["euclidean"] = metrics(ref.evaluate_rank(d_euc, *ids))
    expected["cosine"] = metrics(ref.evaluate_rank(d_cos, *ids))
    expected["euclidean_normalized"] = metrics(ref.evaluate_rank(d_euc_n, *ids))
    expected["euclidean_max_rank_10"] = metrics(ref.evaluate_rank(d_euc, *ids, max_rank=10))
    expected["trapezoid"] = metrics(ref.evaluate_rank(d_euc, *ids, ap_kind="trapezoid"))
    expected["junk_minus_one"] = metrics(ref.evaluate_rank(d_euc, *ids, junk_pid=-1))

    # ---- ties: distances rounded to one decimal (stable order = by gallery index).
    d_ties = np.round(d_euc, 0).astype(np.float32)
    save("distmat_ties.npy", d_ties)
    expected["ties"] = metrics(ref.evaluate_rank(d_ties, *ids))

    # ---- re-ranking from distance matrices.
    qq = ref.compute_distance(qf, qf, "euclidean")
    gg = ref.compute_distance(gf, gf, "euclidean")
    save("distmat_qq.npy", qq)
    save("distmat_gg.npy", gg)
    rr = ref.re_ranking(d_euc, qq, gg, 20, 6, 0.3)
    save("rerank_default.npy", rr.astype(np.float32))
    expected["rerank_default"] = metrics(ref.evaluate_rank(rr, *ids))
    rr2 = ref.re_ranking(d_euc, qq, gg, 7, 3, 0.5)
    save("rerank_k7_k3.npy", rr2.astype(np.float32))
    expected["rerank_k7_k3"] = metrics(ref.evaluate_rank(rr2, *ids))
    rr3 = ref.re_ranking(d_euc, qq, gg, 20, 1, 0.3)
    expected["rerank_k2_1"] = metrics(ref.evaluate_rank(rr3, *ids))
    # cosine, from features (distances computed by the reference)
    qqc = ref.compute_distance(qf, qf, "cosine")
    ggc = ref.compute_distance(gf, gf, "cosine")
    rr4 = ref.re_ranking(d_cos, qqc, ggc, 20, 6, 0.3)
    save("rerank_cosine.npy", rr4.astype(np.float32))
    expected["rerank_cosine"] = metrics(ref.evaluate_rank(rr4, *ids))

    # ---- AQE and flip.
    aq, ag = ref.aqe(qf, gf, k=5, alpha=3.0, times=1)
    save("aqe_query.npy", aq)
    save("aqe_gallery.npy", ag)
    flipped = (qf + 0.25 * rng.normal(size=qf.shape)).astype(np.float32)
    save("q_feats_flipped.npy", flipped)
    save("flip_average.npy", ref.flip_average(qf, flipped))

    # ---- CUHK03 single-gallery-shot.
    # (a) exactly one gallery image per identity: no randomness, exact parity.
    cqf, cgf, cqp, cqc, cgp, cgc = problem(rng, 20, 40, 1, 2, 8, 1.0)
    cgc[:] = 1
    cqc[:] = 0
    d_c1 = ref.compute_distance(cqf, cgf)
    save("cuhk03_single_distmat.npy", d_c1)
    for n, a in (("cuhk03_single_q_pids", cqp), ("cuhk03_single_q_camids", cqc),
                 ("cuhk03_single_g_pids", cgp), ("cuhk03_single_g_camids", cgc)):
        save(n + ".npy", a)
    expected["cuhk03_single"] = ref.eval_cuhk03(d_c1, cqp, cgp, cqc, cgc, num_repeats=10)
    # (b) several images per identity: expectation over many draws.
    mqf, mgf, mqp, mqc, mgp, mgc = problem(rng, 20, 40, 5, 2, 8, 1.0)
    d_c2 = ref.compute_distance(mqf, mgf)
    save("cuhk03_multi_distmat.npy", d_c2)
    for n, a in (("cuhk03_multi_q_pids", mqp), ("cuhk03_multi_q_camids", mqc),
                 ("cuhk03_multi_g_pids", mgp), ("cuhk03_multi_g_camids", mgc)):
        save(n + ".npy", a)
    expected["cuhk03_multi_2000"] = ref.eval_cuhk03(d_c2, mqp, mgp, mqc, mgc, num_repeats=2000)
    expected["cuhk03_multi_market"] = metrics(ref.evaluate_rank(d_c2, mqp, mgp, mqc, mgc))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1024:.0f} KiB, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
