"""The public API: ground() on videos and on descriptions, typed errors, the result schema."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from frame_describer import FrameDescription, describers, get_describer, write_descriptions
from vidground.errors import ConfigurationError, InputError, MissingDependencyError, VideoDecodeError
from pipelines import describe, ground, load_descriptions
from temporal_reasoner import BaseReasoner, GroundingResult, Interval, get_reasoner, reasoners, result_json_schema


class KeywordReasoner(BaseReasoner):
    """A test double: the span of transcript entries whose text contains the query's last word."""

    name = "keyword"

    def ground(self, query, transcript):
        word = query.split()[-1].lower()
        hits = [e for e in transcript.entries if word in e.text.lower()]
        intervals = [Interval(start=hits[0].start, end=hits[-1].end, score=1.0)] if hits else []
        return GroundingResult(query=query, duration=transcript.duration, intervals=intervals, reasoner=self.name)


DESCS = [
    FrameDescription(t=float(t), text="A person opens the fridge." if 4 <= t <= 6 else "An empty kitchen.")
    for t in range(10)
]


def test_stage2_from_list_infers_duration():
    r = ground(query="  opens the   fridge ", descriptions=DESCS, reasoner=KeywordReasoner())
    assert r.query == "opens the fridge"
    assert r.duration == pytest.approx(10.0) and r.duration_inferred
    assert [(iv.start, iv.end) for iv in r.intervals] == [(3.5, 6.5)]  # frames 4-6 s and halfway to their neighbours
    assert r.describer == "external" and r.reasoner == "keyword"
    assert "reason" in r.timings


def test_stage2_explicit_duration_is_not_inferred():
    r = ground(query="fridge", descriptions=DESCS, duration=12.5, reasoner=KeywordReasoner())
    assert r.duration == 12.5 and not r.duration_inferred


def test_stage2_from_file_reads_metadata_and_keeps_extra_keys(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"t": d.t, "text": d.text, "camera": "A"} for d in DESCS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    described = load_descriptions(path)
    assert described.duration_inferred and described.duration == 10.0
    assert described.descriptions[0].model_extra == {"camera": "A"}
    write_descriptions(tmp_path / "m.jsonl", DESCS, duration=11.0, step=1.0, describer="cv")
    r = ground(query="fridge", descriptions=tmp_path / "m.jsonl", reasoner=KeywordReasoner())
    assert r.duration == 11.0 and not r.duration_inferred and r.describer == "cv"


def test_top_k_limits_intervals():
    class Many(KeywordReasoner):
        def ground(self, query, transcript):
            ivs = [Interval(start=i, end=i + 1, score=1 - i / 10) for i in range(5)]
            return GroundingResult(query=query, duration=transcript.duration, intervals=ivs)

    r = ground(query="x", descriptions=DESCS, reasoner=Many(), top_k=2)
    assert [iv.start for iv in r.intervals] == [0, 1]
    with pytest.raises(ConfigurationError):
        ground(query="x", descriptions=DESCS, reasoner=Many(), top_k=0)


@pytest.mark.parametrize("query", ["", "   ", "\n\t", None, 42])
def test_empty_or_non_text_query_is_an_input_error(query):
    with pytest.raises(InputError, match="query"):
        ground(query=query, descriptions=DESCS, reasoner=KeywordReasoner())


def test_exactly_one_source():
    with pytest.raises(ConfigurationError, match="exactly one"):
        ground(query="x", reasoner=KeywordReasoner())
    with pytest.raises(ConfigurationError, match="exactly one"):
        ground("v.mp4", "x", descriptions=DESCS, reasoner=KeywordReasoner())


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ('{"t": 0, "text": "a"}\nnot json\n', ":2: not valid JSON"),
        ('{"t": 0}\n', ":1: missing key"),
        ('{"t": -1, "text": "a"}\n', "finite number"),
        ('{"t": "3", "text": "a"}\n', "finite number"),
        ('{"t": NaN, "text": "a"}\n', "finite number"),
        ('{"t": 1, "text": 5}\n', "'text' must be a string"),
        ("[1, 2]\n", "JSON object"),
        # one instant twice: the transcript put "b" after "a" as if a frame apart, a silent shift
        ('{"t": 0, "text": "x"}\n{"t": 1, "text": "a"}\n{"t": 1.0, "text": "b"}\n', ":3: 't' 1.0 is already on line 2"),
    ],
)
def test_bad_descriptions_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        ground(query="x", descriptions=path, reasoner=KeywordReasoner())
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_descriptions_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ground(query="x", descriptions=tmp_path / "nope.jsonl", reasoner=KeywordReasoner())


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "text", "png"])
def test_bad_videos_raise_video_decode_error(tmp_path, kind):
    path = tmp_path / "clip.mp4"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "png":
        import cv2
        import numpy as np

        ok, buf = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
        path.write_bytes(buf.tobytes())
    with pytest.raises(VideoDecodeError) as err:
        ground(path, "a person walks", reasoner=KeywordReasoner())
    assert str(path) in str(err.value)


