"""Two evals sharing one description cache: how many frames are described twice (issue #18).

Renders N short videos, then starts two ``vidground eval`` processes at the same moment over the same
videos with the same ``--cache`` file (the offline ``cv`` describer), and counts the describer calls
both runs made (``describe_calls`` in their ``videos.jsonl``) against the frames there are: every call
beyond one per frame paid for a frame twice. Both runs must also end with every query done.

Run: python benchmarks/shared_cache.py [--videos 6] [--seconds 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from frame_describer.synthetic import render_numbered_video

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=20, help="length of each video (one frame a second is described)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = tmp / "videos"
        videos.mkdir()
        rows = []
        for i in range(args.videos):
            render_numbered_video(videos / f"v{i}.mp4", n_frames=args.seconds * 10, fps=10, size=(96 + 16 * i, 72))
            rows.append({"qid": f"q{i}", "video": f"v{i}", "query": "a number on a screen",
                         "duration": float(args.seconds), "windows": [[0.0, 2.0]]})
        dataset = tmp / "queries.jsonl"
        dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cache = tmp / "descriptions.sqlite"
        procs = [subprocess.Popen([sys.executable, "-m", "pipelines.cli", "eval", "jsonl", "--dataset-file",
                                   str(dataset), "--videos", str(videos), "--cache", str(cache), "--out",
                                   str(tmp / f"run{k}"), "--no-report", "--quiet", "--concurrency", "2"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k in range(2)]
        errors = [p.communicate()[1] for p in procs]
        codes = [p.returncode for p in procs]
        calls = saved = done = 0
        for k in range(2):
            for line in (tmp / f"run{k}" / "videos.jsonl").read_text().splitlines():
                rec = json.loads(line)
                calls += rec.get("describe_calls", 0)
                saved += rec.get("describe_saved", 0)
            done += sum(json.loads(x)["status"] == "ok" for x in (tmp / f"run{k}" / "results.jsonl").read_text().splitlines())
        frames = (calls + saved) // 2
    duplicates = calls - frames
    result = {"videos": args.videos, "seconds": args.seconds, "frames": frames, "describer_calls": calls,
              "answered_by_cache": saved, "duplicate_calls": duplicates,
              "duplicate_share": round(duplicates / frames, 4) if frames else None,
              "queries_done": done, "queries": 2 * args.videos, "exit_codes": codes}
    share = "-" if result["duplicate_share"] is None else f"{result['duplicate_share']:.1%}"
    print(f"{frames} frames; {calls} describer calls across both runs, {saved} answered by the shared cache; "
          f"{duplicates} described twice ({share}); {done}/{2 * args.videos} queries done; exit codes {codes}")
    for e in errors:
        if e.strip():
            print(e.strip()[-2000:], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if any(codes) or not frames or done != 2 * args.videos:
        raise SystemExit(1)  # a run failed: the figures above are not the measurement


if __name__ == "__main__":
    main()
