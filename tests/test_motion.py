"""The motion stream: what moved since the previous sample, appended to descriptions; its cache behaviour."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from _helpers_eval import FakeDescriber
from frame_describer.base import BaseDescriber
from frame_describer.motion import MOTION_VERSION, Motion, MotionDescriber, MotionStream
from vidground.errors import ConfigurationError
from vidground.types import Frame, FrameDescription


def _texture(w: int, h: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _ball(x: float, w: int = 320, h: int = 240) -> np.ndarray:
    img = np.full((h, w, 3), (150, 110, 70), np.uint8)
    cv2.circle(img, (int(x), 200), 14, (200, 30, 30), -1)
    return img


def _frames(images: list[np.ndarray], step: float = 1.0) -> list[Frame]:
    return [Frame(t=i * step, index=i, image=im) for i, im in enumerate(images)]


def _texts(images: list[np.ndarray]) -> list[str | None]:
    stream = MotionStream()
    return [None if (m := stream.update(f)) is None else m.text() for f in _frames(images)]


def test_first_frame_has_no_motion_and_a_still_view_says_so():
    still = _texture(320, 240)
    assert _texts([still, still]) == [None, "Motion: nothing moves."]


@pytest.mark.parametrize("xs, way", [((224, 198, 172), "left"), ((96, 122, 148), "right")])
def test_a_small_object_moving_further_than_its_size_goes_the_right_way(xs, way):
    # 26 px a sample for a 28-px ball: Farneback on the small images says the opposite way here
    texts = _texts([_ball(x) for x in xs])
    assert texts[1:] == [f"Motion: something at the bottom in the middle moves to the {way}."] * 2 or all(
        t.endswith(f"moves to the {way}.") and "camera" not in t for t in texts[1:]), texts


@pytest.mark.parametrize("dx, way", [(40, "right"), (-40, "left")])
def test_camera_pan_is_told_from_object_motion(dx, way):
    wide = _texture(480, 240)
    views = [np.ascontiguousarray(wide[:, 80 + i * dx:80 + i * dx + 320]) for i in range(3)]
    texts = _texts(views)
    # the picture slides the other way: the camera pans towards ``way``
    assert all(t.startswith(f"Motion: the camera pans") and f"to the {way}" in t for t in texts[1:]), texts


@pytest.mark.parametrize("dx", [60, 100, 128])
def test_a_fast_pan_over_a_still_scene_moves_nothing_but_the_camera(dx):
    # the strip at the shifted image's edge, where interpolation meets the black border, read as
    # "something ... moves to the right" (at the camera's speed) in every sample of such a pan
    wide = _texture(960, 240, seed=3)
    views = [np.ascontiguousarray(wide[:, i * dx:i * dx + 320]) for i in range(4)]
    assert _texts(views)[1:] == ["Motion: the camera pans quickly to the right."] * 3


def test_a_frame_of_another_size_restarts_the_stream():
    stream = MotionStream()
    assert stream.update(_frames([_ball(100)])[0]) is None
    assert stream.update(Frame(t=1.0, index=1, image=_ball(100, 320, 320))) is None
    assert stream.update(Frame(t=2.0, index=2, image=_ball(100, 320, 320))) == Motion()


def test_describer_appends_the_summary_and_says_so_in_its_settings():
    inner = FakeDescriber()
    d = MotionDescriber(inner)
    out = list(d.describe(_frames([_ball(x) for x in (224, 198)])))
    assert out[0].text == "frame at 0.0 after None"  # the first sample: nothing to compare with
    assert out[1].text.startswith("frame at 1.0 after 0.0 Motion: something") and out[1].usage is not None
    assert d.name == "fake+motion" and d.settings() == {**inner.settings(), "name": "fake+motion",
                                                         "motion": MOTION_VERSION}
    assert d.mode == "agnostic" and d.uses_previous_frame


def test_motion_on_a_one_frame_video_leaves_the_description_as_it_is():
    out = list(MotionDescriber(FakeDescriber()).describe(_frames([_ball(50)])))
    assert [d.text for d in out] == ["frame at 0.0 after None"]


class Buffering(BaseDescriber):
    """Reads every frame before describing any (as a batching describer would)."""

    name = "buffering"

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        seen = list(frames)
        for f in seen:
            yield FrameDescription(t=f.t, text=f"at {f.t:g}")


def test_summaries_are_paired_with_their_frames_by_time():
    images = [_texture(320, 240)] * 2 + [_ball(x) for x in (224, 198)]
    out = list(MotionDescriber(Buffering()).describe(_frames(images)))
    assert [d.text.split(" Motion")[0] for d in out] == ["at 0", "at 1", "at 2", "at 3"]
    assert out[1].text.endswith("nothing moves.") and out[3].text.endswith("moves to the left.")


def test_session_motion_is_outside_the_cache(tmp_path, demo_video):
    from pipelines.session import Session

    video, cache = demo_video[0], tmp_path / "cache.sqlite"
    with Session(describer=FakeDescriber(), cache=cache, motion=True, sampling={"fps": 0.5}) as s:
        moving = s.describe(video)
    assert moving.describer == "fake+motion" and moving.settings["motion"] == MOTION_VERSION
    assert all("Motion:" in d.text for d in moving.descriptions[1:])
    # the cache kept the describer's own descriptions: a run without motion is served them, unchanged
    inner = FakeDescriber()
    with Session(describer=inner, cache=cache, sampling={"fps": 0.5}) as s:
        plain = s.describe(video)
    assert inner.calls == 0 and plain.usage.cached == len(plain.descriptions)
    assert not any("Motion:" in d.text for d in plain.descriptions) and plain.describer == "fake"
    assert [d.text.split(" Motion:")[0] for d in moving.descriptions] == [d.text for d in plain.descriptions]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_motion_must_be_a_boolean(value):
    from pipelines.session import Session

    with pytest.raises(ConfigurationError, match="motion must be True or False"):
        Session(motion=value)


@pytest.mark.slow
def test_rendered_events_that_differ_only_in_motion(tmp_path):
    """The benchmark's video: the stream says each direction right where the cv describer's own
    sentences (Farneback) say the ball goes the opposite way, and the pan turns from a miss into a hit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import motion as bench
    from frame_describer.classical import ClassicalDescriber

    video = bench.render_motion_video(tmp_path / "motion.mp4")
    without = bench.ground_all(video, ClassicalDescriber(motion=False), False, 1.0)
    with_stream = bench.ground_all(video, ClassicalDescriber(motion=False), True, 1.0)
    said = bench.motion_sentences_right(with_stream["descriptions"], "stream")
    assert all(v["opposite"] == 0 for v in said.values()), said
    assert said["ball left"]["right"] >= 4 and said["ball right"]["right"] >= 4, said
    pan = [r for r in without["rows"] if r["event"] == "camera pan"][0], \
        [r for r in with_stream["rows"] if r["event"] == "camera pan"][0]
    assert not pan[0]["hit"] and pan[1]["hit"], pan


def test_eval_with_motion_shares_the_cache_and_must_match_to_resume(tmp_path):
    from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
    from pipelines.runs import RunConfig, read_jsonl, run_eval

    register_fakes()
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    base = dict(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                reasoner="fake-reasoner", cache=str(tmp_path / "cache.sqlite"))
    plain = run_eval(RunConfig(**base), tmp_path / "plain")
    moving = run_eval(RunConfig(**base, motion=True), tmp_path / "moving")
    assert (plain.describe_calls, moving.describe_calls, moving.describe_saved) == (3, 0, 3)
    assert json.loads((tmp_path / "moving" / "config.json").read_text())["motion"] is True
    assert all(r["status"] == "ok" for r in read_jsonl(tmp_path / "moving" / "results.jsonl"))
    with pytest.raises(ConfigurationError, match="motion"):
        run_eval(RunConfig(**base), tmp_path / "moving")  # resuming without it would mix settings
