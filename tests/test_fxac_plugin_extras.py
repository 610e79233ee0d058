"""Plug-in corners a plug-in developer found (FX-AC item 8): an answer whose text is not the choice it names was taken
silently; an entry point named like one of vidground's own backends (``cv``) was ignored without a word; a run's
provenance did not say which version of a plug-in gave its results."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pipelines import Session
from pipelines.provenance import collect, plugin_versions
from temporal_reasoner import BaseReasoner
from vidground.registry import Registry
from vidground.types import Answer, FrameDescription, GroundingResult, Interval


class _QA(BaseReasoner):
    name = "fxac-qa"

    def __init__(self, answer: str):
        self.text = answer

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=0, end=1)])

    def answer(self, question: str, transcript: Any, choices: Any = None) -> Answer:
        return Answer(question=question, answer=self.text, choice=0, choices=choices, duration=transcript.duration)


def _rows() -> list[FrameDescription]:
    return [FrameDescription(t=float(t), text="a person walks") for t in range(4)]


@pytest.mark.parametrize("text, warned", [("banana", True), (" Yes ", False)])
def test_an_answer_that_is_not_the_choice_it_names_is_said(text, warned):
    with Session(reasoner=_QA(text)) as s:
        result = s.answer(_rows(), "is a person walking?", ["yes", "no"])
    said = [w for w in result.warnings if "is not the choice it names" in w]
    assert bool(said) == warned, result.warnings
    if warned:
        assert said == ["reasoner 'fxac-qa': its answer 'banana' is not the choice it names (choices[0] 'yes'); the "
                        "choice is what an eval scores"]


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A distribution ``fxac-plug`` 0.3 publishing describers ``cv`` (one of vidground's own names) and ``fxac-mine``."""
    info = tmp_path / "fxac_plug-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fxac-plug\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[vidground.describers]\ncv = fxac_plug:Shadow\n"
                                           "fxac-mine = fxac_plug:Mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_an_entry_point_named_like_a_builtin_is_said_to_be_ignored(installed, caplog):
    registry = Registry("describer", "vidground.describers", {"cv": "frame_describer.classical:ClassicalDescriber"})
    with caplog.at_level(logging.WARNING, "vidground"):
        names = registry.names()
    assert "fxac-mine" in names and registry._targets["cv"] == "frame_describer.classical:ClassicalDescriber"
    said = [r.getMessage() for r in caplog.records if "fxac_plug:Shadow" in r.getMessage()]
    assert said == ["the vidground.describers entry point 'cv' (fxac_plug:Shadow, of fxac-plug) is ignored: 'cv' "
                    "names one of vidground's own describer backends; give the entry point another name"], said


def test_provenance_records_the_installed_plugins_versions(installed):
    assert plugin_versions().get("fxac-plug") == "0.3"
    assert collect(argv=[])["plugins"].get("fxac-plug") == "0.3"
