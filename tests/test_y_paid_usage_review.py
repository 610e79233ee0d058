"""What was paid is counted once, wherever the error comes from (a review of 31fb216, dafce46, a17f303):

1. a describer's requests in flight when a frame fails (answered, paid and cached, never handed over);
2. a describe paid in the same call as a reasoner that then fails (Session.ground/answer/events on a video, the
   command line, an eval with a query-aware describer, a coarse-to-fine search), and never twice (an agnostic eval,
   the events eval);
4. grounding and question re-asks refused for the context end the re-asking as events' do (the fallback answers);
5. an answered completion without choices (billed) keeps its usage;
6. every vidground error survives pickle (a process pool) with its usage;
7. the command line's error line says what was paid in one clause, and in-process models cost $0, not "unknown".

Every request of a remote backend goes to a local OpenAI-compatible server that counts them
(tests/_helpers_openai_server.py): each test compares what an error or a run counts with what the server answered."""

from __future__ import annotations

import json
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from _helpers_eval import render_toy_videos, write_toy_dataset
from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_events import no_caption_scorers  # noqa: F401
from vidground.errors import ProviderError
from vidground.types import FrameDescription, Usage
from temporal_reasoner.transcript import Transcript

#: gpt-4o-mini's built-in price: $0.15 / $0.60 per 1M prompt / completion tokens
PROMPT, COMPLETION = 1000, 100
ONE_REQUEST_USD = (PROMPT * 0.15 + COMPLETION * 0.60) / 1e6
GOOD_GROUND = '{"intervals": [{"start": 1, "end": 2, "score": 0.9}]}'


def paid(text: str = "a person at a door") -> Reply:
    return Reply.chat(text, prompt_tokens=PROMPT, completion_tokens=COMPLETION)


def is_frame(req) -> bool:
    """Whether a request describes a frame (it carries an image), not a reasoner's."""
    content = req.json["messages"][-1]["content"]
    return isinstance(content, list) and any(part.get("type") == "image_url" for part in content)


def frames_answered(server) -> int:
    return sum(is_frame(r) for r in server.requests)


def describer(server, **kw):
    from frame_describer.openai_describer import OpenAIDescriber

    kw.setdefault("max_retries", 0)
    return OpenAIDescriber("gpt-4o-mini", base_url=server.base_url, api_key="sk-test", **kw)


def reasoner(server, **kw):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    kw.setdefault("max_retries", 0)
    return OpenAIReasoner("gpt-4o-mini", base_url=server.base_url, api_key="sk-test", retry_base_delay=0.01, **kw)


def lines(n: int = 5) -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=float(i), text=f"line {i}") for i in range(n)], merge=False)


# --- 1. the requests in flight when a frame fails ---------------------------------------------------

def test_a_frame_failing_with_requests_in_flight_carries_their_usage_and_they_are_not_paid_again(tmp_path,
                                                                                               openai_server):
    """Frame 3's request fails while frames 4.. are in flight: their answers were paid and cached, yet the error
    carried frames 1-2 alone (2 of the 5+ requests the server answered)."""
    from pipelines.session import Session

    videos = render_toy_videos(tmp_path / "v", ["vid0"], n_frames=30, fps=10.0)  # 3 s: 12 frames at 4 fps
    fourth_sent = threading.Event()
    lock, count = threading.Lock(), [0]

    def answer(req):
        with lock:
            count[0] += 1
            k = count[0]
        if k >= 4:
            fourth_sent.set()
        if k == 1:  # frame 1 is answered once frames 2-4 were sent: they are in flight when frame 3 fails
            fourth_sent.wait(30)
        return Reply.error(503, "overloaded") if k == 3 else paid(f"frame {k}")

    openai_server.responder = answer
    session = Session(describer=describer(openai_server, concurrency=4), reasoner="naive", sampling={"fps": 4},
                      cache=str(tmp_path / "cache.sqlite"))
    with pytest.raises(ProviderError) as err:
        session.describe(videos / "vid0.mp4")
    answered = len(openai_server.requests) - 1  # all but the failed one
    assert answered >= 3  # frames 1, 2 and 4 at least
    assert err.value.usage.requests == answered
    assert err.value.usage.cost_usd == pytest.approx(answered * ONE_REQUEST_USD)
    openai_server.responder = lambda req: paid()
    before = len(openai_server.requests)
    again = session.describe(videos / "vid0.mp4")
    sent = len(openai_server.requests) - before
    assert len(again.descriptions) == 12 and again.usage.cached == answered and sent == 12 - answered


