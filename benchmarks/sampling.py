"""Frame sampling against the decoders' own fastest ways, on long H.264 videos with drawn frame numbers.

Renders (once, cached in ``--videos``) H.264 videos whose every frame shows its number as a bar code
(``frame_describer.synthetic.draw_frame_number``, modulo 16384), keyframe interval 250 frames at
25 fps (x264 veryfast, crf 23, no scene-cut keyframes):

  30min_360p   640x360, 25 fps, 30 minutes
  3min_720p    1280x720, 25 fps, 3 minutes
  2h_360p      640x360, 5 fps (keyframe every 50 frames: the same 10 s), 2 hours, for the
               sparse-pass target only (2 hours at 25 fps takes too long to render here)

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

On the 2-hour video a frame every 16 s (a coarse-to-fine search's sparse pass) is timed three ways,
interleaved: exact (``sample_frames(times=...)``), ``keyframes_only=True`` (each time's nearest keyframe,
checked to be that keyframe and to show its own number), and decoding every frame; each row gives
its fraction of the full decode (target under 10%).

Run: python benchmarks/sampling.py [--rounds 3] [--videos DIR] [--load-note TEXT] [--json PATH]
[--sparse-only: only the 2-hour rows, the others kept from the JSON]
(about 10 minutes on a busy 2-core machine with --rounds 1 once the videos are rendered; rendering
them takes about as long again, once)
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

from _results import Recorder, add_arguments
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import BITS, draw_frame_number, read_frame_number

VIDEOS = {  # name: (width, height, fps, seconds, keyframe interval in frames)
    "30min_360p": (640, 360, 25, 1800, 250),
    "3min_720p": (1280, 720, 25, 180, 250),
    "2h_360p": (640, 360, 5, 7200, 50),
}
TARGET_RATIO, RESIZE_TARGET, SPARSE_TARGET = 1.1, 1.15, 0.10


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
    ap.add_argument("--sparse-only", action="store_true",
                    help="run only the 2-hour sparse pass and replace its row in the existing JSON")
    add_arguments(ap, "sampling")
    args = ap.parse_args()
    vdir = Path(args.videos)
    vdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (w, h, fps, seconds, gop) in VIDEOS.items():
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
    rows, failed = [], False
    if args.sparse_only:  # the other rows as last recorded
        old = Path(args.json_out)
        rows = [r for r in json.loads(old.read_text())["rows"] if r["video"] != "2h_360p"] if old.is_file() else []
    for name in () if args.sparse_only else ("30min_360p", "3min_720p"):
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
    # the sparse pass of a coarse-to-fine search on 2 hours: a frame every 16 s against decoding it all
    w, h, fps, seconds, _ = VIDEOS["2h_360p"]
    n = fps * seconds
    times = [float(t) for t in range(0, seconds, 16)]
    sparse_s, full_s, key_s, key_ok, key_frames = [], [], [], (True, ""), 0
    for r in range(args.rounds):
        order = ["sparse", "keyframes", "full"]
        for m in order[r % 3:] + order[:r % 3]:
            if m == "keyframes":
                secs, res = timed(m_vidground_keyframes, paths["2h_360p"], times, fps, n)
                good, why = keyframes_correct(res, times, fps, n, VIDEOS["2h_360p"][4])
                key_ok = key_ok if good else (False, why)
                key_s.append(secs)
                key_frames = len(res)
                print(f"2h_360p     1/16 s    keyframes     {secs:7.2f} s cpu  {'ok' if good else 'WRONG ' + why}")
                del res
            elif m == "sparse":
                secs, res = timed(m_vidground, paths["2h_360p"], times, fps, n)
                good, why = correct(res, times, fps, n)
                failed |= not good
                sparse_s.append(secs)
                print(f"2h_360p     1/16 s    vidground     {secs:7.2f} s cpu  {'ok' if good else 'WRONG ' + why}")
                del res
            else:
                secs, count = timed(decode_all, paths["2h_360p"])
                full_s.append(secs)
                print(f"2h_360p     decode all ({count} frames) {secs:7.2f} s cpu")
    fraction = statistics.median(sparse_s) / statistics.median(full_s)
    rows.append({"video": "2h_360p", "case": "1 frame / 16 s", "frames": len(times),
                 "cpu_s": {"vidground": round(statistics.median(sparse_s), 3),
                           "decode_all": round(statistics.median(full_s), 3)},
                 "correct": {"vidground": not failed}, "fraction_of_full_decode": round(fraction, 3),
                 "within_target": fraction < SPARSE_TARGET})
    # the same pass answered by the nearest keyframes (sample_frames(keyframes_only=True)): approximate
    key_fraction = statistics.median(key_s) / statistics.median(full_s)
    rows.append({"video": "2h_360p", "case": "1 frame / 16 s, nearest keyframes", "frames": key_frames,
                 "cpu_s": {"vidground_keyframes": round(statistics.median(key_s), 3),
                           "decode_all": round(statistics.median(full_s), 3)},
                 "correct": {"vidground_keyframes": key_ok[0]}, "errors": {} if key_ok[0] else {"vidground_keyframes": key_ok[1]},
                 "fraction_of_full_decode": round(key_fraction, 3), "within_target": key_fraction < SPARSE_TARGET})
    failed |= not key_ok[0]
    print()
    for r in rows:
        extra = f"  resized/unresized {r['resized_over_unresized']}" if "resized_over_unresized" in r else ""
        if "ratio" in r:
            print(f"{r['video']:11} {r['case']:15} vidground {r['cpu_s']['vidground']:6.2f} s, fastest other "
                  f"{r['fastest_other']} {r['cpu_s'].get(r['fastest_other'], float('nan')):6.2f} s, "
                  f"ratio {r['ratio']}{extra}")
        else:
            print(f"{r['video']:11} {r['case']:15} {r['fraction_of_full_decode']:.3f} of a full decode")
    notes = [f"decord: {no_decord}"] if no_decord else []
    if args.sparse_only:
        notes.append("--sparse-only: the 30min_360p and 3min_720p rows are kept from the previous run's JSON; "
                     "the command, date and load above are this run's (the 2h_360p rows)")
    rec.write(rows, notes=notes)
    if failed:
        print("vidground returned a wrong frame", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
