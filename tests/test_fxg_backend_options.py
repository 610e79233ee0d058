"""Backend-option defects found by a user test (FX-G): a base URL that is no http(s) URL, a query longer than the
model's context, a sampling rate above the video's own, and a chat answer whose number and text disagree."""

from __future__ import annotations

import pytest

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401
from frame_describer.openai_describer import OpenAIDescriber
from pipelines.cli import main
from pipelines.session import Session
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.transcript import Transcript
from vidground.errors import ConfigurationError, InputError, ProviderError
from vidground.types import FrameDescription

# --- 1. a base URL that is not an http(s) URL ------------------------------------------------------------------

BAD_URLS = [  # (given, what the error suggests)
    ("localhost:8000/v1", "'http://localhost:8000/v1'"),
    ("127.0.0.1:8080", "'http://127.0.0.1:8080'"),
    ("ftp://x/v1", "not ftp://"),
    ("not a url", "'http://localhost:8000/v1'"),
    ("http:///v1", "'http://localhost:8000/v1'"),
    ("http://h:port/v1", "cannot be read as a URL"),
]


@pytest.mark.parametrize("url,hint", BAD_URLS)
def test_a_session_refuses_a_base_url_that_is_no_http_url_naming_option_and_value(url, hint):
    # before: accepted, then each request was a 'connection failed (UnsupportedProtocol)' retried 5 times
    with pytest.raises(ConfigurationError) as info:
        Session(describer=None, reasoner="openai:x", reasoner_options={"base_url": url})
    message = str(info.value)
    assert f"base_url {url!r}" in message and hint in message


@pytest.mark.parametrize("url,hint", BAD_URLS[:3])
def test_the_describer_and_an_injected_client_are_checked_too(url, hint):
    import openai

    with pytest.raises(ConfigurationError, match="base_url") as info:
        OpenAIDescriber("m", base_url=url)
    assert hint in str(info.value)
    client = openai.OpenAI(api_key="k", base_url=url)  # the SDK takes it as it is
    with pytest.raises(ConfigurationError, match="client.base_url"):
        OpenAIReasoner("m", client=client)


def test_the_base_url_flag_and_the_environment_variable_are_checked(demo_video, tmp_path, capsys, monkeypatch):
    from frame_describer.descriptions_io import write_descriptions

    descs = tmp_path / "d.jsonl"
    write_descriptions(descs, [FrameDescription(t=i * 2.0, text=f"scene {i}") for i in range(5)])
    assert main(["ground", "--descriptions", str(descs), "q", "--reasoner", "openai:r",
                 "--base-url", "localhost:8000/v1"]) == 1
    err = capsys.readouterr().err
    assert "base_url 'localhost:8000/v1' is not an http:// or https:// URL" in err
    assert "did you mean 'http://localhost:8000/v1'?" in err
    assert main(["ground", str(demo_video[0]), "q", "--describer", "openai:m", "--no-cache",
                 "--describer-opt", "base_url=ftp://h/v1"]) == 1
    assert "describer 'openai:m': base_url 'ftp://h/v1'" in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:1/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_BASE_URL 'localhost:1/v1'"):
        OpenAIReasoner("m")


def test_the_url_in_the_error_is_shown_as_given_without_its_credentials():
    with pytest.raises(ConfigurationError) as info:
        OpenAIReasoner("m", base_url="user:pw@gpu-box:8000/v1?api_key=SECRET", api_key="k")
    message = str(info.value)
    assert "SECRET" not in message and "pw" not in message
    assert "'gpu-box:8000/v1?api_key=REDACTED'" in message  # as given (no scheme added, no path garbled)


def test_good_urls_still_work(openai_server):  # noqa: F811
    reasoner = OpenAIReasoner("m", base_url=openai_server.base_url + "/", api_key="k")
    assert reasoner.base_url.rstrip("/") == openai_server.base_url
    for url in ("https://api.openai.com/v1", "http://[::1]:8000/v1", "HTTP://Gpu-Box:8000/v1"):
        OpenAIReasoner("m", base_url=url, api_key="k").close()


def test_a_url_the_http_client_cannot_request_is_not_retried():
    import openai
    from vidground.chat import call_with_retries, map_error

    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - depends on the SDK version
        import httpx
    calls, sleeps = [], []

    def fn():
        calls.append(1)
        try:
            raise httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol.")
        except httpx.UnsupportedProtocol as exc:
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://h/v1")) from exc

    with pytest.raises(ProviderError) as info:
        call_with_retries(fn, provider="openai:m", sleep=sleeps.append, url="localhost:8000/v1/chat/completions")
    assert len(calls) == 1 and sleeps == []  # before: 5 attempts, 4 backoff sleeps
    assert not info.value.retryable and "http://localhost:8000/v1" in str(info.value)
    # a dropped connection is still retried
    assert map_error(openai.APIConnectionError(request=httpx.Request("POST", "http://h/v1")),
                     provider="p").retryable


# --- 2. a query that does not fit the model's context on its own -----------------------------------------------

@pytest.fixture
def transcript() -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"scene {i}") for i in range(20)])


