"""What was paid for is never lost from the count: a provider error after paid attempts (a reply re-asked, then
an HTTP error) carries the usage of those attempts for grounding, questions and events, and an eval counts it; a
cost line with requests to a model without a price says so, as the eval's report does; and the events of a chat
reasoner redone by its fallback keep the requests paid for the parts before.

Every request here goes to a local OpenAI-compatible server that counts them (tests/_helpers_openai_server.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_events import _anet_fixture, no_caption_scorers  # noqa: F401
from vidground.errors import OutputValidationError, ProviderError
from vidground.types import Event, Events, FrameDescription, Usage
from temporal_reasoner.transcript import Transcript

#: gpt-4o-mini's built-in price: $0.15 / $0.60 per 1M prompt / completion tokens
PROMPT, COMPLETION = 1000, 100
ONE_REQUEST_USD = (PROMPT * 0.15 + COMPLETION * 0.60) / 1e6
GOOD_GROUND = '{"intervals": [{"start": 1, "end": 3, "score": 0.9}]}'
GOOD_ANSWER = '{"choice": 1, "answer": "unwrap it", "intervals": [{"start": 1, "end": 3, "score": 0.8}]}'


def transcript(n: int = 10) -> Transcript:
    # distinct lines (no word shared between neighbours): nothing to merge when the context is short
    texts = [" ".join(f"w{i}x{k}" for k in range(12)) for i in range(n)]
    return Transcript.from_descriptions([FrameDescription(t=float(i), text=t) for i, t in enumerate(texts)], merge=False)


def reasoner(server, model: str = "gpt-4o-mini", **kw):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    kw.setdefault("max_retries", 0)
    return OpenAIReasoner(model, base_url=server.base_url, api_key="sk-test", retry_base_delay=0.01, **kw)


def paid(text: str) -> Reply:
    return Reply.chat(text, prompt_tokens=PROMPT, completion_tokens=COMPLETION)


def reask(req) -> bool:
    """Whether a request re-asks (the base prompt, the unusable reply and the error)."""
    return len(req.json["messages"]) > 2


def server_error() -> Reply:
    return Reply.error(503, "the server is overloaded")


# --- 1. the error raised after paid attempts carries their usage --------------------------------

def test_grounding_a_provider_error_on_the_reask_carries_the_paid_first_attempt(openai_server):
    """The first reply was paid and unusable, the re-ask got a 503: the ProviderError had no usage at all."""
    openai_server.responder = lambda req: server_error() if reask(req) else paid("no json here")
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server, context_tokens=None, max_retries=1).ground("a boy unwraps a present", transcript())
    assert len(openai_server.requests) == 3  # the paid reply, the re-ask and its one retry
    u = err.value.usage
    assert (u.requests, u.prompt_tokens, u.completion_tokens) == (1, PROMPT, COMPLETION)
    assert u.cost_usd == pytest.approx(ONE_REQUEST_USD)


def test_a_question_keeps_the_paid_attempt_before_a_provider_error(openai_server):
    openai_server.responder = lambda req: server_error() if reask(req) else paid('{"choice": 9}')
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server).answer("why?", transcript(), choices=["share it", "unwrap it"])
    assert len(openai_server.requests) == 2
    assert err.value.usage.requests == 1 and err.value.usage.cost_usd == pytest.approx(ONE_REQUEST_USD)


def test_events_keep_the_parts_answered_before_a_provider_error(openai_server):
    """Part 1 answered (paid), part 2's reply was unusable (paid) and its re-ask failed: both requests count."""
    good = '{"events": [{"start": 0, "end": 2, "caption": "a", "score": 1}]}'
    openai_server.responder = lambda req: (server_error() if reask(req) else
                                           paid(good if "w0x0" in req.json["messages"][-1]["content"] else "no"))
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server).events(transcript(), chunk_entries=6)
    assert len(openai_server.requests) == 3
    assert err.value.usage.requests == 2 and err.value.usage.cost_usd == pytest.approx(2 * ONE_REQUEST_USD)


