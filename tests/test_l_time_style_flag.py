"""--time-style with a reasoner that reads no times says the flag is for the chat reasoners."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.eval_cli import with_time_style
from vidground.errors import ConfigurationError

from _helpers_eval import cli, register_fakes, write_toy_dataset

register_fakes()


@pytest.mark.parametrize("reasoner", [None, "embedding", "naive"])
def test_time_style_with_a_reasoner_that_reads_no_times_names_the_chat_reasoners(reasoner):
    """It said "reasoner 'embedding' has no option time_style", a flag the user never wrote."""
    with pytest.raises(ConfigurationError, match=r"--time-style applies to the chat reasoners \(openai:, hf:, "
                                                 r"llamacpp:\); reasoner '(embedding|naive)' reads no times"):
        with_time_style({}, "mmss", reasoner)


def test_time_style_is_still_taken_by_a_chat_reasoner():
    assert with_time_style({}, "mmss", "openai:gpt-4o-mini") == {"time_style": "mmss"}
    assert with_time_style({"x": 1}, None, "embedding") == {"x": 1}  # no flag: nothing checked


def test_ground_and_eval_say_so_on_the_command_line(tmp_path, capsys):
    desc = tmp_path / "d.jsonl"
    desc.write_text('{"t": 0, "text": "a dog runs", "duration": 4}\n{"t": 2, "text": "a cat", "duration": 4}\n')
    assert main(["ground", "--descriptions", str(desc), "a dog", "--time-style", "mmss"]) == 1
    err = capsys.readouterr().err
    assert "--time-style applies to the chat reasoners" in err and "has no option" not in err
    ds, descs = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    with pytest.raises(ConfigurationError, match="reasoner 'embedding' reads no times"):
        cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", descs, "--reasoner", "embedding",
            "--time-style", "frames", "--out", tmp_path / "run", "--no-report", "--quiet")
    assert not (tmp_path / "run").exists()
