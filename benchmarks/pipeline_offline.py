"""Offline pipeline benchmark: speed and memory of the default backends, and the demo's accuracy.

For each video length it renders a numbered test video, then in a fresh process describes it with
the offline ``cv`` describer (1 fps) and grounds one query with the ``embedding`` reasoner, and
reports frames described per second, reasoner latency and the process's peak resident memory.
Frames are streamed, so peak memory must not grow with the video's length: the script exits
non-zero when the longest video's peak exceeds the shortest's by more than ``--max-growth-mib``.
It also runs ``vidground demo``'s events and prints each IoU against the rendered truth.

Run: python benchmarks/pipeline_offline.py [--lengths 30 120 600] [--max-growth-mib 64] [--load-note TEXT]
(a few minutes; ``--lengths 30 120`` for a quick look). The rows also go to
benchmarks/results/pipeline_offline.json (``--json``), which ``benchmarks/make_page.py`` renders
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import Recorder, add_arguments

CHILD = r"""
import json, resource, sys, time
from pipelines import describe, ground
t0 = time.perf_counter()
d = describe(sys.argv[1], cache=False)  # the describer's speed: the default description cache would answer a rerun
t1 = time.perf_counter()
r = ground(query="a person walks into the room", descriptions=d)
t2 = time.perf_counter()
r = ground(query="the lights go out", descriptions=d)
t3 = time.perf_counter()
print(json.dumps({"frames": len(d.descriptions), "describe_s": t1 - t0, "first_query_s": t2 - t1,
                  "next_query_s": t3 - t2, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(video: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(video)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=float, nargs="+", default=[30.0, 120.0, 600.0], help="video lengths in seconds")
    ap.add_argument("--max-growth-mib", type=float, default=64.0)
    add_arguments(ap, "pipeline_offline")
    args = ap.parse_args()
    rec = Recorder("pipeline_offline", args, {"describer": "cv", "reasoner": "embedding", "fps": 1.0,
                                              "video": "320x240, 10 fps, rendered", "lengths_s": args.lengths,
                                              "max_growth_mib": args.max_growth_mib})

    from frame_describer.synthetic import render_numbered_video
    from pipelines.demo import run_demo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            video = render_numbered_video(Path(tmp) / f"v{int(length)}.mp4", n_frames=int(length * 10), fps=10.0,
                                          size=(320, 240))
            m = measure(video)
            rows.append({"length_s": length, **m})
    print(f"{'video s':>8} {'frames':>7} {'describe fps':>13} {'1st query s':>12} {'next query s':>13} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['length_s']:>8.0f} {r['frames']:>7} {r['frames'] / r['describe_s']:>13.1f} "
              f"{r['first_query_s']:>12.2f} {r['next_query_s']:>13.3f} {r['peak_rss_mib']:>13.0f}")
    growth = rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]
    print(f"\npeak memory growth from {rows[0]['length_s']:.0f} s to {rows[-1]['length_s']:.0f} s of video: {growth:+.0f} MiB "
          f"(bound {args.max_growth_mib:.0f} MiB)")

    demo = run_demo()
    print("\ndemo events (offline cv + embedding):")
    for e in demo["events"]:
        print(f"  {e['event']:<11} truth {e['truth'][0]:5.1f}-{e['truth'][1]:5.1f}  predicted "
              f"{e['prediction'][0]:5.1f}-{e['prediction'][1]:5.1f}  IoU {e['iou']:.2f}")
    print(f"  {demo['found']} of {len(demo['events'])} with IoU >= 0.5")
    ok = growth <= args.max_growth_mib and demo["found"] == len(demo["events"])
    rec.write([{"length_s": r["length_s"], "frames": r["frames"], "describe_fps": round(r["frames"] / r["describe_s"], 1),
                "first_query_s": round(r["first_query_s"], 3), "next_query_s": round(r["next_query_s"], 4),
                "peak_rss_mib": round(r["peak_rss_mib"])} for r in rows],
              growth_mib=round(growth, 1), ok=ok,
              demo=[{"event": e["event"], "truth": e["truth"], "prediction": e["prediction"] and [round(x, 2) for x in e["prediction"]],
                     "iou": round(e["iou"], 3)} for e in demo["events"]])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
