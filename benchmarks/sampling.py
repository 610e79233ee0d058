"""Frame sampling against the decoders' own fastest ways, on long H.264 videos with drawn frame numbers.

Renders (once, cached in ``--videos``) H.264 videos whose every frame shows its number as a bar code
(``frame_describer.synthetic.draw_frame_number``, modulo 16384), keyframe interval 250 frames at
25 fps (x264 veryfast, crf 23, no scene-cut keyframes):

  3min_360p    640x360, 25 fps, 3 minutes
  30min_360p   640x360, 25 fps, 30 minutes
  3min_720p    1280x720, 25 fps, 3 minutes
  30min_720p   1280x720, 25 fps, 30 minutes
  2h_360p      640x360, 5 fps (keyframe every 50 frames: the same 10 s), 2 hours, for the
               sparse-pass target only (2 hours at 25 fps takes too long to render here)

(render them first, at the lowest CPU priority: ``nice -n 19 python benchmarks/sampling.py --render-only``;
the 30-minute 720p video took about two hours that way on a busy 2-core machine, once)

and times, per case (16 or 64 evenly spaced frames, or 1 fps), the CPU time (process time of all
threads, children included) each method takes to return the frames nearest the requested times as
RGB arrays at full size:

  vidground        sample_frames(times=..., max_side=None) (the same times as num_frames or fps would
                   ask for), which chooses between decoding on and seeking
  opencv_seek      cv2.VideoCapture: set(CAP_PROP_POS_FRAMES, nearest index), read()
  opencv_grab      grab() every frame, retrieve() the wanted ones
  pyav_seq         decode every frame, convert the wanted ones
  pyav_seek        seek to the keyframe before each time, decode forward to the nearest frame
  decord           VideoReader.get_batch(nearest indices) (when decord installs)

Methods that decode everything run in the dense cases and, on the 3-minute video, the sparse ones
too; OpenCV's seek by frame runs in the sparse cases only (in a dense pass every seek decodes from
a keyframe again). Every returned frame's number is read back and compared with the truly nearest
frame's; a method that returns a wrong frame is marked and left out of "fastest correct", and the
script exits 1 when vidground returns a wrong frame. Rounds are interleaved (each round runs every
method once, in a rotated order) and the median is reported. A resized row compares
``max_side=512`` with the same frames unresized.

On the 2-hour video a frame every 16 s (a coarse-to-fine search's sparse pass) is timed, interleaved,
against decoding every frame: exact (``sample_frames(times=...)``), ``keyframes_only=True`` (each time's
nearest keyframe, checked to be that keyframe and to show its own number), and through the path the
search itself takes: a ``Session`` grounding coarse to fine (1 frame every 2 s as its grid, so its sparse
pass takes every 8th: 16 s apart; ``max_side=512``) with a describer that only reads each frame's drawn
number (checking it is the frame at the time it carries) and a reasoner that only matches text, once
exact (``keyframe_tolerance=0``) and once with the default tolerance (a keyframe within a quarter of the
spacing, 4 s), the sparse pass alone (``rounds=0``; every frame also checked to be the keyframe or the
exact frame its grid time should get) and the whole search. Each row gives its fraction of the full
decode (target under 10%).

Run: python benchmarks/sampling.py [--rounds 3] [--videos DIR] [--load-note TEXT] [--json PATH]
[--only NAME ...: only these videos' rows, the others kept from the JSON with the run that measured them]
(about an hour on a busy 2-core machine with --rounds 2 once the videos are rendered)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from _results import Recorder, add_arguments, loadavg
from frame_describer.base import BaseDescriber
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import BITS, draw_frame_number, read_frame_number
from pipelines import Session
from temporal_reasoner.base import BaseReasoner
from vidground.types import FrameDescription, GroundingResult, Interval

VIDEOS = {  # name: (width, height, fps, seconds, keyframe interval in frames)
    "3min_360p": (640, 360, 25, 180, 250),
    "30min_360p": (640, 360, 25, 1800, 250),
    "3min_720p": (1280, 720, 25, 180, 250),
    "30min_720p": (1280, 720, 25, 1800, 250),
    "2h_360p": (640, 360, 5, 7200, 50),
}
TABLE, SPARSE = ("3min_360p", "30min_360p", "3min_720p", "30min_720p"), "2h_360p"
TARGET_RATIO, RESIZE_TARGET, SPARSE_TARGET = 1.1, 1.15, 0.10
SEARCH_FPS, SEARCH_QUERY = 0.5, "minute 42"  # the search's grid (its sparse pass: every 8th, 16 s) and query


def render(path: Path, width: int, height: int, fps: int, seconds: int, gop: int) -> Path:
    """Frames drawn straight into the luma plane (grey pictures; the bar code reads the same)."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    buf = np.empty((height * 3 // 2, width), np.uint8)
    buf[height:] = 128
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": str(gop), "x264-params": "scenecut=0"}
        for i in range(fps * seconds):
            y = buf[:height]
            y[:] = 60 + (i * 37) % 120
            draw_frame_number(y, i % 2**BITS)
            frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    tmp.rename(path)
    return path


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def nearest_index(t: float, fps: int, n: int) -> int:
    """The frame nearest ``t`` on a constant-rate grid, ties to the earlier one (vidground's rule)."""
    return min(max(math.ceil(t * fps - 0.5), 0), n - 1)


