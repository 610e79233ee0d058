"""Eval workers share one rate limit per endpoint and key: ``vidground eval --concurrency 4
--describer-opt rpm=60`` against a local server never puts more than 60 requests in any window.

Why the window is shrunk: rpm=60 over the real 60-second window needs well over a minute of
requests before the limit is seen to hold twice, too slow for the default tier. The test keeps
rpm=60 and the same sliding-window rule, but shrinks the limiter's window (``WINDOW_S``) to 2 s,
and checks every 2-s window at the server, so the run crosses several windows in seconds.

Why the bound holds on a busy machine: a request reserves its place in the window while holding
one of the endpoint's in-flight slots, and keeps the slot until its reply, so a window at the
server can hold at most ``rpm`` requests reserved inside it plus those reserved before it and
still on their way when it began, at most the in-flight bound. With ``concurrency=4`` (the
in-flight bound per endpoint and key, shared by the 4 workers) that is at most 64, within the
+10% (66) however late the machine delivers them; no wall time is asserted.
"""

from __future__ import annotations

import json

import openai
import pytest

from vidground import ratelimit

from _helpers_openai_server import FakeOpenAIServer, Reply

WINDOW = 2.0
RPM = 60


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):  # windows starting at each request: [t, t + window)
        while j < len(times) and times[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def test_most_in_any_window():
    assert most_in_any_window([0, 0.5, 1.9, 2.0, 2.1], 2.0) == 4  # [0.5, 2.5)
    assert most_in_any_window([0, 2.0, 4.0], 2.0) == 1
    assert most_in_any_window([], 2.0) == 0


@pytest.mark.slow
def test_four_eval_workers_share_one_rpm_limit(tmp_path, monkeypatch):
    from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
    from pipelines.cli import main

    monkeypatch.setattr(ratelimit, "_SHARED", {})
    monkeypatch.setattr(ratelimit, "WINDOW_S", WINDOW)
    register_fakes()
    n_videos, frames_each = 8, 20  # 160 requests: 60 per window, so the run spans three windows
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=n_videos, per_video=1, duration=2.0)
    videos = render_toy_videos(tmp_path / "videos", [f"vid{i}" for i in range(n_videos)], n_frames=20, fps=10.0)
    with FakeOpenAIServer(lambda req: Reply.chat("a person", delay=0.01)) as server:
        code = main(["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos),
                     "--describer", "openai:test-model", "--describer-opt", f"base_url={server.base_url}",
                     "--describer-opt", "api_key=sk-test-shared", "--describer-opt", f"rpm={RPM}",
                     "--describer-opt", "concurrency=4", "--describer-opt", "prices=false",
                     "--reasoner", "fake-reasoner", "--fps", "10", "--concurrency", "4", "--no-cache",
                     "--no-report", "--quiet", "--out", str(tmp_path / "run")])
        times = [r.t for r in server.requests]
    assert code == 0
    assert len(times) == n_videos * frames_each
    most = most_in_any_window(times, WINDOW)
    print(f"most requests in any {WINDOW:g}-s window: {most}; run spanned {max(times) - min(times):.2f} s")
    assert most <= RPM * 1.1, f"{most} requests in one {WINDOW:g}-s window (limit {RPM})"
    assert most >= RPM * 0.9  # the limit was what paced the run
    # the workers' describers shared one limiter (the pacing above: 4 limiters would allow 4 times the rpm), and
    # it is forgotten once the last of them closed (each holds its limits until then)
    assert ratelimit._SHARED == {}
    assert server.max_in_flight <= 4


def test_the_reasoner_paces_through_the_same_shared_limiter(monkeypatch):
    """Reasoners and describers (an eval's workers, two sessions, the two stages) on one endpoint and key
    share one limiter, with the tightest limits any of them set; another key gets its own; the key
    itself is never part of what is kept."""
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    monkeypatch.setattr(ratelimit, "_SHARED", {})
    from frame_describer.openai_describer import OpenAIDescriber

    url = "http://127.0.0.1:9/v1"
    a = OpenAIReasoner("m", base_url=url, api_key="sk-one", rpm=30)
    b = OpenAIReasoner("m", base_url=url, api_key="sk-one", rpm=30)
    c = OpenAIReasoner("m", base_url=url, api_key="sk-two", rpm=30)
    assert a.limiter is b.limiter and a.limiter is not c.limiter and a.limiter.rpm == 30
    assert not any("sk-one" in str(key) for key in ratelimit._SHARED)
    unpaced = OpenAIReasoner("m", base_url=url, api_key="sk-one")  # the endpoint's budget still applies
    assert unpaced.limiter is a.limiter and unpaced.limiter.enabled
    describer = OpenAIDescriber("m", base_url=url, api_key="sk-one", rpm=60, concurrency=3)
    assert describer.limiter is a.limiter and (a.limiter.rpm, a.limiter.max_in_flight) == (30, 3)
    unlimited = OpenAIReasoner("m", base_url="http://127.0.0.1:9/other", api_key="sk-one")
    assert not unlimited.limiter.enabled


def test_a_reasoner_paces_every_request_and_closes_only_its_own_client():
    from temporal_reasoner.openai_reasoner import OpenAIReasoner
    from temporal_reasoner.transcript import Transcript
    from vidground.types import FrameDescription

    reply = json.dumps({"intervals": [{"start": 0, "end": 2, "score": 0.9}]})
    transcript = Transcript.from_descriptions([FrameDescription(t=t, text=f"frame {t}") for t in range(4)])
    with FakeOpenAIServer(lambda req: Reply.chat(reply)) as server:
        r = OpenAIReasoner("m", base_url=server.base_url, api_key="k", rpm=1000, tpm=10**6)
        taken = []
        real = r.limiter.acquire
        r.limiter.acquire = lambda tokens=0, **kw: taken.append(tokens) or real(tokens, **kw)
        for q in ("one", "two", "three"):
            r.ground(q, transcript)
        assert len(taken) == len(server.requests) == 3 and all(t > r.max_tokens for t in taken)
        r.close()
        assert r._client._client.is_closed
        injected = openai.OpenAI(base_url=server.base_url, api_key="k")
        OpenAIReasoner("m", client=injected).close()
        assert not injected._client.is_closed