def test_a_chunked_grounding_keeps_the_chunks_answered_before_a_provider_error(openai_server):
    """A transcript longer than the context is asked chunk by chunk; a 503 on chunk 2 dropped chunk 1's request."""
    from temporal_reasoner.context import estimate_tokens, ground_in_context
    from temporal_reasoner.structured import build_messages

    t = transcript(12)
    budget = estimate_tokens(build_messages("q", t)) * 2 // 3  # two or three chunks
    asked = []

    def answer(req):
        asked.append(req)
        return paid(GOOD_GROUND) if len(asked) == 1 else server_error()

    openai_server.responder = answer
    rsn = reasoner(openai_server)
    with pytest.raises(ProviderError) as err:
        ground_in_context(rsn.chat, "q", t, count_tokens=estimate_tokens, budget=budget, reasoner_name=rsn.name,
                          response_formats=("text",))
    assert len(asked) == 2 and err.value.usage.requests == 1
    assert err.value.usage.cost_usd == pytest.approx(ONE_REQUEST_USD)


def test_a_fallback_that_fails_keeps_the_primary_attempts_and_its_own(openai_server):
    """The primary's replies never validated (2 paid), its fallback (another chat model) was paid once, then failed
    on its re-ask: all 3 requests are on the error."""
    fallback = reasoner(openai_server, max_attempts=2)
    openai_server.responder = lambda req: (server_error() if len(openai_server.requests) > 3 else paid("no json"))
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server, max_attempts=2, fallback=fallback, context_tokens=None).ground("q", transcript())
    assert len(openai_server.requests) == 4
    assert err.value.usage.requests == 3 and err.value.usage.cost_usd == pytest.approx(3 * ONE_REQUEST_USD)


def test_a_local_guided_reply_keeps_the_generations_before_a_provider_error():
    """hf's guided decoding writes one field per generation: out of GPU memory on the second dropped the first."""
    from temporal_reasoner.hf_reasoner import TransformersReasoner

    calls = []

    def generate(prompt, max_new_tokens, **extra):
        calls.append(prompt)
        if len(calls) > 1:
            raise ProviderError("out of GPU memory", provider="hf")
        return "4.5", True, 30, 3

    rsn = object.__new__(TransformersReasoner)  # no model: only the guided loop is under test
    rsn._generate, rsn.tokenizer = generate, None
    with pytest.raises(ProviderError) as err:
        rsn._guided("prompt")
    assert len(calls) == 2 and (err.value.usage.requests, err.value.usage.prompt_tokens) == (1, 30)


def test_an_error_without_paid_attempts_carries_no_usage(openai_server):
    openai_server.responder = lambda req: server_error()
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server, context_tokens=None).ground("q", transcript())
    assert err.value.usage is None


def test_the_command_line_error_says_what_was_paid_before_it(tmp_path, openai_server, capsys):
    """`vidground ask` failing on its re-ask printed the error alone: the paid first attempt went unsaid."""
    from pipelines.cli import main

    openai_server.responder = lambda req: server_error() if reask(req) else paid('{"choice": 9}')
    desc = tmp_path / "d.jsonl"
    desc.write_text("".join(json.dumps({"t": i, "text": f"line {i}"}) + "\n" for i in range(5)))
    assert main(["ask", "--descriptions", str(desc), "why?", "--choice", "a", "--choice", "b", "--reasoner",
                 "openai:gpt-4o-mini", "--base-url", openai_server.base_url, "--reasoner-opt", "max_retries=0"]) == 1
    err = capsys.readouterr().err
    assert len(openai_server.requests) == 2 and err.count("\n") == 1
    assert err.rstrip().endswith(f"(paid so far: 1 request(s), est. ${ONE_REQUEST_USD:.4f})")


class FailingDescriber:
    """A priced describer ($0.01 a frame) whose request for the third frame of a video fails."""

    name = "r-third-frame-fails"
    mode = "agnostic"

    def settings(self):
        return {"name": self.name}

    def describe(self, frames, *, query=None):
        for f in frames:
            if f.t >= 2.0:
                raise ProviderError("HTTP 503: gave up", status=503, retryable=True)
            yield FrameDescription(t=f.t, text=f"frame at {f.t:g} s", usage=Usage(requests=1, cost_usd=0.01))


