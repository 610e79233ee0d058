"""Reply parsing is linear in the reply's length: hostile replies are rejected fast (CPU time, not
wall-clock), and the Python-level work and the decoder calls do not grow with the reply."""

from __future__ import annotations

import json
import sys
import time

import pytest

from temporal_reasoner import parsing
from temporal_reasoner.parsing import ReplyError, extract_json, parse_reply

M = 1 << 20  # about 1 MB

#: Shapes that made the old candidate scan (or a backtracking regex) quadratic, by size.
HOSTILE = {
    "all [": lambda n: "[" * n,
    "all {": lambda n: "{" * n,
    '{"a": repeated': lambda n: '{"a":' * (n // 5),
    "unterminated string": lambda n: '{"intervals": "' + "a" * n,
    "unterminated single-quoted string": lambda n: "['" + "a" * n,
    "escaped quotes never closing": lambda n: '["' + '\\"' * (n // 2),
    "deeply nested list": lambda n: "[" * (n // 2) + "]" * (n // 2),
    "deeply nested object": lambda n: '{"a":' * (n // 6) + "1" + "}" * (n // 6),
    "open list of empty lists": lambda n: "[" + "[]" * (n // 2),
    "fenced blocks never closing": lambda n: "```json\n[" * (n // 9),
    "whitespace after a fence": lambda n: "```" + " " * n,
    "digits in a time string": lambda n: '{"intervals": [{"start": "' + "1" * n + 'x", "end": 1}]}',
    # prose spans are not counted as malformed values (FX-D): MAX_SPANS bounds how many are looked at
    "quoted transcript lines": lambda n: "[12.0-15.0] a man talks\n" * (n // 24) + '{"intervals": [[1, 2]]}',
}


@pytest.mark.parametrize("shape", HOSTILE)
def test_a_1mb_hostile_reply_is_rejected_in_under_a_second_of_cpu(shape):
    text = HOSTILE[shape](M)
    assert len(text) > M * 0.9
    t0 = time.process_time()
    with pytest.raises(ReplyError):
        parse_reply(text, duration=10, step=1)
    assert time.process_time() - t0 < 1.0


def _work(text: str) -> tuple[int, int]:
    """(Python lines run in parsing.py, calls to a decoder) while extracting the JSON of ``text``."""
    lines = decodes = 0
    here = parsing.__file__

    def tracer(frame, event, arg):
        nonlocal decodes
        if event == "call" and frame.f_code.co_name in ("loads", "literal_eval"):
            decodes += 1
        return local if frame.f_code.co_filename == here else None

    def local(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return local

    sys.settrace(tracer)
    try:
        extract_json(text)
    except ReplyError:
        pass
    finally:
        sys.settrace(None)
    return lines, decodes


SCALING = {**HOSTILE,
           "prose then a reply": lambda n: "I think " * (n // 8) + '{"intervals": [[1, 2, 0.5]]}',
           "many fenced blocks": lambda n: "```" * (n // 3),
           "bracketed prose with apostrophes": lambda n: "[it's] " * (n // 7) + '{"a": 1}'}


@pytest.mark.parametrize("shape", SCALING)
def test_python_work_and_decoder_calls_do_not_grow_with_the_reply(shape):
    small, large = (_work(SCALING[shape](n)) for n in (1 << 14, 1 << 17))
    assert large[0] <= small[0] + 5, f"{small[0]} -> {large[0]} Python lines for 8x the text"
    assert large[1] == small[1] <= 2 * parsing.MAX_CANDIDATES * 3 + 1  # two readings of single quotes


@pytest.mark.parametrize("text, expected", [
    # an apostrophe inside prose brackets does not swallow the answer after it
    ("Sure [here's the answer]: {\"intervals\": [[1, 2]]}", {"intervals": [[1, 2]]}),
    ("I'd say [roughly] this: {\"a\": 1}", {"a": 1}),
    # a reply cut inside a later string still gives the complete value before it
    ('{"intervals": [{"start": 6, "end": 10}], "reason": "the man', [{"start": 6, "end": 10}]),
    ('{"a": "]"} and more', {"a": "]"}),
    ("['a]', 1] after", ["a]", 1]),
    ("```python\nx = [1, 2\n```\n{\"a\": 3}", {"a": 3}),
])
def test_extraction_reads_past_prose_brackets_and_strings(text, expected):
    assert extract_json(text) == expected


def test_the_first_decodable_span_wins_within_a_bounded_number_of_tries():
    text = "[x, y] " * (parsing.MAX_CANDIDATES + 1) + json.dumps({"a": 1})
    with pytest.raises(ReplyError, match="malformed"):
        extract_json(text)
    assert extract_json("[x, y] " * (parsing.MAX_CANDIDATES - 1) + json.dumps({"a": 1})) == {"a": 1}
    # a bracketed span of prose ("[x]", no comma, colon or quote) is no try at JSON: it is not counted
    assert extract_json("[x] " * (parsing.MAX_CANDIDATES + 1) + json.dumps({"a": 1})) == {"a": 1}