# ------------------------------------------------------------------------------------------ methods
# each takes (path, times, fps, n) and returns [(index it claims, RGB image)]

def m_vidground(path, times, fps, n, max_side=None):
    return [(None, f.image) for f in sample_frames(path, times=times, max_side=max_side)]


def m_vidground_keyframes(path, times, fps, n):
    return [(f.t, f.image) for f in sample_frames(path, times=times, max_side=None, keyframes_only=True)]


def keyframes_correct(result, times, fps, n, gop) -> tuple[bool, str]:
    """Each returned frame is the keyframe nearest some requested time (ties to the earlier), shows the
    number its time says, and each comes once, in time order."""
    last = (n - 1) // gop  # the last keyframe's number
    want = list(dict.fromkeys(gop * min(max(math.ceil(t * fps / gop - 0.5), 0), last) for t in times))
    got = []
    for t, img in result:
        try:
            drawn = read_frame_number(np.asarray(img))
        except ValueError:
            return False, f"unreadable frame at {t:.2f}s"
        if drawn != round(t * fps) % 2**BITS:
            return False, f"the frame at {t:.2f}s shows {drawn}"
        got.append(round(t * fps))
    if got != want:
        bad = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        return False, f"{len(got)} keyframes for {len(want)}; first wrong at #{bad}"
    return True, ""


def m_opencv_seek(path, times, fps, n):
    cap = cv2.VideoCapture(str(path))
    out = []
    try:
        for i in dict.fromkeys(nearest_index(t, fps, n) for t in times):
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, img = cap.read()
            out.append((i, cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if ok else None))
    finally:
        cap.release()
    return out


def m_opencv_grab(path, times, fps, n):
    wanted = list(dict.fromkeys(nearest_index(t, fps, n) for t in times))
    cap, out, k, i = cv2.VideoCapture(str(path)), [], 0, 0
    try:
        while k < len(wanted) and cap.grab():
            if i == wanted[k]:
                out.append((i, cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB)))
                k += 1
            i += 1
    finally:
        cap.release()
    return out


def m_pyav_seq(path, times, fps, n):
    wanted = list(dict.fromkeys(nearest_index(t, fps, n) for t in times))
    out, k = [], 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            if i == wanted[k]:
                out.append((i, f.to_ndarray(format="rgb24")))
                k += 1
                if k == len(wanted):
                    break
    return out


def m_pyav_seek(path, times, fps, n):
    wanted = list(dict.fromkeys(nearest_index(t, fps, n) for t in times))
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        tb, pos = s.time_base, -1
        frames = None
        for i in wanted:
            pts = round(i / fps / tb)
            if frames is None or i - pos > 64:  # the keyframe interval's margin: decode on when near
                c.seek(pts, stream=s, backward=True)
                frames = c.decode(s)
            for f in frames:
                pos = round(f.pts * tb * fps)
                if f.pts >= pts:
                    out.append((i, f.to_ndarray(format="rgb24")))
                    break
    return out


