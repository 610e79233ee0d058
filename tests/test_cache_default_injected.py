"""An hf: describer given a loaded model (``hf_model``) is never cached in the default description cache: its
settings cannot tell it from the same object trained further (pipelines.session.implied_cache reads
TransformersDescriber.cache_by_default)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_cache_keys import Model, Proc  # noqa: E402


def test_an_injected_model_is_never_in_the_default_cache(tmp_path, monkeypatch):
    from pipelines.api import describe
    from pipelines.session import implied_cache

    monkeypatch.delenv("VIDGROUND_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert implied_cache("hf:org/vlm")[1] is True
    assert implied_cache("hf:org/vlm", {"hf_model": Model(1), "hf_processor": Proc()}) == (None, False)
    from _helpers_video import render_gop_video

    video = render_gop_video(tmp_path / "v.mp4", n_frames=30, fps=10, gop=10)
    texts = []
    for version in (1, 2):  # describe, train the model further, describe again
        d = describe(video, describer="hf:my-vlm", num_frames=2,
                     describer_options={"hf_model": Model(version), "hf_processor": Proc()})
        texts.append((d.descriptions[0].text, d.usage.cached))
    assert texts == [("weights version 1", 0), ("weights version 2", 0)]
    named = tmp_path / "mine.sqlite"  # a cache the user names keeps them
    d1 = describe(video, describer="hf:my-vlm", num_frames=2, cache=str(named),
                  describer_options={"hf_model": Model(1), "hf_processor": Proc()})
    d2 = describe(video, describer="hf:my-vlm", num_frames=2, cache=str(named),
                  describer_options={"hf_model": Model(1), "hf_processor": Proc()})
    assert (d1.usage.cached, d2.usage.cached) == (0, 2)
