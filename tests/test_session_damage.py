"""A damaged or truncated video: the session's results say what was lost (issue #18)."""

from __future__ import annotations

import shutil

import pytest

from _helpers_eval import FakeDescriber, register_fakes
from _helpers_video import remux
from frame_describer.synthetic import render_numbered_video
from pipelines import Session

register_fakes()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A 40-s drawn-frame-number video: sound, with 3000 bytes overwritten mid-file, and cut at 60%."""
    clean = render_numbered_video(tmp_path_factory.mktemp("session-damage") / "clean.mp4", n_frames=400, fps=10,
                                  size=(96, 64))
    corrupt = shutil.copy(clean, clean.with_name("corrupt.mp4"))
    with open(corrupt, "r+b") as fh:
        fh.seek(clean.stat().st_size // 2)
        fh.write(b"\x5a" * 3000)
    data = remux(clean, clean.with_name("fast.mp4"), options={"movflags": "faststart"}).read_bytes()
    cut = clean.with_name("cut.mp4")
    cut.write_bytes(data[: len(data) * 6 // 10])
    return clean, corrupt, cut


def test_results_name_the_loss(videos):
    """The warning travels with the described video (answer and events build their results from it the
    same way, through Session._provenance)."""
    clean, corrupt, cut = videos
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", sampling={"fps": 1}) as s:
        described = s.describe(corrupt)
        damaged, truncated = s.ground(corrupt, "frame at 1.0"), s.ground(cut, "frame at 1.0")
        sound = s.ground(clean, "frame at 1.0")
    assert any("damaged" in w and "could not be decoded" in w for w in described.warnings)
    assert damaged.warnings == described.warnings  # described once: the warning is remembered with it
    assert any("truncated" in w and "40.00s" in w for w in truncated.warnings) and truncated.duration < 30
    assert sound.warnings == []