# --- 2. a describe paid in the same call as a reasoner that fails --------------------------------

def _fail_the_reasoner(server):
    server.responder = lambda req: paid() if is_frame(req) else Reply.error(503, "the server is overloaded")


@pytest.mark.parametrize("call", ["ground", "answer", "events"])
def test_a_reasoner_failing_after_the_video_was_described_in_the_same_call_carries_the_describe(tmp_path, call,
                                                                                              openai_server):
    """Session.ground/answer/events on a video: the 3 frames were described (paid), then the reasoner failed: the
    error carried nothing of them (None)."""
    from pipelines.session import Session

    videos = render_toy_videos(tmp_path / "v", ["vid0"])  # 3 s: 3 frames at 1 fps
    _fail_the_reasoner(openai_server)
    session = Session(describer=describer(openai_server), reasoner=reasoner(openai_server, context_tokens=None))
    run = {"ground": lambda v: session.ground(v, "a person at a door"),
           "answer": lambda v: session.answer(v, "who is at the door?", ["a person", "a dog"]),
           "events": lambda v: session.events(v)}[call]
    with pytest.raises(ProviderError) as err:
        run(videos / "vid0.mp4")
    assert frames_answered(openai_server) == 3 and len(openai_server.requests) == 4
    assert err.value.usage.requests == 3 and err.value.usage.cost_usd == pytest.approx(3 * ONE_REQUEST_USD)
    # the same video again: described before in this session, nothing paid in this call, nothing on the error
    with pytest.raises(ProviderError) as again:
        run(videos / "vid0.mp4")
    assert frames_answered(openai_server) == 3 and again.value.usage is None


def test_the_command_line_error_counts_the_frames_described_in_the_same_command(tmp_path, openai_server, capsys):
    """`vidground ground VIDEO Q`: 3 frames described, then the reasoner failed; it printed no paid note at all
    (the reviewer's registered backends: 'paid so far: 1 request(s)')."""
    from pipelines.cli import main

    videos = render_toy_videos(tmp_path / "v", ["vid0"])
    _fail_the_reasoner(openai_server)
    assert main(["ground", str(videos / "vid0.mp4"), "a person at a door", "--describer", "openai:gpt-4o-mini",
                 "--describer-opt", "max_retries=0", "--reasoner", "openai:gpt-4o-mini", "--reasoner-opt",
                 "max_retries=0", "--base-url", openai_server.base_url, "--api-key", "sk-test"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert len(openai_server.requests) == 4
    assert err.endswith(f"(paid so far: 3 request(s), est. ${3 * ONE_REQUEST_USD:.4f})")


def _eval(tmp_path, server, **describer_options):
    from pipelines.runs import RunConfig, run_eval

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    remote = {"base_url": server.base_url, "api_key": "sk-test", "max_retries": 0}
    return run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), concurrency=1,
                              describer="openai:gpt-4o-mini", describer_options={**remote, **describer_options},
                              reasoner="openai:gpt-4o-mini", reasoner_options=remote), tmp_path / "run")


def test_an_eval_with_a_query_aware_describer_counts_each_failed_querys_frames(tmp_path, openai_server):
    """Each query is described anew (3 frames each), then its reasoner request fails: the run counted 0 of the 6
    frame requests the server answered."""
    _fail_the_reasoner(openai_server)
    summary = _eval(tmp_path, openai_server, mode="aware")
    assert frames_answered(openai_server) == 6 and len(openai_server.requests) == 8
    assert (summary.requests, summary.failed_requests) == (6, 6)
    assert summary.cost_usd == pytest.approx(6 * ONE_REQUEST_USD, abs=1e-6)


