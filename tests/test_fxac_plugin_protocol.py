"""What a plug-in's describer or reasoner hands back is checked, and what it raises names it (FX-AC items 2-6, from a
plug-in developer's report): two descriptions of a frame, a time off the frames given, descriptions out of order were
kept (and a cached rerun answered otherwise); skipped frames were silently filed under their neighbours' times by the
cache; a describer yielding nothing was "no frames could be decoded"; ``describe()`` returning ``None`` a bare
``TypeError``; ``settings()`` returning ``None`` a raw pydantic error; a plug-in's exception an "internal error"
naming nobody; numpy values in a result stopped ``--json`` and a whole eval; a result built with ``model_construct``
(a NaN start, an interval ending before it starts) or holding a tuple was taken as it was."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from _helpers_eval import render_toy_videos, write_toy_dataset
from frame_describer import BaseDescriber
from pipelines import Session
from pipelines.cli import main
from temporal_reasoner import BaseReasoner, reasoners
from vidground.errors import PluginError, ProviderError
from vidground.types import FrameDescription, GroundingResult, Interval


class _Desc(BaseDescriber):
    """Describes the frames it is given as ``how`` says."""

    name = "fxac-desc"

    def __init__(self, how: str = "ok"):  # the default settings(): every how keys alike
        self.how = how

    def describe(self, frames: Any, *, query: str | None = None) -> Any:
        how = self.how
        if how == "none":
            return None
        return self._stream(frames, how)

    def _stream(self, frames: Any, how: str) -> Any:
        if how == "nothing":  # reads no frame
            return
        frames = list(frames)
        if how == "silent":  # reads every frame, describes none
            return
        if how == "reverse":
            frames = frames[::-1]
        for i, f in enumerate(frames):
            if how == "raise" and i == 1:
                raise RuntimeError("my captioner crashed")
            if how == "provider" and i == 1:
                raise ProviderError("rate limited", status=429, retryable=True)
            if how == "skip" and i % 2:
                continue
            if how == "one" and i:
                break
            t = f.t + 0.37 if how == "off" else f.t
            yield FrameDescription(t=t, text=f"frame {f.t:g}")
            if how == "twice":
                yield FrameDescription(t=t, text=f"frame {f.t:g} again")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return render_toy_videos(tmp_path_factory.mktemp("fxac-protocol"), ["a"]) / "a.mp4"  # 3 s: frames 0, 1, 2


def _describe(video, how: str, cache: Any = False) -> Any:
    with Session(describer=_Desc(how), cache=cache) as s:
        return s.describe(video)


NAMED = r"describer 'fxac-desc' \(test_fxac_plugin_protocol\._Desc\) broke the describer protocol: "


# --- 2. one description a frame given, at its time, in order ---------------------------------------------------------

@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("how, says", [
    ("twice", r"describe\(\) yielded a second description of the frame at t=0 s"),
    ("off", r"describe\(\) yielded a description at t=0\.37 s, which is no frame it was given"),
    ("reverse", r"describe\(\) yielded a description of the frame at t=1 s after one of the frame at 2 s"),
])
def test_a_description_of_no_frame_given_or_a_second_one_is_refused(video, tmp_path, how, says, cached):
    with pytest.raises(PluginError, match=NAMED + says) as info:
        _describe(video, how, tmp_path / "c.sqlite" if cached else False)
    assert info.value.plugin == "fxac-desc" and info.value.protocol == "describe"


def test_frames_left_without_a_description_are_said_and_keep_their_times(video, tmp_path):
    """The cache files a stream's descriptions in the order of the frames it gave: a skipped frame 1 had frame 2's
    text stored as its own, so the cached rerun answered otherwise than the first run."""
    cache = tmp_path / "c.sqlite"
    first = _describe(video, "skip", cache)
    assert [(d.t, d.text) for d in first.descriptions] == [(0.0, "frame 0"), (1.0, ""), (2.0, "frame 2")]
    assert any(w.startswith("1 of 3 frames have no description") and "describe() yielded no description" in w
               for w in first.warnings), first.warnings
    again = _describe(video, "ok", cache)  # the skipped frame is described now, the others come from the cache
    assert [(d.t, d.text) for d in again.descriptions] == [(0.0, "frame 0"), (1.0, "frame 1"), (2.0, "frame 2")]
    assert again.usage.cached == 2


def test_one_description_for_every_frame_is_said(video):
    described = _describe(video, "one")
    assert len(described.descriptions) == 3  # one a frame sampled: what the command line counts as sampled
    assert any(w.startswith("2 of 3 frames have no description") for w in described.warnings), described.warnings


# --- 3. nothing yielded, no iterable, settings that are no dict -------------------------------------------------------

@pytest.mark.parametrize("how, says", [
    ("silent", r"describe\(\) yielded no description of the 3 frame\(s\) it was given"),
    ("nothing", r"describe\(\) yielded no description and read none of the frames it was given"),
    ("none", r"describe\(frames, query=None\) must return an iterable of FrameDescription objects \(yield them\), "
             r"got NoneType"),
])
def test_a_describer_yielding_nothing_is_a_plugin_error_not_a_decoding_one(video, how, says):
    with pytest.raises(PluginError, match=NAMED + says):
        _describe(video, how)


class _NoSettings(_Desc):
    def settings(self) -> Any:
        return None


class _NoName(_Desc):
    name = None  # type: ignore[assignment]


def test_settings_or_a_name_of_the_wrong_type_name_the_member(video):
    with pytest.raises(PluginError, match=r"settings\(\) must return a dict .*got NoneType") as info:
        with Session(describer=_NoSettings(), cache=False) as s:
            s.describe(video)
    assert info.value.protocol == "settings"
    with pytest.raises(PluginError, match=r"its name must be a non-empty str, got NoneType") as info:
        with Session(describer=_NoName(), cache=False) as s:
            s.describe(video)
    assert info.value.protocol == "name"


# --- 4. an exception a plug-in raises names it -------------------------------------------------------------------------

def test_an_exception_in_a_describer_names_it_and_keeps_the_original(video):
    with pytest.raises(PluginError, match=r"^error in describer 'fxac-desc' \(test_fxac_plugin_protocol\._Desc\)"
                                          r"\.describe: RuntimeError: my captioner crashed$") as info:
        _describe(video, "raise")
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ProviderError, match="rate limited"):  # vidground's own typed errors stay what they are
        _describe(video, "provider")


class _Rsn(BaseReasoner):
    name = "fxac-rsn"

    def __init__(self, how: str = "ok"):
        self.how = how

    def ground(self, query: str, transcript: Any) -> Any:
        d = transcript.duration
        if self.how == "raise":
            raise ValueError("my scorer crashed")
        if self.how == "nan":
            return GroundingResult.model_construct(query=query, duration=d, intervals=[
                Interval.model_construct(start=math.nan, end=1.0, score=1.0)], warnings=[], usage={}, timings={},
                settings={})
        if self.how == "reversed":
            return GroundingResult.model_construct(query=query, duration=d, intervals=[
                Interval.model_construct(start=2.0, end=1.0, score=1.0)], warnings=[], usage={}, timings={},
                settings={})
        result = GroundingResult(query=query, duration=d, intervals=[Interval(start=0, end=1, score=1.0)])
        if self.how == "tuple":
            result.intervals.append((2.0, 1.0, 1.0))
        if self.how == "numpy":
            result = result.model_copy(update={"raw": {"scores": np.arange(3) * 0.5}})
        return result

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": np.float32(0.5), "how": self.how}


def _rows() -> list[FrameDescription]:
    return [FrameDescription(t=float(t), text=f"a person {'walks' if t < 2 else 'sits'}") for t in range(4)]


def test_an_exception_in_a_reasoner_names_it():
    with Session(reasoner=_Rsn("raise")) as s, pytest.raises(
            PluginError, match=r"^error in reasoner 'fxac-rsn' \(test_fxac_plugin_protocol\._Rsn\)\.ground: "
                               r"ValueError: my scorer crashed$") as info:
        s.ground(_rows(), "a person walks")
    assert isinstance(info.value.__cause__, ValueError) and info.value.protocol == "ground"


# --- 5. numpy values in a result -----------------------------------------------------------------------------------

def test_numpy_in_a_results_raw_and_settings_is_written_as_numbers():
    with Session(reasoner=_Rsn("numpy")) as s:
        result = s.ground(_rows(), "a person walks")
    written = json.loads(result.model_dump_json())  # --json: PydanticSerializationError before
    assert written["raw"] == {"scores": [0.0, 0.5, 1.0]}
    assert written["settings"]["reasoner"]["threshold"] == 0.5


class _NpRaw(_Rsn):
    name = "fxac-npraw"

    def __init__(self, arg: str | None = None, **_: Any):
        super().__init__("numpy")


reasoners.register("fxac-npraw", _NpRaw)


def test_an_eval_writes_every_result_a_reasoner_gave_numpy_in(tmp_path):
    """TypeError: Object of type ndarray is not JSON serializable: the eval stopped, 0 lines written."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    out = tmp_path / "run"
    assert main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "fxac-npraw",
                 "--out", str(out), "--no-report", "--quiet"]) == 0
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and {x["status"] for x in lines} == {"ok"}


def test_the_result_sink_writes_numpy_and_sets(tmp_path):
    from pipelines.runs import ResultSink

    sink = ResultSink(tmp_path / "r.jsonl")
    sink.append({"raw": {"a": np.arange(2), "t": np.float32(0.5), "s": {2, 1}}})
    assert json.loads((tmp_path / "r.jsonl").read_text()) == {"raw": {"a": [0, 1], "t": 0.5, "s": [1, 2]}}


# --- 6. a plug-in's result validated again ---------------------------------------------------------------------------

@pytest.mark.parametrize("how, says", [
    ("nan", r"intervals\.0\.start: Input should be a finite number"),
    ("reversed", r"interval end 1\.0 must be after its start 2\.0"),
    ("tuple", r"interval end 1\.0 must be after its start 2\.0"),
])
def test_a_result_built_without_validation_is_validated_again(how, says):
    with Session(reasoner=_Rsn(how)) as s, pytest.raises(
            PluginError, match=r"^reasoner 'fxac-rsn' \(test_fxac_plugin_protocol\._Rsn\) broke the reasoner protocol: "
                               r"ground\(\) returned an invalid GroundingResult: .*" + says):
        s.ground(_rows(), "a person walks")
