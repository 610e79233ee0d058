"""A reviewer's findings on the chat reasoners' events and QA paths (commits 9668fc6 .. e7a91e8): an events
chunk with no room for its re-ask, one long description span stopping a whole eval, a failed video's
describing left out of what it cost, the QA fallback reading the merged transcript, a misspelt fallback found
only after paying, and a time style recorded in two spellings."""

from __future__ import annotations

import json

import pytest

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_events import _anet_fixture, no_caption_scorers  # noqa: F401
from vidground.errors import ConfigurationError, IncompleteOutputError, ProviderError
from vidground.types import Answer, Event, Events, FrameDescription, Interval, Usage
from temporal_reasoner.context import estimate_tokens
from temporal_reasoner.events import SpanTooLongError, build_events_messages, run_events
from temporal_reasoner.structured import ChatReply
from temporal_reasoner.transcript import Transcript


def lines(n: int = 40, words: int = 20) -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=float(i), text=f"line {i} " + "word " * words)
                                         for i in range(n)], merge=False)


class Stub:
    """A fallback that finds one event and answers without a model, keeping what it was given."""

    name = "stub"

    def __init__(self):
        self.seen: list[Transcript] = []

    def settings(self):
        return {"name": self.name}

    def ground(self, query, transcript):
        raise AssertionError("not used here")

    def answer(self, question, transcript, *, choices=None):
        self.seen.append(transcript)
        return Answer(question=question, answer="x", intervals=[Interval(start=0, end=1)],
                      duration=transcript.duration, reasoner="stub", usage={"reason": Usage()})

    def events(self, transcript, **options):
        self.seen.append(transcript)
        return Events(events=[Event(start=0, end=transcript.duration, caption="all", score=1.0)],
                      duration=transcript.duration, reasoner="stub", usage={})


def openai(server, **kw):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    return OpenAIReasoner("m", base_url=server.base_url, api_key="sk-test", retry_base_delay=0.01, **kw)


# --- 1. an events chunk leaves room for its re-ask ---------------------------------------------

def test_openai_events_chunks_leave_room_for_the_reply_a_reask_holds(openai_server):
    """Chunks were sized to context - max_tokens - 128: a reply cut off at max_tokens, appended to the re-ask,
    made a request the server refused (HTTP 400), a ProviderError past the fallback with the usage lost."""
    M = 512
    t = lines()
    C = estimate_tokens(build_events_messages(t, time_style="seconds", max_events=20, part=False)) + M + 128 + 5

    def responder(req):
        if estimate_tokens(req.json["messages"]) + req.json["max_tokens"] > C:
            return Reply.error(400, "the request exceeds the available context size")
        return Reply.chat("x" * (3 * M), finish_reason="length", prompt_tokens=100, completion_tokens=M)

    openai_server.responder = responder
    stub = Stub()
    out = openai(openai_server, context_tokens=C, max_tokens=M, max_retries=0, fallback=stub).events(t)
    sent = [estimate_tokens(r.json["messages"]) + M for r in openai_server.requests]
    assert len(sent) == 3 and max(sent) <= C  # the first reply and two re-asks, each within the context
    assert out.settings["fallback"] == "stub" and out.usage["reason"].requests == 3


def test_a_reask_too_long_for_the_context_keeps_the_usage_and_lets_the_fallback_answer():
    """llama.cpp refuses a prompt that does not fit n_ctx before generating; on a re-ask that was a ProviderError
    that skipped the fallback and dropped the usage of the attempt before it."""
    asked = []

    def chat(messages, fmt):
        asked.append(messages)
        if len(messages) > 2:  # the re-ask: the base prompt, the reply and the error
            raise ProviderError("the request exceeds the available context size (3093 > 2604)", status=400)
        return ChatReply(text="x" * 100, finish_reason="length", usage=Usage(requests=1, prompt_tokens=90))

    out = run_events(chat, lines(5), reasoner_name="m", response_formats=("text",), fallback=Stub())
    assert len(asked) == 2 and out.settings["fallback"] == "stub"
    assert out.usage["reason"] == Usage(requests=1, prompt_tokens=90)
    assert any("the re-ask did not fit the model's context" in w for w in out.warnings)
    with pytest.raises(IncompleteOutputError, match="after 1 attempt") as err:  # no fallback: the usage travels
        run_events(chat, lines(5), reasoner_name="m", response_formats=("text",))
    assert err.value.usage == Usage(requests=1, prompt_tokens=90)