def test_an_eval_with_an_agnostic_describer_counts_the_video_once_when_its_queries_fail(tmp_path, openai_server):
    """The video is described once for its 2 queries (its record holds the 3 requests), which both fail: each failed
    query's record must not count the describe again."""
    _fail_the_reasoner(openai_server)
    summary = _eval(tmp_path, openai_server)
    assert frames_answered(openai_server) == 3 and len(openai_server.requests) == 5
    assert summary.requests == 3 and summary.cost_usd == pytest.approx(3 * ONE_REQUEST_USD, abs=1e-6)


def test_the_events_eval_counts_a_failed_videos_describe_once(tmp_path, openai_server, no_caption_scorers):  # noqa: F811
    """The events eval describes first, then finds the events of what it described: it counts the describe itself
    when the reasoner fails, so the error must not carry it too."""
    from pipelines.events_eval import run_events_eval

    _fail_the_reasoner(openai_server)
    videos = render_toy_videos(tmp_path / "videos", ["v_a"])
    refs = tmp_path / "val_1.json"
    refs.write_text(json.dumps({"v_a": {"duration": 3.0, "timestamps": [[0, 3]], "sentences": ["a door"]}}))
    remote = {"base_url": openai_server.base_url, "api_key": "sk-test", "max_retries": 0}
    metrics = run_events_eval(tmp_path / "run", references=[refs], videos=videos, describer="openai:gpt-4o-mini",
                              describer_options=remote, reasoner="openai:gpt-4o-mini", reasoner_options=remote)
    assert list(metrics["failed"]) == ["v_a"] and len(openai_server.requests) == 4
    assert metrics["failed_usage_this_run"]["requests"] == 3 == frames_answered(openai_server)


def test_a_coarse_to_fine_search_failing_on_its_second_round_carries_what_it_paid(tmp_path, openai_server):
    """The sparse pass described frames and the reasoner answered round 1; round 2's request failed: the error
    carried nothing of the search's frames nor of round 1."""
    from pipelines.session import Session

    videos = render_toy_videos(tmp_path / "v", ["vid0"], n_frames=300, fps=10.0)  # 30 s
    grounded = []

    def answer(req):
        if is_frame(req):
            return paid()
        grounded.append(req)
        return paid('{"intervals": [{"start": 10, "end": 14, "score": 0.9}]}') if len(grounded) == 1 else \
            Reply.error(503, "the server is overloaded")

    openai_server.responder = answer
    session = Session(describer=describer(openai_server), reasoner=reasoner(openai_server, context_tokens=None),
                      search="coarse-to-fine", cache=str(tmp_path / "cache.sqlite"))
    with pytest.raises(ProviderError) as err:
        session.ground(videos / "vid0.mp4", "a person at a door")
    assert len(grounded) == 2 and frames_answered(openai_server) > 1
    answered = len(openai_server.requests) - 1  # every frame and the first round
    assert err.value.usage.requests == answered
    assert err.value.usage.cost_usd == pytest.approx(answered * ONE_REQUEST_USD)


# --- 4. grounding and question re-asks refused for the context ------------------------------------

OVERFLOW = ("This model's maximum context length is 8192 tokens. However, your messages resulted in 9100 tokens. "
            "Please reduce the length of the messages.")


@pytest.mark.parametrize("call", ["ground", "answer"])
def test_a_grounding_or_question_reask_that_overflows_lets_the_fallback_answer(call, openai_server):
    """fallback= was set, yet the re-ask refused for the context raised the ProviderError (events already
    handed it to the fallback)."""
    from test_context_overflow_phrasings import GroundingStub

    openai_server.responder = lambda req: Reply.error(400, OVERFLOW) if len(req.json["messages"]) > 2 else \
        paid("no json here")
    r = reasoner(openai_server, context_tokens=None, fallback=GroundingStub())
    out = r.ground("a door opens", lines()) if call == "ground" else r.answer("why?", lines(), choices=["a", "b"])
    assert len(openai_server.requests) == 2 and out.settings["fallback"] == "stub"
    assert out.usage["reason"].requests == 1  # the first reply, paid; the refused re-ask was not answered
    assert any("the re-ask did not fit the model's context" in w for w in out.warnings)


