"""``Session.has_remembered`` (user task FX-J item 4): ground's check whether a failed query's video was described
(pipelines.cli._stops_the_rest) asked ``remembered(video) is None``, which since d463c91 deep-copies the video's
descriptions (each one, 7,200 on a 2-hour video at 1 fps) to answer yes or no. Fails on b828a10 (no has_remembered;
one copy per check)."""

from __future__ import annotations

from pathlib import Path

import pipelines.session as session_module
from _helpers_eval import render_toy_videos
from pipelines.cli import _stops_the_rest
from pipelines.session import Session
from vidground.errors import ProviderError


def test_has_remembered_answers_as_remembered_does_without_copying(tmp_path, monkeypatch):
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    copies = []
    real = session_module._own_copy
    monkeypatch.setattr(session_module, "_own_copy", lambda d: copies.append(d) or real(d))
    with Session(describer="cv", cache=False) as session:
        assert not session.has_remembered(video) and not session.has_remembered(tmp_path / "missing.mp4")
        session.describe(video)
        copies.clear()
        assert session.has_remembered(video) and session.has_remembered(Path(str(video)))
        assert copies == []
        assert session.remembered(video) is not None and len(copies) == 1  # remembered still gives a copy
        copies.clear()
        # a model's failure on one query: the rest go on, the video being described (no copy to learn it)
        assert _stops_the_rest(ProviderError("no interval in the model's reply after 3 attempts"), session,
                               str(video)) is None
        assert copies == []  # b828a10: 1
        other = render_toy_videos(tmp_path / "other", ["vid1"]) / "vid1.mp4"
        assert _stops_the_rest(ProviderError("no interval in the model's reply after 3 attempts"), session,
                               str(other)) == "the video was not described, and each query would describe it again"