def test_a_describer_failing_mid_video_keeps_the_frames_described_before(tmp_path):
    """The two frames described before the failure were paid; the video's record (and the run's cost) had none."""
    from pipelines.runs import RunConfig, read_jsonl, run_eval
    from frame_describer import describers

    from _helpers_eval import render_toy_videos, write_toy_dataset

    describers.register("r-third-frame-fails", lambda arg=None, **_: FailingDescriber())
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"], n_frames=30, fps=10.0)
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), reasoner="naive",
                                 describer="r-third-frame-fails", cache=str(tmp_path / "cache.sqlite"), concurrency=1),
                       tmp_path / "run")
    (video,) = read_jsonl(tmp_path / "run" / "videos.jsonl")
    assert video["error"]["type"] == "ProviderError" and video["usage"]["requests"] == 2
    assert (summary.requests, summary.failed_requests) == (2, 2) and summary.cost_usd == pytest.approx(0.02)


# --- 1b. an eval counts them ----------------------------------------------------------------------

def test_eval_counts_the_requests_paid_for_queries_that_failed_with_a_provider_error(tmp_path, openai_server):
    """Grounding: each 'coffee' query's first reply was paid and unusable, its re-ask failed (503). The failed rows
    held no usage, and the run's cost and 'requests paid for queries that failed' left them out."""
    from pipelines.runs import RunConfig, read_jsonl, run_eval

    from _helpers_eval import write_toy_dataset

    def answer(req):
        coffee = "coffee" in req.json["messages"][1]["content"].rsplit("Query", 1)[-1]
        return server_error() if coffee and reask(req) else paid("none" if coffee else GOOD_GROUND)

    openai_server.responder = answer
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="openai:gpt-4o-mini",
                       reasoner_options={"base_url": openai_server.base_url, "api_key": "sk-test", "max_retries": 0},
                       concurrency=1)
    summary = run_eval(config, tmp_path / "run")
    failed = [r for r in read_jsonl(tmp_path / "run" / "results.jsonl") if r["status"] != "ok"]
    assert len(failed) == 2 and all(r["error"]["type"] == "ProviderError" for r in failed)
    assert all(r["usage"]["reason"]["requests"] == 1 for r in failed)
    assert len(openai_server.requests) == 4 + 2 * 2  # 4 answered queries, 2 failed ones asked twice
    assert (summary.requests, summary.failed_requests) == (6, 2)
    assert summary.cost_usd == pytest.approx(6 * ONE_REQUEST_USD, abs=1e-6)


