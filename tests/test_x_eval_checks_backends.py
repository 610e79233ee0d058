"""`vidground eval` checks its backends' option *values* before the run: a bad one was every query's recorded failure
(exit 0, after describing every video with a paid describer, and, for an unreadable price file, after every paid
reply); it is one ConfigurationError at once, with no request sent and no run folder made. And a run whose every query
failed with one and the same error exits 1."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.cli import main
from pipelines.runs import RunConfig, check_backends, run_eval
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import ConfigurationError, ProviderError

from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
from _helpers_openai_server import openai_server  # noqa: F401  (fixture)

register_fakes()


def _eval(tmp_path, server, *argv: str) -> int:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    return main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "openai:m",
                 "--reasoner-opt", f"base_url={server.base_url}", *argv, "--out", str(tmp_path / "run"),
                 "--no-report", "--quiet"])


@pytest.mark.parametrize("option, named", [
    ("timeout_retries=-2", "timeout_retries must be a non-negative integer"),
    ("max_retries=-1", "max_retries must be a non-negative integer, got -1"),
    ("max_tokens=0", "max_tokens must be a positive integer"),
    ("prices=NOSUCH", "prices="),
    ("fallback=embeding", "fallback='embeding': unknown reasoner backend"),
    ("fallback=openai:", "fallback='openai:'"),
])
def test_a_bad_reasoner_option_value_is_one_error_before_any_request(tmp_path, openai_server, capsys,  # noqa: F811
                                                                     option, named):
    option = option.replace("NOSUCH", str(tmp_path / "no-such-prices.json"))
    assert _eval(tmp_path, openai_server, "--reasoner-opt", option) == 1
    err = capsys.readouterr().err
    assert named in err and err.startswith("vidground: error: ")
    assert len(openai_server.requests) == 0  # HEAD: 0 here too, but exit 0 with every query failed ...
    assert not (tmp_path / "run").exists()  # ... and a run folder of failures; for prices=, 4 paid requests first


def test_a_bad_describer_value_fails_before_a_video_is_described(tmp_path, openai_server):  # noqa: F811
    """A paid describer and a bad reasoner value: HEAD described (paid for) every frame of every video, then failed
    each query; a bad describer value failed each video. Now nothing is sent."""
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=10, fps=10.0)
    common = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--describer", "openai:m",
              "--describer-opt", f"base_url={openai_server.base_url}", "--no-cache", "--no-report", "--quiet"]
    for extra in (["--describer-opt", "concurrency=0"],
                  ["--describer-opt", f"prices={tmp_path / 'none.json'}"],
                  ["--reasoner", "openai:m", "--reasoner-opt", f"base_url={openai_server.base_url}",
                   "--reasoner-opt", "max_retries=-1"]):
        assert main([*common, *extra, "--out", str(tmp_path / "run")]) == 1
        assert len(openai_server.requests) == 0, extra
        assert not (tmp_path / "run").exists()


def test_the_error_names_the_stage_whose_option_is_wrong():
    with pytest.raises(ConfigurationError, match=r"^describer 'openai:m': concurrency must be a positive integer"):
        check_backends("openai:m", {"base_url": "http://127.0.0.1:9", "concurrency": 0}, "embedding", {})
    with pytest.raises(ConfigurationError, match=r"^reasoner 'embedding': "):
        check_backends(None, None, "embedding", {"polarity": "much"})


def test_a_local_models_values_are_checked_without_loading_it(monkeypatch, tmp_path):
    """hf: and llamacpp: load their weights when built: their values are checked without building them."""
    import frame_describer.hf_describer as hf_describer
    import temporal_reasoner.hf_reasoner as hf_reasoner
    import temporal_reasoner.llamacpp_reasoner as llamacpp_reasoner

    loads: list[str] = []

    def loading(*_: Any, **__: Any) -> Any:
        loads.append("load")
        raise AssertionError("a model was loaded to check options")

    monkeypatch.setattr(hf_reasoner, "load_causal_lm", loading)
    monkeypatch.setattr(hf_describer, "load_vlm", loading)
    monkeypatch.setattr(llamacpp_reasoner, "load_llama", loading)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(16))
    for bad, named in (({"max_new_tokens": 0}, "max_new_tokens must be a positive integer, got 0"),
                       ({"max_attempts": "three"}, "max_attempts must be a positive integer"),
                       ({"context_tokens": 100}, "context_tokens=100 leaves no room"),
                       ({"time_style": "hours"}, "hours"),
                       ({"fallback": "embeding"}, "unknown reasoner backend 'embeding'")):
        with pytest.raises(ConfigurationError, match=named):
            check_backends(None, None, "hf:some/model", bad)
    with pytest.raises(ConfigurationError, match="n_ctx=300 leaves no room"):
        check_backends(None, None, f"llamacpp:{gguf}", {"n_ctx": 300})
    with pytest.raises(ConfigurationError, match="no such file"):
        check_backends(None, None, f"llamacpp:{tmp_path / 'missing.gguf'}", {})
    with pytest.raises(ConfigurationError, match="batch_size must be a positive integer, got 0"):
        check_backends("hf:some/vlm", {"batch_size": 0}, "embedding", {})
    # good values pass, and nothing was loaded either way
    check_backends("hf:some/vlm", {"batch_size": 2}, "hf:some/model", {"max_new_tokens": 64, "fallback": "embedding"})
    check_backends(None, None, f"llamacpp:{gguf}", {"n_ctx": 2048})
    assert loads == []


class _DownReasoner(BaseReasoner):
    """Every call fails with one error, as every query does against a server that is down."""

    name = "down-reasoner"

    def __init__(self, arg: str | None = None, **_: Any):
        self.same = arg != "varied"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        raise ProviderError("connection refused" if self.same else f"cannot ground {query!r}", provider="down")


reasoners.register("down-reasoner", _DownReasoner)


def test_a_run_whose_every_query_failed_with_one_error_exits_1_after_writing_the_run(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "down-reasoner",
            "--out", str(tmp_path / "run"), "--no-report", "--quiet"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert ("every one of the 4 queries run failed with the same error, so this run has no result: ProviderError: "
            "connection refused") in captured.err
    assert "--retry-failed" in captured.err
    assert "4 run now (4 failed)" in captured.out  # the run was written and summarised first
    assert (tmp_path / "run" / "results.jsonl").read_text().count('"failed"') == 4
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),
                                 reasoner="down-reasoner"), tmp_path / "run2")
    assert summary.same_error == {"type": "ProviderError", "message": "connection refused"}


def test_failures_of_different_queries_for_their_own_reasons_keep_exit_0(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),
                                 reasoner="down-reasoner:varied"), tmp_path / "run")
    assert summary.failed == summary.ran == 4 and summary.same_error is None
    assert main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner",
                 "down-reasoner:varied", "--out", str(tmp_path / "run3"), "--no-report", "--quiet"]) == 0


def test_the_events_eval_checks_the_values_too(tmp_path, capsys, openai_server):  # noqa: F811
    """HEAD sent each video's request (paid), then failed the video on the unreadable price table: exit 0."""
    from test_events import _anet_fixture

    root = _anet_fixture(tmp_path)
    assert main(["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root",
                 str(root / "data"), "--references", str(root / "val_1.json"), "--reasoner", "openai:gpt-4o-mini",
                 "--reasoner-opt", f"base_url={openai_server.base_url}", "--reasoner-opt",
                 f"prices={tmp_path / 'none.json'}", "--out", str(root / "run"), "--allow-missing", "--quiet"]) == 1
    assert "reasoner 'openai:gpt-4o-mini': prices=" in capsys.readouterr().err
    assert len(openai_server.requests) == 0 and not (root / "run").exists()
