"""A run may be resumed with other connection options (how a backend reaches its server, not what it answers): the
local-timeout error tells the user to resend with timeout_retries=N and run the same command with --retry-failed,
and resuming then failed with 'holds a run with other settings (reasoner_options: ...)' because every backend
option had to match. The options that change what a backend answers (base_url included: another address may
serve another model) must still match, and the run records the options each invocation used."""

from __future__ import annotations

import json

import pytest

from _helpers_eval import write_toy_dataset
from _helpers_openai_server import Reply, openai_server  # noqa: F401
from pipelines.runs import CONNECTION_OPTIONS, RunConfig, _check_resume, run_eval
from vidground import ratelimit
from vidground.errors import ConfigurationError

GOOD = '{"intervals": [{"start": 2, "end": 4, "score": 0.9}]}'


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})
    monkeypatch.setattr(ratelimit, "_RECENT", {})  # nor the windows of closed limiters (24c919f)


def test_following_the_timeout_hint_resumes_the_failed_run(tmp_path, openai_server):  # noqa: F811
    openai_server.script(Reply.chat(GOOD, delay=1.0), Reply.chat(GOOD, delay=1.0), Reply.chat(GOOD))
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    options = {"base_url": openai_server.base_url, "api_key": "sk-test", "timeout": 0.2, "retry_base_delay": 0.001,
               "response_formats": "text"}
    config = lambda **more: RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),  # noqa: E731
                                      reasoner="openai:m", reasoner_options=options | more)
    out = tmp_path / "run"
    first = run_eval(config(), out)
    assert first.failed == 1
    (row,) = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert "timeout_retries=N" in row["error"]["message"]

    second = run_eval(config(timeout_retries=1), out, retry_failed=True)  # what the hint says
    assert second.ran == 1 and second.failed == 0
    assert len(openai_server.requests) == 3  # the timed-out request was sent again, once
    assert json.loads((out / "config.json").read_text())["reasoner_options"]["timeout_retries"] == 1
    calls = json.loads((out / "provenance.json").read_text())["invocations"]
    assert [c["options"]["reasoner"].get("timeout_retries") for c in calls] == [None, 1]
    assert {c["options"]["reasoner"]["api_key"] for c in calls} != {"sk-test"}  # redacted in each


def _folder(tmp_path, config: RunConfig):
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_json()), encoding="utf-8")
    return out


@pytest.mark.parametrize("stage", ["reasoner", "describer"])
@pytest.mark.parametrize("option, before, after", [
    ("timeout", 0.2, 30.0), ("timeout_retries", None, 2), ("max_retries", 4, 8), ("retry_base_delay", 0.5, 0.05),
    ("rpm", None, 60), ("tpm", 1000, None), ("concurrency", 8, 2), ("api_key", "sk-old-key-123456", "sk-new-key-987654")])
def test_a_connection_option_may_change_on_resume(tmp_path, stage, option, before, after):
    assert option in CONNECTION_OPTIONS

    def config(value):
        opts = {"temperature": 0.0} | ({option: value} if value is not None else {})
        return RunConfig(dataset="jsonl", dataset_path="ds.jsonl", videos=str(tmp_path), reasoner="openai:m",
                         describer="openai:m", **{f"{stage}_options": opts})

    _check_resume(_folder(tmp_path, config(before)), config(after))


@pytest.mark.parametrize("stage", ["reasoner", "describer"])
@pytest.mark.parametrize("option, before, after", [("base_url", "http://a:8000/v1", "http://b:8000/v1"),
                                                   ("temperature", 0.0, 0.7), ("max_tokens", 200, 400)])
def test_an_option_that_changes_the_answers_must_still_match(tmp_path, stage, option, before, after):
    def config(value):
        return RunConfig(dataset="jsonl", dataset_path="ds.jsonl", videos=str(tmp_path), reasoner="openai:m",
                         describer="openai:m", **{f"{stage}_options": {"timeout": 1.0, option: value}})

    out = _folder(tmp_path, config(before))
    with pytest.raises(ConfigurationError, match=rf"other settings \({stage}_options: .*'{option}'") as caught:
        _check_resume(out, config(after))
    assert "timeout" not in str(caught.value)  # the message names what differs, not the options that may