def m_decord(path, times, fps, n):
    import decord

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    wanted = list(dict.fromkeys(nearest_index(t, fps, n) for t in times))
    batch = vr.get_batch(wanted).asnumpy()
    return list(zip(wanted, batch))


METHODS: dict[str, Callable] = {"vidground": m_vidground, "opencv_seek": m_opencv_seek,
                                "opencv_grab": m_opencv_grab, "pyav_seq": m_pyav_seq, "pyav_seek": m_pyav_seek,
                                "decord": m_decord}
SEQUENTIAL = {"opencv_grab", "pyav_seq"}


def decord_status() -> str | None:
    try:
        import decord  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc}): pip install decord (its wheels are for x86_64 Linux, macOS and Windows)"
    return None


def correct(result, times, fps, n) -> tuple[bool, str]:
    want = list(dict.fromkeys(nearest_index(t, fps, n) for t in times))
    got = []
    for _, img in result:
        try:
            got.append(read_frame_number(np.asarray(img)) if img is not None else -1)
        except ValueError:
            got.append(-1)
    if got == [w % 2**BITS for w in want]:
        return True, ""
    bad = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w % 2**BITS), min(len(got), len(want)))
    return False, f"{len(got)} frames for {len(want)}; first wrong at #{bad}"


def cases(name: str, fps: int, seconds: int) -> list[tuple[str, list[float], list[str]]]:
    dur = seconds
    sparse = [(f"{k} frames", [(i + 0.5) * dur / k for i in range(k)]) for k in (16, 64)]
    dense = ("1 fps", [float(i) for i in range(dur)])
    seq_in_sparse = seconds <= 600
    out = []
    for label, times in sparse:
        methods = ["vidground", "opencv_seek", "pyav_seek", "decord"] + (
            ["opencv_grab", "pyav_seq"] if seq_in_sparse else [])
        out.append((label, times, methods))
    out.append((dense[0], dense[1], ["vidground", "opencv_grab", "pyav_seq", "pyav_seek", "decord"]))
    return out


class NumberReader(BaseDescriber):
    """A describer that costs next to nothing: it reads each frame's drawn number, notes whether that is the
    frame at the time the frame carries, and says which minute the frame is in."""

    name = "number-reader"

    def __init__(self, fps: int):
        self.fps, self.times, self.wrong = fps, [], []

    def describe(self, frames, *, query=None):
        for f in frames:
            try:
                drawn = read_frame_number(np.asarray(f.image))
            except ValueError:
                drawn = -1
            if drawn != round(f.t * self.fps) % 2**BITS:
                self.wrong.append(f.t)
            self.times.append(f.t)
            yield FrameDescription(t=f.t, text=f"minute {int(f.t // 60)}")


class MinuteReasoner(BaseReasoner):
    """Grounds "minute M" on the stretch of lines that say it: a reasoner that costs next to nothing."""

    name = "minute"

    def ground(self, query, transcript):
        hits = [e for e in transcript.entries if e.text == query]
        intervals = [Interval(start=hits[0].start, end=hits[-1].end, score=1.0)] if hits else []
        return GroundingResult(query=query, duration=transcript.duration, intervals=intervals, reasoner=self.name)


def search_run(path: Path, fps: int, tolerance: float, rounds: int | None):
    """Ground SEARCH_QUERY coarse to fine through a Session, as a user would: the describer, the result."""
    reader = NumberReader(fps)
    search = {"strategy": "coarse-to-fine", "keyframe_tolerance": tolerance, **({} if rounds is None else {"rounds": rounds})}
    with Session(describer=reader, reasoner=MinuteReasoner(), cache=False, sampling={"fps": SEARCH_FPS},
                 search=search) as s:
        result = s.ground(path, SEARCH_QUERY)
    return reader, result


