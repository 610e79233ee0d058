"""Fakes and builders shared by the evaluation tests (datasets, runs, reports, cache, Ray)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from frame_describer.base import BaseDescriber
from vidground.types import Frame, FrameDescription, Usage
from temporal_reasoner.base import BaseReasoner
from vidground.types import GroundingResult, Interval


def make_frames(times: Iterable[float], size: int = 8) -> list[Frame]:
    return [Frame(t=t, index=i, image=np.full((size, size, 3), int(t * 10) % 256, np.uint8))
            for i, t in enumerate(times)]


class FakeDescriber(BaseDescriber):
    """Deterministic, stateful (it mentions the previous frame it saw) and counting."""

    name = "fake"

    def __init__(self, arg: str | None = None, *, mode: str = "agnostic", version: str = "1"):
        self.mode = mode  # type: ignore[assignment]
        self.version = version
        self.calls = 0

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "version": self.version}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        prev = None
        for f in frames:
            self.calls += 1
            text = f"frame at {f.t:.1f} after {prev}" + (f" for {query}" if self.mode == "aware" else "")
            prev = f"{f.t:.1f}"
            yield FrameDescription(t=f.t, text=text, usage=Usage(requests=1, prompt_tokens=10, cost_usd=0.001),
                                   model="fake-1")


class FakeReasoner(BaseReasoner):
    """Predicts the span whose description words overlap the query most; optionally slow/failing.

    Spec ``fake-reasoner:SLEEP`` sleeps SLEEP seconds per query; queries containing "FAIL"
    raise a ProviderError. With ``$VIDGROUND_TEST_HOLD_AFTER=N`` in its environment, a process
    answers N queries and then holds every later one until it is killed: a run that is certain to
    be in the middle, whatever the machine's speed.
    """

    name = "fake-reasoner"
    _answered = 0
    _lock = threading.Lock()

    def __init__(self, arg: str | None = None, **_: Any):
        self.sleep = float(arg) if arg else 0.0

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        from vidground.errors import ProviderError

        hold_after = os.environ.get("VIDGROUND_TEST_HOLD_AFTER")
        if hold_after is not None:
            with FakeReasoner._lock:
                FakeReasoner._answered += 1
                held = FakeReasoner._answered > int(hold_after)
            if held:
                threading.Event().wait()  # until the process is killed
        if self.sleep:
            time.sleep(self.sleep)
        if "FAIL" in query:
            raise ProviderError("fake outage", status=503, retryable=True)
        words = set(query.lower().split())
        scores = [len(words & set(e.text.lower().split())) for e in transcript.entries]
        best = max(range(len(scores)), key=lambda i: scores[i])
        e = transcript.entries[best]
        # the toy datasets' truths are written as [first frame, last frame + step)
        start = e.times[0] if e.times else e.start
        end = (e.times[-1] + transcript.step) if e.times else max(e.end, e.start + transcript.step)
        curve = [((x.start + x.end) / 2, float(s)) for x, s in zip(transcript.entries, scores)]
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=start, end=end, score=float(scores[best])),
                                          Interval(start=0, end=transcript.duration, score=0.0)],
                               reasoner=self.name, curve=curve,
                               usage={"reason": Usage(requests=1, prompt_tokens=50, cost_usd=0.0005)})


def register_fakes() -> None:
    """Make ``fake`` and ``fake-reasoner`` spec names resolvable (also in a subprocess)."""
    from frame_describer import describers
    from temporal_reasoner import reasoners

    describers.register("fake", FakeDescriber)
    reasoners.register("fake-reasoner", FakeReasoner)


def default_description_cache() -> Path:
    """The default description cache of this test (conftest gives each test its own $XDG_CACHE_HOME)."""
    return Path(os.environ["XDG_CACHE_HOME"]) / "vidground" / "descriptions.sqlite"


def stored_descriptions(path: Path) -> int:
    """How many descriptions the cache file ``path`` holds (0 when there is none)."""
    from frame_describer.cache import DescriptionCache

    if not path.exists():
        return 0
    cache = DescriptionCache(path)
    try:
        return cache.count()
    finally:
        cache.close()


def write_toy_dataset(folder: Path, n_videos: int = 4, per_video: int = 3, duration: float = 10.0) -> tuple[Path, Path]:
    """A JSONL dataset and a descriptions folder whose text says where each query happens."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = folder / "toy.jsonl"
    desc_dir = folder / "descriptions"
    desc_dir.mkdir(exist_ok=True)
    actions = ["open door", "drink coffee", "read book", "wash dishes", "sit chair"]
    lines = []
    for v in range(n_videos):
        vid = f"vid{v}"
        rows = []
        for t in range(int(duration)):
            act = actions[(t // 2 + v) % len(actions)]
            rows.append({"t": float(t), "text": f"person {act}", "video": vid, "duration": duration})
        (desc_dir / f"{vid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for k in range(per_video):
            act = actions[(k + v) % len(actions)]
            start = 2.0 * k
            lines.append({"qid": f"{vid}-{k}", "video": vid, "query": f"the person {act}",
                          "duration": duration, "windows": [[start, start + 2.0]]})
    ds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return ds, desc_dir


def render_toy_videos(folder: Path, ids: Iterable[str], *, n_frames: int = 30, fps: float = 10.0) -> Path:
    """Tiny numbered videos named by id (3 s at 10 fps by default), each a different size so
    that their contents (and so their cache fingerprints) differ."""
    from frame_describer.synthetic import render_numbered_video

    folder.mkdir(parents=True, exist_ok=True)
    for i, vid in enumerate(ids):
        render_numbered_video(folder / f"{vid}.mp4", n_frames=n_frames, fps=fps, size=(64 + 16 * i, 48))
    return folder


def eval_parser():
    """A parser with only the evaluation subcommands, as ``pipelines.cli`` builds them."""
    import argparse

    from pipelines.eval_cli import register

    parser = argparse.ArgumentParser(prog="vidground")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def cli(*argv: str) -> int:
    args = eval_parser().parse_args([str(a) for a in argv])
    return args.func(args)


def write_tiny_charades(root: Path, train: Iterable[tuple[str, float, float, float]],
                        test: Iterable[tuple[str, float, float, float]]) -> Path:
    """A Charades-STA layout under ``root``: ``(video, start, end, duration)`` rows for each split,
    the query text being ``"query N"``; returns ``root``."""
    folder = root / "charades-sta"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", list(train)), ("test", list(test))):
        (folder / f"charades_sta_{split}.txt").write_text(
            "".join(f"{v} {s} {e}##query {i}.\n" for i, (v, s, e, _) in enumerate(rows)))
        (folder / f"charades_{split}_durations.csv").write_text(
            "id,length\n" + "".join(f"{v},{d}\n" for v, d in {v: d for v, _, _, d in rows}.items()))
    return root