def test_a_query_too_long_for_the_context_is_an_input_error_about_the_query(openai_server, transcript):  # noqa: F811
    # before: ConfigurationError "the model's context ... cannot hold the prompt with even one transcript span ...;
    # use a model with a larger context (n_ctx) or shorter descriptions"
    reasoner = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", context_tokens=20_000)
    with pytest.raises(InputError) as info:
        reasoner.ground("event " + "blah " * 400_000, transcript)
    message = str(info.value)
    assert message.startswith("the query is too long for the model's context")
    assert "666,6" in message and "2,000,005 characters" in message  # ~1 token per 3, stripped
    assert "leaves 18,848 tokens for the prompt" in message and "shorter descriptions" not in message
    assert openai_server.requests == []


def test_a_query_that_fits_alone_but_not_with_one_span_is_still_about_the_descriptions(openai_server):  # noqa: F811
    long = Transcript.from_descriptions([FrameDescription(t=0.0, text="x " * 40_000),
                                         FrameDescription(t=2.0, text="y " * 40_000)])
    reasoner = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", context_tokens=20_000)
    with pytest.raises(ConfigurationError, match="shorter descriptions"):
        reasoner.ground("a short query", long)
    assert openai_server.requests == []


# --- 3. a sampling rate above the video's own --------------------------------------------------------------------

def test_a_rate_above_the_videos_samples_each_frame_once_and_says_the_rate_used(demo_video, caplog):
    from frame_describer.sampling import sample_frames

    with caplog.at_level("WARNING", logger="frame_describer.sampling"):
        with sample_frames(demo_video[0], fps=100) as frames:
            assert (frames.fps, frames.planned) == (10.0, 360)  # before: 100.0 and 3600 (a progress bar's total)
            times = [f.t for f in frames]
    assert len(times) == len(set(times)) == 360
    assert "the rate used is recorded as 10 fps" in caplog.text
    # max_frames is weighed against the frames there are: 360 fit in 500, no rate lowered to 500/36 s
    with sample_frames(demo_video[0], fps=100, max_frames=500) as frames:
        assert (frames.fps, frames.planned) == (10.0, 360)
    with sample_frames(demo_video[0], fps=5) as frames:  # below the video's rate: as asked
        assert (frames.fps, frames.planned) == (5.0, 180)


def test_a_session_records_the_rate_used_cold_and_from_the_cache(demo_video, tmp_path):
    from _helpers_eval import FakeDescriber

    cache = tmp_path / "c.sqlite"
    for run, sent in (("cold", 360), ("warm", 0)):
        describer = FakeDescriber()
        with Session(describer=describer, sampling={"fps": 100}, cache=cache) as session:
            described = session.describe(demo_video[0])
        assert described.sampling["fps"] == 10.0, run  # before: 100.0 both times
        assert len(described.descriptions) == 360 and describer.calls == sent
        assert described.step == pytest.approx(0.1)


def test_a_searchs_grid_is_at_most_the_videos_rate(demo_video, caplog):
    from _helpers_eval import FakeDescriber, FakeReasoner

    calls, results = {}, {}
    for fps in (100, 10):
        describer = FakeDescriber()
        with Session(describer=describer, reasoner=FakeReasoner(), sampling={"fps": fps}, cache=None,
                     search="coarse-to-fine") as session, caplog.at_level("WARNING"):
            result = session.ground(demo_video[0], "frame at 18.0")
        calls[fps], results[fps] = describer.calls, [(i.start, i.end) for i in result.intervals]
    # before: a 3,600-time grid at 100 fps, each frame answering 10 of its times, searched otherwise than at 10 fps
    assert calls[100] == calls[10] and results[100] == results[10]
    assert "fps=100 asks for more frames than the video has (10 fps): sampled at the video's rate" in caplog.text


# --- 4. a chat answer whose option number and text disagree -------------------------------------------------------

@pytest.mark.parametrize("reply,meant", [
    ('{"answer": "c1", "choice": 0, "intervals": [[2, 4]]}', 1),  # numbered from 1? no: the text says c1
    ('{"choice": 0, "answer": "c1", "intervals": [[2, 4]]}', 1),  # the same, the keys in the other order
    ('{"answer": "c0", "choice": 1, "intervals": [[2, 4]]}', 0),  # a model numbering from 1
    ('{"choice": 1, "answer": "c0", "intervals": [[2, 4]]}', 0),
    ('{"answer": "c1", "choice": 2, "intervals": [[2, 4]]}', 1),  # numbered from 1, the last: no option 2
])
def test_when_the_option_number_and_text_disagree_the_text_wins_with_a_warning(openai_server, transcript,  # noqa: F811
                                                                                reply, meant):
    # before: the number was taken silently (c0 for the first two replies), or a re-ask for choice 2
    openai_server.responder = lambda req: Reply.chat(reply)
    answer = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k",
                            response_formats=["text"]).answer("which?", transcript, choices=["c0", "c1"])
    assert (answer.choice, answer.answer) == (meant, f"c{meant}") and len(openai_server.requests) == 1
    notes = [w for w in answer.warnings if '"choice" and "answer" disagree' in w]
    assert len(notes) == 1 and f"took option {meant}, the text" in notes[0]
    assert ("numbers the options from 1" in notes[0]) == (meant == 0 or '"choice": 2' in reply)


def test_an_answer_that_agrees_or_names_no_single_option_keeps_the_number():
    from temporal_reasoner.qa import resolve_choice

    for value, text, choices in ((1, "c1", ["c0", "c1"]), (0, "something else", ["c0", "c1"]),
                                 (0, "same", ["same", "Same."]), ("B", "", ["c0", "c1"])):
        warnings: list[str] = []
        assert resolve_choice(value, text, choices, warnings) == (1 if value in (1, "B") else 0)
        assert warnings == []