def sparse_correct(reader, result, fps: int, gop: int, tolerance_s: float) -> tuple[bool, str]:
    """Every frame shows its number, and the sparse pass's frames are what its grid times should get: the
    keyframe nearest each (ties to the earlier) where one is within the tolerance, else the nearest frame."""
    if reader.wrong:
        return False, f"{len(reader.wrong)} frame(s) do not show the frame at their time (first at {reader.wrong[0]:.2f}s)"
    key_s = gop / fps
    want = []
    for g, _, _ in result.settings["search"]["frames"]:
        key = key_s * math.ceil(g / key_s - 0.5)
        want.append(key if abs(key - g) <= tolerance_s + 1e-9 else math.ceil(g * fps - 0.5) / fps)
    want = sorted(set(round(t, 6) for t in want))
    got = [round(t, 6) for t in reader.times]
    if got != want:
        bad = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        return False, f"{len(got)} frames for {len(want)}; first wrong at #{bad}"
    return True, ""


def decode_all(path: Path) -> int:
    """Every frame decoded (threaded like vidground), none converted."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def timed(fn, *args, **kwargs):
    c0 = cpu()
    result = fn(*args, **kwargs)
    return cpu() - c0, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is reported (default 1)")
    ap.add_argument("--videos", default="/tmp/vidground-sampling-bench", help="where the rendered videos are cached")
    ap.add_argument("--render-only", action="store_true", help="render the videos and stop")
    ap.add_argument("--only", nargs="+", choices=[*TABLE, SPARSE], metavar="NAME",
                    help=f"run only these videos' rows ({', '.join([*TABLE, SPARSE])}); the others are kept from "
                         "the existing JSON, with the command, date and load of the run that measured them")
    add_arguments(ap, "sampling")
    args = ap.parse_args()
    vdir = Path(args.videos)
    vdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    this_run = [*TABLE, SPARSE] if not args.only or args.render_only else args.only
    for name in this_run:
        w, h, fps, seconds, gop = VIDEOS[name]
        p = vdir / f"{name}_g{gop}.mp4"
        if not p.exists():
            print(f"rendering {p} ...", flush=True)
        paths[name] = render(p, w, h, fps, seconds, gop)
    if args.render_only:
        return 0
    no_decord = decord_status()
    rec = Recorder("sampling", args, {
        "videos": {k: f"{w}x{h} H.264 (libx264 veryfast crf 23), {fps} fps, {s} s, keyframe every {g} frames"
                   for k, (w, h, fps, s, g) in VIDEOS.items()},
        "rounds": args.rounds, "cpu": "process time of all threads, children included",
        "decord": no_decord or __import__("decord").__version__, "targets": {
            "ratio": TARGET_RATIO, "resized_over_unresized": RESIZE_TARGET, "sparse_2h_fraction": SPARSE_TARGET}})
    rows, failed, provenance = [], False, {}
    if args.only:  # the other rows as last recorded, with the run that measured them
        old_path = Path(args.json_out)
        old = json.loads(old_path.read_text()) if old_path.is_file() else {"rows": []}
        rows = [r for r in old["rows"] if r["video"] not in this_run]
        earlier = {"command": old.get("command"), "date": old.get("date"), "load": old.get("load")}
        provenance = {v: (old.get("runs") or {}).get(v, earlier) for v in dict.fromkeys(r["video"] for r in rows)}
    for name in [v for v in TABLE if v in this_run]:
        w, h, fps, seconds, _ = VIDEOS[name]
        n = fps * seconds
        for label, times, methods in cases(name, fps, seconds):
            if no_decord:
                methods = [m for m in methods if m != "decord"]
            extra = label == "1 fps" and name == "3min_720p"  # the resize row
            runs = {m: [] for m in methods + (["vidground_512"] if extra else [])}
            ok = {m: (True, "") for m in runs}
            for r in range(args.rounds):
                order = list(runs)
                order = order[r % len(order):] + order[:r % len(order)]
                for m in order:
                    if m == "vidground_512":
                        secs, res = timed(m_vidground, paths[name], times, fps, n, max_side=512)
                    else:
                        secs, res = timed(METHODS[m], paths[name], times, fps, n)
                    runs[m].append(secs)
                    good, why = correct(res, times, fps, n)
                    if not good:
                        ok[m] = (False, why)
                    del res
                    print(f"{name:11} {label:9} {m:13} {secs:7.2f} s cpu  {'ok' if good else 'WRONG ' + why}", flush=True)
            med = {m: statistics.median(v) for m, v in runs.items()}
            fastest = min((m for m in methods if m != "vidground" and ok[m][0]), key=med.get, default=None)
            row = {"video": name, "case": label, "frames": len(times),
                   "cpu_s": {m: round(v, 3) for m, v in med.items()},
                   "correct": {m: ok[m][0] for m in runs}, "errors": {m: ok[m][1] for m in runs if not ok[m][0]},
                   "fastest_other": fastest, "ratio": round(med["vidground"] / med[fastest], 3) if fastest else None}
            row["within_target"] = row["ratio"] is not None and row["ratio"] <= TARGET_RATIO
            if extra:
                row["resized_over_unresized"] = round(med["vidground_512"] / med["vidground"], 3)
            failed |= not ok["vidground"][0] or (extra and not ok["vidground_512"][0])
            rows.append(row)
    if SPARSE in this_run:
        sparse_rows, sparse_failed = sparse_pass(paths[SPARSE], args.rounds)
        rows += sparse_rows
        failed |= sparse_failed
    print()
    for r in rows:
        extra = f"  resized/unresized {r['resized_over_unresized']}" if "resized_over_unresized" in r else ""
        if "ratio" in r:
            print(f"{r['video']:11} {r['case']:15} vidground {r['cpu_s']['vidground']:6.2f} s, fastest other "
                  f"{r['fastest_other']} {r['cpu_s'].get(r['fastest_other'], float('nan')):6.2f} s, "
                  f"ratio {r['ratio']}{extra}")
        else:
            print(f"{r['video']:11} {r['case']:50} {r['fraction_of_full_decode']:.3f} of a full decode")
    notes = [f"decord: {no_decord}"] if no_decord else []
    if provenance:  # rows kept from earlier runs: say which run measured which video
        provenance.update({v: {"command": rec.command, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                         "load": {"note": args.load_note, "loadavg_1_5_15_before": rec.before,
                                  "loadavg_1_5_15_after": loadavg()}} for v in this_run})
        notes.append(f"--only {' '.join(this_run)}: the other videos' rows are kept from earlier runs (see runs: each "
                     "video's command, date and load); every ratio is within one run")
    missing = [v for v in [*TABLE, SPARSE] if not any(r["video"] == v for r in rows)]
    if missing:
        notes.append(f"no rows for {', '.join(missing)}: not run yet (python benchmarks/sampling.py --only "
                     f"{' '.join(missing)} adds them once the videos are rendered)")
    rec.write(rows, notes=notes, **({"runs": provenance} if provenance else {}))
    if failed:
        print("vidground returned a wrong frame", file=sys.stderr)
        return 1
    return 0


def sparse_pass(path: Path, rounds: int) -> tuple[list[dict], bool]:
    """The 2-hour rows: a frame every 16 s, exact, as nearest keyframes and through the search's own path
    (its sparse pass alone and the whole search, exact and with the keyframe tolerance), against decoding
    every frame, interleaved."""
    _, _, fps, seconds, gop = VIDEOS[SPARSE]
    n = fps * seconds
    times = [float(t) for t in range(0, seconds, 16)]
    tolerance_s = 0.25 * 16  # the search's default: a quarter of its sparse pass's spacing
    rows, failed, exact_ok = [], False, True
    sparse_s, full_s, key_s, key_ok, key_frames = [], [], [], (True, ""), 0
    search = {m: {"cpu": [], "ok": (True, ""), "calls": 0, "frames": 0, "snapped": 0, "best": None}
              for m in ("pass_exact", "pass_keys", "search_exact", "search_keys")}
    for r in range(rounds):
        order = ["sparse", "keyframes", "full", *search]
        for m in order[r % len(order):] + order[:r % len(order)]:
            if m in search:
                tol = 0.25 if m.endswith("keys") else 0.0
                secs, (reader, result) = timed(search_run, path, fps, tol, 0 if m.startswith("pass") else None)
                rec = search[m]
                good, why = sparse_correct(reader, result, fps, gop, tol * 16) if m.startswith("pass") else (
                    not reader.wrong, f"{len(reader.wrong)} frame(s) wrong" if reader.wrong else "")
                rec["cpu"].append(secs)
                rec["ok"] = rec["ok"] if good else (False, why)
                info = result.settings["search"]
                rec["calls"], rec["frames"], rec["rounds"] = info["calls"], len(reader.times), info["rounds_done"]
                rec["snapped"] = sum(1 for _, p, why in info["frames"] if p == 0 and "answered by" in why)
                rec["best"] = [round(result.best.start, 1), round(result.best.end, 1)] if result.intervals else None
                failed |= not good
                print(f"2h_360p     {m:13} {secs:7.2f} s cpu  {len(reader.times)} frames, {info['calls']} calls  "
                      f"{'ok' if good else 'WRONG ' + why}", flush=True)
                del reader, result
                continue
            if m == "keyframes":
                secs, res = timed(m_vidground_keyframes, path, times, fps, n)
                good, why = keyframes_correct(res, times, fps, n, gop)
                key_ok = key_ok if good else (False, why)
                key_s.append(secs)
                key_frames = len(res)
                print(f"2h_360p     1/16 s    keyframes     {secs:7.2f} s cpu  {'ok' if good else 'WRONG ' + why}")
                del res
            elif m == "sparse":
                secs, res = timed(m_vidground, path, times, fps, n)
                good, why = correct(res, times, fps, n)
                exact_ok &= good
                sparse_s.append(secs)
                print(f"2h_360p     1/16 s    vidground     {secs:7.2f} s cpu  {'ok' if good else 'WRONG ' + why}")
                del res
            else:
                secs, count = timed(decode_all, path)
                full_s.append(secs)
                print(f"2h_360p     decode all ({count} frames) {secs:7.2f} s cpu")
    fraction = statistics.median(sparse_s) / statistics.median(full_s)
    rows.append({"video": "2h_360p", "case": "1 frame / 16 s", "frames": len(times),
                 "cpu_s": {"vidground": round(statistics.median(sparse_s), 3),
                           "decode_all": round(statistics.median(full_s), 3)},
                 "correct": {"vidground": exact_ok}, "fraction_of_full_decode": round(fraction, 3),
                 "within_target": fraction < SPARSE_TARGET})
    # the same pass answered by the nearest keyframes (sample_frames(keyframes_only=True)): approximate
    key_fraction = statistics.median(key_s) / statistics.median(full_s)
    rows.append({"video": "2h_360p", "case": "1 frame / 16 s, nearest keyframes", "frames": key_frames,
                 "cpu_s": {"vidground_keyframes": round(statistics.median(key_s), 3),
                           "decode_all": round(statistics.median(full_s), 3)},
                 "correct": {"vidground_keyframes": key_ok[0]}, "errors": {} if key_ok[0] else {"vidground_keyframes": key_ok[1]},
                 "fraction_of_full_decode": round(key_fraction, 3), "within_target": key_fraction < SPARSE_TARGET})
    failed |= not key_ok[0] or not exact_ok
    full = statistics.median(full_s)
    labels = {"pass_exact": "search's sparse pass (1 frame / 16 s), exact",
              "pass_keys": f"search's sparse pass (1 frame / 16 s), keyframes within {tolerance_s:g} s",
              "search_exact": f"search end to end ('{SEARCH_QUERY}'), exact sparse pass",
              "search_keys": f"search end to end ('{SEARCH_QUERY}'), keyframes within {tolerance_s:g} s"}
    for m, rec in search.items():
        med = statistics.median(rec["cpu"])
        rows.append({"video": SPARSE, "case": labels[m], "kind": "search", "frames": rec["frames"],
                     "calls": rec["calls"], "rounds": rec["rounds"], "snapped": rec["snapped"], "best": rec["best"],
                     "cpu_s": {"search": round(med, 3), "decode_all": round(full, 3)},
                     "correct": {"search": rec["ok"][0]}, "errors": {} if rec["ok"][0] else {"search": rec["ok"][1]},
                     "fraction_of_full_decode": round(med / full, 3), "within_target": med / full < SPARSE_TARGET})
    return rows, failed


if __name__ == "__main__":
    sys.exit(main())