def test_result_json_validates_against_exported_schema(demo_described):
    r = ground(query="a person", descriptions=demo_described)
    data = json.loads(r.model_dump_json())
    jsonschema.validate(data, result_json_schema())
    assert set(data) >= {"query", "duration", "intervals"}
    assert all(set(iv) == {"start", "end", "score"} for iv in data["intervals"])
    scores = [iv["score"] for iv in data["intervals"]]
    assert scores == sorted(scores, reverse=True)
    assert GroundingResult.model_validate_json(r.model_dump_json()) == r


def test_describe_streams_and_reports(demo_video, demo_described):
    path, _ = demo_video
    d = demo_described
    assert d.describer == "cv" and d.step == pytest.approx(1.0)
    times = [x.t for x in d.descriptions]
    assert times == sorted(times) and len(times) >= d.duration - 1
    assert all(x.text for x in d.descriptions)


def test_demo_events_are_found(demo_video, demo_described):
    """The whole offline path finds every known event of the rendered video (IoU >= 0.5)."""
    _, events = demo_video
    assert len(events) >= 4
    for ev in events:
        r = ground(query=ev.query, descriptions=demo_described)
        assert r.best is not None, ev.query
        iou = r.best.iou((ev.start, ev.end))
        assert iou >= 0.5, f"{ev.name}: predicted {r.best.start:.1f}-{r.best.end:.1f}, truth {ev.start}-{ev.end}, IoU {iou:.2f}"


@pytest.mark.slow
def test_ground_end_to_end_on_video(demo_video):
    path, events = demo_video
    ev = events[0]
    r = ground(path, ev.query, fps=1.0)
    assert r.video == str(path) and r.describer == "cv" and r.reasoner == "embedding"
    assert not r.duration_inferred and r.duration > 0
    assert {"describe", "reason"} <= set(r.timings)
    assert r.best.iou((ev.start, ev.end)) >= 0.5


def test_unknown_backends_list_the_choices():
    with pytest.raises(ConfigurationError, match="choose one of: .*cv"):
        get_describer("nope:model")
    with pytest.raises(ConfigurationError, match="choose one of: .*embedding"):
        get_reasoner("magic")


def test_third_party_backend_registration():
    reasoners.register("keyword-test", KeywordReasoner)
    try:
        r = ground(query="fridge", descriptions=DESCS, reasoner="keyword-test")
        assert r.reasoner == "keyword"
    finally:
        reasoners._targets.pop("keyword-test")
    assert "keyword-test" not in reasoners.names()
    assert "cv" in describers.names()


