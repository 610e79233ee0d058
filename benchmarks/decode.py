"""Decode benchmark: PyAV vs OpenCV, throughput and timestamp / nearest-frame accuracy.

Renders two numbered videos (constant 25 fps, and variable frame rate with bursts and gaps),
decodes each fully with both libraries and samples them at 2 fps with the same nearest-frame
rule, reading each returned frame's number back from its bar code. Prints a table:

  decode fps     frames decoded per second (full decode, colour conversion of sampled frames only)
  max |t| error  worst difference between the timestamp the library reports and the true pts
  nearest ok     sampled frames that are the frame truly nearest the requested time
  count reported what the library says the frame count is (true count in brackets)

Run: python benchmarks/decode.py [--load-note TEXT] [--json PATH]   (about a minute)

The rows also go to benchmarks/results/decode.json, which ``benchmarks/make_page.py`` renders
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from _results import Recorder, add_arguments
from frame_describer.synthetic import read_frame_number, render_numbered_video

RATE = 2.0


def pyav_frames(path: Path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            yield float(f.pts * s.time_base), f, lambda f=f: f.to_ndarray(format="rgb24")


def opencv_frames(path: Path):
    cap = cv2.VideoCapture(str(path))
    try:
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield t, None, lambda cap=cap: cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def reported_count(lib: str, path: Path) -> int:
    if lib == "opencv":
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n
    with av.open(str(path)) as c:
        return c.streams.video[0].frames


def run(lib: str, path: Path, times: list[float]) -> dict:
    frames = pyav_frames if lib == "pyav" else opencv_frames
    start = time.perf_counter()
    n, err = 0, 0.0
    for i, (t, _, _) in enumerate(frames(path)):
        n += 1
        err = max(err, abs(t - times[i]) if i < len(times) else float("inf"))
    fps = n / (time.perf_counter() - start)
    # sampling with the nearest-frame rule over the library's own timestamps
    end = times[-1] + (times[-1] - times[-2])
    targets = [k / RATE for k in range(int(np.ceil(end * RATE - 1e-9)))]
    want = list(dict.fromkeys(min(range(len(times)), key=lambda i: (abs(times[i] - x), i)) for x in targets))
    got, prev, k, last = [], None, 0, -1
    for t, _, image in frames(path):
        while k < len(targets) and t >= targets[k]:
            pick = prev if prev is not None and targets[k] - prev[0] <= t - targets[k] else (t, image())
            number = read_frame_number(pick[1])
            if number != last:
                got.append(number)
                last = number
            k += 1
        prev = (t, image())
    if k < len(targets) and prev is not None:
        number = read_frame_number(prev[1])
        if number != last:
            got.append(number)
    ok = sum(a == b for a, b in zip(got, want)) if len(got) == len(want) else \
        len(set(got) & set(want)) - abs(len(got) - len(want))
    return {"fps": fps, "err": err, "ok": f"{max(ok, 0)}/{len(want)}", "count": reported_count(lib, path), "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, "decode")
    args = ap.parse_args()
    rec = Recorder("decode", args, {"cfr": "750 frames, 25 fps, 320x240 H.264", "vfr": "200 frames, variable rate",
                                    "sample_fps": RATE, "timed": "second of two full decodes (the first warms up)"})
    rng = np.random.default_rng(0)
    vfr = np.cumsum(np.concatenate([[0.0], rng.choice([0.02, 0.04, 0.1, 0.3, 0.5], size=199)])).round(3).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        cfr_path = render_numbered_video(Path(tmp) / "cfr.mp4", n_frames=750, fps=25)
        vfr_path = render_numbered_video(Path(tmp) / "vfr.mp4", n_frames=200, fps=25, vfr_times=vfr)
        rows = []
        for name, path, times in (("CFR 25 fps, 750 frames", cfr_path, [i / 25 for i in range(750)]),
                                  ("VFR, 200 frames", vfr_path, vfr)):
            for lib in ("pyav", "opencv"):
                run(lib, path, times)  # warm-up
                r = run(lib, path, times)
                rows.append((name, lib, r))
    print(f"{'video':24} {'library':8} {'decode fps':>10} {'max |t| error':>14} {'nearest ok':>11} {'count reported':>15}")
    for name, lib, r in rows:
        print(f"{name:24} {lib:8} {r['fps']:10.0f} {r['err']:13.3f}s {r['ok']:>11} {r['count']:>8} ({r['n']})")
    rec.write([{"video": name, "library": lib, "decode_fps": round(r["fps"], 1), "max_t_error_s": round(r["err"], 6),
                "nearest_ok": r["ok"], "count_reported": r["count"], "count_true": r["n"]} for name, lib, r in rows])


if __name__ == "__main__":
    main()
