"""The transformers reasoner on a tiny random Llama-shaped model, and context fitting.

Random weights write random text, so the answer-handling paths are driven by scripting what
``generate`` returns (through the real tokenizer, prompt and decoding code); the random model
itself is run to check prompts, budgets, usage and the failure path."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from _helpers_tiny_models import build_tiny_causal_lm  # noqa: E402

from vidground.errors import ConfigurationError, OutputValidationError  # noqa: E402
from vidground.types import FrameDescription  # noqa: E402
from temporal_reasoner import get_reasoner  # noqa: E402
from temporal_reasoner.base import BaseReasoner  # noqa: E402
from temporal_reasoner.context import combine, merge_similar, plan_context, similarity  # noqa: E402
from temporal_reasoner.hf_reasoner import PREFILL, TransformersReasoner  # noqa: E402
from temporal_reasoner.structured import build_messages  # noqa: E402
from temporal_reasoner.transcript import Transcript  # noqa: E402
from vidground.types import GroundingResult, Interval  # noqa: E402

ACTIONS = ["sits on the sofa reading a book", "stands up and walks to the door", "opens the door",
           "closes the door", "pours water into a glass", "drinks from the glass"]


def transcript(n: int = 30, step: float = 1.0) -> Transcript:
    descs = [FrameDescription(t=i * step, text=f"A person {ACTIONS[(i // 3) % len(ACTIONS)]} (view {i % 2})")
             for i in range(n)]
    return Transcript.from_descriptions(descs)


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture(scope="module")
def bare_lm_path(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "bare", chat_template=False)


def script(monkeypatch, reasoner: TransformersReasoner, replies: list[str]) -> list[int]:
    """Make generate() return the given continuations (after the pre-fill); returns prompt lengths."""
    import torch

    tok = reasoner.tokenizer
    lengths: list[int] = []
    queue = list(replies)

    def generate(input_ids, **kwargs):
        lengths.append(input_ids.shape[1])
        ids = tok(queue.pop(0), add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
        return torch.cat([input_ids, torch.tensor([ids])], dim=1)

    monkeypatch.setattr(reasoner.model, "generate", generate)  # the model is shared: undo afterwards
    return lengths


def test_valid_answer_after_prefill(lm_path, monkeypatch):
    r = TransformersReasoner(str(lm_path), max_new_tokens=64)
    lengths = script(monkeypatch, r, ['6.0, "end": 9.5, "score": 0.8}]}'])
    res = r.ground("the person opens the door", transcript())
    assert [iv.as_list() for iv in res.intervals] == [[6.0, 9.5, 0.8]]
    assert res.raw == PREFILL + '6.0, "end": 9.5, "score": 0.8}]}'
    usage = res.usage["reason"]
    assert usage.requests == 1 and usage.prompt_tokens == lengths[0] and usage.completion_tokens > 5
    assert usage.cost_usd == 0.0 and usage.unpriced_requests == 0  # run here: nothing paid, not an unknown price
    assert res.reasoner == f"hf:{lm_path}" and res.settings["chat_template"] == "model"
    assert res.settings["attempts"] == 1 and res.settings["context"]["chunks"] == 1


def test_invalid_answer_is_reasked_with_the_error(lm_path, monkeypatch):
    r = TransformersReasoner(str(lm_path), max_new_tokens=64)
    seen: list[list[dict]] = []
    real_prompt = r._prompt
    r._prompt = lambda messages, prefill: seen.append(messages) or real_prompt(messages, prefill)
    script(monkeypatch, r, ['50.0, "end": 99.0}]}', '3.0, "end": 5.0, "score": 0.5}]}'])
    res = r.ground("the person opens the door", transcript(10))
    assert res.intervals == [Interval(start=3.0, end=5.0, score=0.5)]
    assert res.settings["attempts"] == 2 and res.usage["reason"].requests == 2
    assert "outside the video" in seen[-1][-1]["content"]  # the re-ask shows the validation error


def test_random_model_fails_cleanly_with_every_attempt_recorded(lm_path):
    r = get_reasoner(f"hf:{lm_path}", max_new_tokens=12, max_attempts=2)
    with pytest.raises(OutputValidationError) as err:
        r.ground("the person opens the door", transcript(8))
    e = err.value
    assert e.attempts == 2 and len(e.raw_outputs) == 2
    assert all(raw.startswith(PREFILL) for raw in e.raw_outputs)
    assert e.usage.requests == 2 and e.usage.prompt_tokens > 0 and 0 < e.usage.completion_tokens <= 24


class Fixed(BaseReasoner):
    name = "fixed"

    def ground(self, query, transcript):
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=1, end=2)])


def test_fallback_answers_when_the_model_cannot(lm_path):
    r = get_reasoner(f"hf:{lm_path}", max_new_tokens=8, max_attempts=1, fallback=Fixed())
    res = r.ground("the person opens the door", transcript(8))
    assert res.intervals == [Interval(start=1, end=2)]
    assert res.settings["fallback"] == "fixed" and any("fallback" in w for w in res.warnings)


def test_model_without_chat_template_gets_the_plain_one(bare_lm_path):
    r = TransformersReasoner(str(bare_lm_path))
    prompt = r._prompt(build_messages("the door opens", transcript(4)), True)
    assert prompt.startswith("System: ") and "\n\nUser: " in prompt and prompt.endswith("Assistant: " + PREFILL)
    assert r.settings()["chat_template"] == "plain"


def test_long_transcript_is_chunked_within_budget_and_combined(lm_path, monkeypatch):
    r = TransformersReasoner(str(lm_path), max_new_tokens=48, context_tokens=900)
    budget = 900 - 2 * 48 - 128
    long = transcript(60)
    assert r.count_tokens(build_messages("q", long)) > budget
    lengths = script(monkeypatch, r, [f'{s}, "end": {s + 2}, "score": {0.1 * (i + 1):.1f}}}]}}'
                         for i, s in enumerate(range(0, 60, 5))])
    res = r.ground("the person drinks", long)
    n = res.settings["context"]["chunks"]
    # each chunk, then the final pass over their candidates, every prompt within the budget
    assert n > 1 and len(lengths) == n + 1 and max(lengths) <= budget + 8  # +8: the pre-fill tokens
    assert any("chunks" in w for w in res.warnings)
    scores = [iv.score for iv in res.intervals]
    assert scores == sorted(scores, reverse=True) and len(res.intervals) <= 3


def test_model_errors_are_configuration_errors(tmp_path, monkeypatch, lm_path):
    with pytest.raises(ConfigurationError, match="no such file"):
        get_reasoner(f"hf:{tmp_path / 'missing'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigurationError, match="hf download some-org/not-here"):
        get_reasoner("hf:some-org/not-here")
    with pytest.raises(ConfigurationError, match="context_tokens"):
        get_reasoner(f"hf:{lm_path}", context_tokens=300)
    with pytest.raises(ConfigurationError, match="hf:<hub id"):
        get_reasoner("hf")


# --- context fitting (pure) -------------------------------------------------------------------


def words(messages: list[dict]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def test_similarity_and_merge_keep_every_time_range():
    assert similarity("a man opens the door", "the man opens a door") == 1.0
    assert similarity("", "") == 1.0 and similarity("red", "blue") == 0.0
    t = transcript(30)
    merged = merge_similar(t, 0.5)  # "(view 0)" / "(view 1)" variants merge
    assert len(merged) < len(t)
    assert merged.entries[0].start == 0.0 and merged.entries[-1].end == t.duration
    assert all(a.end == b.start for a, b in zip(merged.entries, merged.entries[1:]))


def test_plan_merges_before_chunking_and_chunks_overlap():
    t = transcript(60)
    full = words(build_messages("q", t))
    fits = plan_context("q", t, count_tokens=words, budget=full)
    assert len(fits.chunks) == 1 and fits.chunks[0] is t and not fits.warnings
    merged_cost = words(build_messages("q", merge_similar(t, 0.5)))
    plan = plan_context("q", t, count_tokens=words, budget=merged_cost)
    assert len(plan.chunks) == 1 and plan.merge_threshold is not None and "merged" in plan.warnings[0]
    small = plan_context("q", t, count_tokens=words, budget=merged_cost // 2, overlap=1)
    assert len(small.chunks) > 1
    assert all(words(build_messages("q", c)) <= merged_cost // 2 for c in small.chunks)
    for a, b in zip(small.chunks, small.chunks[1:]):
        assert a.entries[-1] == b.entries[0]  # one shared span
    assert small.chunks[0].entries[0].start == 0.0 and small.chunks[-1].entries[-1].end == t.duration
    with pytest.raises(ConfigurationError, match="cannot hold"):
        plan_context("q", t, count_tokens=words, budget=10)


def test_combine_clips_to_chunks_ranks_and_dedupes():
    t = transcript(20)
    a = t.model_copy(update={"entries": t.entries[:10]})   # 0-10 s
    b = t.model_copy(update={"entries": t.entries[9:]})    # 9-20 s
    ra = GroundingResult(query="q", duration=20, intervals=[Interval(start=2, end=4, score=0.6),
                                                            Interval(start=15, end=18, score=0.9)])
    rb = GroundingResult(query="q", duration=20, intervals=[Interval(start=12, end=14, score=0.7),
                                                            Interval(start=12.2, end=14, score=0.65)])
    kept, warnings = combine([(a, ra), (b, rb)], max_intervals=3)
    assert [iv.as_list() for iv in kept] == [[12, 14, 0.7], [2, 4, 0.6]]
    assert len(warnings) == 1 and "outside" in warnings[0]


def test_guided_mode_for_base_models_writes_only_the_numbers(bare_lm_path, monkeypatch):
    r = TransformersReasoner(str(bare_lm_path))
    assert r.guided and r.settings()["guided"]
    lengths = script(monkeypatch, r, ["4.5,", " 7,", " 0.75}"])
    res = r.ground("the person opens the door", transcript(12))
    assert res.intervals == [Interval(start=4.5, end=7.0, score=0.75)]
    assert res.raw == PREFILL + '4.5, "end": 7, "score": 0.75}]}'
    assert len(lengths) == 3 and lengths[0] < lengths[1] < lengths[2]  # each field continues the last
    assert res.usage["reason"].requests == 3
    script(monkeypatch, r, ["the door,", "2.0,", " 4.0,", " 0.5}"])  # not a number: re-asked
    res = r.ground("the person opens the door", transcript(12))
    assert res.settings["attempts"] == 2 and res.intervals[0].start == 2.0
