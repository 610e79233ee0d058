"""Stage-2 benchmark on captions written by real vision-language models (no oracle, no videos).

    python benchmarks/real_captions.py                                   # QVHighlights, default reasoners, both halves
    python benchmarks/real_captions.py --reasoners embedding vtggpt --halves report --json out.json
    python benchmarks/real_captions.py --sets qvhighlights nextgqa        # also NExT-GQA: ground the question
    python benchmarks/real_captions.py --reasoners embedding embedding@spans=segments   # two settings side by side
    python benchmarks/real_captions.py --reasoners vtggpt vtggpt:/models/all-mpnet-base-v2 --halves dev --videos 40
                                                                          # a slow encoder, paired, on a seeded subset

Sets (see ``../shared/data/README.md``):

- ``qvhighlights``: QVHighlights val queries on the videos whose MiniGPT-v2 captions of every 2-s clip
  VTG-GPT published (``qvhighlights/captions-minigptv2-val-dev``), with VTG-GPT's five LLM
  rephrasings of each query (``rephrased_queries_val_dev.jsonl``) and its published predictions on
  the same queries (``reference-predictions/vtggpt_infer_val.jsonl``) as a reference row;
- ``nextgqa``: NExT-GQA val questions grounded in per-second captions
  (``nextgqa/captions-1fps-val-dev``); the question is the query and its annotated spans the windows.

The shared videos of each set are split again, by video, into a seeded *dev* half (choose methods and
settings there) and a *report* half (report only). Caption files are read through vidground's own
import (``read_descriptions``, format detected), each video's duration from the dataset. Every reasoner
runs without and, where it accepts them and the set has them, with the rephrasings. Rows: the
whole-video baseline, a prior span fitted on the *dev* half only, the published reference, every
reasoner. Metrics: R1@0.3/0.5/0.7 and mIoU (top-1), mAP@0.5, mAP@0.75 and mAP (IoU 0.5:0.95, up to
10 ranked intervals, moment_detr's definition), failures, and queries per second of stage 2 (the
first reasoner's time includes loading the model and encoding every caption once).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidground.errors import ConfigurationError, VidgroundError  # noqa: E402
from pipelines.api import load_descriptions  # noqa: E402
from pipelines.cli import parse_option  # noqa: E402
from pipelines.datasets import Query, data_root, load_dataset  # noqa: E402
from pipelines.metrics import compute_metrics, mean_prior, read_predictions  # noqa: E402
from pipelines.runs import find_descriptions  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner, reasoners  # noqa: E402
from temporal_reasoner.rephrasings import query_forms, read_rephrasings  # noqa: E402
from temporal_reasoner.spans import text_units  # noqa: E402

COLUMNS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "mAP@0.5", "mAP@0.75", "mAP")
SETS = ("qvhighlights", "nextgqa")
HALVES = ("dev", "report")
DEFAULT_REASONERS = ("embedding", "vtggpt", "naive")


@dataclass
class CaptionSet:
    name: str
    queries: list[Query]
    transcripts: dict[str, Transcript]
    rephrasings: dict[str, list[str]] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)  # qid -> published prediction
    reference_name: str = ""
    skipped: int = 0  # queries whose video has no captions here


def half_of(video: str, seed: int) -> str:
    """``"dev"`` or ``"report"``: a seeded hash of the video id, so the halves never share a video."""
    return HALVES[int(hashlib.sha256(f"{seed}:{video}".encode()).hexdigest(), 16) % 2]


def subset(videos: set[str], n: int, seed: int) -> set[str]:
    """The first ``n`` of ``videos`` in a seeded hash order (all of them when ``n`` is 0): a subset that
    stays the same for every reasoner and model of a run and across runs, so that a slow encoder can be
    compared, paired, with another on the videos it had time to encode."""
    if n <= 0:
        return set(videos)
    return set(sorted(videos, key=lambda v: hashlib.sha256(f"subset{seed}:{v}".encode()).hexdigest())[:n])


def _transcripts(queries: list[Query], folder: Path) -> tuple[list[Query], dict[str, Transcript]]:
    found, _missing = find_descriptions({q.video for q in queries}, folder)
    durations = {q.video: q.duration for q in queries}
    transcripts = {v: load_descriptions(p, duration=durations.get(v)).transcript() for v, p in sorted(found.items())}
    return [q for q in queries if q.video in transcripts], transcripts


def load_qvhighlights(root: Path) -> CaptionSet:
    base = root / "qvhighlights"
    ds = load_dataset("qvhighlights", root=root)
    queries, transcripts = _transcripts(ds.queries, base / "captions-minigptv2-val-dev")
    reph_path = base / "rephrased_queries_val_dev.jsonl"
    reference: dict[str, Any] = {}
    ref_path = base / "reference-predictions" / "vtggpt_infer_val.jsonl"
    if ref_path.is_file():
        reference = {str(r["qid"]): r for r in read_predictions(ref_path)}
    return CaptionSet("qvhighlights", queries, transcripts,
                      read_rephrasings(reph_path) if reph_path.is_file() else {},
                      reference, "VTG-GPT published (its captions, 5 rephrasings, distilroberta)",
                      skipped=len(ds.queries) - len(queries))


def load_nextgqa(root: Path) -> CaptionSet:
    ds = load_dataset("nextgqa", "val", root=root)  # the question is the query, its evidence spans the windows
    queries, transcripts = _transcripts(ds.queries, root / "nextgqa" / "captions-1fps-val-dev")
    return CaptionSet("nextgqa", queries, transcripts, skipped=len(ds.queries) - len(queries))


LOADERS = {"qvhighlights": load_qvhighlights, "nextgqa": load_nextgqa}


def parse_row(row: str) -> tuple[str, dict[str, Any]]:
    """``SPEC@KEY=VALUE,KEY=VALUE`` -> the reasoner spec and its options (values read as in
    ``vidground eval --reasoner-opt``), so that one run compares settings of one reasoner side by side:
    ``embedding embedding@spans=segments``. The options follow the last ``@``; values cannot hold commas."""
    spec, at, opts = row.rpartition("@")
    if not at or "=" not in opts:  # no options (a model path may itself hold an "@")
        spec, opts = row, ""
    options: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        try:
            key, value = parse_option(item)
        except argparse.ArgumentTypeError as exc:
            raise ConfigurationError(f"reasoner row {row!r}: {exc}") from None
        options[key] = value
    return spec, options


def _accepts_rephrasings(row: str) -> bool:
    spec, options = parse_row(row)
    try:
        reasoners.check(spec, **options, rephrasings={})
    except ConfigurationError:
        return False
    return True


def _ground_all(reasoner: Any, queries: list[Query], transcripts: dict[str, Transcript]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    preds: dict[str, Any] = {}
    for q in queries:
        try:
            preds[q.qid] = [iv.as_list() for iv in reasoner.ground(q.query, transcripts[q.video]).intervals]
        except VidgroundError as exc:  # a failed query scores 0, stays in the denominator, and the run goes on
            preds[q.qid] = {"error": str(exc)}
            print(f"  {reasoner.name} failed on {q.qid}: {exc}", file=sys.stderr)
    return preds, time.perf_counter() - started


def _warm(reasoner: Any, cs: CaptionSet, queries: list[Query]) -> None:
    """Encode the captions and query forms of ``queries`` once, in large batches, into a cache big
    enough to hold them (only theirs: a slow encoder run on one half does not encode the other)."""
    encoder = getattr(reasoner, "encoder", None)
    if encoder is None:
        return
    level = getattr(reasoner, "level", None)  # what the reasoner encodes: each line, or its sentences/clauses
    entries = {e.text for v in {q.video for q in queries} for e in cs.transcripts[v].entries}
    texts = {u for text in entries for u in (text_units(text, level=level) or [""])} if level else entries
    texts |= {f for q in queries for f in query_forms(q.query, cs.rephrasings)}
    encoder.cache_size = max(encoder.cache_size, 4 * len(texts))
    reasoner.warm(sorted(texts))


def run_set(cs: CaptionSet, specs: list[str], *, halves: list[str], seed: int, rephrasings: str,
            videos: int = 0) -> list[dict[str, Any]]:
    by_half = {h: [q for q in cs.queries if half_of(q.video, seed) == h] for h in HALVES}
    prior = mean_prior(by_half["dev"])  # fitted on the dev half only, never on the queries it is scored on
    if videos:
        for h, qs in by_half.items():
            keep = subset({q.video for q in qs}, videos, seed)
            by_half[h] = [q for q in qs if q.video in keep]
    rows: list[dict[str, Any]] = []
    results: dict[tuple[str, str], dict[str, Any]] = {}
    seconds: dict[tuple[str, str], float] = {}
    wanted = [q for h in halves for q in by_half[h]]
    for spec in specs:
        modes = {"off": [False], "on": [True], "both": [False, True]}[rephrasings]
        if not cs.rephrasings or not _accepts_rephrasings(spec):
            modes = [False]
        for with_reph in modes:
            started = time.perf_counter()
            name, options = parse_row(spec)
            reasoner = get_reasoner(name, **options, **({"rephrasings": cs.rephrasings} if with_reph else {}))
            _warm(reasoner, cs, wanted)
            preds, _ = _ground_all(reasoner, wanted, cs.transcripts)
            results[(spec, "yes" if with_reph else "no")] = preds
            seconds[(spec, "yes" if with_reph else "no")] = time.perf_counter() - started
    for h in halves:
        queries = by_half[h]
        if not queries:
            continue
        base = compute_metrics({}, queries, bootstrap=0, prior=prior, mean_ap=True)
        for name, values in base.baselines.items():
            rows.append({"set": cs.name, "half": h, "method": name + (" (dev-fitted)" if name == "prior span" else ""),
                         "rephrasings": "-", **values, "n": len(queries), "failures": 0, "qps": None})
        if cs.reference:
            m = compute_metrics(cs.reference, queries, bootstrap=0, baselines=False, mean_ap=True)
            rows.append({"set": cs.name, "half": h, "method": cs.reference_name, "rephrasings": "yes", **m.values,
                         "n": len(queries), "failures": m.n_failures, "qps": None})
        for (spec, reph), preds in results.items():
            m = compute_metrics(preds, queries, bootstrap=0, baselines=False, mean_ap=True)
            rows.append({"set": cs.name, "half": h, "method": spec, "rephrasings": reph, **m.values, "n": len(queries),
                         "failures": m.n_failures, "qps": round(len(wanted) / seconds[(spec, reph)], 1)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"| set | half | method | rephrasings | {' | '.join(COLUMNS)} | failed | queries/s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        vals = " | ".join(f"{r[c]:.2f}" if c in r else "-" for c in COLUMNS)
        qps = f"{r['qps']:.1f}" if r.get("qps") else "-"
        lines.append(f"| {r['set']} | {r['half']} ({r['n']}) | {r['method']} | {r['rephrasings']} | {vals} | "
                     f"{r['failures']} | {qps} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", choices=SETS, default=["qvhighlights"])
    ap.add_argument("--reasoners", nargs="+", default=list(DEFAULT_REASONERS),
                    help="reasoner specs, each optionally with options: SPEC@KEY=VALUE,KEY=VALUE (default: %(default)s)")
    ap.add_argument("--halves", nargs="+", choices=HALVES, default=list(HALVES))
    ap.add_argument("--rephrasings", choices=("off", "on", "both"), default="both",
                    help="run reasoners that accept rephrasings without them, with them, or both (default)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev/report split (default 0)")
    ap.add_argument("--videos", type=int, default=0, metavar="N",
                    help="only the first N videos of each half in a seeded order (the same for every reasoner and "
                         "run: for encoders too slow to run a whole half); default: all")
    ap.add_argument("--data-root", default=None, help="folder holding qvhighlights/, nextgqa/ (default: $VIDGROUND_DATA or ../shared/data)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.videos < 0:
        ap.error(f"--videos must be 0 (all) or a positive number of videos per half, got {args.videos}")
    started = time.perf_counter()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    try:
        for row in args.reasoners:  # a misspelt row fails now, not after the data is loaded
            spec, options = parse_row(row)
            reasoners.check(spec, **options)
        root = data_root(args.data_root)
        for name in args.sets:
            t0 = time.perf_counter()
            cs = LOADERS[name](root)
            print(f"{name}: {len(cs.queries)} queries on {len(cs.transcripts)} captioned videos "
                  f"({cs.skipped} queries without captions here), loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rows += run_set(cs, args.reasoners, halves=args.halves, seed=args.seed, rephrasings=args.rephrasings,
                            videos=args.videos)
    except VidgroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    subset_note = f"the first {args.videos} videos of each half in a seeded order; " if args.videos else ""
    print(f"\nSplit by video with seed {args.seed}; {subset_note}IoU over seconds, GT as annotated; R1 and mIoU on the top-1 "
          f"interval; mAP as moment_detr's standalone_eval (up to 10 ranked intervals). Total {time.perf_counter() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
