"""A seek that lands past its time or on no frame is retried in one place (sampling._retry_seek): an earlier
keyframe first, then decoding from the start, with the reason for falling back (the seek tests show the frames)."""

from __future__ import annotations

from pathlib import Path

import pytest

import frame_describer.sampling as sampling
from frame_describer.sampling import sample_frames
from test_sampling_walk_back import gap_video, normal_video, smash_keyframes  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def last_key_damaged(normal_video: Path) -> Path:  # noqa: F811
    """The normal video with its last keyframe (70 s) unreadable: nothing decodes from 69.8 s to the end."""
    return smash_keyframes(normal_video, normal_video.with_name("last.mp4"), (70.0,))


class _Source:
    """What _retry_seek asks of a source: whether a walk back seeked, and the reason it falls back for."""

    def __init__(self, walks: bool, tries: int):
        self.walks, self.tries, self.calls = walks, tries, []

    def walk_back(self, landed_at):
        self.calls.append(("walk back", landed_at))
        return self.walks

    def fall_back(self, why):
        self.calls.append(("fall back", why))
        return True


def test_walking_back_comes_first_and_falling_back_says_why():
    src = _Source(walks=True, tries=0)
    assert sampling._retry_seek(src, 36.0, 40.0) and src.calls == [("walk back", 40.0)]
    for landed, tries, why in ((None, 0, "the seek to 36.000s found no frame"),
                               (40.0, 0, "the seek to 36.000s landed at 40.000s, past it, and no earlier keyframe is known"),
                               (40.0, 2, "the seek to 36.000s landed at 40.000s, past it, and so did seeks to earlier "
                                         "keyframes")):
        src = _Source(walks=False, tries=tries)
        assert sampling._retry_seek(src, 36.0, landed)
        assert src.calls == [("walk back", landed), ("fall back", why)]


def test_both_kinds_of_wrong_landing_go_through_the_one_retry(gap_video, last_key_damaged, monkeypatch):  # noqa: F811
    """Across the gap the seek for 36 s lands on the frame at 40 s; past the last keyframe, which is damaged, the
    seek for 75 s finds no frame (None): each is retried once, by a walk back, and the nearest frame comes."""
    seen = []
    real = sampling._retry_seek
    monkeypatch.setattr(sampling, "_retry_seek", lambda src, target, at: seen.append((target, at)) or real(src, target, at))
    assert [round(f.t, 2) for f in sample_frames(gap_video, times=[5.0, 36.0], max_side=None)] == [5.0, 40.0]
    assert [(t, round(at, 2)) for t, at in seen] == [(36.0, 40.0)]
    seen.clear()
    stream = sample_frames(last_key_damaged, times=[75.0], max_side=None)
    assert [round(f.t, 2) for f in stream] == [69.7]
    assert seen == [(75.0, None)] and stream._src.backs == 1 and stream.fallbacks == 0
