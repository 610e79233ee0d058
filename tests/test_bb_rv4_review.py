"""Reviewer RV4's findings on 360f8ae (the up-front backend check, the exit-1 rule) and 02704db
(run_in_transaction), each pinned by a test that fails on the code before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.runs import RunConfig, is_run_wide, run_eval
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import ConfigurationError, ProviderError
from vidground.types import GroundingResult, Interval

from _helpers_eval import write_toy_dataset

# --------------------------------------------------------------------------- 1. the exit-1 rule


class _Picky(BaseReasoner):
    """Grounds every query but the coffee one, whose reply never parses (a hard query); ``bb-picky:down`` fails
    every query as a server that cannot be reached does, ``bb-picky:hard`` every query for a query's own reason."""

    name = "bb-picky"

    def __init__(self, arg: str | None = None, **_: Any):
        self.arg = arg

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        if self.arg == "down":
            raise ProviderError("openai:m: connection failed (ConnectError)", retryable=True)
        if self.arg == "unauthorized":
            raise ProviderError("openai:m: HTTP 401: Incorrect API key provided")
        if self.arg == "hard" or "coffee" in query:
            raise ProviderError("no interval in the model's reply after 3 attempts")
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=0, end=2, score=1.0)], reasoner=self.name)


reasoners.register("bb-picky", _Picky)


def _eval(ds, desc, out, reasoner: str = "bb-picky", *extra: str) -> int:
    return main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", reasoner,
                 "--out", str(out), "--no-report", "--quiet", *extra])


def _only(ds, tmp_path, word: str):
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    path = tmp_path / f"only-{word}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if word in r["query"]))
    return path


def test_retrying_one_hard_query_that_fails_again_exits_0_when_the_run_has_results(tmp_path, capsys):
    """HEAD: exit 1, 'this run has no result ... run the same command with --retry-failed', with 2 ok rows."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)  # vid0-1: the person drink coffee
    out = tmp_path / "run"
    assert _eval(ds, desc, out) == 0
    assert _eval(ds, desc, out, "bb-picky", "--retry-failed") == 0
    assert "1 run now (1 failed)" in capsys.readouterr().out
    # a plain resume whose one new query fails: the folder has results too
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    ds.write_text(ds.read_text() + json.dumps({**rows[1], "qid": "vid0-coffee-again"}) + "\n")
    assert _eval(ds, desc, out) == 0
    assert "1 run now (1 failed)" in capsys.readouterr().out


def test_a_run_of_one_hard_query_exits_0_but_one_with_a_run_wide_error_exits_1(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    one = _only(ds, tmp_path, "coffee")
    assert _eval(one, desc, tmp_path / "hard") == 0  # HEAD: 1, 'no result'
    capsys.readouterr()
    for arg in ("down", "unauthorized"):
        assert _eval(one, desc, tmp_path / arg, f"bb-picky:{arg}") == 1
        err = capsys.readouterr().err
        assert "the one query run failed with the same error, so this run has no result: ProviderError" in err
        assert "run the same command with --retry-failed" in err


def test_two_or_more_failing_with_one_error_and_no_result_in_the_folder_exit_1_without_advising_what_ran(
        tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    out = tmp_path / "run"
    assert _eval(ds, desc, out, "bb-picky:hard") == 1
    assert "every one of the 3 queries run failed" in capsys.readouterr().err
    assert _eval(ds, desc, out, "bb-picky:hard", "--retry-failed") == 1
    err = capsys.readouterr().err
    assert "every one of the 3 queries run failed with the same error" in err
    assert "--retry-failed" not in err and "run the same command again" in err  # HEAD advised --retry-failed


def test_which_errors_are_the_runs():
    assert is_run_wide("ConfigurationError", "anything") and is_run_wide("MissingDependencyError", "x")
    assert is_run_wide("ProviderError", "openai:m: connection failed (ConnectError)")
    assert is_run_wide("ProviderError", "Connection refused")
    for status in (401, 403, 404):
        assert is_run_wide("ProviderError", f"openai:m: HTTP {status}: no")
    assert not is_run_wide("ProviderError", "openai:m: HTTP 400: bad request")
    assert not is_run_wide("ProviderError", "openai:m: HTTP 4010 is not a status")
    assert not is_run_wide("OutputValidationError", "no interval in the model's reply after 3 attempts")


def test_run_eval_reports_no_cause_for_one_hard_query(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(_only(ds, tmp_path, "coffee")),
                                 descriptions=str(desc), reasoner="bb-picky"), tmp_path / "run")
    assert summary.failed == summary.ran == 1 and summary.same_error is None


# --------------------------------------------------------------------------- 2. a run built on other machines


class _WorkerSide:
    """As RayExecutor: the workers build the backends from the config; records that the run reached it."""

    def __init__(self) -> None:
        self.reached = False

    def run(self, tasks: Any, config: Any, stop: Any = None) -> Any:
        self.reached = True
        return iter(())


def test_a_run_on_other_machines_checks_values_but_not_the_drivers_key_or_files(tmp_path, monkeypatch):
    """HEAD refused on the driver: 'no API key' (the key is on the workers), 'no such file' (the .gguf is)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    ds, desc = write_toy_dataset(tmp_path / "d", n_videos=1, per_video=1)
    config = dict(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc))
    for i, (reasoner, opts) in enumerate((("openai:gpt-4o-mini", {"prices": str(tmp_path / "workers-prices.json")}),
                                          ("llamacpp:/models/on-the-workers.gguf", {}))):
        workers = _WorkerSide()
        run_eval(RunConfig(**config, reasoner=reasoner, reasoner_options=opts), tmp_path / f"r{i}", executor=workers)
        assert workers.reached, reasoner
    # a value is still checked on the driver, before the run starts
    for reasoner, opts, named in (("openai:gpt-4o-mini", {"max_retries": -1}, "max_retries must be a non-negative"),
                                  ("llamacpp:/models/x.gguf", {"n_ctx": 300}, "n_ctx=300 leaves no room"),
                                  ("openai:m", {"fallback": "embeding"}, "unknown reasoner backend 'embeding'")):
        workers = _WorkerSide()
        with pytest.raises(ConfigurationError, match=named):
            run_eval(RunConfig(**config, reasoner=reasoner, reasoner_options=opts), tmp_path / "bad",
                     executor=workers)
        assert not workers.reached
    # on this machine the key and the file are needed here, as before
    with pytest.raises(ConfigurationError, match="no API key"):
        run_eval(RunConfig(**config, reasoner="openai:gpt-4o-mini"), tmp_path / "local")
    with pytest.raises(ConfigurationError, match="no such file"):
        run_eval(RunConfig(**config, reasoner="llamacpp:/models/on-the-workers.gguf"), tmp_path / "local")


