"""import-captions converts a batch all or nothing: every input is checked before any is written (F2)."""

from __future__ import annotations

from pipelines.cli import main


def test_a_bad_file_among_many_converts_none_and_every_bad_one_is_named(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("t,text\n0,a\n1,b\n")
    gap = tmp_path / "gap.jsonl"
    gap.write_text('{"moment": 0, "description": "a"}\n{"moment": 1, "description": "b"}\n'
                   '{"moment": 4, "description": "c"}\n')
    clips = tmp_path / "clips.csv"  # unequal clips: refused too, and it was never reached
    clips.write_text("start,end,text\n0,2,a\n2,3,b\n")
    out = tmp_path / "out"
    assert main(["import-captions", str(good), str(gap), str(clips), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 of the 3 caption files cannot be converted, so none was written" in err
    assert f"{gap}:3: moment 4 follows moment 1" in err and f"{clips}:3: clip length 1 s differs from 2 s" in err
    assert not (out / "good.jsonl").exists()  # it was written before the error
    assert main(["import-captions", str(good), "-o", str(out)]) == 0
    assert (out / "good.jsonl").exists()
