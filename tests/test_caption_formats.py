"""Captions from other tools (VTG-GPT clips, per-second JSON, CSV) read as vidground descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frame_describer import FrameDescription, read_descriptions, write_descriptions
from frame_describer.caption_formats import MAX_LINE_BYTES, detect_format, video_id_from_path
from vidground.errors import ConfigurationError, InputError
from pipelines import ground, load_descriptions
from pipelines.cli import main
from pipelines.runs import RunConfig, find_descriptions, read_jsonl, run_eval
from temporal_reasoner import BaseReasoner, GroundingResult, Interval, reasoners

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def vtggpt(path: Path, texts: list[str], moments: list[int] | None = None) -> Path:
    moments = list(range(len(texts))) if moments is None else moments
    path.write_text("".join(json.dumps({"moment": m, "description": t}) + "\n" for m, t in zip(moments, texts)))
    return path


def seconds_json(path: Path, texts: list[str]) -> Path:
    path.write_text(json.dumps({str(k): t for k, t in enumerate(texts)}))
    return path


def bounds(described) -> list[tuple[float, float]]:
    return [(e.start, e.end) for e in described.transcript(merge=False).entries]


# ------------------------------------------------------------------------------------- each format

def test_vtggpt_clips_become_centred_descriptions_whose_spans_are_the_clips(tmp_path):
    path = vtggpt(tmp_path / "vid.jsonl", [f"caption {i}" for i in range(75)])
    d = load_descriptions(path)
    assert [x.t for x in d.descriptions[:2]] == [1.0, 3.0] and d.descriptions[-1].t == 149.0
    assert d.step == 2.0 and d.duration == 150.0 and d.duration_inferred
    spans = bounds(d)
    assert spans[0] == (0.0, 2.0) and spans[1] == (2.0, 4.0) and spans[-1] == (148.0, 150.0)
    assert spans == [(2.0 * i, 2.0 * i + 2.0) for i in range(75)]
    short = load_descriptions(path, clip_seconds=0.5)
    assert short.descriptions[0].t == 0.25 and short.duration == 37.5 and bounds(short)[-1] == (37.0, 37.5)
    assert load_descriptions(path, duration=151.0).duration_inferred is False  # a known duration wins


def test_seconds_json_keys_are_frame_instants(tmp_path):
    path = seconds_json(tmp_path / "123_cap.json", [f"second {k}" for k in range(10)])
    d = load_descriptions(path)
    assert [x.t for x in d.descriptions] == [float(k) for k in range(10)]
    assert d.step == 1.0 and d.duration == 10.0 and d.duration_inferred
    spans = bounds(d)
    assert spans[0] == (0.0, 0.5) and spans[1] == (0.5, 1.5) and spans[-1] == (8.5, 10.0)
    half = load_descriptions(path, clip_seconds=0.5)
    assert half.descriptions[-1].t == 4.5 and half.step == 0.5 and half.duration == 5.0
    # keys in any order (a JSON object is unordered) and pretty-printed files
    pretty = tmp_path / "p.json"
    pretty.write_text(json.dumps({"2": "c", "0": "a", "1": "b"}, indent=2))
    assert [x.text for x in read_descriptions(pretty)] == ["a", "b", "c"]


def test_csv_points_and_clips(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_text('t,text,camera\n0,"a door, closed",A\n1.5,a door opens,B\n3,"she says ""hi""\nand leaves",A\n')
    descs = read_descriptions(plain)
    assert [(x.t, x.text) for x in descs] == [(0.0, "a door, closed"), (1.5, "a door opens"),
                                              (3.0, 'she says "hi"\nand leaves')]
    assert descs[0].model_extra == {"camera": "A"}  # extra columns are kept
    d = load_descriptions(plain)
    assert d.step == 1.5 and d.duration == 4.5 and d.duration_inferred  # like vidground JSONL without metadata
    headerless = tmp_path / "b.csv"
    headerless.write_text("0,first\n1,second\n")
    assert [x.t for x in read_descriptions(headerless)] == [0.0, 1.0]
    clips = tmp_path / "c.csv"
    clips.write_text("start,end,text\n0,4,one\n4,8,two\n8,12,three\n")
    d = load_descriptions(clips)
    assert [x.t for x in d.descriptions] == [2.0, 6.0, 10.0] and d.step == 4.0 and d.duration == 12.0
    assert bounds(d) == [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]
    noheader_clips = tmp_path / "d.txt"
    noheader_clips.write_text("0,2,one\n2,4,two\n")
    assert [x.t for x in read_descriptions(noheader_clips)] == [1.0, 3.0]


def test_vidground_files_read_as_before(tmp_path):
    path = tmp_path / "v.jsonl"
    write_descriptions(path, [FrameDescription(t=2, text="b"), FrameDescription(t=0, text="a", camera="A")],
                       duration=3.0, step=1.0)
    assert detect_format(path) == "vidground"
    descs = read_descriptions(path)
    assert [(x.t, x.text) for x in descs] == [(0.0, "a"), (2.0, "b")]  # sorted, as before
    assert descs[0].model_extra == {"duration": 3.0, "step": 1.0, "camera": "A"}
    d = load_descriptions(path)
    assert d.duration == 3.0 and not d.duration_inferred


def test_auto_detection(tmp_path):
    cases = {
        "x.jsonl": '{"moment": 0, "description": "a"}\n',
        "x_cap.json": '{"0": "a", "1": "b"}',
        "pretty.json": '{\n  "0": "a"\n}\n',
        "x.csv": "t,text\n0,a\n",
        "noext": "0,a\n1,b\n",
        "v.jsonl": '{"video": "v", "t": 0, "text": "a"}\n',
        "v.descriptions.jsonl": '\n{"t": 0, "text": "a", "moment": 3}\n',
    }
    expected = {"x.jsonl": "vtggpt", "x_cap.json": "seconds-json", "pretty.json": "seconds-json", "x.csv": "csv",
                "noext": "csv", "v.jsonl": "vidground", "v.descriptions.jsonl": "vidground"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert detect_format(tmp_path / name) == expected[name], name
        assert read_descriptions(tmp_path / name)[0].text == "a"
    # an explicit format overrides detection, and the wrong one says what is missing
    with pytest.raises(InputError, match=r"x\.jsonl:1: missing key\(s\) t, text"):
        read_descriptions(tmp_path / "x.jsonl", format="vidground")
    with pytest.raises(ConfigurationError, match="unknown descriptions format 'ass'"):  # SRT and WebVTT are read (FX-Z2)
        read_descriptions(tmp_path / "x.jsonl", format="ass")
    with pytest.raises(ConfigurationError, match="clip_seconds applies only to vtggpt and seconds-json"):
        read_descriptions(tmp_path / "x.csv", clip_seconds=2)
    with pytest.raises(ConfigurationError, match="positive"):
        read_descriptions(tmp_path / "x.jsonl", clip_seconds=0)


def test_video_ids_from_file_names(tmp_path):
    assert video_id_from_path("a/10030609934_cap.json") == "10030609934"
    assert video_id_from_path("-4Mlqc7PbZY_60.0_210.0.jsonl") == "-4Mlqc7PbZY_60.0_210.0"
    assert video_id_from_path("k.descriptions.jsonl") == "k" and video_id_from_path("_cap.json") == "_cap"
    for name in ("A1_cap.json", "B2.csv", "C3.jsonl", "D4_cap.json"):
        (tmp_path / name).write_text("{}")
    found, missing = find_descriptions(["A1", "B2", "C3", "D4", "D4_cap", "E5"], tmp_path)
    assert {k: p.name for k, p in found.items()} == {"A1": "A1_cap.json", "B2": "B2.csv", "C3": "C3.jsonl",
                                                     "D4": "D4_cap.json", "D4_cap": "D4_cap.json"}
    assert missing == ["E5"]


# --------------------------------------------------------------------------------------- bad input

BAD = [
    # (name, content, format, message pattern; the file name is checked by every case)
    ("gap.jsonl", [(0, "a"), (1, "b"), (4, "c")], "vtggpt", r":3: moment 4 follows moment 1: moment\(s\) 2-3 missing"),
    ("dup.jsonl", [(0, "a"), (1, "b"), (1, "c")], "vtggpt", r":3: duplicate moment 1"),
    ("order.jsonl", [(0, "a"), (1, "b"), (2, "c"), (0, "d")], "vtggpt", r":4: moment 0 out of order"),
    ("late.jsonl", [(1, "a")], "vtggpt", r":1: moment 1 is the first: moment\(s\) 0 missing"),
    ("empty-text.jsonl", [(0, "a"), (1, "  ")], "vtggpt", r":2: 'description' is empty"),
    ("neg.jsonl", [(0, "a"), (-1, "b")], "vtggpt", r":2: 'moment' must be a whole number >= 0, got -1"),
    ("float.jsonl", [(0, "a"), (1.5, "b")], "vtggpt", r":2: 'moment' must be a whole number >= 0, got 1.5"),
    ("notstr.jsonl", [(0, 5)], "vtggpt", r":1: 'description' must be a string, got int"),
    # it said "keys must run 0..2 without gaps; the largest is 3": the range of a key count, not the file's keys
    ("gap_cap.json", {"0": "a", "1": "b", "3": "c"}, "seconds-json", r"key '2' is missing \(1 of the keys 0\.\.3 missing in all"),
    ("gaps_cap.json", {"0": "a", "4": "b", "9": "c"}, "seconds-json", r"key '1' is missing \(7 of the keys 0\.\.9 missing in all"),
    ("word_cap.json", {"0": "a", "one": "b"}, "seconds-json", r"key 'one' is not a whole number"),
    ("neg_cap.json", {"-1": "a", "0": "b"}, "seconds-json", r"key '-1' is a negative index"),
    ("frac_cap.json", {"0": "a", "0.5": "b"}, "seconds-json", r"key '0.5' is not a whole number"),
    ("blank_cap.json", {"0": "a", "1": ""}, "seconds-json", r"key '1': the caption is empty"),
    ("obj_cap.json", {"0": {"text": "a"}}, "seconds-json", r"key '0': the caption must be a string, got an object"),
    ("list_cap.json", ["a", "b"], "seconds-json", r'expected one JSON object'),
    ("dup.csv", "t,text\n0,a\n1,b\n1,c\n", "csv", r":4: duplicate time 1 s"),
    ("neg.csv", "0,a\n-1,b\n", "csv", r":2: 't' must be a finite number of seconds >= 0, got '-1'"),
    ("nan.csv", "t,text\n0,a\nnan,b\n", "csv", r":3: 't' must be a finite number of seconds >= 0, got 'nan'"),
    ("inf.csv", "t,text\ninf,b\n", "csv", r":2: 't' must be a finite number"),
    ("word.csv", "t,text\n0,a\nlater,b\n", "csv", r":3: 't' must be a number of seconds, got 'later'"),
    ("empty-text.csv", "t,text\n0,a\n1,\n", "csv", r":3: text is empty"),
    ("commas.csv", "t,text\n0,a, b\n", "csv", r":2: 3 fields, expected 2 \(t,text\); quote text"),
    ("header.csv", "when,what\n0,a\n", "csv", r":1: header 'when,what': expected columns"),
    ("quote.csv", 't,text\n0,"a"b\n', "csv", r":2: bad CSV"),
    ("clip-gap.csv", "start,end,text\n0,2,a\n3,5,b\n", "csv", r":3: clip starts at 3 s but the previous one ended at 2 s: a gap"),
    ("clip-len.csv", "start,end,text\n0,2,a\n2,5,b\n", "csv", r":3: clip length 3 s differs from 2 s"),
    ("clip-rev.csv", "start,end,text\n2,1,a\n", "csv", r":2: clip \[2, 1\) ends before it starts"),
]


def _write(path: Path, content) -> None:
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"moment": m, "description": t}) + "\n" for m, t in content))
    else:
        path.write_text(json.dumps(content))


@pytest.mark.parametrize("name,content,fmt,pattern", BAD, ids=[c[0] for c in BAD])
def test_bad_input_names_the_file_and_line(tmp_path, name, content, fmt, pattern):
    path = tmp_path / name
    _write(path, content)
    assert detect_format(path) == fmt
    with pytest.raises(InputError, match=pattern) as exc:
        read_descriptions(path)
    assert str(exc.value).startswith(str(path) + ":") and exc.value.path == str(path)


@pytest.mark.parametrize("fmt", ["auto", "vidground", "vtggpt", "seconds-json", "csv"])
def test_empty_binary_and_huge_files(tmp_path, fmt):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(InputError, match=r"empty\.jsonl: no (captions|descriptions) \(the file is empty\)"):
        read_descriptions(empty, format=fmt)
    binary = tmp_path / "x.jsonl"  # a PNG under a caption file's name
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"x\.jsonl(:1)?: (a NUL byte|not UTF-8)"):
        read_descriptions(binary, format=fmt)
    if fmt == "seconds-json":
        return  # one JSON document: bounded by MAX_JSON_BYTES instead (below)
    huge = tmp_path / "h.jsonl"
    huge.write_text('{"moment": 0, "description": "' + "x" * (MAX_LINE_BYTES + 10) + '"}\n')
    with pytest.raises(InputError, match=rf"h\.jsonl:1: line longer than {MAX_LINE_BYTES} bytes"):
        read_descriptions(huge, format=fmt)


def test_seconds_json_size_bound_and_bad_json(tmp_path, monkeypatch):
    import frame_describer.caption_formats as cf

    path = seconds_json(tmp_path / "v_cap.json", ["a"] * 100)
    monkeypatch.setattr(cf, "MAX_JSON_BYTES", 100)
    with pytest.raises(InputError, match=r"v_cap\.json: \d+ bytes; a seconds-json file is read whole"):
        read_descriptions(path)
    monkeypatch.undo()
    path.write_text('{\n"0": "a",\n"1": "b",\n}')
    with pytest.raises(InputError, match=r"v_cap\.json:4: not valid JSON"):
        read_descriptions(path)
    path.write_text('{"0": "a", "1": "b", "01": "c"}')
    with pytest.raises(InputError, match=r"key '01': duplicate frame index 1"):
        read_descriptions(path)
    path.write_text('{"0": "a", "0": "b"}')  # json.loads alone would keep only the last
    with pytest.raises(InputError, match=r"key '0': duplicate frame index 0"):
        read_descriptions(path)


def test_imported_keys_may_not_clash(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"moment": 0, "description": "a", "step": 5}\n')
    with pytest.raises(InputError, match=r"c\.jsonl: key\(s\) step would be overwritten"):
        read_descriptions(path)
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"moment": 0, "description": "a", "score": 0.5}\n')
    assert read_descriptions(ok)[0].model_extra["score"] == 0.5  # other keys are kept


@pytest.mark.slow
def test_reading_is_linear_not_quadratic(tmp_path):
    """Count the work, not the time: a long file is read in one pass of bounded lines."""
    n = 20_000
    path = vtggpt(tmp_path / "long.jsonl", ["the same caption"] * n)
    d = load_descriptions(path)
    assert len(d.descriptions) == n and d.duration == 2.0 * n
    big = seconds_json(tmp_path / "big_cap.json", ["c"] * n)
    assert len(read_descriptions(big)) == n
    gap = tmp_path / "sparse_cap.json"
    gap.write_text(json.dumps({"0": "a", "999999999999": "b"}))  # the gap check allocates per key, not per index
    with pytest.raises(InputError, match="key '1' is missing"):
        read_descriptions(gap)


# ---------------------------------------------------------------------------------- ground and eval

class EntryReasoner(BaseReasoner):
    """Predicts the transcript span whose text shares the most words with the query."""

    name = "entry-reasoner"

    def __init__(self, arg: str | None = None, **_: object):
        pass

    def ground(self, query, transcript):
        words = set(query.lower().split())
        best = max(transcript.entries, key=lambda e: len(words & set(e.text.lower().split())))
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=best.start, end=best.end, score=1.0)], reasoner=self.name)


reasoners.register("entry-reasoner", EntryReasoner)


def test_ground_reads_captions(tmp_path):
    texts = ["a dog runs"] * 3 + ["a cat sleeps on a sofa"] * 2 + ["a dog runs"] * 5
    path = vtggpt(tmp_path / "v.jsonl", texts)
    r = ground(query="cat sleeps sofa", descriptions=path, reasoner="entry-reasoner")
    assert (r.intervals[0].start, r.intervals[0].end) == (6.0, 10.0) and r.duration == 20.0 and r.duration_inferred
    r = ground(query="cat sleeps sofa", descriptions=path, reasoner="entry-reasoner", clip_seconds=1)
    assert (r.intervals[0].start, r.intervals[0].end) == (3.0, 5.0) and r.duration == 10.0
    with pytest.raises(ConfigurationError, match="apply to descriptions="):
        ground("video.mp4", "q", descriptions_format="vtggpt")
    with pytest.raises(ConfigurationError, match="apply to a descriptions file"):
        load_descriptions([FrameDescription(t=0, text="a")], format="csv")


def test_eval_over_a_folder_of_vtggpt_captions(tmp_path):
    actions = ["open door", "drink coffee", "read book", "wash dishes", "sit chair"]
    desc = tmp_path / "captions"
    desc.mkdir()
    queries = []
    for v in range(3):
        vid = f"vid{v}_60.0_210.0"
        vtggpt(desc / f"{vid}.jsonl", [f"person {actions[(i + v) % 5]}" for i in range(5)])  # 5 clips of 2 s
        for k in range(2):
            queries.append({"qid": f"{vid}-{k}", "video": vid, "query": f"the person {actions[(k + v) % 5]}",
                            "duration": 10.0, "windows": [[2.0 * k, 2.0 * k + 2.0]]})
    ds = tmp_path / "q.jsonl"
    ds.write_text("".join(json.dumps(q) + "\n" for q in queries))
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="entry-reasoner")
    s = run_eval(config, tmp_path / "run")
    assert s.ran == 6 and s.failed == 0 and not s.missing_videos
    assert s.metrics["R1@0.7"] == 100.0 and s.metrics["mIoU"] == pytest.approx(100.0)
    videos = read_jsonl(tmp_path / "run" / "videos.jsonl")
    assert {(v["step"], v["duration"]) for v in videos} == {(2.0, 10.0)}
    first = read_jsonl(tmp_path / "run" / "transcripts" / "vid0_60.0_210.0.jsonl")[0]
    assert (first["t"], first["text"]) == (1.0, "person open door")
    # the format and clip length are part of what a resumed run must match
    with pytest.raises(ConfigurationError, match=r"clip_seconds: None -> 1\.0"):
        run_eval(RunConfig(**{**config.__dict__, "clip_seconds": 1.0}), tmp_path / "run")
    with pytest.raises(ConfigurationError, match=r"descriptions_format: 'auto' -> 'csv'"):
        run_eval(RunConfig(**{**config.__dict__, "descriptions_format": "csv"}), tmp_path / "run")
    old = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in ("descriptions_format", "clip_seconds"):  # a folder written before these settings existed
        del old[key]
    (tmp_path / "run" / "config.json").write_text(json.dumps(old))
    assert run_eval(config, tmp_path / "run").already_done == 6
    # an explicit wrong format fails each video's queries with the file and line, and the run goes on
    bad = run_eval(RunConfig(**{**config.__dict__, "descriptions_format": "vidground"}), tmp_path / "bad")
    assert bad.failed == 6
    errors = [r["error"]["message"] for r in read_jsonl(tmp_path / "bad" / "results.jsonl")]
    assert all(".jsonl:1: missing key(s) t, text" in e for e in errors)


def test_eval_config_checks_the_caption_options(tmp_path):
    base = dict(dataset="jsonl", dataset_path="q.jsonl", reasoner="entry-reasoner")
    with pytest.raises(ConfigurationError, match="apply to --descriptions DIR only"):
        RunConfig(**base, videos="v", clip_seconds=2.0).check()
    with pytest.raises(ConfigurationError, match="unknown descriptions format"):
        RunConfig(**base, descriptions="d", descriptions_format="ass").check()
    with pytest.raises(ConfigurationError, match="clip_seconds applies only"):
        RunConfig(**base, descriptions="d", descriptions_format="csv", clip_seconds=2.0).check()
    with pytest.raises(ConfigurationError, match="positive"):
        RunConfig(**base, descriptions="d", clip_seconds=-1.0).check()


# ---------------------------------------------------------------------------------------- the CLI

def test_import_captions_cli(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    a = vtggpt(tmp_path / "in" / "A_60.0_210.0.jsonl", ["x", "y", "z"])
    b = seconds_json(tmp_path / "in" / "123_cap.json", ["p", "q"])
    out = tmp_path / "out"
    assert main(["import-captions", str(a), str(b), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 descriptions, step 2 s, 6 s (inferred)" in printed and "2 descriptions, step 1 s" in printed
    rows = [json.loads(line) for line in (out / "A_60.0_210.0.jsonl").read_text().splitlines()]
    assert [(r["t"], r["video"], r["duration"], r["step"], r["duration_inferred"]) for r in rows] == \
        [(1.0, "A_60.0_210.0", 6.0, 2.0, True), (3.0, "A_60.0_210.0", 6.0, 2.0, True), (5.0, "A_60.0_210.0", 6.0, 2.0, True)]
    again = load_descriptions(out / "123.jsonl")  # a converted file reads back the same
    assert again.video == "123" and again.duration == 2.0 and again.duration_inferred and again.step == 1.0
    assert main(["import-captions", str(a), "--clip-seconds", "4", "-o", str(tmp_path / "one.jsonl")]) == 0
    assert load_descriptions(tmp_path / "one.jsonl").duration == 12.0
    capsys.readouterr()
    # errors: one line, exit 1, naming the file and line
    bad = vtggpt(tmp_path / "in" / "bad.jsonl", ["x", "y"], moments=[0, 2])
    assert main(["import-captions", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: moment 2 follows moment 0" in err and not (out / "bad.jsonl").exists()
    for argv, needle in [([str(a), str(b), "-o", str(tmp_path / "f.jsonl")], "2 inputs need a folder"),
                         ([str(a), "-o", str(a.parent)], "would be overwritten by its own conversion"),
                         ([str(b), str(b), "-o", str(out)], "would both be written"),
                         ([str(b), "--format", "csv", "--clip-seconds", "2", "-o", str(out)], "clip_seconds applies only"),
                         # an existing file not named .jsonl: "out/ID.jsonl: cannot write here (Not a directory)" before
                         ([str(a), str(b), "-o", str(b)], f"-o {b} is a file: give a folder for the converted files")]:
        assert main(["import-captions", *argv]) == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, (argv, err)


def test_ground_cli_reads_captions(tmp_path, capsys):
    path = vtggpt(tmp_path / "v.jsonl", ["a dog runs", "a cat sleeps on a sofa", "a dog runs"])
    assert main(["ground", "--descriptions", str(path), "--reasoner", "entry-reasoner", "--json", "cat sofa"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["intervals"][0]["start"], data["intervals"][0]["end"]) == (2.0, 4.0) and data["duration"] == 6.0
    assert main(["ground", "--descriptions", str(path), "--descriptions-format", "vtggpt", "--clip-seconds", "1",
                 "--reasoner", "entry-reasoner", "--json", "cat sofa"]) == 0
    best = json.loads(capsys.readouterr().out)["intervals"][0]
    assert (best["start"], best["end"]) == (1.0, 2.0)
    assert main(["ground", "--descriptions", str(path), "--descriptions-format", "csv", "cat sofa"]) == 1
    assert f"{path}:1:" in capsys.readouterr().err


# ------------------------------------------------------------------------------- real shared files

@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared data folder")
def test_real_caption_files():
    qvh = sorted((SHARED / "qvhighlights" / "captions-minigptv2-val-dev").glob("*.jsonl"))[:2]
    nqa = sorted((SHARED / "nextgqa" / "captions-1fps-val-dev").glob("*_cap.json"))[:1]
    if len(qvh) < 2 or not nqa:
        pytest.skip("caption sets not present")
    durations = {json.loads(line)["vid"]: json.loads(line)["duration"]
                 for line in (SHARED / "qvhighlights" / "highlight_val_release.jsonl").read_text().splitlines()}
    for path in qvh:
        d = load_descriptions(path)
        n = sum(1 for line in path.read_text().splitlines() if line.strip())
        assert detect_format(path) == "vtggpt" and len(d.descriptions) == n
        assert d.descriptions[0].t == 1.0 and d.step == 2.0 and d.duration == 2.0 * n
        assert d.duration <= durations[path.stem] and bounds(d)[-1] == (2.0 * n - 2.0, 2.0 * n)
    gsub = json.loads((SHARED / "nextgqa" / "gsub_val.json").read_text())
    path = nqa[0]
    d = load_descriptions(path)
    keys = json.loads(path.read_text())
    assert detect_format(path) == "seconds-json" and [x.t for x in d.descriptions] == [float(k) for k in range(len(keys))]
    assert d.descriptions[-1].t <= gsub[video_id_from_path(path)]["duration"]  # frames sampled within the video


def test_a_clip_length_that_puts_captions_past_any_video_is_an_input_error(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text('{"moment": 0, "description": "a"}\n{"moment": 1, "description": "b"}\n')
    with pytest.raises(InputError, match=r"v.jsonl: caption 0 at 5e\+08 s \(clips of 1e\+09 s\): t: time 5e\+08 s is "
                                         r"past any video's length") as err:  # it was an internal pydantic ValidationError
        read_descriptions(path, clip_seconds=1e9)
    assert "\n" not in str(err.value)
