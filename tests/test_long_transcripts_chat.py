"""Chat reasoners on a transcript longer than their context: chunks searched for candidates, then one
final pass over the candidates with their context (temporal_reasoner.context), through the local fake
OpenAI-compatible server; what every request contained is read back from the server."""

from __future__ import annotations

import re

import pytest

from vidground.errors import ConfigurationError, OutputValidationError
from vidground.types import FrameDescription, Interval
from temporal_reasoner.context import estimate_tokens, excerpt, ground_in_context
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.transcript import Transcript

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401

QUERY = "the person opens the red door"
MOMENT = 1402.0  # the true moment: three frames of it from here, 2 s apart (one span, [1401-1407])
DECOYS = (202.0, 3002.0)  # a look-alike in two other chunks: "a person near a red door"
SPAN = (MOMENT - 1, MOMENT + 5)  # a frame's span runs halfway to its neighbours
LINE = re.compile(r"^\[(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\] (.*)$", re.M)


def long_transcript(lines: int = 1800) -> Transcript:
    """``lines`` frames 2 s apart (a 1-h video at 1800), every text distinct but the moment's (one span)."""
    return Transcript.from_descriptions(frames(lines))


def frames(lines: int) -> list[FrameDescription]:
    out = []
    for i in range(lines):
        t = 2.0 * i
        if MOMENT <= t < MOMENT + 6:
            text = "the person opens the red door and walks in"
        elif any(d <= t < d + 4 for d in DECOYS):
            text = "a person stands near a red door"
        else:
            text = f"a hallway, lamp{i} and shelf{i} and cup{i}"  # no two alike: nothing merges
        out.append(FrameDescription(t=t, text=text))
    return out


def responder(req) -> Reply:
    """A model that reads its prompt: in a chunk, the best-looking line (a decoy is scored *higher* than
    the true moment, so chunk scores alone would rank it first); in the final pass (both kinds of line
    shown together) the true moment."""
    user = req.json["messages"][-1]["content"]
    lines = [(float(a), float(b), text) for a, b, text in LINE.findall(user)]
    opens = [(a, b) for a, b, text in lines if "opens the red door" in text]
    near = [(a, b) for a, b, text in lines if "near a red door" in text]
    if opens and near:  # the final pass sees both: the true moment wins
        spans = [(opens[0][0], opens[-1][1], 0.8), (near[0][0], near[-1][1], 0.3)]
    elif opens:
        spans = [(opens[0][0], opens[-1][1], 0.5)]
    elif near:
        spans = [(near[0][0], near[-1][1], 0.95)]
    else:
        spans = [(lines[0][0], lines[0][1], 0.1)]
    body = ", ".join(f'{{"start": {a:g}, "end": {b:g}, "score": {s}}}' for a, b, s in spans)
    return Reply.chat(f'{{"intervals": [{body}]}}')


def make(server, **kw) -> OpenAIReasoner:
    return OpenAIReasoner("gpt-4o-mini", base_url=server.base_url, api_key="sk-test", retry_base_delay=0.01,
                          prices=False, **kw)


def prompt_lines(req) -> list[tuple[float, float, str]]:
    return [(float(a), float(b), text) for a, b, text in LINE.findall(req.json["messages"][-1]["content"])]


def test_a_long_transcript_is_searched_in_chunks_then_ranked_in_one_final_pass(openai_server):
    openai_server.responder = responder
    long = long_transcript()
    reasoner = make(openai_server, context_tokens=8000)
    budget = 8000 - 2 * 512 - 128
    res = reasoner.ground(QUERY, long)

    ctx = res.settings["context"]
    chunks, requests = ctx["chunks"], openai_server.requests
    assert chunks > 3 and len(requests) == chunks + 1  # one request per chunk, then the final pass
    # every prompt fits the budget, and together the chunks show every line of the video: nothing cut
    assert all(estimate_tokens(r.json["messages"]) <= budget for r in requests)
    shown = {(a, b) for r in requests[:-1] for a, b, _ in prompt_lines(r)}
    assert shown == {(e.start, e.end) for e in long.entries}
    # the final pass holds each chunk's candidate with its context spans, and nothing else
    final = prompt_lines(requests[-1])
    starts = {a for a, _, _ in final}
    assert SPAN[0] in starts and all(d - 1 in starts for d in DECOYS)
    assert {SPAN[0] - 16, SPAN[1] + 14} <= starts and not {SPAN[0] - 18, SPAN[1] + 16} & starts  # 8 spans either side
    assert len(final) < len(long.entries) / 10
    assert ctx["candidates"] == ctx["final_candidates"] and ctx["final_answered"]
    # the decoys scored higher in their chunks; the final pass, seeing all, ranks the true moment first
    assert res.intervals[0] == Interval(start=SPAN[0], end=SPAN[1], score=0.8)
    assert res.usage["reason"].requests == chunks + 1
    assert any("chunks" in w for w in res.warnings)