def test_a_server_fault_on_a_reask_is_still_raised():
    """Only a context overflow ends the re-asking quietly: another failure of the server is not a reply."""
    def chat(messages, fmt):
        if len(messages) > 2:
            raise ProviderError("internal error", status=500)
        return ChatReply(text="no json", finish_reason="stop")

    with pytest.raises(ProviderError, match="internal error"):
        run_events(chat, lines(5), reasoner_name="m", response_formats=("text",), fallback=Stub())


def test_llamacpp_events_reask_overflow_reaches_the_fallback_with_its_usage():
    pytest.importorskip("llama_cpp")
    from test_llamacpp_reasoner import FakeLlama
    from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner

    t = lines()
    probe = LlamaCppReasoner("x.gguf", llama=FakeLlama([], n_ctx=100000))
    M = 160
    n_ctx = probe.count_tokens(build_events_messages(t, time_style="seconds", max_events=20, part=False)) + M + 128 + 5
    llama = FakeLlama([("x" * M, "length")] * 9, n_ctx=n_ctx)
    out = LlamaCppReasoner("x.gguf", llama=llama, max_attempts=3, fallback=Stub()).events(t)
    assert out.settings["fallback"] == "stub" and not any("did not fit" in w for w in out.warnings)
    assert out.usage["reason"].requests == len(llama.calls) == 3  # the reply and two re-asks, each sent
    assert all(len(c["prompt"]) + M <= n_ctx for c in llama.calls)


# --- 2. one description span too long for the context -----------------------------------------

def test_a_span_too_long_for_the_context_goes_to_the_fallback(openai_server):
    stub = Stub()
    t = Transcript.from_descriptions([FrameDescription(t=float(i), text="word " * (2000 if i == 3 else 3))
                                      for i in range(6)], merge=False)
    out = openai(openai_server, context_tokens=1500, max_tokens=256, fallback=stub).events(t)
    assert openai_server.requests == [] and out.settings["fallback"] == "stub" and stub.seen == [t]
    assert any("span 4 of 6" in w and "no request sent" in w for w in out.warnings)
    with pytest.raises(SpanTooLongError, match=r"span 4 of 6 of the transcript \(2.5-3.5 s, 9999 characters\)"):
        openai(openai_server, context_tokens=1500, max_tokens=256).events(t)


def test_one_video_with_a_span_too_long_fails_alone_in_the_events_eval(tmp_path, capsys, openai_server,  # noqa: F811
                                                                      no_caption_scorers):  # noqa: F811
    """e7a91e8 made it a ConfigurationError, which the eval re-raises as wrong for every video: one long
    description stopped the whole run, and every rerun stopped at the same video."""
    from pipelines.cli import main

    refs = {f"v_{k}": {"duration": 10.0, "timestamps": [[0, 5]], "sentences": ["x"]} for k in "abc"}
    (tmp_path / "val_1.json").write_text(json.dumps(refs))
    (tmp_path / "data").mkdir()
    d = tmp_path / "descriptions"
    d.mkdir()
    for k in "abc":
        (d / f"v_{k}.jsonl").write_text("".join(json.dumps({"t": float(i), "text": "word " * 2000 if k == "a" and i == 3
                                                            else f"scene {i // 5}"}) + "\n" for i in range(10)))
    openai_server.responder = lambda req: Reply.chat('{"events": [{"start": 0, "end": 5, "caption": "x", "score": 1}]}')
    args = ["eval", "activitynet-events", "--descriptions", str(d), "--data-root", str(tmp_path / "data"),
            "--references", str(tmp_path / "val_1.json"), "--reasoner", "openai:m", "--reasoner-opt",
            f"base_url={openai_server.base_url}", "--reasoner-opt", "context_tokens=3000", "--out",
            str(tmp_path / "run"), "--quiet"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["failed"]) == ["v_a"] and "too long for the model's context" in metrics["failed"]["v_a"]
    assert "span 2 of" in metrics["failed"]["v_a"]  # the transcript merges the repeated scenes around it
    assert len(openai_server.requests) == 2 and metrics["videos"] == 3
    assert "v_a: span 2 of" in capsys.readouterr().err


