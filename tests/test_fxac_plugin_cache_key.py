"""A plug-in's cached descriptions are keyed by how it was built, and by settings that key alike every run (FX-AC item 1,
from a plug-in developer's report): a ``BaseDescriber`` subclass taking ``style=`` but keeping the default
``settings()`` answered ``style=fancy`` with the ``[plain]`` texts cached by ``style=plain``; a set in ``settings()``
keyed by its iteration order, an ``object()`` by its address (a new key, and a row a frame, every run)."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pytest

from _helpers_eval import render_toy_videos
from frame_describer import BaseDescriber, describers
from frame_describer.cache import DescriptionCache, settings_key
from pipelines import Session
from vidground.files import video_fingerprint
from vidground.types import FrameDescription


class _Styled(BaseDescriber):
    """Its output depends on ``style``, which its (default) ``settings()`` leave out."""

    name = "fxac-styled"

    def __init__(self, arg: str | None = None, style: str = "plain"):
        self.style = style
        self.calls = 0

    def describe(self, frames: Any, *, query: str | None = None) -> Any:
        for f in frames:
            self.calls += 1
            yield FrameDescription(t=f.t, text=f"[{self.style}] a person")


class _Settings(_Styled):
    """Its ``settings()`` are the ``extra`` it was given."""

    name = "fxac-settings"

    def __init__(self, extra: dict[str, Any]):
        super().__init__()
        self.extra = extra

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, **self.extra}


describers.register("fxac-styled", _Styled)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return render_toy_videos(tmp_path_factory.mktemp("fxac-videos"), ["a"]) / "a.mp4"


def _texts(video, cache, **options: Any) -> tuple[set[str], int]:
    with Session(describer="fxac-styled", describer_options=options, cache=cache) as s:
        d = s.describe(video)
    return {x.text for x in d.descriptions}, d.usage.cached


def test_a_plugin_option_its_settings_leave_out_keys_its_descriptions(video, tmp_path):
    cache = tmp_path / "c.sqlite"
    assert _texts(video, cache, style="plain") == ({"[plain] a person"}, 0)
    assert _texts(video, cache, style="fancy") == ({"[fancy] a person"}, 0)  # before: [plain], 3 cached
    assert _texts(video, cache, style="plain") == ({"[plain] a person"}, 3)  # each option's own rows are found
    assert _texts(video, cache) == ({"[plain] a person"}, 0)  # the default, given no option, is keyed apart


def test_a_set_in_settings_keys_alike_whatever_its_order():
    one, other = {1, 9}, {9, 1}
    assert list(one) != list(other)  # the same set, iterated in another order (its text differed)
    assert settings_key(_Settings({"labels": one})) == settings_key(_Settings({"labels": other}))
    assert settings_key(_Settings({"labels": {1, 9}})) != settings_key(_Settings({"labels": {1, 8}}))


def test_numpy_settings_key_as_the_numbers_they_hold():
    np = pytest.importorskip("numpy")
    assert settings_key(_Settings({"t": np.float32(0.5), "a": np.arange(3)})) == \
        settings_key(_Settings({"t": 0.5, "a": [0, 1, 2]}))


def test_a_setting_that_is_no_json_data_is_not_cached_and_says_so(video, tmp_path, caplog):
    cache = tmp_path / "c.sqlite"
    desc = _Settings({"fn": object()})
    with caplog.at_level(logging.WARNING, "vidground"), Session(describer=desc, cache=cache) as s:
        first = s.describe(video)
        s.describe(video.parent / video.name)
    assert [x.text for x in first.descriptions] == ["[plain] a person"] * 3
    warned = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
    assert len(warned) == 1 and "settings()['fn'] is object" in warned[0], warned
    c = DescriptionCache(cache)  # before: 3 rows under a key no later run makes again
    try:
        assert c.entries(video_fingerprint(video)) == []
    finally:
        c.close()


def test_the_project_describers_keys_are_those_before(tmp_path):
    """Every JSON value, and any other whose text holds no address (a Path), keys as ``json.dumps(default=str)``
    keyed it: no cache of the project's own describers is described again."""
    from pathlib import Path

    extra = {"max_side": 512, "fps": 1.0, "num_frames": None, "path": Path("/x/y"), "nested": [1, "a", {"b": 2.5}]}
    for desc in (describers.create("cv"), _Settings({"t": (1, 2)})):
        before = json.dumps({"describer": desc.name, "settings": desc.settings(), "extra": extra},
                            sort_keys=True, default=str, separators=(",", ":"))
        assert settings_key(desc, extra) == hashlib.sha256(before.encode()).hexdigest()[:32]
