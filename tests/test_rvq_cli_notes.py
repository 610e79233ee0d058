"""RV-Q's command-line findings: an alias of a local reasoner is not said to be billed; an error line's control
characters are escaped (a file named with an ESC sequence recoloured the terminal)."""

from __future__ import annotations

import argparse

import pytest

from pipelines import cli


@pytest.mark.parametrize("reasoner, remote", [("offline", False), ("similarity", False), ("embedding", False),
                                              ("vtggpt", False), ("openai:gpt-4o", True), ("my-plugin", True)])
def test_an_alias_of_a_local_reasoner_is_not_remote(reasoner, remote):
    assert cli._remote_reasoner(argparse.Namespace(reasoner=reasoner, reasoner_opt=[])) is remote


def test_an_error_lines_control_characters_are_escaped(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ground", "--descriptions", "nofile\x1b[31m.jsonl", "q"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "nofile\\x1b[31m.jsonl" in err


def test_eval_refuses_top_k_given_twice_as_ground_does(capsys, tmp_path):
    """RV-Q: eval ran with --top-k 2 and --reasoner-opt top_k=3 (2 intervals each, exit 0) where ground refuses."""
    code = cli.main(["eval", "jsonl", "--dataset-file", str(tmp_path / "q.jsonl"), "--descriptions", str(tmp_path),
                     "--top-k", "2", "--reasoner-opt", "top_k=3", "--out", str(tmp_path / "run")])
    assert code == 1 and "both say how many intervals" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, opt, command", [(["--fps", "2", "describe", "V"], "--fps", "describe"),
                                                (["--describer", "cv", "describe", "V"], "--describer", "describe"),
                                                (["--top-k", "2", "ground", "V", "q"], "--top-k", "ground"),
                                                (["--json", "ground", "V", "q"], "--json", "ground")])
def test_a_commands_option_before_the_command_is_said_to_be_one(argv, opt, command, capsys):
    """RV-Q: an option taking a value, given before the command, got argparse's "argument COMMAND: invalid choice:
    '2'" (only flags got the note)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{opt} is an option of vidground {command}: put it after the command" in err
    assert "invalid choice" not in err


def test_score_of_a_runs_results_takes_the_last_result_of_each_query(tmp_path, capsys):
    """U21: a resume that found a query's inputs changed ran it again and left the old result in results.jsonl,
    superseded; eval/report/compare read the last, score took the first (76.47 where the run said 70.59)."""
    import json

    from _helpers_eval import register_fakes, write_toy_dataset
    from pipelines.runs import RunConfig, run_eval

    register_fakes()
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    out = tmp_path / "run"
    run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner"), out)
    results = out / "results.jsonl"

    def score(path) -> tuple[str, str]:
        assert cli.main(["score", str(path), "--dataset", "jsonl", "--dataset-file", str(ds)]) == 0
        said = capsys.readouterr()
        return said.out.split("provenance:")[0], said.err

    before, _ = score(results)
    lines = results.read_text().splitlines()
    old = json.loads(lines[0])
    old["intervals"] = [{"start": 0.0, "end": 0.1, "score": 1.0}]  # the superseded result: a miss
    results.write_text("\n".join([json.dumps(old), *lines]) + "\n")
    after, err = score(results)
    assert after == before  # the last result of the query counts, as the run reads it
    assert "1 superseded result(s) left out" in err


def test_compare_says_when_a_run_has_no_result_for_common_queries(tmp_path, capsys):
    """U21: a run killed before it wrote its results (an empty results.jsonl) compared as 0.00 everywhere, with
    every query 'IoU 0.48 -> 0.00' and nothing said."""
    from _helpers_eval import register_fakes, write_toy_dataset
    from pipelines.runs import RunConfig, run_eval

    register_fakes()
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    run_eval(config, tmp_path / "a")
    run_eval(config, tmp_path / "b")
    (tmp_path / "b" / "results.jsonl").write_text("")  # killed before any result was written
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert f"run B ({tmp_path / 'b'}) has no result for 4 of the 4 common queries" in out
    assert "run A (" not in out


def test_a_resume_with_another_seed_says_the_selection_changed(tmp_path, caplog):
    """U21: --seed 5 on a run started with seed 0 replaced the selection silently (the 17 earlier results dropped
    out of the metrics, 'config.json' then said seed 5)."""
    import logging

    from _helpers_eval import register_fakes, write_toy_dataset
    from pipelines.runs import RunConfig, run_eval

    register_fakes()
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=4, per_video=3)

    def config(seed: int) -> RunConfig:
        return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner",
                         limit=4, seed=seed)

    run_eval(config(0), tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="vidground"):
        run_eval(config(0), tmp_path / "run")
    assert "selects other queries" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="vidground"):
        run_eval(config(5), tmp_path / "run")
    assert "started with --seed 0; --seed 5 selects other queries" in caplog.text
