"""Stage-1 throughput: does the OpenAI describer overlap decoding with requests and keep
``concurrency`` requests in flight?

A local OpenAI-compatible server answers every request after a fixed delay L. A rendered
video is sampled into N frames; each trial times the decoding and sampling alone (D), then
right after it streams the same sampling through a fresh ``OpenAIDescriber(concurrency=C)``
(W), whose requests go through the OpenAI SDK. The ideal is ``max(D, ceil(N / C) * L)``; the
bound is ``W <= 1.2 x`` that. The median ratio over ``--trials`` paired trials must be within
the bound, and every trial must describe all frames with at most C requests in flight at the
server; the exit status is non-zero otherwise.

Fairness: D is measured exactly as before (the wall time of iterating ``sample_frames``
alone), but (1) after one untimed decode, because the first decode in a process pays
one-off codec/scaler setup that the describe runs never pay (counting it inflated D and
made the bound lenient), and (2) next to its own describe run, with the server up and
idle, so both see the same machine load. On a shared machine a single pair is
noise-dominated, hence the median of paired trials; ``--trials 1`` is the old single-sample
criterion. The server runs in its own process (no shared GIL); its CPU time per trial is
printed, as is the load average.

With the default L = 0.25 s the run is request-bound (ceil(N/C) x L well above decoding alone);
with ``--latency 0.05`` or ``0.02`` the requests take less than decoding alone on this 640x360
video, so the run is decode-bound. When decoding dominates, the client's per-frame CPU (the SDK's
request handling and the JPEG, see ``--diagnose``) competes with the decoder for the GIL and the
cores; the bound is the claim where requests dominate, and the decode-bound ratios are reported as
measured.

The source video matters when decoding dominates, since what counts is the describer's CPU per
frame against the decoding per described frame. The default (640x360 at 25 fps, 60 s, 96 frames:
1.6 frames described per second of flat synthetic pictures that decode quickly) is the hardest
case for the bound; ``--size 1280x720 --source-fps 30 --frames 60`` is 1 fps sampling of 720p
video, more decoding per described frame.

Run: python benchmarks/stage1_throughput.py [--frames 96] [--concurrency 8] [--latency 0.25 [0.05 ...]]
     [--trials 11] [--json out.json] [--size 640x360] [--source-fps 25] [--video-seconds 60] [--load-note TEXT]
     python benchmarks/stage1_throughput.py --diagnose   (JPEG cost and GIL stall per encoder; CPU per frame;
                                                         stand-in describers; decoding under load)
Quick: python benchmarks/stage1_throughput.py --trials 3 --latency 0.05
Page:  python benchmarks/stage1_throughput.py --trials 11 --latency 0.25 0.05 0.02

Each run writes its trials, one summary row per latency, the machine and the load to
benchmarks/results/stage1_throughput.json (``--diagnose``: stage1_diagnose.json; ``--json``
elsewhere, ``-`` nowhere), which ``benchmarks/make_page.py`` renders into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import RESULTS, Recorder, add_arguments
from frame_describer.images import encode_jpeg
from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import render_numbered_video
from vidground.types import Frame, FrameDescription

BOUND = 1.2


def _serve(port_out, max_in_flight, latency: float, stop) -> None:
    """The delay server's process (a separate process, so it does not share the client's GIL).

    It stands for a remote machine, so it takes as little of the two local cores as it can: one
    thread, a ``selectors`` loop over non-blocking sockets, a heap of replies falling due, and a
    prebuilt reply (a thread-per-connection ``http.server`` took about 0.5 ms of CPU per request,
    an asyncio streams server about 0.25 ms, all of it taken from the decoder being measured).
    HTTP/1.1 keep-alive; every request is answered ``latency`` seconds after its body arrived."""
    import heapq
    import selectors

    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "a frame"}}],
                       "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}}).encode()
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(stop, selectors.EVENT_READ, "stop")
    port_out.value = listener.getsockname()[1]
    due: list[tuple[float, int, socket.socket]] = []  # (when, sequence, connection)
    in_flight = seq = 0
    running = True
    while running:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        for key, _ in sel.select(timeout):
            if key.data == "stop":
                running = False
            elif key.data == "accept":
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, ConnectionAbortedError, InterruptedError):
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ, bytearray())
            else:
                conn, buf = key.fileobj, key.data
                try:
                    chunk = conn.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(conn)
                    conn.close()
                    continue
                buf += chunk
                while (end := buf.find(b"\r\n\r\n")) >= 0:
                    length = 0
                    for line in bytes(buf[:end]).split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    if len(buf) < end + 4 + length:
                        break
                    del buf[:end + 4 + length]
                    in_flight += 1
                    if in_flight > max_in_flight.value:
                        max_in_flight.value = in_flight
                    seq += 1
                    heapq.heappush(due, (time.monotonic() + latency, seq, conn))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, conn = heapq.heappop(due)
            in_flight -= 1
            try:
                try:
                    sent = conn.send(reply)  # a few hundred bytes: fits the empty send buffer of a waiting client
                except BlockingIOError:
                    sent = 0
                if sent < len(reply):  # it did not: finish it blocking rather than lose it
                    conn.setblocking(True)
                    conn.sendall(reply[sent:])
                    conn.setblocking(False)
            except OSError:  # the client went away
                pass
    listener.close()


class DelayServer:
    """Answers every chat completion after ``latency`` seconds, in its own process; records the
    most requests in flight at once."""

    def __init__(self, latency: float):
        ctx = multiprocessing.get_context("spawn")
        self._port, self._max = ctx.RawValue("i", 0), ctx.RawValue("i", 0)  # one writer each way
        stop_read, self._stop = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(self._port, self._max, latency, stop_read), daemon=True)
        self._proc.start()
        stop_read.close()
        deadline = time.monotonic() + 30
        while not self._port.value:
            if time.monotonic() > deadline or not self._proc.is_alive():
                raise RuntimeError("the delay server did not start")
            time.sleep(0.01)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port.value}/v1"

    @property
    def pid(self) -> int:
        return self._proc.pid

    def take_max_in_flight(self) -> int:
        """The most requests answered at once since the last call (then reset; call it while the
        server is idle)."""
        value, self._max.value = self._max.value, 0
        return value

    def close(self) -> None:
        try:
            self._stop.send(None)
        except OSError:
            pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.terminate()
        self._stop.close()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _decode_seconds(video: Path, frames: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = sum(1 for _ in sample_frames(video, num_frames=frames))
    return n, time.perf_counter() - t0


class _SleepOnly(OpenAIDescriber):
    """A stand-in that does no work per frame: it waits the server's latency and answers (the
    floor: what the describer's machinery and the last reply's wait cost)."""

    latency = 0.02  # the decode-bound regime --diagnose looks at

    def _describe_one(self, frame: Frame, text: str, stopped=None) -> FrameDescription:
        time.sleep(self.latency)
        return FrameDescription(t=frame.t, text="a frame")


class _JpegThenSleep(_SleepOnly):
    """The stand-in plus the one piece of work every request needs: the frame's JPEG."""

    def _describe_one(self, frame: Frame, text: str, stopped=None) -> FrameDescription:
        encode_jpeg(frame.image, max_side=self.max_side, quality=self.jpeg_quality)
        return super()._describe_one(frame, text, stopped)


