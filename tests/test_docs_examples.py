"""README's Python examples run as written, offline, and do what the text around them says.

Every ```python block of README.md carries a ``<!-- runnable: NAME -->`` line right above it; this module
runs each one (exec of the block's own text, in a temporary folder holding the files it names) and checks
its printed output or its values against what the README claims for it. A new block without a marker, a
marker without a check here, or an example that stops working fails a test, so the examples cannot rot
silently. The only substitutions: ``kitchen.mp4``/``party.mp4`` are a short rendered video, and the
``openai-client`` example's ``http://localhost:8000/v1`` is a local fake OpenAI-compatible server. The
``answer-openai`` example needs an API key: without one it must fail with the clear ConfigurationError.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from _helpers_openai_server import FakeOpenAIServer
from vidground.errors import ConfigurationError

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"^<!-- runnable: ([\w-]+)\b.*-->$")


def readme_python_blocks() -> list[tuple[str | None, int, str]]:
    """``(marker name or None, line of the fence, code)`` for every ```python block of the README."""
    lines = README.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            m = MARKER.match(lines[i - 1].strip()) if i else None
            end = lines.index("```", i + 1)
            blocks.append((m.group(1) if m else None, i + 1, "\n".join(lines[i + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def example(name: str) -> tuple[int, str]:
    found = [(line, code) for n, line, code in readme_python_blocks() if n == name]
    assert len(found) == 1, f"README.md has {len(found)} blocks marked 'runnable: {name}'"
    return found[0]


def run_example(name: str, namespace: dict | None = None, replace: tuple[str, str] | None = None) -> dict:
    line, code = example(name)
    if replace:
        assert replace[0] in code, f"README example {name!r} no longer says {replace[0]!r}"
        code = code.replace(*replace)
    ns = {"__name__": f"readme_{name.replace('-', '_')}"} | (namespace or {})
    exec(compile(code, f"{README}:{line}", "exec"), ns)
    return ns


CHECKED = {"ground", "stage-2", "session", "answer-openai", "openai-client", "register", "events", "search"}
VIDEO_SECONDS = 6.0


@pytest.fixture
def folder(tmp_path, monkeypatch, short_video):
    """A working folder with the files the examples name: the videos, and descriptions of the first 31 s of
    a kitchen in the README's minimal JSONL form (t and text only, no duration); two distinct texts, so that
    encoding them never needs torch (a new text or 16 are encoded by the numpy forward pass)."""
    for name in ("kitchen.mp4", "party.mp4", "video.mp4", "lecture.mp4"):
        shutil.copy(short_video, tmp_path / name)
    with open(tmp_path / "kitchen.descriptions.jsonl", "w") as f:
        for t in range(31):
            text = "a person opens the refrigerator door" if 12 <= t <= 16 else "an empty kitchen"
            f.write(json.dumps({"t": float(t), "text": text}) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    from frame_describer.synthetic import render_numbered_video

    return render_numbered_video(tmp_path_factory.mktemp("docs") / "v.mp4", n_frames=60, fps=10)  # 6 s


def test_every_python_block_of_the_readme_is_marked_and_checked():
    names = [n for n, _, _ in readme_python_blocks()]
    assert None not in names, "a ```python block of README.md has no '<!-- runnable: NAME -->' line above it"
    assert len(names) == len(set(names)), f"two blocks share a name: {names}"
    assert set(names) == CHECKED, f"blocks without a check here: {set(names) - CHECKED}; checks without a block: {CHECKED - set(names)}"


def test_ground_prints_intervals_best_first_and_the_whole_result(folder, capsys):
    """"for iv in result.intervals:  # best first / print(iv.start, iv.end, iv.score)  # seconds, seconds,
    confidence" and "the whole GroundingResult: backends, usage, timings..."."""
    ns = run_example("ground")
    out = capsys.readouterr().out
    text_lines, json_text = out.split("{", 1)
    rows = [tuple(map(float, line.split())) for line in text_lines.strip().splitlines()]
    whole = json.loads("{" + json_text)
    assert rows and rows == [(iv.start, iv.end, iv.score) for iv in ns["result"].intervals]
    assert all(0 <= s < e <= VIDEO_SECONDS for s, e, _ in rows)
    scores = [score for _, _, score in rows]
    assert scores == sorted(scores, reverse=True), "not best first"
    assert whole["query"] == "the person opens the refrigerator" and whole["duration"] == VIDEO_SECONDS
    assert (whole["describer"], whole["reasoner"]) == ("cv", "embedding")  # the defaults the README names
    assert {"usage", "timings", "settings"} <= set(whole)


def test_stage_2_alone_reads_the_minimal_jsonl_and_says_when_the_duration_was_inferred(folder):
    from pipelines import ground

    ns = run_example("stage-2", {"ground": ground})  # the section's first block imported ground
    result = ns["result"]
    assert result.duration == 31.2 and result.duration_inferred is False  # given, so not inferred
    assert 11.5 <= result.best.start < result.best.end <= 16.5 + 1e-9  # the refrigerator lines, 12-16 s
    again = ground(query="the person opens the refrigerator", descriptions="kitchen.descriptions.jsonl")
    assert again.duration_inferred is True  # "True when it was inferred": no duration in this file


def test_session_describes_once_writes_the_descriptions_and_answers_each_query(folder, capsys):
    ns = run_example("session")
    described = ns["described"]
    assert type(described).__name__ == "DescribedVideo" and described.duration == VIDEO_SECONDS
    rows = [json.loads(line) for line in (folder / "kitchen.descriptions.jsonl").read_text().splitlines()]
    assert [r["t"] for r in rows] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # sampling={"fps": 1}
    assert (folder / "descriptions.sqlite").stat().st_size > 0  # the cache, kept on disk
    printed = capsys.readouterr().out.splitlines()
    queries = ["the person opens the refrigerator", "someone sits down"]
    assert len(printed) == 2
    for line, q in zip(printed, queries):
        assert re.fullmatch(re.escape(q) + r" start=[\d.]+ end=[\d.]+ score=[\d.]+", line), line


def test_answer_with_a_chat_model_and_no_key_says_how_to_give_one(folder, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # the session checks its reasoner when it is made, and names it
    with pytest.raises(ConfigurationError, match=r"^reasoner 'openai:gpt-4o-mini': no API key: set OPENAI_API_KEY"):
        run_example("answer-openai")


@pytest.mark.slow  # 2.5-5.4 s in the fast tier at load 9-10 on 2 cores
def test_answer_offline_is_the_evidence_baseline(folder, capsys):
    """The same example on the default reasoner: "its answers say embedding+evidence-baseline"."""
    ns = run_example("answer-openai", replace=(', reasoner="openai:gpt-4o-mini"', ""))
    a = ns["a"]
    assert a.reasoner == "embedding+evidence-baseline"
    assert a.choice in (0, 1, 2) and a.answer == ["share it", "unwrap it", "throw it away"][a.choice]
    assert capsys.readouterr().out.startswith(f"{a.answer} {a.choice} start=")


def test_an_injected_client_serves_both_stages_and_the_fallback_answers(folder):
    """``OpenAIDescriber(..., detail="low", concurrency=16)`` and ``OpenAIReasoner(..., fallback="embedding")``
    on one client: every frame is one request with a low-detail image; the reasoner's unusable answer is
    re-asked, then "the fallback reasoner answers if you gave one"."""
    with FakeOpenAIServer() as server:  # answers every request with the text "ok"
        ns = run_example("openai-client", replace=("http://localhost:8000/v1", server.base_url))
    result = ns["result"]
    bodies = [r.json for r in server.requests]
    frames = [b for b in bodies if b["model"] == "qwen2.5-vl"]
    asks = [b for b in bodies if b["model"] == "qwen2.5"]
    assert len(frames) == VIDEO_SECONDS  # 1 fps
    images = [part for b in frames for m in b["messages"] if isinstance(m["content"], list)
              for part in m["content"] if part.get("type") == "image_url"]
    assert len(images) == len(frames) and {p["image_url"]["detail"] for p in images} == {"low"}
    assert len(asks) >= 2  # asked, then re-asked with the validation error
    assert any("used the fallback reasoner 'embedding'" in w for w in result.warnings)
    assert result.intervals and all(0 <= iv.start < iv.end <= VIDEO_SECONDS for iv in result.intervals)


def test_a_registered_reasoner_is_a_spec_name(folder, monkeypatch):
    """``reasoners.register("mine", "my_package.module:MyReasoner")  # now ground(..., reasoner="mine:arg")``."""
    from pipelines import ground
    from temporal_reasoner import reasoners

    monkeypatch.setattr(reasoners, "_targets", dict(reasoners._targets))  # the registration ends with the test
    package = folder / "my_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text(
        "from temporal_reasoner import BaseReasoner\n"
        "from vidground.types import GroundingResult, Interval\n\n"
        "class MyReasoner(BaseReasoner):\n"
        "    name = 'mine'\n"
        "    def __init__(self, arg=None):\n"
        "        self.arg = arg\n"
        "    def settings(self):\n"
        "        return {'name': self.name, 'arg': self.arg}\n"
        "    def ground(self, query, transcript):\n"
        "        return GroundingResult(query=query, duration=transcript.duration,\n"
        "                               intervals=[Interval(start=1.0, end=2.0, score=1.0)])\n")
    monkeypatch.syspath_prepend(str(folder))
    run_example("register")
    result = ground(query="anything", descriptions="kitchen.descriptions.jsonl", reasoner="mine:arg")
    assert result.reasoner == "mine" and result.settings["reasoner"] == {"name": "mine", "arg": "arg"}
    assert [(iv.start, iv.end) for iv in result.intervals] == [(1.0, 2.0)]


@pytest.mark.slow  # 2.5-5.4 s in the fast tier at load 9-10 on 2 cores
def test_events_prints_scored_spans_with_captions_in_time_order(folder, capsys):
    ns = run_example("events")
    rows = []
    for line in capsys.readouterr().out.splitlines():
        start, end, score, caption = line.split(" ", 3)
        rows.append((float(start), float(end), float(score), caption))
    assert rows, "no event printed"
    assert all(0 <= s < e <= VIDEO_SECONDS and c.strip() for s, e, _, c in rows)
    assert [s for s, *_ in rows] == sorted(s for s, *_ in rows)
    assert ns["e"].caption == rows[-1][3]
    from pipelines import events  # the comment's other form, on descriptions

    found = events(descriptions="kitchen.descriptions.jsonl").events
    assert found and found[0].start == 0.0 and found[-1].end == pytest.approx(31.0)


def test_a_coarse_to_fine_search_with_a_budget_in_one_call(folder, capsys):
    """The long-video example: ``ground(..., search={"strategy": "coarse-to-fine", "budget": 300})`` prints the
    best interval and the calls, and ``settings["search"]["frames"]`` says each frame described and why."""
    ns = run_example("search")
    result = ns["result"]
    search = result.settings["search"]
    assert search["strategy"] == "coarse-to-fine" and search["budget"] == 300
    assert 0 < search["calls"] <= 300 and search["calls"] == len(search["frames"])  # no cache: each frame listed was a call
    assert all(why for _, _, why in search["frames"]) and {p for _, p, _ in search["frames"]} >= {0}
    best = result.best
    assert capsys.readouterr().out.split() == [*str(best).split(), str(search["calls"])]
