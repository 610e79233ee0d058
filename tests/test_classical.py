import numpy as np
import pytest

from frame_describer import get_describer
from frame_describer.classical import TEMPLATES_VERSION, ClassicalDescriber
from vidground.errors import ConfigurationError
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import DEMO_SIZE, draw_person
from vidground.types import Frame

from test_motion import _ROOM, _ball, _motions  # the motion tests' scenes: cv measures motion as the stream does

# the words that must say each event, and only during it
EVENT_WORDS = {"person": "person", "lights off": "lights seem to be off",
               "camera pan": "camera is panning quickly to the right", "scene cut": "scene cut"}


@pytest.fixture(scope="module")
def demo_descriptions(demo_video):
    path, events = demo_video
    return list(ClassicalDescriber().describe(sample_frames(path, fps=1))), events


def test_each_demo_event_is_described_only_during_the_event(demo_descriptions):
    descs, events = demo_descriptions
    assert len(descs) == 36
    for event in events:
        phrase = EVENT_WORDS[event.name]
        said = [d.t for d in descs if phrase in d.text.lower()]
        # motion is measured against the previous sample (1 s back), so it may show one step late
        lag = 1.0 if event.name == "camera pan" else 0.0
        inside = [d.t for d in descs if event.start + lag <= d.t <= event.end - (0 if lag else 1e-6)]
        assert said, f"{event.name}: never described"
        assert set(inside) <= set(said), f"{event.name}: missed at {sorted(set(inside) - set(said))}"
        assert all(event.start <= t <= event.end + lag for t in said), f"{event.name}: said outside at {said}"


def test_person_walks_then_stands(demo_descriptions):
    descs, events = demo_descriptions
    person = next(e for e in events if e.name == "person")
    text = {d.t: d.text for d in descs}
    assert "A person is standing in the centre." in text[9.0]
    assert "walking to the right" in text[12.0]
    assert "colours are green and blue" in text[33.0] and "beige" in text[2.0]
    assert person.start < 9.0 < person.end


@pytest.mark.slow
def test_determinism_and_streaming(demo_video):
    path, _ = demo_video
    frames = list(sample_frames(path, fps=0.5))
    a = [d.text for d in ClassicalDescriber().describe(frames)]
    b = [d.text for d in ClassicalDescriber().describe(iter(frames))]
    assert a == b

    def once():  # descriptions arrive one by one while frames are still being produced
        for i, f in enumerate(frames):
            produced.append(i)
            yield f
    produced: list[int] = []
    gen = ClassicalDescriber().describe(once())
    next(gen)
    assert produced == [0]


def test_synthetic_person_is_detected_by_hog():
    w, h = DEMO_SIZE
    img = np.full((h, w, 3), 200, np.uint8)
    draw_person(img, 100, 225, 125)
    text = next(ClassicalDescriber().describe([Frame(t=0, index=0, image=img)])).text
    assert text.startswith("A person is standing on the left.")
    blank = np.full((h, w, 3), 200, np.uint8)
    assert "person" not in next(ClassicalDescriber().describe([Frame(t=0, index=0, image=blank)])).text


def test_aware_mode_adds_an_honest_match_sentence(demo_video):
    path, _ = demo_video
    frames = list(sample_frames(path, fps=1, start=8.0, end=10.0)) + \
        list(sample_frames(path, fps=1, start=18.0, end=19.0))
    d = get_describer("cv", mode="aware")
    texts = [x.text for x in d.describe(frames, query="a man walks in")]
    assert texts[0].endswith("Query words matched here: man.")
    assert texts[-1].endswith("Nothing the query asks about was detected here.")
    agnostic = [x.text for x in ClassicalDescriber().describe(frames, query="a man walks in")]
    assert all("Query" not in t for t in agnostic)


def test_settings_and_bad_options():
    s = ClassicalDescriber().settings()
    assert s["name"] == "cv" and s["version"] == TEMPLATES_VERSION and s["mode"] == "agnostic"
    assert ClassicalDescriber(mode="aware").settings() != s
    with pytest.raises(ConfigurationError, match="agnostic, aware"):
        ClassicalDescriber(mode="smart")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no model argument"):
        get_describer("cv:yolo")
    with pytest.raises(ConfigurationError):
        ClassicalDescriber(dark_luma=100, dim_luma=50)


def test_frames_smaller_than_the_people_window_do_not_crash(tmp_path):
    """HOG's 64x128 window on a smaller image kills the process inside OpenCV; tiny frames must work."""
    from frame_describer.classical import ClassicalDescriber
    from frame_describer.sampling import sample_frames
    from frame_describer.synthetic import render_numbered_video

    video = render_numbered_video(tmp_path / "tiny.mp4", n_frames=20, fps=10.0, size=(96, 72))
    descs = list(ClassicalDescriber().describe(sample_frames(video)))
    assert len(descs) == 2 and all(d.text for d in descs)


# --- local motion: measured as the motion stream measures it (frame_describer.motion.motion_between) ---------
def _cv_texts(images: list[np.ndarray]) -> list[str]:
    return [d.text for d in ClassicalDescriber().describe([Frame(t=float(i), index=i, image=im)
                                                           for i, im in enumerate(images)])]


@pytest.mark.parametrize("xs, way", [((96, 122, 148, 174), "right"), ((224, 198, 172, 146), "left")])
def test_a_red_disc_rolling_further_than_its_size_goes_the_right_way(xs, way):
    # 26 px a sample for a 28-px disc, as the benchmark's ball at 1 fps: the mean Farneback flow over the
    # change (cv-sentences-1) said the opposite way in every such sample
    texts = _cv_texts([_ball(x) for x in xs])
    assert all(f"is moving to the {way}." in t for t in texts[1:]), texts
    assert all(t.startswith("Motion: a small round red object at the bottom") for t in texts[1:]), texts
    opposite = "left" if way == "right" else "right"
    assert not any(opposite in t for t in texts), texts


