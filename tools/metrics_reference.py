#!/usr/bin/env python3
"""NumPy reference for the `reid-metrics` crate.

Written for this project from the published descriptions of torchreid's
`evaluate_rank` / `eval_cuhk03` / `re_ranking` and fast-reid's mINP and AQE
(as fast-reid (JDAI-CV/fast-reid @ c9bc3ce) and torchreid (KaiyangZhou/deep-person-reid @ f8cd150): `fastreid/evaluation/rank.py`).
It follows the torchreid protocol literally: one argsort per query (here
`kind="stable"`, so ties are ordered by gallery index), then cumulative sums.

Used two ways:
  * as a module, by tools/fixtures/gen_metrics_fixtures.py (parity fixtures);
  * as a command line, by benches/metrics.rs (timing and peak memory):
      python tools/metrics_reference.py --distmat D.npy --query-pids QP.npy ... --json
      python tools/metrics_reference.py --query Q.npy --gallery G.npy ... [--rerank] --json
    It prints one JSON object with mAP, mINP, cmc, num_valid_queries,
    compute_seconds (evaluation only, files already loaded), load_seconds and
    peak_rss_mb (resource.getrusage).
"""
import argparse
import json
import resource
import sys
import time

import numpy as np


# ---------------------------------------------------------------- distances
def l2_normalize(x, eps=1e-12):
    x = np.asarray(x, dtype=np.float32)
    norm = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=1, keepdims=True)).astype(np.float32)
    return x / np.maximum(norm, np.float32(eps))


def compute_distance(qf, gf, metric="euclidean", normalize=False):
    """[Q, G] float32: squared Euclidean (q^2 + g^2 - 2 q.g) or cosine (1 - cos)."""
    qf = np.asarray(qf, dtype=np.float32)
    gf = np.asarray(gf, dtype=np.float32)
    if normalize or metric == "cosine":
        qf, gf = l2_normalize(qf), l2_normalize(gf)
    prod = qf @ gf.T
    if metric == "euclidean":
        qn = np.sum(qf.astype(np.float64) ** 2, axis=1).astype(np.float32)
        gn = np.sum(gf.astype(np.float64) ** 2, axis=1).astype(np.float32)
        return (qn[:, None] + gn[None, :]) + np.float32(-2.0) * prod
    if metric == "cosine":
        return np.float32(1.0) + (-prod)
    raise ValueError(metric)


# ---------------------------------------------------------------- ranking protocol
def _ap_of(raw, ap_kind):
    hits = np.flatnonzero(raw)
    n = len(hits)
    k = np.arange(1, n + 1, dtype=np.float64)
    prec = k / (hits + 1.0)
    if ap_kind == "noninterp":
        return float(prec.sum() / n)
    # official Market-1501 trapezoid rule
    old = np.where(hits != 0, (k - 1) / np.maximum(hits, 1), 1.0)
    return float(((old + prec) / 2.0).sum() / n)


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50,
                  ap_kind="noninterp", junk_pid=None, chunk=256):
    """torchreid/fast-reid protocol. `distmat` is [Q, G] (may be a memmap) or a
    callable (start, end) -> [end-start, G] float32 block.
    Returns dict(cmc, mAP, mINP, num_valid_queries, ap=[per query or None])."""
    q_pids = np.asarray(q_pids).astype(np.int64)
    g_pids = np.asarray(g_pids).astype(np.int64)
    q_camids = np.asarray(q_camids).astype(np.int64)
    g_camids = np.asarray(g_camids).astype(np.int64)
    num_q, num_g = len(q_pids), len(g_pids)
    max_rank = min(max_rank, num_g)
    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    ap_list, inp_list, per_query = [], [], []
    for start in range(0, num_q, chunk):
        end = min(start + chunk, num_q)
        block = distmat(start, end) if callable(distmat) else distmat[start:end]
        block = np.asarray(block, dtype=np.float32)
        if np.isnan(block).any():
            raise ValueError("NaN in distances")
        indices = np.argsort(block, axis=1, kind="stable")
        for r in range(end - start):
            q = start + r
            order = indices[r]
            gp = g_pids[order]
            remove = (gp == q_pids[q]) & (g_camids[order] == q_camids[q])
            if junk_pid is not None:
                remove |= gp == junk_pid
            raw = (gp == q_pids[q])[~remove].astype(np.int32)
            if not raw.any():
                per_query.append(None)
                continue
            cmc = raw.cumsum()
            cmc[cmc > 1] = 1
            cmc = cmc[:max_rank].astype(np.float64)
            if len(cmc) < max_rank:
                cmc = np.concatenate([cmc, np.ones(max_rank - len(cmc))])
            cmc_sum += cmc
            ap = _ap_of(raw, ap_kind)
            last = np.flatnonzero(raw)[-1]
            inp = float(raw.sum() / (last + 1.0))
            ap_list.append(ap)
            inp_list.append(inp)
            per_query.append(ap)
    nv = len(ap_list)
    if nv == 0:
        raise ValueError("all query identities do not appear in gallery")
    return {
        "cmc": (cmc_sum / nv).tolist(),
        "mAP": float(np.mean(ap_list)),
        "mINP": float(np.mean(inp_list)),
        "num_valid_queries": nv,
        "ap": per_query,
    }


