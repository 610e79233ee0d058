"""Stage-2 benchmark on real queries: reasoners over oracle descriptions from the Charades annotations.

    python benchmarks/charades_oracle.py                          # embedding + naive, dev & check, oracle & prose
    python benchmarks/charades_oracle.py --reasoners embedding llamacpp --subsets check --styles oracle
    python benchmarks/charades_oracle.py --write-descriptions out/   # keep the descriptions folders
    python benchmarks/charades_oracle.py --reasoners embedding embedding@spans=peaks embedding@spans=ranked naive

A reasoner is a spec with options after ``@`` as in ``benchmarks/real_captions.py`` (``SPEC@KEY=VALUE,KEY=VALUE``,
values read as ``vidground eval --reasoner-opt`` reads them), so settings of one reasoner run side by side.

For every video of the seeded *dev* and *check* subsets of the Charades-STA train queries (disjoint
videos; see ``benchmarks/oracle.py``) it writes one descriptions JSONL per video (the format
``vidground describe`` writes), reads each back through the stage-2 path (descriptions file ->
transcript -> reasoner) and scores top-1 predictions with :mod:`pipelines.metrics`. Every row shows
the trivial baselines (whole video; a fixed prior span, the mean normalised GT span of the *dev*
subset) beside the reasoners. Tune on dev only; check is for reporting.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # the repo, benchmarks/

from frame_describer.descriptions_io import read_descriptions  # noqa: E402
from vidground.errors import VidgroundError  # noqa: E402
from pipelines.metrics import compute_metrics, mean_prior  # noqa: E402
from oracle import STYLES, OracleSplit, load_split, write_oracle_folder  # noqa: E402
from real_captions import parse_row  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402

COLUMNS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


def _transcripts(split: OracleSplit, style: str, folder: Path) -> dict[str, Transcript]:
    paths = write_oracle_folder(folder / style, split.videos.values(), split.classes, style=style, seed=split.seed)
    out = {}
    for vid, path in paths.items():
        descs = read_descriptions(path)
        out[vid] = Transcript.from_descriptions(descs, duration=split.videos[vid].length, step=1.0)
    return out


def run(reasoner_specs: list[str], *, subsets: list[str], styles: list[str], n: int = 1000, seed: int = 0,
        root: str | None = None, clip_gt: bool = False, workdir: Path | None = None,
        reasoner_options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Score every reasoner on every (subset, style); returns one row per (subset, style, method).

    A spec may carry options (``embedding@spans=peaks``, see :func:`real_captions.parse_row`); options
    given for it in ``reasoner_options`` are added to them."""
    split = load_split(root, n_dev=n, n_check=n, seed=seed)
    prior = mean_prior(split.dev)
    reasoners = {}
    for row in reasoner_specs:
        spec, options = parse_row(row)
        reasoners[row] = get_reasoner(spec, **{**options, **(reasoner_options or {}).get(row, {})})
    for reasoner in reasoners.values():  # similarity reasoners: encode every query in large batches first
        if hasattr(reasoner, "warm"):
            reasoner.warm([q.query for q in split.dev + split.check])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vidground-oracle-") as tmp:
        folder = workdir or Path(tmp)
        for style in styles:
            transcripts = _transcripts(split, style, folder)
            for subset in subsets:
                queries = split.dev if subset == "dev" else split.check
                baseline_done = False
                for spec, reasoner in reasoners.items():
                    started = time.perf_counter()
                    preds = {}
                    for q in queries:
                        try:
                            res = reasoner.ground(q.query, transcripts[q.video])
                            preds[q.qid] = [iv.as_list() for iv in res.intervals]
                        except VidgroundError as exc:  # a failed query scores 0 and the run goes on
                            preds[q.qid] = None
                            print(f"  {spec} failed on {q.qid}: {exc}", file=sys.stderr)
                    seconds = time.perf_counter() - started
                    m = compute_metrics(preds, queries, clip_gt=clip_gt, bootstrap=0, prior=prior,
                                        baselines=not baseline_done)
                    if not baseline_done:
                        for name, values in m.baselines.items():
                            rows.append({"subset": subset, "style": style, "method": name, **values, "seconds": 0.0})
                        baseline_done = True
                    rows.append({"subset": subset, "style": style, "method": spec, **m.values,
                                 "seconds": round(seconds, 1), "failures": m.n_failures})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"| subset | transcript | method | {' | '.join(COLUMNS)} | s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        vals = " | ".join(f"{r.get(c, float('nan')):.2f}" for c in COLUMNS)
        lines.append(f"| {r['subset']} | {r['style']} | {r['method']} | {vals} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reasoners", nargs="+", default=["embedding", "naive"], help="reasoner specs, each optionally SPEC@KEY=VALUE,KEY=VALUE (default: embedding naive)")
    ap.add_argument("--subsets", nargs="+", choices=("dev", "check"), default=["dev", "check"])
    ap.add_argument("--styles", nargs="+", choices=STYLES, default=list(STYLES),
                    help="oracle: terse per-second lines; prose: the same facts as varied multi-sentence prose")
    ap.add_argument("-n", type=int, default=1000, help="queries per subset (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="subset and prose seed (default 0)")
    ap.add_argument("--data-root", default=None, help="folder holding charades-sta/ (default: $VIDGROUND_DATA or ../shared/data)")
    ap.add_argument("--clip-gt", action="store_true", help="clip GT windows to the video duration (default: as annotated)")
    ap.add_argument("--write-descriptions", type=Path, default=None, metavar="DIR",
                    help="keep the descriptions folders (DIR/oracle, DIR/prose) instead of a temporary folder")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: with busy cores, more threads spin and run far slower)")
    ap.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    if args.threads > 0:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    try:
        rows = run(args.reasoners, subsets=args.subsets, styles=args.styles, n=args.n, seed=args.seed,
                   root=args.data_root, clip_gt=args.clip_gt, workdir=args.write_descriptions)
    except VidgroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    print(f"\nCharades-STA train queries, seed {args.seed}, {args.n} per subset; IoU >= m over continuous seconds, "
          f"top-1, GT {'clipped to the duration' if args.clip_gt else 'as annotated'}; "
          f"total {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
