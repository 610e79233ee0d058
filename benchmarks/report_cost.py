"""What the default eval report costs beside the eval itself (issue #20: "the default eval report adds
<= 20% to a 500-query stage-2 eval").

Each round runs, as fresh processes: a stage-2 eval with ``--no-report`` into a new run folder (the
embedding reasoner on a dataset's shared captions), then ``vidground report`` on that folder with the
defaults an eval uses (bootstrap 1000, summary plots, the 50 worst queries' timelines), then the same
report with ``--all-timelines``. Rounds interleave the three so the machine's load falls on all of
them; the ratios are medians of each round's report/eval, in wall time and in CPU time (the child
processes' user + system). The report command pays for its own interpreter start and imports, which
the report inside an eval does not, so the ratio is an upper bound. Every report is checked (metrics
for every query, three summary PNGs, the expected number of inline SVG timelines) and the script
exits 1 when one is wrong.

Run: python benchmarks/report_cost.py [--rounds 3] [--limit N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import Recorder, add_arguments, run_timed  # noqa: E402

DEFAULT_DESCRIPTIONS = ROOT.parent / "shared" / "data" / "qvhighlights" / "captions-minigptv2-val-dev"
TARGET = 0.2


def check_report(run: Path, timelines: int) -> int:
    """The report's query count, after checking it holds what a report must; exits 1 when it does not."""
    metrics = json.loads((run / "metrics.json").read_text())
    n = metrics["metrics"]["n"]
    summary = sorted(p.name for p in (run / "plots" / "summary").glob("*.png"))
    drawn = len(re.findall(r"<svg class='timeline'", (run / "index.html").read_text(encoding="utf-8")))
    expected = n if timelines < 0 else min(timelines, n)
    problems = [f"{len(summary)} summary plots, not 3"] * (len(summary) != 3) + \
        [f"{drawn} timelines, expected {expected}"] * (drawn != expected) + \
        [f"{len(metrics['per_query'])} per-query scores for {n} queries"] * (len(metrics["per_query"]) != n)
    if problems:
        sys.exit(f"report in {run} is wrong: " + "; ".join(problems))
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="qvhighlights")
    p.add_argument("--descriptions", default=str(DEFAULT_DESCRIPTIONS))
    p.add_argument("--limit", type=int, default=None, help="queries picked before the captions are matched")
    p.add_argument("--rounds", type=int, default=3)
    add_arguments(p, "report_cost")
    args = p.parse_args()
    rec = Recorder("report_cost", args, {"dataset": args.dataset, "descriptions": args.descriptions,
                                         "limit": args.limit, "rounds": args.rounds, "reasoner": "embedding",
                                         "report": "vidground report RUN (bootstrap 1000, 50 worst timelines)"})
    eval_args = ["eval", args.dataset, "--descriptions", args.descriptions, "--allow-missing", "--no-report", "--quiet"]
    if args.limit:
        eval_args += ["--limit", str(args.limit)]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            run = Path(tmp) / f"run{k}"
            ev = run_timed([*eval_args, "--out", str(run)], ROOT)[:2]
            rp = run_timed(["report", str(run)], ROOT)[:2]
            n = check_report(run, 50)
            ra = run_timed(["report", str(run), "--all-timelines"], ROOT)[:2]
            check_report(run, -1)
            row = {"round": k, "queries": n, "eval_wall_s": round(ev[0], 2), "eval_cpu_s": round(ev[1], 2),
                   "report_wall_s": round(rp[0], 2), "report_cpu_s": round(rp[1], 2),
                   "report_all_wall_s": round(ra[0], 2), "report_all_cpu_s": round(ra[1], 2),
                   "ratio_wall": round(rp[0] / ev[0], 3), "ratio_cpu": round(rp[1] / ev[1], 3),
                   "ratio_all_wall": round(ra[0] / ev[0], 3), "ratio_all_cpu": round(ra[1] / ev[1], 3),
                   "index_html_mb_all": round((run / "index.html").stat().st_size / 1e6, 2)}
            print(json.dumps(row))
            rounds.append(row)
    med = {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0] if k != "round"}
    worst = max(med["ratio_wall"], med["ratio_cpu"])
    print(f"\n{med['queries']:.0f} queries: eval {med['eval_wall_s']} s wall / {med['eval_cpu_s']} s CPU; "
          f"default report {med['report_wall_s']} s / {med['report_cpu_s']} s = {med['ratio_wall']}x wall, "
          f"{med['ratio_cpu']}x CPU (target <= {TARGET}); --all-timelines {med['ratio_all_wall']}x / "
          f"{med['ratio_all_cpu']}x")
    rec.write([{"what": "median", **med}] + rounds, target=TARGET, met=worst <= TARGET)


if __name__ == "__main__":
    main()