# --- 3. a failed video's describing counts -----------------------------------------------------

class PaidDescriber:
    name = "paid"

    def __init__(self):
        self.described = []

    def settings(self):
        return {"name": "paid"}

    def describe(self, frames, query=None):
        frames = list(frames)
        self.described.extend(frames)
        return [FrameDescription(t=f.t, text=f"frame {i}", usage=Usage(requests=1, prompt_tokens=1000))
                for i, f in enumerate(frames)]


class BadChat:
    name = "badchat"

    def settings(self):
        return {"name": "badchat"}

    def chat(self, messages, fmt):
        return ChatReply(text="no json", finish_reason="stop", usage=Usage(requests=1, prompt_tokens=50))


def one_video(tmp_path):
    import cv2
    import numpy as np

    vids = tmp_path / "videos"
    vids.mkdir()
    w = cv2.VideoWriter(str(vids / "v_a.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(100):
        w.write(np.full((48, 64, 3), (i * 2) % 255, np.uint8))
    w.release()
    (tmp_path / "val_1.json").write_text(json.dumps({"v_a": {"duration": 10.0, "timestamps": [[0, 5]],
                                                             "sentences": ["x"]}}))
    return vids, tmp_path / "val_1.json"


def test_failed_usage_counts_the_describers_requests_for_a_failed_video(tmp_path):
    from pipelines.events_eval import run_events_eval

    vids, refs = one_video(tmp_path)
    paid = PaidDescriber()
    m = run_events_eval(tmp_path / "run", references=[refs], videos=vids, describer=paid, reasoner=BadChat(),
                        cache=False, allow_missing=True)
    assert list(m["failed"]) == ["v_a"] and len(paid.described) > 0
    assert m["failed_usage_this_run"]["requests"] == 3 + len(paid.described)  # 3 chat attempts and every frame
    assert m["failed_usage_this_run"]["prompt_tokens"] == 150 + 1000 * len(paid.described)


def test_a_wrong_events_option_still_fails_before_any_video_is_described(tmp_path):
    """The eval now describes a video before finding its events (to count a failed video's describing): the
    events options are still checked first, as Session.events checks them."""
    from pipelines.events_eval import run_events_eval

    vids, refs = one_video(tmp_path)
    paid = PaidDescriber()
    with pytest.raises(ConfigurationError, match="unknown events option"):
        run_events_eval(tmp_path / "run", references=[refs], videos=vids, describer=paid, reasoner=BadChat(),
                        cache=False, allow_missing=True, events_options={"window_seconds": 3})
    assert paid.described == []


# --- 4. the QA fallback reads the transcript as given -------------------------------------------

def test_the_qa_fallback_reads_the_transcript_before_it_was_merged(openai_server):
    """fit_transcript merges near-duplicate spans to fit the chat model's context; the fallback (no such limit)
    got the merged one too, so a span whose one different word answers the question was gone for it."""
    from temporal_reasoner.context import merge_similar
    from temporal_reasoner.qa import build_qa_messages

    texts = ["a man holds a small brown box in a kitchen" if i % 12 != 5 else
             "a man opens a small brown box in a kitchen" for i in range(120)]
    t = Transcript.from_descriptions([FrameDescription(t=float(i), text=x) for i, x in enumerate(texts)], merge=False)
    q = "when does the man open the box?"
    merged = estimate_tokens(build_qa_messages(q, merge_similar(t, 0.5), None, time_style="seconds", max_intervals=3))
    openai_server.responder = lambda req: Reply.chat("not json")
    stub = Stub()
    a = openai(openai_server, context_tokens=merged + 2 * 256 + 128 + 10, max_tokens=256, max_attempts=1,
               fallback=stub).answer(q, t)
    assert "merged near-duplicate spans" in a.warnings[0]  # the chat model got a merged transcript
    assert stub.seen == [t]


# --- 5. a misspelt fallback is found when the reasoner is built --------------------------------

def test_a_misspelt_fallback_spec_is_refused_before_any_request(openai_server):
    with pytest.raises(ConfigurationError, match=r"fallback='embeding': unknown reasoner backend 'embeding' "
                                                 r"\(did you mean 'embedding'\?\)"):
        openai(openai_server, fallback="embeding")
    assert openai_server.requests == []
    assert openai(openai_server, fallback="embedding").settings()["fallback"] == "embedding"  # not loaded yet


def test_a_misspelt_fallback_spec_is_refused_by_the_local_reasoners(tmp_path):
    pytest.importorskip("llama_cpp")
    from test_llamacpp_reasoner import FakeLlama
    from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner

    with pytest.raises(ConfigurationError, match="fallback='embeding'"):
        LlamaCppReasoner("x.gguf", llama=FakeLlama([]), fallback="embeding")
    pytest.importorskip("transformers")
    from _helpers_tiny_models import build_tiny_causal_lm
    from temporal_reasoner.hf_reasoner import TransformersReasoner

    with pytest.raises(ConfigurationError, match="fallback='embeding'"):
        TransformersReasoner(str(build_tiny_causal_lm(tmp_path / "lm")), fallback="embeding")


# --- 6. one spelling of a time style -------------------------------------------------------------

def test_time_style_flag_and_reasoner_opt_resume_each_others_runs(tmp_path, capsys, openai_server,  # noqa: F811
                                                                  no_caption_scorers):  # noqa: F811
    from pipelines.cli import main

    openai_server.responder = lambda req: Reply.chat('{"events": [{"start": "<0>", "end": "<150>", "caption": "a", '
                                                     '"score": 1}]}')
    root = _anet_fixture(tmp_path)
    base = ["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root", str(root / "data"),
            "--references", str(root / "val_1.json"), "--reasoner", "openai:m", "--reasoner-opt",
            f"base_url={openai_server.base_url}", "--out", str(root / "run"), "--allow-missing", "--quiet"]
    assert main([*base, "--reasoner-opt", "time_style=tokens"]) == 0
    config = json.loads((root / "run" / "config.json").read_text())
    assert config["reasoner_options"]["time_style"] == "tokens:300"
    assert main([*base, "--time-style", "tokens"]) == 0, capsys.readouterr().err
    config["reasoner_options"]["time_style"] = "tokens"  # a run recorded before: resumed as well
    (root / "run" / "config.json").write_text(json.dumps(config))
    assert main([*base, "--time-style", "tokens"]) == 0, capsys.readouterr().err


def test_a_context_too_small_for_any_events_prompt_is_a_setting_error_not_each_videos(openai_server):
    """With context_tokens=1500 and max_tokens=512 (accepted: above 2*max_tokens+256), an events prompt of one
    one-word span did not fit either: each video failed alone as if its descriptions were too long, after paying
    to describe it; the run went on through every video (review of 12f765d)."""
    t = Transcript.from_descriptions([FrameDescription(t=float(i), text="a dog") for i in range(4)], merge=False)
    with pytest.raises(ConfigurationError, match=r"single one-word span takes \d+: use a larger context") as info:
        openai(openai_server, context_tokens=1500, max_tokens=512).events(t)
    assert not isinstance(info.value, SpanTooLongError) and openai_server.requests == []