@pytest.fixture
def broken_backends(tmp_path, monkeypatch):
    """Registered backends whose module is missing, or imports a package that is not installed."""
    (tmp_path / "vg_plugin_needs_llama.py").write_text("import llama_cpp\n\nclass Reasoner:\n    pass\n")
    (tmp_path / "vg_plugin_needs_other.py").write_text("import vg_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # not installed, whatever this machine has
    added = {"gone-test": "vg_no_such_plugin.mod:Reasoner", "needs-llama-test": "vg_plugin_needs_llama:Reasoner",
             "needs-other-test": "vg_plugin_needs_other:Reasoner", "no-attr-test": "temporal_reasoner.base:Nope"}
    for name, target in added.items():
        reasoners.register(name, target)
    yield
    for name in added:
        reasoners._targets.pop(name)


@pytest.mark.parametrize("spec, error, words", [
    ("gone-test", ConfigurationError, "the reasoner backend 'gone-test' (vg_no_such_plugin.mod:Reasoner) cannot be "
                                      "imported: no module named 'vg_no_such_plugin'"),
    ("needs-llama-test", MissingDependencyError, "the reasoner backend 'needs-llama-test' (vg_plugin_needs_llama "
                                                 "imports 'llama_cpp', which is not installed) needs the "
                                                 "'llama-cpp-python' package: pip install 'vidground[llamacpp]'"),
    ("needs-other-test", ConfigurationError, "no module named 'vg_no_such_dependency'"),
    ("no-attr-test", ConfigurationError, "module 'temporal_reasoner.base' has no 'Nope'"),
])
def test_a_backend_that_cannot_be_imported_is_a_configuration_error(broken_backends, tmp_path, capsys, spec, error,
                                                                    words):
    """It was a raw ModuleNotFoundError (AttributeError), 'internal error' on the command line."""
    from pipelines.cli import main

    with pytest.raises(error) as info:
        get_reasoner(spec)
    assert words in str(info.value)
    write_descriptions(tmp_path / "d.jsonl", DESCS)
    assert main(["ground", "--descriptions", str(tmp_path / "d.jsonl"), "a query", "--reasoner", spec]) == 1
    err = capsys.readouterr().err
    assert words in err and "internal error" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_import_is_light():
    code = ("import sys, pipelines, frame_describer, temporal_reasoner, prompts; "
            "heavy = [m for m in ('torch', 'cv2', 'av', 'openai', 'transformers', 'sentence_transformers') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the packages imported {out}"


@pytest.mark.slow
def test_cache_describes_each_frame_once(demo_video, tmp_path):
    from frame_describer.cache import DescriptionCache

    path, _ = demo_video
    cache = DescriptionCache(tmp_path / "c.sqlite")
    first = describe(path, num_frames=6, cache=cache)
    second = describe(path, num_frames=6, cache=tmp_path / "c.sqlite")
    assert first.usage.cached == 0 and second.usage.cached == 6
    assert [d.text for d in first.descriptions] == [d.text for d in second.descriptions]
    assert [d.t for d in first.descriptions] == [d.t for d in second.descriptions]
    other = describe(path, num_frames=6, max_side=256, cache=cache)  # other settings: no stale hits
    assert other.usage.cached == 0


@pytest.mark.slow
def test_cache_off_and_step_aware_keys(demo_video, tmp_path, monkeypatch):
    path, _ = demo_video
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("VIDGROUND_CACHE", str(db))
    assert describe(path, num_frames=3).usage.cached == 0
    assert describe(path, num_frames=3).usage.cached == 3          # $VIDGROUND_CACHE is used
    assert describe(path, num_frames=3, cache=False).usage.cached == 0
    # the cv describer compares consecutive frames: another sampling step must not reuse its text
    assert describe(path, num_frames=4).usage.cached == 0


def test_truncated_video_duration_is_the_real_end(tmp_path):
    from frame_describer.synthetic import render_numbered_video

    full = render_numbered_video(tmp_path / "full.mkv", n_frames=60, fps=10)  # 6 s
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    d = describe(cut)
    assert 2.0 <= d.duration <= 4.5 and d.descriptions[-1].t < d.duration  # not the container's 6 s


def test_a_loaded_transcript_is_built_once_and_rebuilt_when_its_descriptions_change(monkeypatch):
    """Building a transcript validates every line: load_descriptions builds it once and ground reuses it
    (a repeat query on a 2-hour transcript paid for it twice); a changed description list is rebuilt."""
    from vidground.types import FrameDescription
    from pipelines.api import load_descriptions
    from temporal_reasoner.transcript import Transcript

    builds = []
    real = Transcript.from_descriptions.__func__
    monkeypatch.setattr(Transcript, "from_descriptions",
                        classmethod(lambda cls, *a, **k: builds.append(1) or real(cls, *a, **k)))
    descs = [FrameDescription(t=float(t), text=f"frame {t // 3}") for t in range(12)]
    described = load_descriptions(descs)
    assert len(builds) == 1
    first = described.transcript()
    assert len(builds) == 1 and len(first.entries) == 4
    described.descriptions.append(FrameDescription(t=12.0, text="a new frame"))
    assert len(described.transcript().entries) == 5 and len(builds) == 2
    longer = described.model_copy(update={"duration": 30.0})
    assert longer.transcript().duration == 30.0 and len(builds) == 3
    assert len(described.transcript(merge=False).entries) == 13


def test_the_registry_install_hints_name_the_extras_pyproject_declares():
    """vidground.registry.EXTRAS maps an optional module to the package and extra a MissingDependencyError tells
    users to install; it restates pyproject.toml's optional dependencies, so each pair must be one of them."""
    import re
    import tomllib
    from pathlib import Path

    from vidground.registry import EXTRAS

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {extra: {re.split(r"[\[<>=!~; ]", req, 1)[0].lower() for req in reqs} for extra, reqs in extras.items()}
    for module, (package, extra) in EXTRAS.items():
        assert package.lower() in names.get(extra, set()), (module, package, extra)