# --------------------------------------------------------------------------- 3. subclassed custom backends


def test_a_subclass_with_its_own_init_does_not_inherit_its_bases_check_hooks(monkeypatch):
    """HEAD: the hf subclass's check read bound_options(...)['mode'] of its own __init__: KeyError; the
    OpenAIReasoner subclass was built (its __init__ run, e.g. a request for the model list) by the check."""
    from frame_describer import describers
    from frame_describer.hf_describer import TransformersDescriber
    from pipelines.runs import check_backends
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    class MyHF(TransformersDescriber):
        def __init__(self, model: str, *, crop: int = 0, **kw: Any):
            self.crop = crop
            super().__init__(model, **kw)

    built: list[str] = []

    class MyServer(OpenAIReasoner):
        def __init__(self, model: str, **kw: Any):
            super().__init__(model, **kw)
            built.append(model)

    monkeypatch.setitem(describers._targets, "bb-myhf", MyHF)
    monkeypatch.setitem(reasoners._targets, "bb-myserver", MyServer)
    check_backends("bb-myhf:llava-hf/llava-1.5-7b-hf", {"crop": 8, "batch_size": 2}, "embedding", {})
    check_backends(None, None, "bb-myserver:m", {"base_url": "http://127.0.0.1:9/v1"})
    assert built == []
    # the built-ins keep their checks, the embedding reasoners' included (each defines lazy itself)
    for spec, bad in (("embedding", {"polarity": "much"}), ("vtggpt", {"bins": 0})):
        with pytest.raises(ConfigurationError, match=f"^reasoner '{spec}': "):
            check_backends(None, None, spec, bad)
    from temporal_reasoner.embedding import NaiveSimilarityReasoner

    assert vars(NaiveSimilarityReasoner).get("lazy") is True  # it has no value to refuse: built, as before



# --------------------------------------------------------------------------- 4. the events eval's exit status


class _EventsDown(BaseReasoner):
    """``bb-events:down`` fails every video as a server that cannot be reached does; ``bb-events:hard`` fails
    v_b for its own reason and finds one event in the others."""

    name = "bb-events"

    def __init__(self, arg: str | None = None, **_: Any):
        self.arg = arg

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        raise AssertionError("not used")

    def events(self, transcript: Any, **_: Any) -> Any:
        from vidground.types import Events

        if self.arg == "down":
            raise ProviderError("openai:m: connection failed (ConnectError)", retryable=True)
        if self.arg == "hard" or "thing b" in transcript.entries[0].text:
            raise ProviderError("no events in the model's reply after 3 attempts")
        return Events(duration=transcript.duration, events=[{"start": 0.0, "end": 5.0, "caption": "a", "score": 1.0}],
                      reasoner=self.name)