def test_short_transcripts_are_one_request_and_none_sends_it_whole(openai_server):
    openai_server.responder = responder
    short = Transcript.from_descriptions(frames(1800)[690:720])
    res = make(openai_server).ground(QUERY, short)
    assert len(openai_server.requests) == 1 and res.settings["context"]["chunks"] == 1
    assert res.intervals[0] == Interval(start=SPAN[0], end=SPAN[1], score=0.5)
    make(openai_server, context_tokens=None).ground(QUERY, long_transcript(600))
    assert len(openai_server.requests) == 2  # whole, however long


def test_progress_reports_every_request_and_the_final_pass_can_fail_over_to_the_candidates(openai_server):
    long = long_transcript(900)
    reasoner = make(openai_server, context_tokens=8000, max_attempts=1)
    calls = []

    def unusable_final(req) -> Reply:  # chunks answer; the final pass (the decoy and the moment together) not
        lines = prompt_lines(req)
        if any("opens" in t for *_, t in lines) and any("near a red" in t for *_, t in lines):
            return Reply.chat("I cannot tell.")
        return responder(req)

    openai_server.responder = unusable_final
    res = ground_in_context(reasoner.chat, QUERY, long, count_tokens=estimate_tokens, budget=6000,
                            reasoner_name=reasoner.name, response_formats=("json_object",), max_attempts=1,
                            progress=lambda done, total, what: calls.append((done, total, what)))
    n = res.settings["context"]["chunks"]
    assert [c[:2] for c in calls] == [(k, n + 1) for k in range(1, n + 2)]
    assert calls[-1][2].startswith("final pass")
    # the final pass gave nothing usable: the chunks' candidates answer, by their own scores, and say so
    assert not res.settings["context"]["final_answered"]
    assert res.intervals[0].score == 0.95 and any("final pass" in w and "no usable answer" in w for w in res.warnings)
    assert len(openai_server.requests) == n + 1


