"""U17: ``vidground describe kitchen.mp4 --fps 25`` (a 10-fps video) said "fps=25 asks for more frames than the video
has" twice, a WARNING log line and the result's ``warning:`` line (FX-AE item 5). The record a result's warnings
carry too is marked (:data:`frame_describer.rates.IN_RESULT`) and a command that prints them leaves it out of the
log; one that does not (``--json``, ``eval``) keeps the log line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from frame_describer.rates import IN_RESULT, rate_used

SAID = "fps=100 asks for more frames than the video has (10 fps)"


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *argv], capture_output=True, text=True,
                          timeout=300, check=True)


def test_describe_says_a_rate_above_the_videos_once(demo_video, tmp_path):
    done = _cli("describe", str(demo_video[0]), "--fps", "100", "--no-cache", "-o", str(tmp_path / "d.jsonl"))
    said = [line for line in done.stderr.splitlines() if SAID in line]
    assert len(said) == 1 and said[0].startswith("warning: "), done.stderr  # before: a WARNING line as well


def test_ground_json_keeps_the_log_line_its_json_carries_the_warning(demo_video):
    done = _cli("ground", str(demo_video[0]), "frame at 18.0", "--fps", "100", "--no-cache", "--json")
    assert sum(SAID in line for line in done.stderr.splitlines()) == 1, done.stderr  # nothing else prints it there
    assert sum(SAID in w for w in json.loads(done.stdout)["warnings"]) == 1


def test_a_record_is_marked_only_where_a_results_warnings_carry_it(caplog):
    with caplog.at_level(logging.WARNING, logger="frame_describer.rates"):
        rate_used(4.0, 1.0, warn="/v/a.mp4", notes=[])
        rate_used(4.0, 1.0, warn="/v/b.mp4")  # no notes: the log is the only place it is said
    assert [getattr(r, IN_RESULT) for r in caplog.records] == [True, False]


@pytest.mark.parametrize("argv, filtered", [(["describe", "v.mp4"], True), (["ground", "v.mp4", "q"], True),
                                            (["ground", "v.mp4", "q", "--json"], False),
                                            (["eval", "jsonl", "--out", "r"], False)])
def test_only_a_command_that_prints_the_warnings_leaves_them_out_of_its_stderr_log(argv, filtered, caplog):
    from pipelines.cli import _prints_warnings, _SaidInResult, _setup_logging, build_parser

    args = build_parser().parse_args(argv)
    assert _prints_warnings(args) is filtered
    root, terminal = logging.getLogger(), logging.StreamHandler(sys.stderr)
    root.addHandler(terminal)
    try:
        _setup_logging(logging.WARNING, said_in_result=_prints_warnings(args))
        assert any(isinstance(f, _SaidInResult) for f in terminal.filters) is filtered
        # a handler capturing records (a test's, an embedding program's) still gets every one
        assert not any(isinstance(f, _SaidInResult) for f in caplog.handler.filters)
        _setup_logging(logging.WARNING)  # main() may run again in this process: the filter is replaced, not added
        assert not any(isinstance(f, _SaidInResult) for f in terminal.filters)
    finally:
        root.removeHandler(terminal)


def test_a_warm_cache_still_says_the_rate_is_the_videos(demo_video, tmp_path):
    cache = str(tmp_path / "c.sqlite")
    _cli("describe", str(demo_video[0]), "--fps", "100", "--cache", cache, "-o", str(tmp_path / "a.jsonl"))
    done = _cli("describe", str(demo_video[0]), "--fps", "100", "--cache", cache, "-o", str(tmp_path / "b.jsonl"))
    assert "from the description cache" in done.stderr
    assert sum(SAID in line for line in done.stderr.splitlines()) == 1, done.stderr  # before: nothing said
