"""import-captions converts a batch all or nothing: every input is checked before any is written (F2)."""

from __future__ import annotations

import contextlib

from pipelines.cli import main


def test_a_bad_file_among_many_converts_none_and_every_bad_one_is_named(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("t,text\n0,a\n1,b\n")
    gap = tmp_path / "gap.jsonl"
    gap.write_text('{"moment": 0, "description": "a"}\n{"moment": 1, "description": "b"}\n'
                   '{"moment": 4, "description": "c"}\n')
    clips = tmp_path / "clips.csv"  # unequal clips: refused too, and it was never reached
    clips.write_text("start,end,text\n0,2,a\n2,3,b\n3,5,c\n")  # a shorter last clip is read (FX-Z2)
    out = tmp_path / "out"
    assert main(["import-captions", str(good), str(gap), str(clips), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 of the 3 caption files cannot be converted, so none was written" in err
    assert f"{gap}:3: moment 4 follows moment 1" in err and f"{clips}:3: clip length 1 s differs from 2 s" in err
    assert not (out / "good.jsonl").exists()  # it was written before the error
    assert main(["import-captions", str(good), "-o", str(out)]) == 0
    assert (out / "good.jsonl").exists()


def test_a_destination_that_cannot_be_written_writes_none(tmp_path, capsys, monkeypatch):
    """out/b.jsonl a folder: a.jsonl was written, c never, and the error did not say so. Every destination is now
    checked first (each bad one named), and a write that fails late leaves no file of the batch."""
    from vidground import files

    inputs = []
    for name in ("a", "b", "c"):
        inputs.append(tmp_path / f"{name}.csv")
        inputs[-1].write_text("t,text\n0,x\n1,y\n")
    out = tmp_path / "out"
    (out / "b.jsonl").mkdir(parents=True)
    (out / "c.jsonl").write_text("kept\n")
    assert main(["import-captions", *map(str, inputs), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 of the 3 destinations cannot be written, so none was written" in err and f"{out / 'b.jsonl'}: is a " \
           "folder" in err
    assert not (out / "a.jsonl").exists() and (out / "c.jsonl").read_text() == "kept\n"
    (out / "b.jsonl").rmdir()
    real, opened = files.output_file, []

    @contextlib.contextmanager
    def full_disk_on_the_third(path):
        opened.append(path)
        with real(path) as fh:
            if len(opened) == 3:  # inside the real one: as a write failing with the disk full
                raise OSError(28, "No space left on device")
            yield fh

    monkeypatch.setattr(files, "output_file", full_disk_on_the_third)
    assert main(["import-captions", *map(str, inputs), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "none of the 3 files was written" in err
    assert sorted(p.name for p in out.iterdir()) == ["c.jsonl"] and (out / "c.jsonl").read_text() == "kept\n"
    assert len(opened) == 3
    monkeypatch.undo()
    assert main(["import-captions", *map(str, inputs), "-o", str(out)]) == 0
    assert [len((out / f"{n}.jsonl").read_text().splitlines()) for n in "abc"] == [2, 2, 2]