# --- 5. an answered completion without choices ------------------------------------------------------

NO_CHOICES = {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini", "choices": [],
              "usage": {"prompt_tokens": PROMPT, "completion_tokens": 0, "total_tokens": PROMPT}}


def test_a_reply_without_choices_keeps_its_usage_for_the_reasoner_and_the_describer(openai_server):
    """`choices: []` with usage (a provider's safety block): the ProviderError carried no usage, though billed."""
    import numpy as np

    from vidground.types import Frame

    openai_server.responder = lambda req: Reply(body=NO_CHOICES)
    with pytest.raises(ProviderError, match="no choices") as chat:
        reasoner(openai_server, context_tokens=None).ground("a door opens", lines())
    frame = Frame(t=0.0, index=0, image=np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(ProviderError, match="no choices") as frame_err:
        describer(openai_server).describe_frame(frame)
    assert len(openai_server.requests) == 2
    for err in (chat.value, frame_err.value):
        assert err.usage.requests == 1 and err.usage.prompt_tokens == PROMPT
        assert err.usage.cost_usd == pytest.approx(PROMPT * 0.15 / 1e6)


def test_a_reask_answered_without_choices_keeps_the_attempt_before_and_its_own(openai_server):
    openai_server.responder = lambda req: Reply(body=NO_CHOICES) if len(req.json["messages"]) > 2 else paid("no json")
    with pytest.raises(ProviderError, match="no choices") as err:
        reasoner(openai_server, context_tokens=None).ground("a door opens", lines())
    assert len(openai_server.requests) == 2 and err.value.usage.requests == 2  # counted once each


# --- 6. errors cross a process boundary ---------------------------------------------------------------

def _every_error():
    """One instance of every VidgroundError class: vidground.errors' and the stages' own."""
    import inspect

    import vidground.errors as errors
    from prompts import PromptError
    from temporal_reasoner.events import SpanTooLongError
    from temporal_reasoner.structured import ContextOverflowError, ResponseFormatRefused

    made = {
        errors.VidgroundError: errors.VidgroundError("x"),
        errors.ConfigurationError: errors.ConfigurationError("bad option"),
        errors.MissingDependencyError: errors.MissingDependencyError("av", "video", "decoding"),
        errors.NoCacheFolderError: errors.NoCacheFolderError("no folder for vidground's caches"),
        errors.SessionClosedError: errors.SessionClosedError("this session is closed; start a new one"),
        errors.PluginError: errors.PluginError("describer 'mine' broke its protocol", plugin="mine", protocol="describe"),
        errors.InputError: errors.InputError("bad line", path="f.jsonl", line=3),
        errors.EvaluationError: errors.EvaluationError("nothing selected", path="d.jsonl", counts={"missing": 2}),
        errors.VideoDecodeError: errors.VideoDecodeError("v.mp4", "moov atom not found"),
        errors.ProviderError: errors.ProviderError("HTTP 503", status=503, retryable=True, provider="p",
                                                   url="http://h/v1", attempts=3, elapsed=1.5),
        errors.OutputValidationError: errors.OutputValidationError("bad", raw_outputs=["r"], errors=["e"], attempts=2),
        errors.IncompleteOutputError: errors.IncompleteOutputError("cut", raw_outputs=["r"], attempts=1),
        ResponseFormatRefused: ResponseFormatRefused("no json_schema", status=400),
        ContextOverflowError: ContextOverflowError("too long", status=None),
        SpanTooLongError: SpanTooLongError("one span is too long", span=3, tokens=900, budget=500),
        PromptError: PromptError("no such prompt"),
    }
    in_module = {c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.VidgroundError)}
    assert in_module <= set(made)  # a new class in vidground.errors gets an instance here
    for exc in made.values():
        exc.usage = Usage(requests=2, prompt_tokens=10, completion_tokens=5, cost_usd=0.02)  # what keep_paid does
    return made