def _describe(video: Path, frames: int, concurrency: int, base_url: str,
              kind: type[OpenAIDescriber] = OpenAIDescriber) -> tuple[int, float]:
    desc = kind("bench", base_url=base_url, concurrency=concurrency, prices=False)
    t0 = time.perf_counter()
    out = list(desc.describe(sample_frames(video, num_frames=frames)))
    wall = time.perf_counter() - t0
    desc.close()
    return len(out), wall


def run(frames: int, concurrency: int, latency: float, video_seconds: float, trials: int,
        size: tuple[int, int] = (640, 360), source_fps: float = 25.0) -> list[dict]:
    """``trials`` paired measurements: the decode time D alone, then right after it the
    describe run's wall time W under the same conditions (server up and idle during D). The
    video is rendered at ``size`` (width, height) and ``source_fps``."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = render_numbered_video(Path(tmp) / "bench.mp4", n_frames=max(1, round(video_seconds * source_fps)),
                                      fps=source_fps, size=size)
        # The first decode in a process pays one-off setup (codec and scaler initialisation) that the
        # describe runs, coming after it, never pay: decoding once untimed keeps D comparable (and
        # the ideal honest rather than inflated).
        _decode_seconds(video, frames)
        server = DelayServer(latency)
        try:
            for trial in range(trials):
                n, decode_s = _decode_seconds(video, frames)
                server_cpu0 = _cpu_seconds(server.pid)
                described, wall = _describe(video, frames, concurrency, server.base_url)
                server_cpu1 = _cpu_seconds(server.pid)
                ideal = max(decode_s, math.ceil(n / concurrency) * latency)
                results.append({
                    "mode": "sync", "trial": trial + 1, "frames": n, "described": described,
                    "concurrency": concurrency, "latency_s": latency, "decode_s": decode_s, "wall_s": wall,
                    "ideal_s": ideal, "ratio": wall / ideal, "max_in_flight": server.take_max_in_flight(),
                    "server_cpu_s": None if server_cpu0 is None or server_cpu1 is None
                    else server_cpu1 - server_cpu0})
        finally:
            server.close()
    return results


def verdict(results: list[dict], concurrency: int) -> dict[str, dict]:
    """Per mode: the median ratio over the trials must be within BOUND, and every trial must have
    described every frame with at most ``concurrency`` requests in flight."""
    out = {}
    for mode in dict.fromkeys(r["mode"] for r in results):
        rs = [r for r in results if r["mode"] == mode]
        ratios = [r["ratio"] for r in rs]
        complete = all(r["described"] == r["frames"] and r["max_in_flight"] <= concurrency for r in rs)
        med = statistics.median(ratios)
        out[mode] = {"median_ratio": med, "min_ratio": min(ratios), "max_ratio": max(ratios),
                     "complete": complete, "passed": complete and med <= BOUND}
    return out


def _background_jpeg(image, stop) -> None:
    """A light load in another process: one JPEG of ``image`` every 5 ms (a few % of a core)."""
    import cv2

    while not stop.is_set():
        cv2.imencode(".jpg", image)
        time.sleep(0.005)


def _jpeg_costs(images: list, out: dict, rounds: int = 5) -> None:
    """CPU per frame of :func:`encode_jpeg` through each encoder (the encoders take turns, one
    pass over ``images`` each per round; the median round), and how long one encode of a 4K
    frame (the first frame scaled up) keeps another thread, which wants the GIL every 0.1 ms,
    from running: the longest gap during each encode, median over the rounds."""
    import threading

    import cv2

    from frame_describer import images as jpeg

    big = cv2.resize(images[0], (3840, 2160), interpolation=cv2.INTER_CUBIC)
    fast = jpeg._simplejpeg
    encoders = {"simplejpeg": fast, "pillow": None} if fast is not None else {"pillow": None}
    cpu: dict[str, list[float]] = {name: [] for name in encoders}
    wall: dict[str, list[float]] = {name: [] for name in encoders}
    stalls: dict[str, list[float]] = {name: [] for name in encoders}

    def tick(ticks: list[float], done: threading.Event) -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0001)
    try:
        for name, encoder in encoders.items():  # warm both up
            jpeg._simplejpeg = encoder
            for image in images[:8]:
                encode_jpeg(image)
        for _ in range(rounds):
            for name, encoder in encoders.items():
                jpeg._simplejpeg = encoder
                c0 = time.process_time()
                for image in images:
                    encode_jpeg(image)
                cpu[name].append((time.process_time() - c0) / len(images) * 1e3)
                ticks: list[float] = []
                done = threading.Event()
                ticker = threading.Thread(target=tick, args=(ticks, done))
                ticker.start()
                time.sleep(0.01)
                t0 = time.perf_counter()
                encode_jpeg(big, max_side=None)
                t1 = time.perf_counter()
                done.set()
                ticker.join()
                inside = [t0] + [t for t in ticks if t0 < t < t1] + [t1]
                wall[name].append((t1 - t0) * 1e3)
                stalls[name].append(max(b - a for a, b in zip(inside, inside[1:])) * 1e3)
    finally:
        jpeg._simplejpeg = fast
    for name in encoders:
        out[f"jpeg_cpu_ms[{name}]"] = statistics.median(cpu[name])
        out[f"jpeg_4k_ms[{name}]"] = statistics.median(wall[name])
        out[f"jpeg_4k_longest_stall_ms[{name}]"] = statistics.median(stalls[name])


def diagnose(frames: int, video_seconds: float, repeats: int = 5, size: tuple[int, int] = (640, 360),
             source_fps: float = 25.0) -> dict:
    """Where the time goes when decoding dominates: the JPEG's CPU per frame through each encoder
    and how long a 4K encode keeps other threads from running; the describer's CPU per frame
    (frames decoded beforehand, a server answering at once), one request at a time
    (``describe_frame``) and streamed (``describe``: the same requests plus the hand-offs between
    the feeder, the requests and the caller); the ratio of the describe run to decoding alone at L = 0.02 s for the real describer and for two stand-ins
    (one that only waits L per frame, one that also encodes the JPEG), interleaved, paired
    trials; how many cores decoding alone keeps busy; and how much a light load in *another
    process* slows decoding alone (medians over ``repeats``)."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = render_numbered_video(Path(tmp) / "bench.mp4", n_frames=max(1, round(video_seconds * source_fps)),
                                      fps=source_fps, size=size)
        decoded = list(sample_frames(video, num_frames=frames))
        _jpeg_costs([f.image for f in decoded], out)
        server = DelayServer(0.0)
        try:
            desc = OpenAIDescriber("bench", base_url=server.base_url, prices=False)
            for f in decoded[:8]:
                desc.describe_frame(f)  # connections open, code warm
            c0 = time.process_time()
            for f in decoded:
                desc.describe_frame(f)
            out["describe_frame_cpu_ms"] = (time.process_time() - c0) / len(decoded) * 1e3
            c0 = time.process_time()  # the stream: the same requests, on the describer's threads
            list(desc.describe(decoded))
            out["describe_cpu_ms_per_frame"] = (time.process_time() - c0) / len(decoded) * 1e3
            desc.close()
            c0 = time.process_time()
            for f in decoded:
                desc.request(f, "Describe this frame.")
            out["jpeg_request_cpu_ms"] = (time.process_time() - c0) / len(decoded) * 1e3
        finally:
            server.close()
        _decode_seconds(video, frames)
        alone, cores = [], []
        for _ in range(repeats):
            c0 = time.process_time()
            alone.append(_decode_seconds(video, frames)[1])
            cores.append((time.process_time() - c0) / alone[-1])
        ctx = multiprocessing.get_context("spawn")
        loaded = []
        for _ in range(repeats):
            stop = ctx.Event()
            proc = ctx.Process(target=_background_jpeg, args=(decoded[0].image, stop), daemon=True)
            proc.start()
            time.sleep(0.5)  # the child is up and encoding
            loaded.append(_decode_seconds(video, frames)[1])
            stop.set()
            proc.join(10)
        out["decode_s_alone"] = statistics.median(alone)
        out["decode_cpu_cores"] = statistics.median(cores)  # CPU seconds per wall second while decoding alone
        kinds = {"sleep_only": _SleepOnly, "jpeg_then_sleep": _JpegThenSleep, "real": OpenAIDescriber}
        ratios: dict[str, list[float]] = {name: [] for name in kinds}
        server = DelayServer(_SleepOnly.latency)
        try:
            for _ in range(repeats):
                for name, kind in kinds.items():
                    decode_s = _decode_seconds(video, frames)[1]
                    wall = _describe(video, frames, 8, server.base_url, kind=kind)[1]
                    ratios[name].append(wall / decode_s)
        finally:
            server.close()
        for name, values in ratios.items():
            out[f"sync_ratio_at_L0.02[{name}]"] = statistics.median(values)
        out["decode_s_with_background_jpeg_process"] = statistics.median(loaded)
        out["decode_slowdown"] = out["decode_s_with_background_jpeg_process"] / out["decode_s_alone"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, nargs="+", default=[0.25],
                    help="server delay per request, seconds (several: one run each)")
    ap.add_argument("--video-seconds", type=float, default=60.0)
    ap.add_argument("--size", default="640x360", help="the rendered video's WIDTHxHEIGHT")
    ap.add_argument("--source-fps", type=float, default=25.0, help="the rendered video's frame rate")
    ap.add_argument("--trials", type=int, default=None,
                    help="paired (decode, describe) measurements (default 11; 3 with --diagnose)")
    add_arguments(ap, "stage1_throughput")
    ap.add_argument("--diagnose", action="store_true",
                    help="instead: the JPEG's CPU and GIL stall per encoder, the describer's CPU per frame, "
                         "stand-in describers, and decoding's slowdown under a light load "
                         "in another process (on the video --size/--source-fps/--video-seconds/--frames "
                         "give; the stand-ins always run at L = 0.02 s and C = 8)")
    args = ap.parse_args(argv)
    args.trials = (3 if args.diagnose else 11) if args.trials is None else args.trials
    if args.trials < 1 or args.frames < 1 or args.concurrency < 1 or min(args.latency) < 0:
        ap.error("--trials, --frames and --concurrency must be >= 1 and --latency >= 0")
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 16 or any(v % 2 for v in size):
        ap.error("--size must be WIDTHxHEIGHT, even numbers of at least 16 pixels, e.g. 1280x720")
    if not (math.isfinite(args.source_fps) and 0 < args.source_fps <= 240) or not args.video_seconds > 0:
        ap.error("--source-fps must be in (0, 240] and --video-seconds > 0")
    if args.diagnose:  # its figures go to their own file, stage1_diagnose.json, unless --json says otherwise
        if Path(args.json_out) == RESULTS / "stage1_throughput.json":
            args.json_out = str(RESULTS / "stage1_diagnose.json")
        rec = Recorder("stage1_diagnose", args, {
            "frames": args.frames, "repeats": args.trials,
            "video": f"{size[0]}x{size[1]} at {args.source_fps:g} fps, {args.video_seconds:g} s, rendered"})
        figures = diagnose(args.frames, args.video_seconds, args.trials, size, args.source_fps)
        for key, value in figures.items():
            print(f"{key:45} {value:.3f}")
        rec.write([{"figure": key, "value": round(value, 4)} for key, value in figures.items()])
        return 0
    rec = Recorder("stage1_throughput", args, {
        "frames": args.frames, "concurrency": args.concurrency, "latencies_s": args.latency, "trials": args.trials,
        "video": f"{size[0]}x{size[1]} at {args.source_fps:g} fps, {args.video_seconds:g} s, rendered", "bound": BOUND})
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results, rows, passed = [], [], True
    for latency in args.latency:
        trials = run(args.frames, args.concurrency, latency, args.video_seconds, args.trials, size, args.source_fps)
        results += trials
        print(f"{'mode':6} {'trial':>5} {'N':>4} {'C':>3} {'L s':>5} {'decode s':>9} {'ideal s':>8} {'wall s':>7} "
              f"{'ratio':>6} {'inflight':>8} {'server cpu s':>12}")
        for r in trials:
            cpu = "n/a" if r["server_cpu_s"] is None else f"{r['server_cpu_s']:.3f}"
            print(f"{r['mode']:6} {r['trial']:>5} {r['frames']:>4} {r['concurrency']:>3} {r['latency_s']:>5.2f} "
                  f"{r['decode_s']:>9.3f} {r['ideal_s']:>8.3f} {r['wall_s']:>7.3f} {r['ratio']:>6.3f} "
                  f"{r['max_in_flight']:>8} {cpu:>12}")
        summary = verdict(trials, args.concurrency)
        for mode, v in summary.items():
            state = "ok" if v["passed"] else ("FAIL (incomplete or over concurrency)" if not v["complete"]
                                              else f"FAIL (bound {BOUND})")
            print(f"{mode}: median ratio {v['median_ratio']:.3f} over {args.trials} trial(s) "
                  f"(min {v['min_ratio']:.3f}, max {v['max_ratio']:.3f}) {state}\n")
            passed &= bool(v["passed"])
            rows.append({"latency_s": latency, "mode": mode, "frames": args.frames, "concurrency": args.concurrency,
                         "median_decode_s": round(statistics.median(r["decode_s"] for r in trials), 3),
                         "median_ratio": round(v["median_ratio"], 3), "min_ratio": round(v["min_ratio"], 3),
                         "max_ratio": round(v["max_ratio"], 3),
                         "max_in_flight": max(r["max_in_flight"] for r in trials), "passed": bool(v["passed"])})
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"video {size[0]}x{size[1]} at {args.source_fps:g} fps, {args.video_seconds:g} s; "
          f"load average (1 min) {load0:.2f} before, {load1:.2f} after, on {os.cpu_count()} CPUs")
    rec.write(rows, results=results, bound=BOUND,
              video={"size": list(size), "fps": args.source_fps, "seconds": args.video_seconds})
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
