"""A fake describer that counts every frame it is sent and can send itself a Ctrl-C, and the small static video the
call-accounting tests describe (test_fxh_eval_call_accounting, test_fxm_call_accounting)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

from _helpers_eval import FakeDescriber
from vidground import interrupts


def counting_describer(name: str, counts: dict[str, int], ctrl_c: dict[str, Any]) -> type[FakeDescriber]:
    """The fake describer (1 request, $0.001 a frame) named ``name``, adding each frame it is sent to
    ``counts["frames"]``; after the frame numbered ``ctrl_c["frame"]`` (1-based, as counted) it sends itself a SIGINT
    and waits until the handler (in the main thread) has seen it, before the next frame."""
    lock = threading.Lock()

    class Counting(FakeDescriber):
        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                with lock:
                    counts["frames"] += 1
                    n = counts["frames"]
                yield d
                if ctrl_c["frame"] == n:  # a Ctrl-C now: the eval's handler stops the frame streams
                    signal.raise_signal(signal.SIGINT)
                    assert interrupts.INTERRUPTED.wait(10)  # handled (in the main thread) before the next frame

    Counting.name = name
    return Counting


def static_video(folder: Path) -> Path:
    """``folder/static.mp4``, 20 s at 5 fps: grey for 8 s, white for 4 s, grey again (faint noise, no two frames
    alike); returns ``folder``."""
    from frame_describer.synthetic import _write

    rng = np.random.default_rng(0)

    def frame(i: int) -> np.ndarray:
        level = 230 if 40 <= i < 60 else 60
        return np.clip(level + rng.integers(-2, 3, (48, 64, 3)), 0, 255).astype(np.uint8)

    _write(folder / "static.mp4", frame, [i / 5 for i in range(100)], fps=5, codec=None, rotation=None)
    return folder