def test_every_error_class_survives_pickle_with_its_usage_and_attributes():
    """VideoDecodeError, MissingDependencyError and SpanTooLongError raised TypeError on unpickling."""
    for cls, exc in _every_error().items():
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc) and back.args == exc.args
        assert vars(back) == vars(exc)  # usage, path, status, counts... as they were


def _decode_fails(i: int) -> int:
    from vidground.errors import VideoDecodeError

    if i == 1:
        error = VideoDecodeError(f"v{i}.mp4", "moov atom not found")
        error.usage = Usage(requests=1, cost_usd=0.01)
        raise error
    return i


def test_a_process_pool_worker_raising_a_video_error_gives_it_to_the_caller():
    """A user's ProcessPoolExecutor got BrokenProcessPool (for the whole pool) instead of the VideoDecodeError."""
    from vidground.errors import VideoDecodeError

    with ProcessPoolExecutor(1) as pool:
        futures = [pool.submit(_decode_fails, i) for i in range(3)]
        with pytest.raises(VideoDecodeError) as err:
            futures[1].result()
        assert [futures[0].result(), futures[2].result()] == [0, 2]
    assert err.value.path == "v1.mp4" and err.value.usage == Usage(requests=1, cost_usd=0.01)


# --- 7. the command line's error line; in-process models cost nothing -----------------------------------

def test_the_error_line_for_a_model_without_a_price_is_one_clause(tmp_path, openai_server, capsys):
    """It printed ' (paid so far: 2 request(s), est. unknown (2 request(s) to a model without a price; see
    vidground.pricing))': parentheses nested, the count said twice."""
    from pipelines.cli import main

    openai_server.responder = lambda req: Reply.error(503, "down") if len(req.json["messages"]) > 2 else paid("no")
    desc = tmp_path / "d.jsonl"
    desc.write_text("".join(json.dumps({"t": i, "text": f"line {i}"}) + "\n" for i in range(5)))
    assert main(["ground", "--descriptions", str(desc), "a door opens", "--reasoner", "openai:my-local-model",
                 "--base-url", openai_server.base_url, "--api-key", "sk-test", "--reasoner-opt", "max_retries=0",
                 "--reasoner-opt", "max_attempts=2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(openai_server.requests) == 2
    note = err[err.index(" (paid so far"):]
    assert note == " (paid so far: 1 request(s) without a price or token counts, cost unknown: see vidground.pricing)"


def test_the_error_line_for_priced_and_unpriced_requests_names_the_unpriced_once():
    from pipelines.cli import _paid_note

    mixed = Usage(requests=1, cost_usd=0.01) + Usage(requests=2)  # a priced primary, an unpriced fallback
    assert _paid_note(ProviderError("x", usage=mixed)) == \
        " (paid so far: 3 request(s), est. $0.0100 + unknown for 2 without a price or token counts)"
    assert _paid_note(ProviderError("x", usage=Usage(requests=2, cost_usd=0.0002))) == \
        " (paid so far: 2 request(s), est. $0.0002)"
    assert _paid_note(ProviderError("x")) == ""


def test_a_llamacpp_reasoners_requests_cost_nothing_rather_than_an_unknown_price():
    """An in-process model is not paid for: its error said 'paid so far ... unknown (...; see vidground.pricing)'."""
    pytest.importorskip("llama_cpp")
    from pipelines.cli import _paid_note
    from test_llamacpp_reasoner import FakeLlama, transcript
    from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner
    from vidground.errors import OutputValidationError

    ok = LlamaCppReasoner("fake.gguf", llama=FakeLlama([('{"intervals": [{"start": 4, "end": 7, "score": 0.9}]}',
                                                          "stop")]))
    usage = ok.ground("the person opens the door", transcript()).usage["reason"]
    assert usage.requests == 1 and usage.cost_usd == 0.0 and usage.unpriced_requests == 0
    bad = LlamaCppReasoner("fake.gguf", max_attempts=2, llama=FakeLlama([("no", "stop"), ("still no", "stop")]))
    with pytest.raises(OutputValidationError) as err:
        bad.ground("the person opens the door", transcript())
    assert _paid_note(err.value) == " (paid so far: 2 request(s), est. $0.0000)"