reasoners.register("bb-events", _EventsDown)


def _events(tmp_path, reasoner: str, videos=("v_a", "v_b", "v_c"), out: str = "run") -> int:
    d = tmp_path / "desc"
    d.mkdir(exist_ok=True)
    refs = {}
    for v in videos:
        (d / f"{v}.jsonl").write_text("".join(json.dumps({"t": float(t), "text": f"thing {v[-1]}"}) + "\n"
                                              for t in range(12)))
        refs[v] = {"duration": 12.0, "timestamps": [[0, 5], [5, 12]], "sentences": ["a", "b"]}
    (tmp_path / f"refs-{out}.json").write_text(json.dumps(refs))
    return main(["eval", "activitynet-events", "--references", str(tmp_path / f"refs-{out}.json"), "--descriptions",
                 str(d), "--data-root", str(tmp_path), "--reasoner", reasoner, "--out", str(tmp_path / out),
                 "--quiet"])


def test_the_events_eval_exits_1_when_every_video_failed_with_one_error_and_none_has_events(tmp_path, capsys):
    """HEAD: exit 0 with every video failed (the server down)."""
    assert _events(tmp_path, "bb-events:down") == 1
    err = capsys.readouterr().err
    assert ("every one of the 3 videos run failed with the same error, so this run has no result: ProviderError: "
            "openai:m: connection failed (ConnectError); fix the cause and run the same command again") in err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["no_result"]["type"] == "ProviderError"
    # the same rule as eval's: one video failing on its own, or failures beside results, exit 0
    assert _events(tmp_path, "bb-events:hard", videos=("v_b",), out="one") == 0
    assert _events(tmp_path, "bb-events", out="some") == 0
    assert json.loads((tmp_path / "some" / "metrics.json").read_text())["no_result"] is None


# --------------------------------------------------------------------------- 5. a fallback spec without a key


def test_a_fallback_without_a_key_is_told_to_set_the_environment_not_an_option(monkeypatch):
    from pipelines.runs import check_backends

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        check_backends(None, None, "hf:some/model", {"fallback": "openai:gpt-4o-mini"})
    assert str(info.value) == ("fallback='openai:gpt-4o-mini': no API key: set OPENAI_API_KEY (a fallback spec takes "
                               "no options)")  # HEAD advised --reasoner-opt api_key=KEY, the main reasoner's


# --------------------------------------------------------------------------- 6, 7. run_in_transaction


def _table() -> Any:
    import sqlite3

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    return conn


@pytest.mark.parametrize("raised", [KeyboardInterrupt, ValueError])
def test_on_commit_is_called_once_when_it_raises(raised):
    """HEAD called it again from the except clause: twice for one COMMIT (a Ctrl-C inside the description
    cache's _count made cache.stored 2 for 1 row)."""
    from vidground.transactions import run_in_transaction

    conn, calls = _table(), []

    def on_commit(n: int) -> None:
        calls.append(n)
        raise raised

    with pytest.raises(raised):
        run_in_transaction(conn, lambda: conn.execute("INSERT INTO t VALUES (1)").rowcount, on_commit)
    assert calls == [1]
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1 and not conn.in_transaction


def test_a_nested_call_on_the_same_connection_is_refused_and_leaves_nothing_behind():
    """HEAD: the inner call rolled back the outer's insert silently and committed its own; the outer's COMMIT then
    failed with 'cannot commit - no transaction is active'."""
    from vidground.transactions import NestedTransactionError, run_in_transaction

    conn = _table()

    def outer() -> None:
        conn.execute("INSERT INTO t VALUES ('outer')")
        run_in_transaction(conn, lambda: conn.execute("INSERT INTO t VALUES ('inner')"))

    with pytest.raises(NestedTransactionError, match="another run_in_transaction is under way on"):
        run_in_transaction(conn, outer)
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0 and not conn.in_transaction
    # the connection is free again, after an error and after an interrupt in the work
    with pytest.raises(KeyboardInterrupt):
        run_in_transaction(conn, lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    run_in_transaction(conn, lambda: conn.execute("INSERT INTO t VALUES ('after')"))
    assert [r[0] for r in conn.execute("SELECT x FROM t")] == ["after"]
    # another connection inside the work is not nesting
    other = _table()
    run_in_transaction(conn, lambda: run_in_transaction(other, lambda: other.execute("INSERT INTO t VALUES (2)")))
    assert other.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