def test_qa_eval_counts_the_requests_paid_for_questions_that_failed(tmp_path, openai_server):
    """A grounded-QA eval (nextgqa) from the command line: the question whose re-ask failed was paid once."""
    from pipelines.cli import main
    from pipelines.runs import run_totals
    from test_qa_eval import ROWS, SPANS, write_nextgqa

    def answer(req):
        laugh = "girl do at the end" in req.json["messages"][1]["content"]
        return server_error() if laugh and reask(req) else paid('{"choice": 9}' if laugh else GOOD_ANSWER)

    openai_server.responder = answer
    write_nextgqa(tmp_path / "data", ROWS, SPANS)
    desc = tmp_path / "descriptions"
    desc.mkdir()
    (desc / "100.jsonl").write_text("".join(json.dumps({"t": i, "text": f"line {i}"}) + "\n" for i in range(12)))
    out = tmp_path / "run"
    assert main(["eval", "nextgqa", "--data-root", str(tmp_path / "data"), "--descriptions", str(desc),
                 "--reasoner", "openai:gpt-4o-mini", "--reasoner-opt", f"base_url={openai_server.base_url}",
                 "--reasoner-opt", "max_retries=0", "--out", str(out), "--quiet", "--no-report"]) == 0
    assert len(openai_server.requests) == 3
    totals = run_totals(out)  # what the command's cost line says
    assert (totals["requests"], totals["failed_requests"]) == (2, 1)
    assert totals["cost_usd"] == pytest.approx(2 * ONE_REQUEST_USD, abs=1e-6)
    rows = {r["qid"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert rows["100_2"]["status"] == "failed" and rows["100_2"]["usage"]["reason"]["requests"] == 1


def test_events_eval_counts_a_video_that_failed_with_a_provider_error(tmp_path, capsys, no_caption_scorers,  # noqa: F811
                                                                       openai_server):  # noqa: F811
    """v_b's first reply was paid and unusable, its re-ask failed: 'paid for failed videos' said nothing of it."""
    from pipelines.cli import main
    from test_events import KITCHEN

    good = '{"events": [{"start": 0, "end": 10, "caption": "cook", "score": 1}]}'
    openai_server.responder = lambda req: (paid(good) if KITCHEN in req.json["messages"][1]["content"] else
                                           server_error() if reask(req) else paid("no"))
    root = _anet_fixture(tmp_path)
    assert main(["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root",
                 str(root / "data"), "--references", str(root / "val_1.json"), "--reasoner", "openai:gpt-4o-mini",
                 "--reasoner-opt", f"base_url={openai_server.base_url}", "--reasoner-opt", "max_retries=0",
                 "--out", str(root / "run"), "--allow-missing", "--quiet"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert list(metrics["failed"]) == ["v_b"] and len(openai_server.requests) == 3
    assert metrics["failed_usage_this_run"]["requests"] == 1
    assert f"paid for failed videos (this run): 1 requests, {PROMPT} prompt + {COMPLETION} completion tokens, " \
           f"est. ${ONE_REQUEST_USD:.4f}" in out


# --- 2. a cost line says what it leaves out -------------------------------------------------------

MIXED = Usage(requests=1, prompt_tokens=10, cost_usd=0.01) + Usage(requests=1, prompt_tokens=5)  # priced + unpriced
UNPRICED = Usage(requests=2, prompt_tokens=15)


def _ground_line(usage: Usage) -> str:
    from pipelines.cli import format_result_table

    result = SimpleNamespace(query="q", video="v.mp4", duration=10.0, duration_inferred=False, describer="d",
                             reasoner="r", total_usage=usage, warnings=[], intervals=[])
    return next(line for line in format_result_table(result).splitlines() if line.startswith("usage:"))


def test_the_ground_cost_line_names_the_requests_without_a_price():
    """`vidground ground` printed 'est. $0.0100' for a priced primary and an unpriced fallback, and no cost at all
    for an unpriced model: as if the fallback's request, or every request, had cost nothing."""
    assert _ground_line(MIXED).endswith("est. $0.0100 + unknown (1 of 2 requests without a price or token counts)")
    assert _ground_line(UNPRICED).endswith("est. unknown (2 request(s) without a price or token counts; see vidground.pricing)")
    assert _ground_line(Usage(requests=1, cost_usd=0.002)).endswith("est. $0.0020")  # as before


def test_the_events_eval_cost_lines_name_the_requests_without_a_price():
    from pipelines.events_eval import format_metrics

    loc = {f"{k}@{t:g}": 0.0 for k in ("precision", "recall", "f1") for t in (0.5,)}
    loc |= {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    metrics = {"videos": 2, "missing_inputs": 0, "failed": {"v_b": "x"}, "events_per_video": 1.0, "tious": [0.5],
               "localisation": loc, "references": {}, "usage": {"total": MIXED.model_dump()},
               "failed_usage_this_run": UNPRICED.model_dump()}
    lines = format_metrics(metrics).splitlines()
    assert "usage: 2 requests, 15 prompt + 0 completion tokens, est. $0.0100 + unknown (1 of 2 requests without a price " \
           "or token counts)" in lines
    assert "paid for failed videos (this run): 2 requests, 15 prompt + 0 completion tokens, est. unknown (2 " \
           "request(s) without a price or token counts; see vidground.pricing)" in lines


# --- 3. events redone by the fallback keep the parts paid before ----------------------------------

class CostlyFallback:
    """A fallback that finds one event for the whole video with one paid request of its own."""

    name = "costly"

    def settings(self):
        return {"name": self.name}

    def events(self, transcript, **options):
        return Events(events=[Event(start=0, end=transcript.duration, caption="all", score=1.0)],
                      duration=transcript.duration, reasoner="costly", usage={"reason": Usage(requests=1, cost_usd=0.5)})


def test_events_redone_by_the_fallback_keep_the_parts_paid_before_and_say_so(openai_server):
    good = '{"events": [{"start": 0, "end": 2, "caption": "a", "score": 1}]}'
    openai_server.responder = lambda req: paid(good if "w0x0" in req.json["messages"][-1]["content"] else "no")
    out = reasoner(openai_server, max_attempts=2, fallback=CostlyFallback()).events(transcript(), chunk_entries=6)
    assert len(openai_server.requests) == 3  # part 1, part 2 twice
    u = out.usage["reason"]
    assert u.requests == 4 and u.cost_usd == pytest.approx(3 * ONE_REQUEST_USD + 0.5)
    assert out.settings["fallback"] == "costly"
    assert "the events of the 1 part(s) before it were left out; the 1 request(s) paid for them are counted in " \
           "the usage" in out.warnings[-1]
