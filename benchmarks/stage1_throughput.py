"""Stage-1 throughput: does the OpenAI describer overlap decoding with requests and keep
``concurrency`` requests in flight?

A local OpenAI-compatible server answers every request after a fixed delay L. A rendered
video is sampled into N frames (decode time D is measured alone first), then the same
sampling is streamed through ``OpenAIDescriber(concurrency=C)``. The ideal wall time is
``max(D, ceil(N / C) * L)``; the bound is ``1.2 x`` that. Prints the measured ratio and
exits non-zero if the bound fails (or the server saw more than C requests at once).

The server runs in its own process, so only the client's work (decoding, JPEG encoding, the
SDK's request handling: about 3 ms of CPU per frame) is measured. With the default L = 0.25 s
the run is request-bound; with a tiny L (``--latency 0.02``) it is decode-bound, and then the
client's per-request CPU competes with decoding for the same interpreter, which on a busy
2-core machine costs more than the 20% margin.

Run: python benchmarks/stage1_throughput.py [--frames 96] [--concurrency 8] [--latency 0.25]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import render_numbered_video

BOUND = 1.2


def _serve(port_out, in_flight, max_in_flight, count, latency: float, stop) -> None:
    """The delay server's process (a separate process, so it does not share the client's GIL)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out without a 40 ms delayed-ACK stall

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                in_flight.value += 1
                count.value += 1
                max_in_flight.value = max(max_in_flight.value, in_flight.value)
            time.sleep(latency)
            with lock:
                in_flight.value -= 1
            body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": "a frame"}}],
                               "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_out.value = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stop.wait()
    httpd.shutdown()


class DelayServer:
    """Answers every chat completion after ``latency`` seconds, in its own process; counts
    the requests in flight."""

    def __init__(self, latency: float):
        ctx = multiprocessing.get_context("spawn")
        self._port, self._in_flight = ctx.Value("i", 0), ctx.Value("i", 0)
        self._max, self._count, self._stop = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(self._port, self._in_flight, self._max, self._count,
                                                      latency, self._stop), daemon=True)
        self._proc.start()
        deadline = time.monotonic() + 30
        while not self._port.value:
            if time.monotonic() > deadline or not self._proc.is_alive():
                raise RuntimeError("the delay server did not start")
            time.sleep(0.01)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port.value}/v1"

    @property
    def max_in_flight(self) -> int:
        return self._max.value

    def close(self) -> None:
        self._stop.set()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.terminate()


def run(frames: int, concurrency: int, latency: float, video_seconds: float, use_async: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fps = 25.0
        video = render_numbered_video(Path(tmp) / "bench.mp4", n_frames=int(video_seconds * fps), fps=fps,
                                      size=(640, 360))
        t0 = time.perf_counter()
        n = sum(1 for _ in sample_frames(video, num_frames=frames))
        decode_s = time.perf_counter() - t0
        server = DelayServer(latency)
        try:
            desc = OpenAIDescriber("bench", base_url=server.base_url, concurrency=concurrency, prices=False)
            t0 = time.perf_counter()
            if use_async:
                import asyncio

                async def go():
                    return [d async for d in desc.adescribe(sample_frames(video, num_frames=frames))]
                out = asyncio.run(go())
            else:
                out = list(desc.describe(sample_frames(video, num_frames=frames)))
            wall = time.perf_counter() - t0
        finally:
            server.close()
    ideal = max(decode_s, math.ceil(n / concurrency) * latency)
    return {"frames": n, "described": len(out), "concurrency": concurrency, "latency_s": latency,
            "decode_s": decode_s, "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal,
            "max_in_flight": server.max_in_flight, "async": use_async}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.25, help="server delay per request, seconds")
    ap.add_argument("--video-seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    ok = True
    print(f"{'mode':6} {'N':>4} {'C':>3} {'L s':>5} {'decode s':>9} {'ideal s':>8} {'wall s':>7} {'ratio':>6} {'inflight':>8}")
    for use_async in (False, True):
        r = run(args.frames, args.concurrency, args.latency, args.video_seconds, use_async)
        passed = r["ratio"] <= BOUND and r["described"] == r["frames"] and r["max_in_flight"] <= args.concurrency
        ok &= passed
        print(f"{'async' if use_async else 'sync':6} {r['frames']:>4} {r['concurrency']:>3} {r['latency_s']:>5.2f} "
              f"{r['decode_s']:>9.3f} {r['ideal_s']:>8.3f} {r['wall_s']:>7.3f} {r['ratio']:>6.3f} "
              f"{r['max_in_flight']:>8} {'ok' if passed else f'FAIL (bound {BOUND})'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