def test_candidates_that_do_not_fit_the_final_pass_are_left_out_and_said_so():
    long = long_transcript(300)
    seen = []

    def chat(messages, fmt):
        from temporal_reasoner.structured import ChatReply

        lines = [(float(a), float(b)) for a, b, _ in LINE.findall(messages[-1]["content"])]
        seen.append(lines)
        a, b = lines[len(lines) // 2]
        return ChatReply(text=f'{{"intervals": [{{"start": {a:g}, "end": {b:g}, "score": 0.5}}]}}', finish_reason="stop")

    budget = 420  # a few spans per chunk: the chunks' candidates cannot all fit one prompt, even without context
    res = ground_in_context(chat, QUERY, long, count_tokens=estimate_tokens, budget=budget, reasoner_name="t",
                            response_formats=("text",), progress=lambda *a: None)
    ctx = res.settings["context"]
    assert ctx["final_candidates"] < ctx["candidates"] and len(seen) == ctx["chunks"] + 1
    assert any(f"of the chunks' {ctx['candidates']} candidates fit" in w for w in res.warnings)
    assert res.intervals and all(iv.end - iv.start > 0 for iv in res.intervals)


def test_excerpt_keeps_the_windows_with_their_context_and_absolute_times():
    t = long_transcript(100)
    part = excerpt(t, [(20.0, 25.0), (150.0, 152.0)], 2)
    assert [e.start for e in part.entries] == [15, 17, 19, 21, 23, 25, 27, 145, 147, 149, 151, 153, 155]
    assert part.duration == t.duration
    assert excerpt(t, [(0.0, 1.0)], 3).entries[0].start == 0.0


def test_bad_options_are_configuration_errors(openai_server):
    with pytest.raises(ConfigurationError, match="context_tokens"):
        make(openai_server, context_tokens=600)
    with pytest.raises(ConfigurationError, match="context_tokens"):
        make(openai_server, context_tokens="big")
    with pytest.raises(ConfigurationError, match="context_spans"):
        ground_in_context(lambda m, f: None, QUERY, long_transcript(10), count_tokens=estimate_tokens, budget=999,
                          reasoner_name="t", context_spans=-1)


def test_no_chunk_answering_is_an_output_validation_error(openai_server):
    openai_server.responder = lambda req: Reply.chat("no json here")
    with pytest.raises(OutputValidationError, match="no chunk"):
        make(openai_server, context_tokens=8000, max_attempts=1).ground(QUERY, long_transcript(900))


# ------------------------------------------------------------------ the merged transcript, the bar, the warning

def _pick_middle(seen):
    def chat(messages, fmt):
        from temporal_reasoner.structured import ChatReply

        lines = [(float(a), float(b)) for a, b, _ in LINE.findall(messages[-1]["content"])]
        seen.append(lines)
        a, b = lines[len(lines) // 2]
        return ChatReply(text=f'{{"intervals": [{{"start": {a:g}, "end": {b:g}, "score": 0.5}}]}}', finish_reason="stop")
    return chat


def test_the_final_pass_shows_the_merged_spans_the_chunks_were_planned_on():
    from temporal_reasoner.context import plan_context

    # each text twice in a row, near-alike (one word more): merging halves the transcript, which still needs chunks
    long = Transcript.from_descriptions([FrameDescription(t=2.0 * i, text=f"a hallway, lamp{i // 2} and shelf{i // 2} "
                                                          f"and cup{i // 2} on the left{' wall' * (i % 2)}")
                                         for i in range(400)])
    budget = 1500
    plan = plan_context(QUERY, long, count_tokens=estimate_tokens, budget=budget)
    assert len(plan.chunks) > 1 and plan.merged is not None and len(plan.merged) < len(long)
    seen: list = []
    ground_in_context(_pick_middle(seen), QUERY, long, count_tokens=estimate_tokens, budget=budget,
                      reasoner_name="t", response_formats=("text",), progress=lambda *a: None)
    merged = {(e.start, e.end) for e in plan.merged.entries}
    assert seen[-1] and set(seen[-1]) <= merged  # not the original 2-s spans, which the chunks never showed
    assert set(seen[-1]) - {(e.start, e.end) for e in long.entries}


class _Bar:
    def __init__(self):
        self.reports, self.closed = [], False

    def __call__(self, done, total, what):
        self.reports.append(done)

    def close(self):
        self.closed = True


def test_the_terminal_bar_is_closed_when_a_chunk_raises_and_not_drawn_under_progress_to(monkeypatch):
    from temporal_reasoner import context

    bars = []
    monkeypatch.setattr(context, "_terminal_progress", lambda total, name: bars.append(_Bar()) or bars[-1])
    seen: list = []
    good = _pick_middle(seen)

    def flaky(messages, fmt):  # the second chunk's request fails with a transport error
        if len(seen) == 1:
            raise ConnectionError("server went away")
        return good(messages, fmt)

    with pytest.raises(ConnectionError):
        ground_in_context(flaky, QUERY, long_transcript(300), count_tokens=estimate_tokens, budget=420,
                          reasoner_name="t", response_formats=("text",))
    assert len(bars) == 1 and bars[0].reports == [1] and bars[0].closed
    ground_in_context(good, QUERY, long_transcript(300), count_tokens=estimate_tokens, budget=420,
                      reasoner_name="t", response_formats=("text",))
    assert len(bars) == 2 and bars[1].closed and len(bars[1].reports) > 2  # a run to the end closes it too
    with context.progress_to():  # what an evaluation's executors do: their own bar counts queries
        ground_in_context(good, QUERY, long_transcript(300), count_tokens=estimate_tokens, budget=420,
                          reasoner_name="t", response_formats=("text",))
    assert len(bars) == 2
    calls = []
    with context.progress_to(lambda done, total, what: calls.append(done)):
        ground_in_context(good, QUERY, long_transcript(300), count_tokens=estimate_tokens, budget=420,
                          reasoner_name="t", response_formats=("text",))
    assert len(bars) == 2 and calls and calls[-1] == calls[0] + len(calls) - 1


def test_chunking_is_announced_once_per_reasoner_naming_the_option(openai_server, monkeypatch, caplog):
    from temporal_reasoner import context

    monkeypatch.setattr(context, "_WARNED", set())
    openai_server.responder = responder
    reasoner = make(openai_server, context_tokens=8000)
    with caplog.at_level("WARNING", logger="temporal_reasoner.context"):
        reasoner.ground(QUERY, long_transcript(900))
        reasoner.ground(QUERY, long_transcript(900))
        make(openai_server, context_tokens=None).ground(QUERY, long_transcript(900))  # whole: nothing to say
    said = [r.getMessage() for r in caplog.records if "chunks" in r.getMessage()]
    assert len(said) == 1 and "context_tokens=8000" in said[0] and "context_tokens=None sends it whole" in said[0]


def test_the_evaluation_executor_grounds_its_queries_without_their_own_bars():
    from types import SimpleNamespace

    from pipelines.datasets import Query
    from pipelines.executors import process_video
    from pipelines.runs import VideoTask
    from temporal_reasoner import context
    from vidground.types import GroundingResult

    seen = []

    class Session:  # what process_video needs of a session; ground() records where chunked groundings report
        describer, reasoner, search = None, None, SimpleNamespace(refines=False)

        def load(self, source, **kw):
            return SimpleNamespace(duration=10.0, duration_inferred=False, step=1.0, describer=None, descriptions=[])

        def ground(self, query, **kw):
            seen.append(context._PROGRESS.get())
            return GroundingResult(query=query, duration=10.0, intervals=[Interval(start=1, end=2)], reasoner="t")

    config = SimpleNamespace(mode="descriptions", descriptions_format="auto", clip_seconds=None, top_k=1,
                             query_concurrency=2)
    queries = [Query(qid=str(i), video="v", query=f"q {i}", duration=10.0, windows=((1.0, 2.0),)) for i in range(3)]
    out = []
    process_video(VideoTask("v", "v.jsonl", queries), config, out.append, session=Session())
    assert [r["status"] for kind, r in out if kind == "result"] == ["ok"] * 3
    assert len(seen) == 3 and all(p is context._no_progress for p in seen)
    assert context._PROGRESS.get() is None  # nothing leaks out of the query
