"""Fit the weights of the default reasoner's segment ranker on the dev half of the real-caption benchmark.

    python benchmarks/fit_ranker.py            # prints the weights to paste into temporal_reasoner/ranker.py

The embedding reasoner (``spans="ranked"``) proposes segments of its score curve at several levels and
ranks them by a linear score of their features (see :mod:`temporal_reasoner.ranker`). This script
computes every proposal of every QVHighlights query of the *dev* half (seed 0, the same split as
``benchmarks/real_captions.py``; the report half is never read), its IoU with the nearest GT window,
and fits a conditional logit: for each query a softmax over its proposals, trained towards
``softmax(IoU / tau)`` with an L2 penalty on the standardised weights. It prints the 2-fold
cross-validated R1@0.5/0.7 and mIoU of the top-ranked proposal (folds by alternate query) and the
weights in the features' own units. Needs scipy (installed with sentence-transformers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_captions import _warm, half_of, load_qvhighlights  # noqa: E402

from pipelines.datasets import data_root  # noqa: E402
from temporal_reasoner import ranker  # noqa: E402
from temporal_reasoner.embedding import EmbeddingReasoner  # noqa: E402
from temporal_reasoner.spans import interval_iou  # noqa: E402

Sample = tuple[np.ndarray, np.ndarray]  # (features of each proposal, its IoU with the nearest GT window)


def samples(half: str = "dev", seed: int = 0, data: str | None = None) -> list[Sample]:
    cs = load_qvhighlights(data_root(data))
    reasoner = EmbeddingReasoner(spans="ranked")
    _warm(reasoner, cs)
    out: list[Sample] = []
    for q in cs.queries:
        if half_of(q.video, seed) != half:
            continue
        tr = cs.transcripts[q.video]
        times, curve = reasoner.curve(q.query, tr)
        s, e, feats, edges = ranker.scored_proposals(times, curve, tr.duration)
        ious = np.array([max(interval_iou((edges[a], min(edges[b + 1], tr.duration)), w) for w in q.windows)
                         for a, b in zip(s, e)])
        out.append((feats, ious))
    return out


def fit(data: list[Sample], mu: np.ndarray, sd: np.ndarray, *, tau: float, l2: float) -> np.ndarray:
    """Standardised weights of the conditional logit (see the module's docstring)."""
    from scipy.optimize import minimize

    zs = [(f - mu) / sd for f, _ in data]
    targets = []
    for _, y in data:
        t = np.exp((y - y.max()) / tau)
        targets.append(t / t.sum())

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.5 * l2 * float(w @ w) * len(zs), l2 * w * len(zs)
        for z, t in zip(zs, targets):
            s = z @ w
            s = s - s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= float(t @ np.log(p + 1e-12))
            grad = grad - z.T @ (t - p)
        return total / len(zs), grad / len(zs)

    return minimize(loss, np.zeros(zs[0].shape[1]), jac=True, method="L-BFGS-B").x


def top1(data: list[Sample], weights: np.ndarray) -> np.ndarray:
    """R1@0.5, R1@0.7 and mIoU (percent) of the top-scored proposal of each query (weights in raw units)."""
    best = np.array([y[int(np.argmax(f @ weights))] for f, y in data])
    return 100 * np.array([np.mean(best >= 0.5), np.mean(best >= 0.7), np.mean(best)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tau", type=float, default=0.2)
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev/report split (default 0)")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    data = samples("dev", args.seed, args.data_root)
    allf = np.concatenate([f for f, _ in data])
    mu, sd = allf.mean(0), allf.std(0) + 1e-9
    folds = [data[0::2], data[1::2]]
    cv = np.mean([top1(folds[1 - k], fit(folds[k], mu, sd, tau=args.tau, l2=args.l2) / sd) for k in (0, 1)], axis=0)
    weights = fit(data, mu, sd, tau=args.tau, l2=args.l2) / sd
    oracle = 100 * np.mean([y.max() >= 0.5 for _, y in data])
    print(f"dev half: {len(data)} queries, {len(allf)} proposals; best proposal R1@0.5 {oracle:.2f}")
    print(f"2-fold CV on dev: R1@0.5 {cv[0]:.2f}  R1@0.7 {cv[1]:.2f}  mIoU {cv[2]:.2f}")
    print("fitted on all dev: R1@0.5 %.2f  R1@0.7 %.2f  mIoU %.2f" % tuple(top1(data, weights)))
    print("WEIGHTS = np.array([")
    for name, w in zip(ranker.FEATURES, weights):
        print(f"    {w:+.6f},  # {name}")
    print("])")
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