def eval_cuhk03(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50,
                num_repeats=10, seed=0):
    """Single-gallery-shot protocol; draws from np.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    all_cmc, all_ap = [], []
    for q in range(num_q):
        order = indices[q]
        remove = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        kept_pids = g_pids[order][~remove]
        raw = (kept_pids == q_pids[q]).astype(np.int32)
        if not raw.any():
            continue
        groups = {}
        for pos, pid in enumerate(kept_pids):
            groups.setdefault(int(pid), []).append(pos)
        cmc = np.zeros(max_rank)
        for _ in range(num_repeats):
            mask = np.zeros(len(raw), dtype=bool)
            for idxs in groups.values():
                mask[rng.choice(idxs)] = True
            c = raw[mask].cumsum()
            c[c > 1] = 1
            c = c[:max_rank].astype(np.float64)
            if len(c) < max_rank:
                c = np.concatenate([c, np.ones(max_rank - len(c))])
            cmc += c
        all_cmc.append(cmc / num_repeats)
        all_ap.append(_ap_of(raw, "noninterp"))
    return {"cmc": np.mean(all_cmc, axis=0).tolist(), "mAP": float(np.mean(all_ap)),
            "num_valid_queries": len(all_ap)}


# ---------------------------------------------------------------- re-ranking
def _k_reciprocal(rank, i, k):
    forward = rank[i, :k + 1]
    backward = rank[forward, :k + 1]
    return forward[np.any(backward == i, axis=1)]


def re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """k-reciprocal re-ranking in torchreid's formulation (distances squared again,
    column-max normalisation, float32 V), with a stable argsort. Returns [Q, G]."""
    nq = q_g.shape[0]
    n = nq + q_g.shape[1]
    orig = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32)
    orig = np.power(orig, 2).astype(np.float32)
    orig = np.transpose(orig / np.max(orig, axis=0))  # row i = column i / its max
    rank = np.argsort(orig, axis=1, kind="stable")[:, :max(k1 + 1, k2)].astype(np.int32)
    half = int(np.around(k1 / 2.0))
    V = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        recip = _k_reciprocal(rank, i, k1)
        expansion = recip
        for cand in recip:
            cand_recip = _k_reciprocal(rank, cand, half)
            if len(np.intersect1d(cand_recip, recip)) > 2.0 / 3 * len(cand_recip):
                expansion = np.append(expansion, cand_recip)
        expansion = np.unique(expansion)
        w = np.exp(-orig[i, expansion])
        V[i, expansion] = w / np.sum(w)
    orig_q = orig[:nq].copy()
    del orig
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(n):
            V_qe[i] = np.mean(V[rank[i, :k2]], axis=0)
        V = V_qe
        del V_qe
    Vt = np.ascontiguousarray(V.T)
    inv = [np.flatnonzero(Vt[k]) for k in range(n)]
    del Vt
    jac = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        temp = np.zeros(n, dtype=np.float32)
        for k in np.flatnonzero(V[i]):
            rows = inv[k]
            temp[rows] = temp[rows] + np.minimum(V[i, k], V[rows, k])
        jac[i] = 1 - temp / (2.0 - temp)
    final = jac * (1 - lambda_value) + orig_q * lambda_value
    return final[:, nq:]


# ---------------------------------------------------------------- feature helpers
def aqe(qf, gf, k=5, alpha=3.0, times=1):
    """Average query expansion over all q+g features (fast-reid), float32."""
    nq = qf.shape[0]
    feats = np.concatenate([qf, gf]).astype(np.float32)
    for _ in range(times):
        norm = l2_normalize(feats)
        sims = norm @ norm.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        new = np.empty_like(feats)
        for i in range(feats.shape[0]):
            w = np.power(sims[i, order[i]], np.float32(alpha)).reshape(-1, 1)
            new[i] = np.mean(feats[order[i]] * w, axis=0)
        feats = new
    return feats[:nq], feats[nq:]


def flip_average(a, b):
    return (np.asarray(a, np.float32) + np.asarray(b, np.float32)) / np.float32(2.0)


# ---------------------------------------------------------------- command line
def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--distmat")
    p.add_argument("--distmat-qq")
    p.add_argument("--distmat-gg")
    p.add_argument("--query")
    p.add_argument("--gallery")
    p.add_argument("--query-pids", required=True)
    p.add_argument("--query-camids", required=True)
    p.add_argument("--gallery-pids", required=True)
    p.add_argument("--gallery-camids", required=True)
    p.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    p.add_argument("--normalize", action="store_true")
    p.add_argument("--rerank", action="store_true")
    p.add_argument("--k1", type=int, default=20)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--lambda", dest="lam", type=float, default=0.3)
    p.add_argument("--max-rank", type=int, default=50)
    p.add_argument("--chunk", type=int, default=256, help="queries per argsort chunk")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    ids = [np.load(getattr(a, f)) for f in ("query_pids", "gallery_pids", "query_camids", "gallery_camids")]
    if a.distmat:
        dist = np.load(a.distmat, mmap_mode="r")
        qf = gf = None
    else:
        qf, gf = np.load(a.query).astype(np.float32), np.load(a.gallery).astype(np.float32)
        dist = None
    qq = np.load(a.distmat_qq) if a.distmat_qq else None
    gg = np.load(a.distmat_gg) if a.distmat_gg else None
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    if a.rerank:
        if dist is not None:
            if qq is None or gg is None:
                sys.exit("--rerank with --distmat needs --distmat-qq and --distmat-gg")
            qg = np.asarray(dist, dtype=np.float32)
        else:
            qg = compute_distance(qf, gf, a.metric, a.normalize)
            qq = compute_distance(qf, qf, a.metric, a.normalize)
            gg = compute_distance(gf, gf, a.metric, a.normalize)
        dist = re_ranking(qg, qq, gg, a.k1, a.k2, a.lam)
    elif dist is None:
        if a.normalize or a.metric == "cosine":
            qf, gf = l2_normalize(qf), l2_normalize(gf)
        dist = lambda s, e: compute_distance(qf[s:e], gf, a.metric, False)
    res = evaluate_rank(dist, *ids, max_rank=a.max_rank, chunk=a.chunk)
    compute_s = time.perf_counter() - t1
    out = {k: res[k] for k in ("mAP", "mINP", "cmc", "num_valid_queries")}
    out.update(compute_seconds=compute_s, load_seconds=load_s, peak_rss_mb=_peak_mb(),
               numpy=np.__version__)
    if a.json:
        print(json.dumps(out))
    else:
        print(f"mAP {out['mAP']:.4f}  mINP {out['mINP']:.4f}  R1 {out['cmc'][0]:.4f}  "
              f"valid {out['num_valid_queries']}  {compute_s:.2f}s  peak {out['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
