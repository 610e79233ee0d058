"""Eval inputs and resumes (F2): one file per video, changed inputs noticed on resume, clip-length mismatches,
all-failed runs grouped by their error's pattern."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vidground.errors import InputError
from pipelines.datasets import find_videos
from pipelines.runs import RunConfig, find_descriptions, run_eval

from _helpers_eval import register_fakes, write_toy_dataset

register_fakes()


@pytest.fixture()
def toy(tmp_path):
    return write_toy_dataset(tmp_path / "data")


def cfg(ds, desc, **kw):
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), **{"reasoner": "fake-reasoner"} | kw)


# ------------------------------------------------------------------------------- one file per video

def test_an_exact_name_beside_a_cap_file_is_refused_naming_both(tmp_path):
    (tmp_path / "10030609934_cap.json").write_text("{}")
    (tmp_path / "10030609934.csv").write_text("t,text\n0,x\n")
    (tmp_path / "222.jsonl").write_text("{}")
    with pytest.raises(InputError, match=r"1 video\(s\) have more than one descriptions file \(10030609934: "
                                         r"10030609934\.csv, 10030609934_cap\.json\)"):
        find_descriptions(["10030609934", "222"], tmp_path)
    # a clash among videos not selected stops nothing
    found, missing = find_descriptions(["222", "333"], tmp_path)
    assert {k: p.name for k, p in found.items()} == {"222": "222.jsonl"} and missing == ["333"]


def test_a_stale_copy_in_a_subfolder_is_refused_not_taken(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "abc.jsonl").write_text("{}")
    (tmp_path / "a" / "abc.jsonl").write_text("{}")  # sorted first: it was the one used
    with pytest.raises(InputError, match=r"abc: a/abc\.jsonl, abc\.jsonl"):
        find_descriptions(["abc"], tmp_path)


def test_two_video_files_for_one_id_are_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("AAA.mp4", "sub/AAA.mkv", "v_BBB.mp4", "BBB.webm", "CCC.mp4"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=r"2 video\(s\) have more than one video file \(AAA: AAA\.mp4, "
                                         r"sub/AAA\.mkv; BBB: BBB\.webm, v_BBB\.mp4\)"):
        find_videos(["AAA", "BBB", "CCC"], tmp_path)
    assert find_videos(["CCC"], tmp_path)[0] == {"CCC": tmp_path / "CCC.mp4"}


def test_a_run_folder_under_the_descriptions_folder_is_not_searched(toy, tmp_path):
    """``--descriptions D --out D/runs/r1`` twice: the resume found each video's copy in r1/transcripts and refused
    ("4 video(s) have more than one descriptions file (vid0: runs/r1/transcripts/vid0.jsonl, vid0.jsonl)")."""
    ds, desc = toy
    assert run_eval(cfg(ds, desc), desc / "runs" / "r1").ran == 12
    again = run_eval(cfg(ds, desc), desc / "runs" / "r1")
    assert (again.already_done, again.ran) == (12, 0)
    # another run folder under it is left out too, a copy elsewhere in a subfolder still refused
    assert run_eval(cfg(ds, desc), tmp_path / "r2").ran == 12
    shutil.copytree(tmp_path / "r2", desc / "r2")
    assert run_eval(cfg(ds, desc), desc / "runs" / "r1").already_done == 12
    found, _ = find_descriptions(["vid0"], desc)
    assert found == {"vid0": desc / "vid0.jsonl"}
    (desc / "copies").mkdir()
    shutil.copy(desc / "vid0.jsonl", desc / "copies" / "vid0.jsonl")
    with pytest.raises(InputError, match=r"vid0: copies/vid0\.jsonl, vid0\.jsonl"):
        find_descriptions(["vid0"], desc)


def test_eval_with_two_files_for_one_video_writes_no_run(toy, tmp_path):
    ds, desc = toy
    shutil.copy(desc / "vid0.jsonl", desc / "vid0.csv")
    out = tmp_path / "run"
    with pytest.raises(InputError, match="vid0: vid0.csv, vid0.jsonl"):
        run_eval(cfg(ds, desc), out)
    assert not out.exists()


# ------------------------------------------------------------------------------- resume with changed inputs

def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_resume_reruns_the_queries_of_a_changed_descriptions_file_and_says_so(toy, tmp_path, caplog):
    ds, desc = toy
    out = tmp_path / "run"
    first = run_eval(cfg(ds, desc), out)
    assert first.ran == 12
    assert run_eval(cfg(ds, desc), out).ran == 0  # nothing changed: nothing runs
    rows = [json.loads(line) for line in (desc / "vid1.jsonl").read_text().splitlines()]
    _write_lines(desc / "vid1.jsonl", [r | {"text": "person juggles"} for r in rows])
    caplog.clear()
    again = run_eval(cfg(ds, desc), out)
    assert (again.already_done, again.ran) == (9, 3)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "the descriptions file of 1 video(s) (vid1: " in warned and "those 3 queries run again" in warned
    assert run_eval(cfg(ds, desc), out).ran == 0  # the new results are current
    provenance = json.loads((out / "provenance.json").read_text())
    shas = [inv["inputs"]["descriptions"]["sha256"] for inv in provenance["invocations"]]
    assert len(set(shas)) == 2 and shas[0] == shas[1] and shas[2] == shas[3]


def test_a_resume_reruns_the_queries_of_a_replaced_video(tmp_path, caplog):
    from _helpers_eval import render_toy_videos

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"])
    config = lambda: RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos),  # noqa: E731
                               describer="fake", reasoner="fake-reasoner", cache=str(tmp_path / "c.sqlite"))
    out = tmp_path / "run"
    assert run_eval(config(), out).ran == 6
    assert run_eval(config(), out).ran == 0
    render_toy_videos(tmp_path / "other", ["vid0"], n_frames=40)
    (tmp_path / "other" / "vid0.mp4").replace(videos / "vid0.mp4")
    caplog.clear()
    again = run_eval(config(), out)
    assert (again.already_done, again.ran) == (3, 3)
    assert "the video file of 1 video(s) (vid0: " in caplog.text
    assert "videos" in json.loads((out / "provenance.json").read_text())["invocations"][-1]["inputs"]


def test_an_input_not_recorded_then_or_unreadable_now_reruns_nothing(toy, tmp_path, monkeypatch, caplog):
    """A run made before results recorded their descriptions file's hash (inputs={"query": ...} only), resumed with
    code that records it, ran all 12 queries again; so did a descriptions file that could not be hashed on resume.
    Only an input hashed on both sides is compared."""
    from pipelines.provenance import FileHashes

    ds, desc = toy
    out = tmp_path / "run"
    assert run_eval(cfg(ds, desc), out).ran == 12
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(set(r["inputs"]) == {"query", "descriptions"} for r in rows)
    _write_lines(out / "results.jsonl", [r | {"inputs": {"query": r["inputs"]["query"]}} for r in rows])
    caplog.clear()
    assert (run_eval(cfg(ds, desc), out).already_done, "inputs changed" in caplog.text) == (12, False)
    real = FileHashes.sha
    monkeypatch.setattr(FileHashes, "sha", lambda self, f, **kw: None if Path(f).name == "vid1.jsonl"
                        else real(self, f, **kw))
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # every hash recorded again
    assert run_eval(cfg(ds, desc), out).ran == 0
    monkeypatch.setattr(FileHashes, "sha", real)
    rows = [json.loads(line) for line in (desc / "vid2.jsonl").read_text().splitlines()]
    _write_lines(desc / "vid2.jsonl", [r | {"text": "person juggles"} for r in rows])
    assert run_eval(cfg(ds, desc), out).ran == 3  # a hash on both sides that differs still reruns its queries


def test_unchanged_files_are_not_read_again_on_resume(toy, tmp_path):
    from pipelines.provenance import FileHashes

    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc), out)
    hashes = FileHashes(out / "inputs.json")
    assert [hashes.sha(desc / f"vid{i}.jsonl") for i in range(4)] and hashes.read == 0
    (desc / "vid2.jsonl").write_text((desc / "vid2.jsonl").read_text() + '{"t": 10.5, "text": "x"}\n')
    hashes.sha(desc / "vid2.jsonl")
    assert hashes.read == 1


def test_a_resume_with_other_ground_truth_warns_and_keeps_each_invocations_hash(toy, tmp_path, caplog):
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc), out)
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    rows[0]["windows"] = [[5.0, 7.0]]
    _write_lines(ds, rows)
    caplog.clear()
    again = run_eval(cfg(ds, desc), out)
    assert again.ran == 0  # the reasoner never sees the ground truth: nothing to run again
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "the ground truth of 1 query(ies) in this run changed since its last invocation (vid0-0;" in warned
    provenance = json.loads((out / "provenance.json").read_text())
    first, second = (inv["annotations"]["toy.jsonl"] for inv in provenance["invocations"])
    assert first != second and provenance["annotations"]["toy.jsonl"] == second


def test_a_changed_query_text_or_rephrasings_file_reruns_what_it_affects(toy, tmp_path, caplog):
    ds, desc = toy
    out = tmp_path / "run"
    reph = tmp_path / "reph.jsonl"
    _write_lines(reph, [{"query": "the person open door", "rephrased_query": ["someone opens a door"]}])
    config = lambda: cfg(ds, desc, reasoner="vtggpt", reasoner_options={"rephrasings": str(reph)})  # noqa: E731
    run_eval(config(), out)
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    rows[4]["query"] = "the person reads a newspaper"
    _write_lines(ds, rows)
    caplog.clear()
    assert run_eval(config(), out).ran == 1
    assert "the annotated query (text, duration or choices) of 1 query(ies) (vid1-1)" in caplog.text
    _write_lines(reph, [{"query": "the person open door", "rephrased_query": ["a door is opened"]}])
    caplog.clear()
    assert run_eval(config(), out).ran == 12
    assert f"the rephrasings file {reph}" in caplog.text


def test_a_resume_from_another_folder_names_the_path_to_give(toy, tmp_path, monkeypatch):
    from vidground.errors import ConfigurationError

    ds, desc = toy
    monkeypatch.chdir(desc.parent)
    out = tmp_path / "run"
    run_eval(cfg(ds.name, desc.name), out)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["invocations"][0]["cwd"] == str(desc.parent)
    assert provenance["invocations"][0]["paths"]["descriptions"] == str(desc)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=f"--descriptions descriptions is not found from {tmp_path}: this "
                                                 f"run was started in {desc.parent}, where it is {desc}"):
        run_eval(cfg(ds, desc.name), out)
    assert run_eval(cfg(ds, desc), out).ran == 0  # the absolute path resumes it


def test_the_same_dataset_file_through_dotdot_or_a_link_resumes_the_run(toy, tmp_path, monkeypatch):
    """``--dataset-file data/toy.jsonl``, then ``--dataset-file data/../data/toy.jsonl``: the resume was refused
    ("holds a run with other settings (dataset_path: ...)"), the absolute paths compared with their ``..`` kept."""
    from vidground.errors import ConfigurationError

    ds, desc = toy
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert run_eval(cfg("data/toy.jsonl", desc), out).ran == 12
    assert run_eval(cfg("data/../data/toy.jsonl", desc), out).already_done == 12
    (tmp_path / "link").symlink_to(tmp_path / "data")
    assert run_eval(cfg("link/toy.jsonl", desc), out).already_done == 12
    shutil.copy(ds, tmp_path / "copy.jsonl")  # another file with the same content is another dataset file
    with pytest.raises(ConfigurationError, match="dataset_path"):
        run_eval(cfg("copy.jsonl", desc), out)


# ------------------------------------------------------------------------------- clip length and all-failed runs

def test_descriptions_spanning_half_the_annotated_duration_are_warned_naming_clip_seconds(toy, tmp_path, caplog):
    ds, desc = toy
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    _write_lines(ds, [r | {"duration": 20.0} for r in rows])  # the descriptions span 10 s of each
    for f in desc.glob("*.jsonl"):  # no duration of their own: inferred from the last time, as clips' are
        _write_lines(f, [{k: v for k, v in json.loads(line).items() if k != "duration"}
                         for line in f.read_text().splitlines()])
    run_eval(cfg(ds, desc), tmp_path / "run")
    assert ("the descriptions of 4 of the 4 videos described span much less than their annotated duration "
            "(vid0: 10 s of 20 s;") in caplog.text
    assert "check --clip-seconds" in caplog.text
    _write_lines(ds, rows)  # 10 s annotated: they fit
    caplog.clear()
    run_eval(cfg(ds, desc), tmp_path / "run3")
    assert "annotated duration" not in caplog.text


def test_failures_that_differ_only_in_their_numbers_are_one_cause():
    from pipelines.runs import error_pattern, no_result_cause

    errors = {("InputError", "duration 150s is shorter than the last description's time 223.5s"),
              ("InputError", "duration 128s is shorter than the last description's time 190.5s")}
    cause = no_result_cause(errors, ran=17, failed=17, any_ok=False)
    assert cause == {"type": "InputError", "message": "duration 128s is shorter than the last description's time "
                                                      "190.5s (and 1 more alike but for their numbers)"}
    assert error_pattern("a 1.5e-3 b 2") == "a # b #"
    assert no_result_cause(errors | {("InputError", "no frame descriptions")}, ran=17, failed=17, any_ok=False) is None


# ------------------------------------------------------------------------------- the Ctrl-C line

class _StopTakingExecutor:
    def run(self, tasks, config, stop=None):  # pragma: no cover - only its signature is read
        return iter(())


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("cli_describes", [False, True])
@pytest.mark.parametrize("describing", [False, True])
def test_the_first_ctrl_c_of_an_eval_says_one_sentence_fitting_the_run(describing, cli_describes, signum, capsys,
                                                                      monkeypatch):
    """Whatever the command line's handler says first (``vidground eval --descriptions``: "stopping (nothing is
    being described)"; it said so after any earlier command that described nothing, in the same process, and the
    eval's line came second: two lines, the test passing or failing by the order the tests ran in)."""
    import signal

    from pipelines import cli
    from pipelines.runs import _CtrlC
    from vidground import interrupts

    monkeypatch.setitem(cli._DESCRIBES, "frames", cli_describes)
    sig = getattr(signal, signum)
    before = signal.signal(sig, cli._on_interrupt)  # as under `vidground eval`
    try:
        ctrl_c = _CtrlC(_StopTakingExecutor(), describing=describing)
        assert ctrl_c.installed
        try:
            ctrl_c._handle(sig, None)
        finally:
            ctrl_c.restore()
    finally:
        signal.signal(sig, before)
        interrupts.INTERRUPTED.clear()
    err = capsys.readouterr().err
    head = interrupts.naming("vidground: stopping: ", sig)
    assert err.count("\n") == 1 and err.count(head) == 1 and err.count("second ") == 1, err
    assert ("frames being described" in err) == describing  # a --descriptions run describes nothing
    assert err.startswith(head + "no query " + ("or frame is begun" if describing else "is begun")), err


def test_the_coverage_note_names_videos_in_their_order_not_their_workers_finishing_order():
    # the videos' workers finish in any order: the note lists them sorted, so one run's log reads as the next one's
    from pipelines.runs import _Coverage
    notes = set()
    for order in (["vid0", "vid1", "vid2", "vid3"], ["vid3", "vid1", "vid0", "vid2"], ["vid2", "vid0", "vid3", "vid1"]):
        coverage = _Coverage(None)
        for video in order:
            coverage.check({"video": video, "duration": 10.0}, 20.0)
        notes.add(coverage.note())
    assert len(notes) == 1
    assert "(vid0: 10 s of 20 s; vid1: 10 s of 20 s; vid2: 10 s of 20 s; ...)" in notes.pop()
