"""Dense events through the transformers reasoner (a tiny random Llama-shaped model): its ``chat`` is driven
through the events prompt in plain text, the reply parsed and re-asked; ``generate`` is scripted, since random
weights write random text, and the random model itself shows the failure path."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from test_hf_reasoner import lm_path, script, transcript  # noqa: E402,F401

from vidground.errors import OutputValidationError  # noqa: E402
from temporal_reasoner import get_reasoner  # noqa: E402
from temporal_reasoner.events import find_events  # noqa: E402
from temporal_reasoner.hf_reasoner import TransformersReasoner  # noqa: E402


def test_hf_reasoner_finds_events_through_its_chat(lm_path, monkeypatch):  # noqa: F811
    r = TransformersReasoner(str(lm_path), max_new_tokens=64)
    seen = []
    real_prompt = r._prompt
    r._prompt = lambda messages, prefill: seen.append((messages, prefill)) or real_prompt(messages, prefill)
    lengths = script(monkeypatch, r, ['{"events": [{"start": 0, "end": 99, "caption": "x", "score": 1}]}',
                                      '{"events": [{"start": 0, "end": 9, "caption": "a person sits", "score": 0.7},'
                                      ' {"start": 9, "end": 18, "caption": "a person opens the door", "score": 0.6}]}'])
    out = find_events(r, transcript(18), max_events=5)
    assert [(e.start, e.end, e.caption) for e in out.events] == [(0.0, 9.0, "a person sits"),
                                                                  (9.0, 18.0, "a person opens the door")]
    assert all(prefill is False for _, prefill in seen)  # plain text: no intervals pre-fill
    assert "outside the part of the video" in seen[-1][0][-1]["content"]
    assert out.usage["reason"].requests == 2 and out.usage["reason"].prompt_tokens == sum(lengths)
    assert out.reasoner == f"hf:{lm_path}" and out.settings["response_format"] == "text"


def test_random_model_fails_cleanly(lm_path):  # noqa: F811
    r = get_reasoner(f"hf:{lm_path}", max_new_tokens=12, max_attempts=2)
    with pytest.raises(OutputValidationError) as err:
        find_events(r, transcript(8))
    assert err.value.attempts == 2 and len(err.value.raw_outputs) == 2 and err.value.usage.requests == 2
