"""Transcript builders shared by the reasoner tests."""

from __future__ import annotations

from vidground.types import FrameDescription as FD
from temporal_reasoner import Transcript


def transcript(*spans: tuple[int, str]) -> Transcript:
    """``(seconds, text)`` runs at 1 fps -> a transcript."""
    d, t = [], 0
    for n, text in spans:
        d += [FD(t=float(t + i), text=text) for i in range(n)]
        t += n
    return Transcript.from_descriptions(d, duration=float(t))
