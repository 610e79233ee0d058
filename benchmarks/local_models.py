"""Local model backends: describer throughput and memory, reasoner latency per input size.

    python benchmarks/local_models.py                 # tiny random LLaVA / Qwen2-VL describers + Gemma GGUF reasoner
    python benchmarks/local_models.py --describer-only --frames 32 --batch-sizes 1 4 8
    python benchmarks/local_models.py --reasoner-only --spans 10 40 160

Describer: frames per second and peak memory (resident memory growth during the run on CPU,
``torch.cuda`` peak on GPU) for the tiny randomly initialised models of the test suite, per batch size, on
CPU and on CUDA when present. The models are tiny, so the figures measure the backend's own
overhead (processor, chat template, padding, generate loop), not a real model's speed.

Reasoner: wall-clock latency of ``ground()`` with the Gemma 3 270M GGUF through ``llamacpp:``
(and ``hf:`` with ``--with-hf``) for transcripts of growing length; prompt and completion tokens
are printed with it, and how many spans were sent after merging (``sent``; ``-`` when chunked). Every run checks its output (descriptions per frame, valid intervals) and
exits non-zero when a check fails.

The rows also go to benchmarks/results/local_models.json (``--json``), which
``benchmarks/make_page.py`` renders into docs/benchmarks.md. ``--describer-only`` takes a minute or
two on a 2-core CPU; the Gemma reasoner adds about a minute per transcript length.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from vidground.types import Frame, FrameDescription  # noqa: E402
from temporal_reasoner.transcript import Transcript  # noqa: E402

from _results import Recorder, add_arguments  # noqa: E402

ACTIONS = ["sits on the sofa reading a book", "stands up and walks to the door", "opens the door",
           "closes the door behind them", "pours water into a glass", "drinks from the glass",
           "switches the light off", "picks up a phone from the table"]


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRSS:
    """Peak resident memory above the starting level while the block runs (sampled every 2 ms)."""

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = current_rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, current_rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mib())

    @property
    def growth(self) -> float:
        return self.peak - self.base


def frames(n: int, size: tuple[int, int] = (240, 320)) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(t=i * 0.5, index=i, image=rng.integers(0, 255, (*size, 3), dtype=np.uint8)) for i in range(n)]


def bench_describers(n_frames: int, batch_sizes: list[int], max_new_tokens: int, rows: list[dict]) -> bool:
    import torch
    from _helpers_tiny_models import build_tiny_llava, build_tiny_qwen2_vl

    from frame_describer.hf_describer import TransformersDescriber

    ok = True
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        models = {"tiny-llava": build_tiny_llava(Path(tmp) / "llava"),
                  "tiny-qwen2-vl": build_tiny_qwen2_vl(Path(tmp) / "qwen")}
        print(f"\n## describer: {n_frames} frames of 320x240, max_new_tokens={max_new_tokens}, "
              f"torch threads={torch.get_num_threads()}")
        print(f"{'model':<14} {'device':<6} {'dtype':<9} {'batch':>5} {'frames/s':>9} {'peak MiB':>9}")
        for name, path in models.items():
            for device in devices:
                for bs in batch_sizes:
                    d = TransformersDescriber(str(path), device=device, batch_size=bs,
                                              max_new_tokens=max_new_tokens)
                    list(d.describe(frames(min(bs, n_frames))))  # warm-up
                    gc.collect()
                    if device == "cuda":
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    with PeakRSS() as mem:
                        start = time.perf_counter()
                        out = list(d.describe(frames(n_frames)))
                        if device == "cuda":
                            torch.cuda.synchronize()
                        elapsed = time.perf_counter() - start
                    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else mem.growth
                    good = len(out) == n_frames and [o.t for o in out] == [f.t for f in frames(n_frames)]
                    ok &= good
                    print(f"{name:<14} {device:<6} {d.dtype:<9} {bs:>5} {n_frames / elapsed:>9.1f} "
                          f"{peak:>9.1f}{'' if good else '  CHECK FAILED'}")
                    rows.append({"part": "describer", "model": name, "device": device, "dtype": d.dtype,
                                 "batch": bs, "frames_per_s": round(n_frames / elapsed, 1),
                                 "peak_mib": round(peak, 1), "ok": good})
        print("(peak MiB: on CPU the process's peak resident memory above its level before the run, "
              "model weights excluded; on GPU torch.cuda.max_memory_allocated)")
    return ok


def transcript(n_spans: int) -> Transcript:
    descs = [FrameDescription(t=float(i), text=f"A person {ACTIONS[(i // 2) % len(ACTIONS)]} in room {i % 5}.")
             for i in range(n_spans)]
    return Transcript.from_descriptions(descs, merge=False)


def bench_reasoners(spans: list[int], with_hf: bool, max_new_tokens: int, rows: list[dict]) -> bool:
    from temporal_reasoner import get_reasoner

    specs = ["llamacpp:gemma3-270m"] + (["hf:gemma3-270m"] if with_hf else [])
    ok = True
    print(f"\n## reasoner: Gemma 3 270M (Q4_K_M GGUF), greedy, max_new_tokens={max_new_tokens}")
    print(f"{'spec':<22} {'spans':>5} {'load s':>7} {'ground s':>9} {'prompt tok':>10} {'out tok':>8} "
          f"{'tries':>5} {'chunks':>6} {'sent':>5}  best")
    for spec in specs:
        start = time.perf_counter()
        options = {"n_ctx": 4096} if spec.startswith("llamacpp") else {"context_tokens": 4096}
        r = get_reasoner(spec, max_new_tokens=max_new_tokens, max_attempts=2, **options)
        load = time.perf_counter() - start
        for n in spans:
            t = transcript(n)
            start = time.perf_counter()
            try:
                res = r.ground("the person opens the door", t)
            except Exception as exc:  # a failed answer is a result to report, not a crash
                print(f"{spec:<22} {n:>5} {load:>7.1f} {time.perf_counter() - start:>9.1f}  FAILED: "
                      f"{type(exc).__name__}: {str(exc)[:80]}")
                rows.append({"part": "reasoner", "spec": spec, "spans": n, "ok": False,
                             "error": f"{type(exc).__name__}: {str(exc)[:80]}"})
                ok = False
                continue
            elapsed = time.perf_counter() - start
            u = res.usage["reason"]
            good = bool(res.intervals) and all(0 <= iv.start < iv.end <= t.duration for iv in res.intervals)
            ok &= good
            best = res.best.as_list() if res.best else None
            print(f"{spec:<22} {n:>5} {load:>7.1f} {elapsed:>9.1f} {u.prompt_tokens:>10} {u.completion_tokens:>8} "
                  f"{res.settings['attempts'] if 'attempts' in res.settings else '-':>5} "
                  f"{res.settings['context']['chunks']:>6} {res.settings['context']['merged_spans'] or '-':>5}  {best}{'' if good else '  CHECK FAILED'}")
            rows.append({"part": "reasoner", "spec": spec, "spans": n, "load_s": round(load, 2),
                         "ground_s": round(elapsed, 2), "prompt_tokens": u.prompt_tokens,
                         "completion_tokens": u.completion_tokens, "chunks": res.settings["context"]["chunks"],
                         "sent_spans": res.settings["context"]["merged_spans"], "ok": good})
            load = 0.0
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--describer-tokens", type=int, default=16)
    p.add_argument("--spans", type=int, nargs="+", default=[10, 40, 160])
    p.add_argument("--reasoner-tokens", type=int, default=96)
    p.add_argument("--with-hf", action="store_true", help="also time hf:gemma3-270m (transformers, de-quantised)")
    p.add_argument("--describer-only", action="store_true")
    p.add_argument("--reasoner-only", action="store_true")
    add_arguments(p, "local_models")
    args = p.parse_args(argv)
    rec = Recorder("local_models", args, {
        "describer": None if args.reasoner_only else {"frames": args.frames, "frame_size": "320x240",
                                                      "batch_sizes": args.batch_sizes,
                                                      "max_new_tokens": args.describer_tokens},
        "reasoner": None if args.describer_only else {"model": "Gemma 3 270M Q4_K_M GGUF", "spans": args.spans,
                                                      "max_new_tokens": args.reasoner_tokens,
                                                      "with_hf": args.with_hf}})
    ok, rows = True, []
    if not args.reasoner_only:
        ok &= bench_describers(args.frames, args.batch_sizes, args.describer_tokens, rows)
    if not args.describer_only:
        ok &= bench_reasoners(args.spans, args.with_hf, args.reasoner_tokens, rows)
    rec.write(rows, ok=bool(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
