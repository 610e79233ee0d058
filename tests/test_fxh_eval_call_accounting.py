"""An eval counts the describer calls it made, and keeps what it paid, with the long-video options.

- ``--strategy coarse-to-fine``: a search describes per query, so the video's record counted 0 calls ("describer
  calls: 0 made" while the server got 394 requests); each result now carries its search's calls and cache hits (per
  request made: frames an earlier query of the video described are not counted again).
- ``--skip-unchanged``: frames answered by the last one's description were counted as calls (72 made, 27 sent).
- ``ground --skip-unchanged --cache``: the frames line said "27 sent" on a second run that sent nothing.
- A Ctrl-C while a query (or a video) was describing dropped it, and its paid requests were missing from the run
  folder's cost; the Ctrl-C line said the query under way finished.

The describer and reasoner count every frame and request here (module counters), no clock is read, and the Ctrl-C
is a SIGINT the describer sends itself at a counted frame.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from _helpers_counting import counting_describer, static_video
from _helpers_eval import FakeReasoner, register_fakes
from frame_describer import describers
from pipelines import Session
from pipelines.cli import main
from pipelines.report import write_report
from pipelines.runs import RunConfig, RunInterrupted, read_jsonl, run_eval, run_totals
from temporal_reasoner import reasoners
from vidground import interrupts

register_fakes()

COUNTS = {"frames": 0, "reasoned": 0}
LOCK = threading.Lock()
#: the frame (1-based, counted over the test) at which the describer sends itself a SIGINT; None: never
CTRL_C_AT: dict[str, int | None] = {"frame": None}


Counting = counting_describer("fxh-counting", COUNTS, CTRL_C_AT)  # counts COUNTS["frames"]


class CountingReasoner(FakeReasoner):
    """The fake reasoner (1 request, $0.0005 a call), counting its calls."""

    name = "fxh-counting-reasoner"

    def ground(self, query: str, transcript: Any) -> Any:
        with LOCK:
            COUNTS["reasoned"] += 1
        return super().ground(query, transcript)


describers.register("fxh-counting", Counting)
reasoners.register("fxh-counting-reasoner", CountingReasoner)


@pytest.fixture(autouse=True)
def fresh_counts():
    COUNTS.update(frames=0, reasoned=0)
    CTRL_C_AT["frame"] = None
    yield
    CTRL_C_AT["frame"] = None


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return static_video(tmp_path_factory.mktemp("videos"))


def dataset(tmp_path: Path, n: int = 2) -> Path:
    path = tmp_path / "ds.jsonl"
    queries = ["frame at 10.0", "frame at 2.0", "frame at 17.0"][:n]
    path.write_text("".join(json.dumps({"qid": f"q{k}", "video": "static", "query": q, "duration": 20.0,
                                        "windows": [[8.0, 12.0]]}) + "\n" for k, q in enumerate(queries)))
    return path


def config(tmp_path: Path, videos: Path, **kw: Any) -> RunConfig:
    return RunConfig(dataset="jsonl", dataset_path=str(dataset(tmp_path, kw.pop("n", 2))), videos=str(videos),
                     describer="fxh-counting", reasoner="fxh-counting-reasoner", concurrency=1, **kw)


def test_a_coarse_to_fine_eval_counts_its_searches_describer_calls(tmp_path, videos):
    """Two queries of one video: the second takes the frames the first described (``known``), which are not calls
    again; the run counts the describer's frames exactly, in its summary, metrics.json and report.md. A rerun in a
    new folder with the same cache makes none: every frame the searches use is a cache hit."""
    cache = str(tmp_path / "c.sqlite")
    cfg = config(tmp_path, videos, search={"strategy": "coarse-to-fine"}, cache=cache)
    summary = run_eval(cfg, tmp_path / "run")
    made = COUNTS["frames"]
    results = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert made > 0 and sum(r["search"]["calls"] for r in results) == made
    assert results[1]["search"]["known"] > 0  # the frames shared by the two queries, paid once
    assert (summary.describe_calls, summary.describe_calls_now, summary.describe_saved) == (made, made, 0)
    write_report(tmp_path / "run", bootstrap=0, max_plots=0)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["describe_calls"] == made
    assert f"describer calls made: {made}, saved by the cache: 0" in (tmp_path / "run" / "report.md").read_text()

    again = run_eval(cfg, tmp_path / "again")
    assert COUNTS["frames"] == made  # nothing sent
    assert again.describe_calls == 0 and again.describe_saved == again.describe_saved_now > 0


def test_skip_unchanged_reuses_are_not_counted_as_calls(tmp_path, videos):
    """20 frames at 1 fps, 3 of them changed: 3 describer calls, not 20; with the cache warm, 0 calls and 3 hits."""
    cache = str(tmp_path / "c.sqlite")
    summary = run_eval(config(tmp_path, videos, skip_unchanged=3.0, cache=cache), tmp_path / "run")
    assert COUNTS["frames"] == 3 == summary.describe_calls == summary.describe_calls_now
    assert run_totals(tmp_path / "run")["requests"] == 3 + COUNTS["reasoned"]
    again = run_eval(config(tmp_path, videos, skip_unchanged=3.0, cache=cache), tmp_path / "again")
    assert COUNTS["frames"] == 3 and (again.describe_calls, again.describe_saved) == (0, 3)


def test_skip_unchanged_says_what_the_cache_answered(tmp_path, videos):
    """The second run sends nothing: ``sent`` is what reached the describer, ``cached`` what the cache gave (``sent``
    counted both: the same number twice); the uniform path and the search alike."""
    video = videos / "static.mp4"
    for strategy in (None, "coarse-to-fine"):
        records = []
        for _ in range(2):
            with Session(describer="fxh-counting", reasoner="fake-reasoner", skip_unchanged=3.0,
                         cache=str(tmp_path / f"{strategy}.sqlite"), search=strategy) as s:
                before = COUNTS["frames"]
                record = s.ground(video, "frame at 10.0").settings["skip_unchanged"]
                records.append((record, COUNTS["frames"] - before))
        (first, sent), (second, none) = records
        assert first["sent"] == sent > 0 and first["cached"] == 0 and none == 0
        assert (second["sent"], second["cached"], second["reused"]) == (0, sent, first["reused"])


def test_the_frames_line_says_what_the_cache_answered(tmp_path, videos, capsys):
    """``vidground ground --skip-unchanged --cache`` run twice said "3 sent" both times."""
    args = ["ground", str(videos / "static.mp4"), "frame at 10.0", "--describer", "fxh-counting", "--reasoner",
            "fake-reasoner", "--skip-unchanged", "3", "--cache", str(tmp_path / "c.sqlite")]
    shown = []
    for _ in range(2):
        assert main(args) == 0
        shown += [line for line in capsys.readouterr().out.splitlines() if line.startswith("frames:")]
    assert shown == ["frames:    skip-unchanged 3: 3 sent, 17 reused",
                     "frames:    skip-unchanged 3: 0 sent, 3 from the description cache, 17 reused"]
    assert COUNTS["frames"] == 3


@pytest.mark.parametrize("search, at", [(None, 4), ({"strategy": "coarse-to-fine"}, 24)],
                         ids=["uniform", "coarse-to-fine"])
def test_a_ctrl_c_while_describing_keeps_what_was_paid(tmp_path, videos, search, at, capsys):
    """A Ctrl-C at a counted frame: the video's describe (uniform, 4th frame) or the query's search (24th: in its
    first round, after the 20 frames of its sparse pass were reasoned on) stops there; the query is dropped (the
    resumed run asks it) and its frames are in the cache, so the resume does not send them again; the run folder's
    requests and cost are every request the describer and the reasoner were sent. The Ctrl-C line says so (it said
    the frames being described and the queries under way finish and are kept)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs Python's own SIGINT handler in the main thread")
    cache = str(tmp_path / "c.sqlite")
    cfg = config(tmp_path, videos, n=1, search=search, cache=cache, fps=2.0)
    CTRL_C_AT["frame"] = at
    try:
        with pytest.raises(RunInterrupted) as info:
            run_eval(cfg, tmp_path / "run")
    finally:
        interrupts.INTERRUPTED.clear()
    assert info.value.saved == 0 and read_jsonl(tmp_path / "run" / "results.jsonl") == []
    paid, reasoned = COUNTS["frames"], COUNTS["reasoned"]
    assert paid >= at and reasoned == (search is not None)  # the search's reasoner, on its sparse pass, was paid
    totals = run_totals(tmp_path / "run")
    assert totals["requests"] == paid + reasoned
    assert totals["cost_usd"] == pytest.approx(0.001 * paid + 0.0005 * reasoned)
    unfinished = [v for v in read_jsonl(tmp_path / "run" / "videos.jsonl") if v.get("unfinished")]
    assert len(unfinished) == 1 and unfinished[0]["usage"]["requests"] == paid + reasoned
    assert (unfinished[0].get("unfinished_query") == "q0") == (search is not None)
    said = capsys.readouterr().err
    assert "a video or query still describing its frames is left for the resumed run (what it paid is counted in " \
           "the run folder)" in said and "frames being described and the queries under way finish" not in said

    CTRL_C_AT["frame"] = None
    resumed = run_eval(cfg, tmp_path / "run")
    assert resumed.ran == 1 and resumed.failed == 0
    assert resumed.describe_saved_now >= paid  # the frames described before the Ctrl-C: from the cache
    # a stopped describe counts its calls, and so does a stopped search (FX-M: they were left 0)
    assert resumed.describe_calls == resumed.describe_calls_now + paid
    totals = run_totals(tmp_path / "run")
    assert totals["requests"] == COUNTS["frames"] + COUNTS["reasoned"]
