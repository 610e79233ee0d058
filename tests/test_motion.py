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
from frame_describer.motion import (COLOUR_NAMES, MOTION_VERSION, Appearance, Motion, MotionDescriber, MotionStream,
                                    colour_codes, region_shift)
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


def _motions(images: list[np.ndarray]) -> list[Motion]:
    stream = MotionStream()
    return [m for f in _frames(images) if (m := stream.update(f)) is not None]


def _on(background: np.ndarray, draw) -> np.ndarray:
    img = background.copy()
    draw(img)
    return img


_ROOM = cv2.GaussianBlur(_texture(320, 240, seed=5), (0, 0), 3)  # a busy but not noisy background


@pytest.mark.parametrize("background", [np.full((240, 320, 3), (150, 110, 70), np.uint8), _ROOM],
                         ids=["plain", "textured"])
def test_a_red_disc_moving_right_is_a_small_round_red_object(background):
    motions = _motions([_on(background, lambda im, x=x: cv2.circle(im, (x, 120), 14, (200, 30, 30), -1))
                        for x in (60, 100, 140, 180)])
    assert [m.thing for m in motions] == [Appearance(colour="red", shape="round", size="small", share=m.thing.share)
                                          for m in motions], motions
    assert all(0.005 < m.thing.share < 0.012 for m in motions)  # a 28-px disc is 0.8% of 320x240
    assert all(m.way == "right" and m.camera is None for m in motions), motions
    # where the disc is now, not the middle of its old and new places
    assert [m.where for m in motions] == ["on the left", "in the centre", "in the centre"]
    assert motions[0].text() == "Motion: a small round red object on the left moves to the right."


def test_a_tall_dark_rectangle_moving_right_is_a_tall_figure():
    # the mean DIS flow over the change said "moves to the left" in two of these three samples
    motions = _motions([_on(_ROOM, lambda im, x=x: cv2.rectangle(im, (x, 70), (x + 24, 190), (30, 30, 40), -1))
                        for x in (60, 100, 140, 180)])
    assert all(m.thing is not None and m.thing.shape == "tall" and m.thing.colour == "black" for m in motions), motions
    assert all(m.way == "right" for m in motions), motions
    assert all(m.text().startswith("Motion: a tall black figure") for m in motions), motions


def test_a_disc_further_than_its_size_each_sample_goes_the_right_way_and_dense_flow_alone_did_not():
    # 40 px a sample for a 28-px disc on a blurred texture: the mean DIS flow over the change said "moves."
    # (no way) in all four samples
    images = [_on(_ROOM, lambda im, x=x: cv2.circle(im, (x, 120), 14, (200, 30, 30), -1)) for x in (240, 200, 160)]
    assert [m.way for m in _motions(images)] == ["left", "left"]
    up = [_on(_ROOM, lambda im, y=y: cv2.circle(im, (160, y), 14, (200, 30, 30), -1)) for y in (200, 160, 120)]
    assert [m.way for m in _motions(up)] == ["up", "up"]


def test_region_shift_finds_the_shift_of_what_changed_and_none_for_what_appeared():
    grey = cv2.cvtColor(_ROOM, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (160, 120), interpolation=cv2.INTER_AREA)
    before, after = small.copy(), small.copy()
    cv2.circle(before, (50, 60), 7, 250, -1)
    cv2.circle(after, (72, 57), 7, 250, -1)
    moved = cv2.absdiff(before, after) > 25
    assert region_shift(before, after, moved) == (22.0, -3.0)
    appeared = cv2.absdiff(small, after) > 25  # nothing was there before: no shift explains it both ways
    assert region_shift(small, after, appeared) is None


def test_a_vanishing_thing_is_not_described():
    images = [_on(_ROOM, lambda im: cv2.circle(im, (160, 120), 14, (200, 30, 30), -1)), _ROOM.copy()]
    (motion,) = _motions(images)
    assert motion.where is not None and motion.thing is None


def test_a_camera_pan_is_not_attributed_to_an_object():
    wide = cv2.GaussianBlur(_texture(960, 240, seed=3), (0, 0), 2)
    motions = _motions([np.ascontiguousarray(wide[:, i * 40:i * 40 + 320]) for i in range(4)])
    assert all(m.camera == "right" and m.thing is None and m.where is None for m in motions), motions


def test_still_frames_describe_nothing():
    assert _motions([_ROOM, _ROOM.copy(), _ROOM.copy()]) == [Motion(), Motion()]


@pytest.mark.parametrize("draw, shape", [
    (lambda m: cv2.circle(m, (80, 60), 7, 1, -1), "round"),
    (lambda m: cv2.ellipse(m, (80, 60), (12, 9), 0, 0, 360, 1, -1), "round"),
    (lambda m: cv2.rectangle(m, (70, 50), (84, 64), 1, -1), None),  # a square fills its corners
    (lambda m: cv2.fillConvexPoly(m, np.array([[80, 45], [95, 60], [80, 75], [65, 60]]), 1), None),  # a diamond
    (lambda m: cv2.rectangle(m, (70, 20), (84, 90), 1, -1), "tall"),
    (lambda m: cv2.rectangle(m, (20, 50), (120, 64), 1, -1), "wide"),
])
def test_shape_words(draw, shape):
    mask = np.zeros((120, 160), np.uint8)
    draw(mask)
    assert Appearance.of(mask > 0, np.zeros((120, 160, 3), np.uint8)).shape == shape


def test_size_colour_and_phrase():
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, :80] = (40, 60, 160)  # blue
    image[:, 80:] = (20, 20, 70)  # dark blue: value below 90
    big = np.zeros((120, 160), bool)
    big[10:110, 10:70] = True
    thing = Appearance.of(big, image)
    assert (thing.size, thing.colour, thing.shape, thing.share) == ("large", "blue", None, 0.3125)
    assert thing.phrase() == "a large blue object"
    dark = np.zeros((120, 160), bool)
    dark[20:100, 100:120] = True
    assert Appearance.of(dark, image).phrase() == "a tall dark blue figure"
    assert Motion(where="on the left", way="right", thing=Appearance(colour="red", shape="round", size="small")
                  ).text() == "Motion: a small round red object on the left moves to the right."
    assert Motion(where="on the left").text() == "Motion: something on the left moves."


def test_colour_codes_name_pixels():
    hsv = cv2.cvtColor(np.array([[[200, 30, 30], [30, 30, 200], [20, 20, 20], [240, 240, 240], [128, 128, 128],
                                  [120, 80, 40]]], np.uint8), cv2.COLOR_RGB2HSV)
    assert [COLOUR_NAMES[c] for c in colour_codes(hsv)[0]] == ["red", "blue", "black", "white", "grey", "brown"]
    assert list(COLOUR_NAMES) == sorted(COLOUR_NAMES)  # ties between counts go to the first name, as before


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
    assert out[1].text.startswith("frame at 1.0 after 0.0 Motion: a small round red object")
    assert out[1].usage is not None
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
    """The benchmark's video: the stream says each direction right (the cv describer's own sentences, from
    Farneback flow until cv-sentences-2, said the ball went the opposite way), and the pan turns from a miss
    into a hit."""
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
    # cv's own sentences come from the same measurement now: the ball's way right, never the opposite one
    from frame_describer.sampling import sample_frames

    own = [(d.t, d.text) for d in ClassicalDescriber().describe(sample_frames(video, fps=1))]
    said = bench.motion_sentences_right(own, "own")
    assert all(v["opposite"] == 0 for v in said.values()), said
    assert said["ball left"]["right"] >= 4 and said["ball right"]["right"] >= 4, said


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
