"""Defects a reviewer confirmed in the chat side (FX-B): an answer replaced by numbers in the prose after it, a
stray </think>, a deadlock in the shared limiter's finalizer, a learned context size unused by ask/events or
grown again, the unknown-cost wording, and a --json list lost on an unexpected error."""

from __future__ import annotations

import pytest

from temporal_reasoner.parsing import ReplyError, parse_reply_detailed

ANSWER = (17.0, 21.0)


# --- 1. the answer, not the prose after it ----------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    'The event happens at {"intervals": [{"start": 17, "end": 21, "score": 0.9}]}. The video spans [0, 36].',
    'Answer: {"intervals": [[17, 21, 0.9]]}\n(frames [3, 4] were ambiguous)',
    '{"intervals": [{"start": 17, "end": 21}]}\nFormat used: {"intervals": [{"start": 0, "end": 36}]}',
    'The video spans [0, 36]. The event: {"intervals": [[17, 21]]}',  # a whole answer over a fragment before it
])
def test_prose_after_the_answer_does_not_replace_it(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert not any("used the last" in w for w in parsed.warnings)


def test_a_marked_correction_still_wins():
    parsed = parse_reply_detailed('{"intervals": [[0, 36]]} no: {"intervals": [[17, 21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("used the last" in w for w in parsed.warnings)
    parsed = parse_reply_detailed('<think>Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []


def test_a_stray_closing_think_tag_after_the_answer_keeps_it():
    parsed = parse_reply_detailed('{"intervals":[[17,21]]} (I removed my </think> block)', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("</think>" in w for w in parsed.warnings)
    # a block the template opened still hides its draft when an answer follows the tag
    parsed = parse_reply_detailed('Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []
    with pytest.raises(ReplyError):
        parse_reply_detailed("no JSON </think> none here", duration=36)


# --- 7. ask and events: the same rule -----------------------------------------------------------------------------

def test_an_answer_followed_by_a_json_looking_value_in_prose_is_kept():
    from temporal_reasoner.events import parse_events
    from temporal_reasoner.qa import parse_answer

    parsed = parse_answer('{"answer": "yes", "intervals": [[17, 21]]}\nFormat: {"answer": "...", '
                          '"intervals": [[0, 36]]}', choices=None, duration=36)
    assert parsed.answer == "yes" and [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    events, _ = parse_events('{"events": [{"start": 3, "end": 5, "caption": "b"}]} e.g. '
                             '{"events": [{"start": 0, "end": 10, "caption": "example"}]}', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]
    events, _ = parse_events('[{"start": 3, "end": 5, "caption": "b"}] (times in [0, 10])', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]


# --- 2. a backend collected while the shared limiter's lock is held -----------------------------------------------

class _Owner:
    """A backend's stand-in: what holds limits on a shared limiter."""


def test_the_limit_finalizer_takes_no_lock_and_the_hold_is_released_at_the_next_call():
    import threading

    from vidground import ratelimit

    url = "http://fxb-gc.invalid/v1"
    owner = _Owner()
    limiter = ratelimit.shared_limiter(url, "k", max_in_flight=1, owner=owner)
    (_, finalizer), = ratelimit._OWNED[id(owner)]
    done = threading.Event()

    def collected():  # what a garbage collection inside `with _SHARED_LOCK:` (in shared_limiter) runs
        finalizer()
        done.set()
    with ratelimit._SHARED_LOCK:
        worker = threading.Thread(target=collected, daemon=True)
        worker.start()
        worker.join(30)
        finished = done.is_set()
    assert finished  # before: the finalizer waited for the lock held here, for ever
    assert limiter.max_in_flight == 1  # only queued ...
    other = _Owner()
    fresh = ratelimit.shared_limiter(url, "k", max_in_flight=3, owner=other)
    assert fresh is not limiter and fresh.max_in_flight == 3  # ... and released by the next call, first
    ratelimit.release_limits(other)


def test_a_collected_backends_hold_is_released_before_the_next_request_of_another():
    import gc

    from vidground import ratelimit

    url = "http://fxb-gc2.invalid/v1"
    tight, loose = _Owner(), _Owner()
    limiter = ratelimit.shared_limiter(url, "k", rpm=2, owner=tight)
    ratelimit.shared_limiter(url, "k", rpm=50, owner=loose)
    del tight
    gc.collect()
    with limiter.slot():
        assert limiter.rpm == 50
    ratelimit.release_limits(loose)
