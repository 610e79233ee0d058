"""Time styles with a real local chat model: the same queries, transcripts written in each style.

For the seeded *check* subset of the Charades-STA train queries (oracle transcripts from the annotations,
one line per second, as ``benchmarks/charades_oracle.py`` builds them) it grounds every query with one
chat reasoner (default ``llamacpp:gemma3-270m``, the only chat model that runs here) once per time style
(seconds, mm:ss, frame numbers, ``<k>`` tokens with M = 300 and M = 100), and scores the top-1 answers
with :mod:`pipelines.metrics` beside the whole-video baseline. It also counts, per style, the answers that
needed a re-ask and those that never gave a usable reply (scored 0).

Run: python benchmarks/time_styles.py [-n 40] [--reasoner llamacpp:gemma3-270m] [--load-note TEXT]
Writes benchmarks/results/time_styles.json (``--json``), rendered into docs/benchmarks.md by make_page.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from _results import Recorder, add_arguments  # noqa: E402
from frame_describer.descriptions_io import read_descriptions  # noqa: E402
from oracle import load_split, write_oracle_folder  # noqa: E402
from pipelines.metrics import compute_metrics  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402
from vidground.errors import VidgroundError  # noqa: E402

STYLES = ("seconds", "mmss", "frames", "tokens:300", "tokens:100")
COLUMNS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="queries (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reasoner", default="llamacpp:gemma3-270m")
    ap.add_argument("--styles", nargs="+", default=list(STYLES))
    add_arguments(ap, "time_styles")
    args = ap.parse_args()
    rec = Recorder("time_styles", args, {"reasoner": args.reasoner, "queries": args.n, "seed": args.seed,
                                         "data": "Charades-STA train, check subset, oracle transcripts (1 line/s)",
                                         "styles": args.styles})
    split = load_split(None, n_dev=args.n, n_check=args.n, seed=args.seed)
    queries = split.check
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_oracle_folder(Path(tmp), [split.videos[v] for v in {q.video for q in queries}], split.classes,
                                    style="oracle", seed=args.seed)
        transcripts = {}
        for vid, path in paths.items():
            descs = read_descriptions(path)
            transcripts[vid] = Transcript.from_descriptions(descs, duration=descs[0].model_extra.get("duration"))
    rows, baseline = [], None
    for style in args.styles:
        reasoner = get_reasoner(args.reasoner, time_style=style)
        preds, reasked, failed, started = {}, 0, 0, time.perf_counter()
        for q in queries:
            try:
                res = reasoner.ground(q.query, transcripts[q.video])
                preds[q.qid] = [iv.as_list() for iv in res.intervals]
                reasked += res.settings.get("attempts", 1) > 1
            except VidgroundError as exc:
                preds[q.qid] = None
                failed += 1
                print(f"  {style}: {q.qid} failed: {str(exc)[:160]}", file=sys.stderr)
        seconds = time.perf_counter() - started
        m = compute_metrics(preds, queries, bootstrap=0, baselines=baseline is None)
        if baseline is None:
            baseline = {k: round(v, 2) for k, v in m.baselines.get("whole video", {}).items() if k in COLUMNS}
        row = {"style": style, **{c: round(m.values[c], 2) for c in COLUMNS}, "reasked": reasked, "failed": failed,
               "seconds_per_query": round(seconds / len(queries), 2)}
        rows.append(row)
        print(f"{style:<11} " + "  ".join(f"{c} {row[c]:6.2f}" for c in COLUMNS)
              + f"  re-asked {reasked}  failed {failed}  {row['seconds_per_query']:.1f} s/query", flush=True)
    print(f"whole video {baseline}")
    rec.write(rows, baseline=baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
