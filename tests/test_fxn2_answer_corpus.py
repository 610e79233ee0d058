"""The answer rule on RV-J's held-out corpus of replies (GPT-4o, Claude, Llama 3, Qwen2.5-VL, Mistral, Phi-3,
SmolLM2, DeepSeek-R1, French, Spanish and Japanese ones) for ground, ask and events, each with the answer a user
reading it expects. 11d9cec (FX-N), written from RV-I's corpus (tests/test_fxn_answer_corpus.py), answered 54 of
RV-J's 75 and 4 of its 10 further cases so (b8ec807: 65 and 9; 77cc687: 63 and 9): any labelled value after the
fenced answer replaced it, a hedge before an explicit correction label vetoed it, a summary rule cancelled an
explicit final narrowing, and punctuation alone between two values raised an untyped IndexError."""

from __future__ import annotations

import json

import pytest

from test_fxn_answer_corpus import answer as fxn_answer


def iv(*pairs: tuple[float, float]) -> str:
    return json.dumps({"intervals": [{"start": s, "end": e} for s, e in pairs]})


A, B = iv((12, 18)), iv((30, 36))


def F(value: str) -> str:
    return f"```json\n{value}\n```"


CH = ["He pours water", "He drinks water", "He leaves the room", "He washes a cup"]


def qa(c: int, *pairs: tuple[float, float]) -> str:
    return json.dumps({"choice": c, "answer": CH[c], "intervals": [[s, e] for s, e in pairs]})


Q0 = qa(0, (12, 18))
EVS = [(0, 6, "A man walks into the kitchen"), (12, 18, "He pours water into a glass"), (30, 36, "He drinks the water")]
E3 = json.dumps({"events": [{"start": s, "end": e, "caption": c} for s, e, c in EVS]})
TE3 = [(s, e) for s, e, _ in EVS]


def answer(task: str, reply: str) -> tuple[object, list[str]]:
    return fxn_answer(task, reply, duration=60.0, choices=CH)


@pytest.mark.parametrize("task, reply, expected", [
    ("g", F(A) + "\n" + A + ". " + A + ". " + A + ".", [(12, 18)]),
    ("q", F(Q0) + "\n" + Q0 + ". " + Q0 + ".", (0, [(12, 18)])),
    ("q", F(Q0) + "\n" + Q0 + "!", (0, [(12, 18)])),
    ("e", F(E3) + "\n" + E3 + ". " + E3 + ".", TE3),
    ("g", F(A) + "\nIn short: [12, 18]. [12, 18].", [(12, 18)]),
    ("g", F(A) + "\n" + A + "? " + A + "?", [(12, 18)]),
], ids=["ground", "ask", "ask-exclamation", "events", "flat-pairs", "question-marks"])
def test_values_after_the_fence_apart_only_by_punctuation_are_read_not_a_crash(task, reply, expected):
    """11d9cec raised an untyped IndexError (after the paid call) reading the sentence before the second value: the
    prose between them is '. ', no sentence at all. Punctuation names nothing: the value there is no later word."""
    assert answer(task, reply)[0] == expected