def test_cv_says_what_moved_in_the_motion_stream_s_words():
    import cv2

    images = []
    for x in (60, 100, 140, 180):
        img = _ROOM.copy()
        cv2.circle(img, (x, 120), 14, (200, 30, 30), -1)
        images.append(img)
    said = _motions(images)
    assert [m.text() for m in said] == ["Motion: a small round red object on the left moves to the right.",
                                        "Motion: a small round red object in the centre moves to the right.",
                                        "Motion: a small round red object in the centre moves to the right."]
    texts = _cv_texts(images)
    moving = [next((s for s in t.split(". ") if "is moving" in s), None) for t in texts[1:]]
    assert moving == [f"Motion: {m.thing.phrase()} {m.where} is moving to the {m.way}" for m in said], texts


def test_a_tall_dark_rectangle_is_a_tall_figure_moving_its_way():
    import cv2

    room = _ROOM
    images = []
    for x in (60, 100, 140, 180):
        img = room.copy()
        cv2.rectangle(img, (x, 70), (x + 24, 190), (30, 30, 40), -1)
        images.append(img)
    texts = _cv_texts(images)
    assert all("Motion: a tall black figure" in t and "is moving to the right." in t for t in texts[1:]), texts
    assert not any("person" in t.lower() for t in texts), texts  # a shape, not a recognised person


@pytest.mark.parametrize("dx, way", [(40, "right"), (-40, "left")])
def test_a_pan_is_a_camera_sentence_and_nothing_else_moves(dx, way):
    wide = _ROOM
    wide = np.concatenate([wide, wide[:, ::-1]], axis=1)  # 640 px to pan over
    views = [np.ascontiguousarray(wide[:, 160 + i * dx:160 + i * dx + 320]) for i in range(3)]
    texts = _cv_texts(views)
    assert all(t.startswith(f"Motion: the camera is panning quickly to the {way}.") for t in texts[1:]), texts
    assert not any("is moving" in t for t in texts), texts


def test_descriptions_cached_with_the_farneback_sentences_are_not_served(tmp_path):
    """cv-sentences-1 said a ball rolling right went left; the cache must not hand those texts to today's cv."""
    from frame_describer.cache import CachedDescriber, DescriptionCache

    class Before(ClassicalDescriber):
        def settings(self):
            return {**super().settings(), "version": "cv-sentences-1"}

    frames = [Frame(t=float(i), index=i, image=_ball(x)) for i, x in enumerate((96, 122, 148))]
    cache = DescriptionCache(tmp_path / "c.sqlite")
    list(CachedDescriber(Before(), cache, fingerprint="fp").describe(frames))
    now = CachedDescriber(ClassicalDescriber(), cache, fingerprint="fp")
    assert all("to the right" in d.text for d in list(now.describe(frames))[1:])
    assert now.calls == len(frames) and now.saved == 0


def test_the_embedding_reasoner_s_direction_term_reads_cv_s_motion_sentence():
    """cv-sentences-3 marks its measured motion with ``Motion:``, as the stream does, so the embedding
    reasoner's direction term (scope "motion", its default) reads it: on the benchmark's video cv alone then
    tells the ball rolling left from rolling right (the model barely does). Sentences before the mark (a
    person walking, found by cv's detector rather than measured) stay out."""
    from temporal_reasoner import polarity
    from temporal_reasoner.embedding import EmbeddingReasoner

    texts = _cv_texts([_ball(x) for x in (224, 198, 172, 146)])  # rolling left
    reasoner = EmbeddingReasoner()
    read = [u for u in reasoner._direction_texts(texts[1]) if u]
    assert read[0].startswith("Motion: a small round red object") and read[0].endswith("to the left"), read
    wanted = polarity.asked("the ball rolls to the right")
    assert polarity.contradicting(wanted, polarity.stated_all(reasoner._direction_texts(texts[1]))).any()
    assert not polarity.contradicting(polarity.asked("the ball rolls to the left"),
                                      polarity.stated_all(reasoner._direction_texts(texts[1]))).any()
    assert reasoner._direction_texts("A person is walking to the left. The main colours are brown.") == ["", ""]


def test_cv_s_camera_sentence_takes_its_words_and_pace_from_the_motion_stream(monkeypatch):
    """One source for the way words and the quick/slow threshold: cv wrote its own copy of both (0.12 picture
    widths a second, "to the {way}"), so a change to the stream's left cv's sentences behind."""
    from frame_describer import motion

    wide = _ROOM
    wide = np.concatenate([wide, wide[:, ::-1]], axis=1)
    views = [np.ascontiguousarray(wide[:, 160 + i * 40:160 + i * 40 + 320]) for i in range(3)]
    assert all(t.startswith("Motion: the camera is panning quickly to the right.") for t in _cv_texts(views)[1:])
    said = _motions(views)
    assert [m.text() for m in said] == ["Motion: the camera pans quickly to the right."] * 2
    monkeypatch.setattr(motion, "FAST_CAMERA", 10.0)  # no pan is quick now: both must say so
    assert all(t.startswith("Motion: the camera is panning slowly to the right.") for t in _cv_texts(views)[1:])
    assert [m.text() for m in said] == ["Motion: the camera pans slowly to the right."] * 2
    tilt = motion.Motion(camera="up", camera_speed=0.05, where="on the left", way="down and right")
    assert tilt.text() == "Motion: the camera tilts slowly up; something on the left moves down and right."
    assert (tilt.camera_clause(progressive=True), tilt.thing_clause(progressive=True)) == (
        "the camera is tilting slowly up", "something on the left is moving down and right")
