"""A Ctrl-C in ``vidground ground -q A -q B -q C`` after a query failed (a model's failure on that query, which
lets the others go on): the interrupted line counted the finished queries only ("after 1 of 3 queries finished"),
as if the failed one were still to run. It now says how many finished, failed and were not run; the --json list
printed is still the finished results alone."""

from __future__ import annotations

import json

import pytest

from _helpers_eval import FakeReasoner
from pipelines.cli import main
from temporal_reasoner import reasoners
from test_f4_cli_user import descs  # noqa: F401  (the fixture: a descriptions file of 6 frames)


class _Scripted(FakeReasoner):
    """The fake reasoner (a query holding FAIL fails as a server error once its retries are spent: a model's
    failure on that query, the others go on), interrupted (Ctrl-C) on a query holding STOP."""

    name = "g2-scripted"

    def ground(self, query, transcript):
        if "STOP" in query:
            raise KeyboardInterrupt
        return super().ground(query, transcript)


reasoners.register("g2-scripted", _Scripted)


def _ground(descs, queries, *extra):
    argv = ["ground", "--descriptions", str(descs), "--reasoner", "g2-scripted"]
    for q in queries:
        argv += ["-q", q]
    return main(argv + list(extra))


@pytest.mark.parametrize("as_json", [True, False])
def test_the_interrupted_line_counts_the_failed_query_and_those_not_run(descs, capsys, as_json):
    queries = ["a door opens", "FAIL here", "STOP here", "a cat sits"]
    assert _ground(descs, queries, *(["--json"] if as_json else [])) == 130
    out, err = capsys.readouterr()
    line = err.splitlines()[-1]
    where = "printed as a JSON list" if as_json else "printed above"
    assert line.startswith("vidground: interrupted after 1 of 4 queries finished, 1 failed (said above) and 2 were "
                           f"not run (the finished results are {where})"), line
    if as_json:  # the list printed is what it was: the finished result alone, no entry for the failed query
        assert [r["query"] for r in json.loads(out)] == ["a door opens"]
        assert "query 2 of 4 failed: fake outage" in err
    else:
        assert "failed: fake outage" in out


def test_the_interrupted_line_after_only_a_failure_says_none_finished(descs, capsys):
    assert _ground(descs, ["FAIL first", "STOP", "a cat sits"], "--json") == 130
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "interrupted before any of the 3 queries finished: 1 failed (said above) and 2 were not run" in err


def test_the_interrupted_line_without_a_failure_is_as_before(descs, capsys):
    assert _ground(descs, ["a door opens", "STOP", "a cat sits"], "--json") == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 of 3 queries finished (their results are printed as a JSON list)" in err
