import numpy as np
import pytest

from frame_describer import get_describer
from frame_describer.classical import TEMPLATES_VERSION, ClassicalDescriber
from vidground.errors import ConfigurationError
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import DEMO_SIZE, draw_person
from vidground.types import Frame

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
