"""benchmarks/reliability.py checks its storm's retry options when it parses them: --storm-timeout-retries above
--storm-retries made every storm query fail with a ConfigurationError (timeout_retries is spent within
max_retries), and the script reported a nonsense row ("0 of the server's answers faulted (; ...")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reliability as bench  # noqa: E402


@pytest.mark.parametrize("argv, message", [
    (["--storm-retries", "1", "--storm-timeout-retries", "2"], "timeout_retries=2 is more than max_retries=1"),
    (["--storm-timeout-retries", "3"], "timeout_retries=3 is more than max_retries=1"),  # the default --storm-retries
    (["--storm-retries", "-1"], "max_retries must be a non-negative integer, got -1"),
    (["--storm-retries", "2", "--storm-timeout-retries", "-1"], "timeout_retries must be a non-negative integer"),
])
def test_a_storm_the_reasoner_would_refuse_is_a_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        bench.parse_args(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and message in err and "--storm-retries" in err.splitlines()[-1]


@pytest.mark.parametrize("argv, retries, timeout_retries", [([], 1, 1), (["--storm-retries", "3"], 3, 3),
                                                            (["--storm-retries", "3", "--storm-timeout-retries", "0"], 3, 0),
                                                            (["--storm-retries", "2", "--storm-timeout-retries", "2"], 2, 2)])
def test_a_storm_within_max_retries_parses_and_timeout_retries_defaults_to_it(argv, retries, timeout_retries):
    args = bench.parse_args(argv)
    assert (args.storm_retries, args.storm_timeout_retries) == (retries, timeout_retries)
