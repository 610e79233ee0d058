"""Fit the weights of the default reasoner's segment ranker on the dev half of the real-caption benchmark.

    python benchmarks/fit_ranker.py            # prints the weights to paste into temporal_reasoner/ranker.py

The embedding reasoner (``spans="ranked"``) proposes segments of its score curve at several levels and
ranks them by a linear score of their features (see :mod:`temporal_reasoner.ranker`). This script
computes every proposal of every QVHighlights query of the *dev* half (seed 0, the same split as
``benchmarks/real_captions.py``; the report half is never read), its IoU with the nearest GT window,
and fits a conditional logit: for each query a softmax over its proposals, trained towards
``softmax(IoU / tau)`` with an L2 penalty on the standardised weights. It prints the k-fold
cross-validated R1@0.5/0.7 and mIoU of the top-ranked proposal and the weights in the features' own
units. It also prints (and writes to benchmarks/results/fit_ranker.json, ``--json``, which
``benchmarks/make_page.py`` renders) the share of queries with a good answer (IoU >= 0.5) among all the
proposals and among those of the best single level, cut at that level alone. The folds are by video (a seeded hash of its id), never by query: queries on one video share its
captions, so folds that split a video's queries let the fit see the captions it is scored on.
Needs scipy (installed with sentence-transformers).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import Recorder, add_arguments  # noqa: E402
from real_captions import _warm, half_of, load_qvhighlights  # noqa: E402

from pipelines.datasets import data_root  # noqa: E402
from temporal_reasoner import ranker  # noqa: E402
from temporal_reasoner.embedding import EmbeddingReasoner  # noqa: E402
from temporal_reasoner.spans import interval_iou  # noqa: E402

Sample = tuple[np.ndarray, np.ndarray]  # (features of each proposal, its IoU with the nearest GT window)


def _best_iou(s: np.ndarray, e: np.ndarray, edges: np.ndarray, duration: float, windows: list) -> np.ndarray:
    """Each proposal's IoU with the nearest GT window."""
    return np.array([max(interval_iou((edges[a], min(edges[b + 1], duration)), w) for w in windows)
                     for a, b in zip(s, e)])


def samples(half: str = "dev", seed: int = 0, data: str | None = None,
            per_level: list[np.ndarray] | None = None) -> tuple[list[Sample], list[str]]:
    """Each query's sample of ``half``, and the video of each (for folds by video). ``per_level``, if
    given, gets for each query the best IoU among the proposals cut at each of :data:`ranker.LEVELS`
    alone (a level that cuts nothing: 0)."""
    cs = load_qvhighlights(data_root(data))
    reasoner = EmbeddingReasoner(spans="ranked")
    _warm(reasoner, cs, [q for q in cs.queries if half_of(q.video, seed) == half])  # only the half fitted on
    out: list[Sample] = []
    videos: list[str] = []
    for q in cs.queries:
        if half_of(q.video, seed) != half:
            continue
        tr = cs.transcripts[q.video]
        times, curve = reasoner.curve(q.query, tr)
        s, e, feats, edges = ranker.scored_proposals(times, curve, tr.duration)
        out.append((feats, _best_iou(s, e, edges, tr.duration, q.windows)))
        if per_level is not None:
            best = []
            for level in ranker.LEVELS:
                ls, le, _, _ = ranker.scored_proposals(times, curve, tr.duration, levels=(level,))
                best.append(float(_best_iou(ls, le, edges, tr.duration, q.windows).max()))
            per_level.append(np.array(best))
        videos.append(q.video)
    return out, videos


def fold_of(video: str, folds: int, seed: int = 0) -> int:
    """The cross-validation fold of a video: a seeded hash of its id, so a video's queries stay together."""
    return int(hashlib.sha256(f"fold{seed}:{video}".encode()).hexdigest(), 16) % folds


def cross_validate(data: list[Sample], videos: list[str], *, folds: int, tau: float, l2: float) -> np.ndarray:
    """R1@0.5, R1@0.7 and mIoU of each held-out fold's top proposal, pooled over the folds (features
    standardised on the training folds only)."""
    fold = np.array([fold_of(v, folds) for v in videos])
    best = np.zeros(len(data))
    for k in range(folds):
        train = [d for d, f in zip(data, fold) if f != k]
        if not train or not (fold == k).any():
            continue
        allf = np.concatenate([f for f, _ in train])
        mu, sd = allf.mean(0), allf.std(0) + 1e-9
        weights = fit(train, mu, sd, tau=tau, l2=l2) / sd
        for i in np.flatnonzero(fold == k):
            f, y = data[i]
            best[i] = y[int(np.argmax(f @ weights))]
    return 100 * np.array([np.mean(best >= 0.5), np.mean(best >= 0.7), np.mean(best)])


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
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds, by video (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev/report split (default 0)")
    ap.add_argument("--data-root", default=None)
    add_arguments(ap, "fit_ranker")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.folds < 2:
        ap.error("--folds must be at least 2")
    recorder = Recorder("fit_ranker", args, {"dataset": "QVHighlights real captions, dev half", "seed": args.seed,
                                             "folds": args.folds, "tau": args.tau, "l2": args.l2,
                                             "levels": list(ranker.LEVELS)})
    per_level: list[np.ndarray] = []
    data, videos = samples("dev", args.seed, args.data_root, per_level=per_level)
    allf = np.concatenate([f for f, _ in data])
    mu, sd = allf.mean(0), allf.std(0) + 1e-9
    cv = cross_validate(data, videos, folds=args.folds, tau=args.tau, l2=args.l2)
    weights = fit(data, mu, sd, tau=args.tau, l2=args.l2) / sd
    oracle = 100 * np.mean([y.max() >= 0.5 for _, y in data])
    by_level = 100 * np.mean(np.array(per_level) >= 0.5, axis=0)  # per level: queries with a good proposal there
    best_level = int(np.argmax(by_level))
    fitted = top1(data, weights)
    print(f"dev half: {len(data)} queries, {len(allf)} proposals; best proposal R1@0.5 {oracle:.2f}")
    print(f"best single level ({ranker.LEVELS[best_level]}, proposals cut there alone): best proposal R1@0.5 "
          f"{by_level[best_level]:.2f}")
    print(f"{args.folds}-fold CV on dev (folds by video): R1@0.5 {cv[0]:.2f}  R1@0.7 {cv[1]:.2f}  mIoU {cv[2]:.2f}")
    print("fitted on all dev: R1@0.5 %.2f  R1@0.7 %.2f  mIoU %.2f" % tuple(fitted))
    print("WEIGHTS = np.array([")
    for name, w in zip(ranker.FEATURES, weights):
        print(f"    {w:+.6f},  # {name}")
    print("])")
    seconds = time.perf_counter() - started
    print(f"({seconds:.0f} s)", file=sys.stderr)
    rows = [{"proposals": "the segments above *some* level (all levels)", "good_answer_pct": round(float(oracle), 2)},
            {"proposals": f"the best single level ({ranker.LEVELS[best_level]})",
             "good_answer_pct": round(float(by_level[best_level]), 2)}]
    recorder.write(rows, queries=len(data), proposals=int(len(allf)), seconds=round(seconds),
                   by_level={str(lv): round(float(v), 2) for lv, v in zip(ranker.LEVELS, by_level)},
                   cross_validated={"R1@0.5": round(float(cv[0]), 2), "R1@0.7": round(float(cv[1]), 2),
                                    "mIoU": round(float(cv[2]), 2)},
                   fitted_on_all_dev={"R1@0.5": round(float(fitted[0]), 2), "R1@0.7": round(float(fitted[1]), 2),
                                      "mIoU": round(float(fitted[2]), 2)},
                   weights={name: round(float(w), 6) for name, w in zip(ranker.FEATURES, weights)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
