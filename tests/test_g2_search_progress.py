"""A coarse-to-fine search shows its progress on a terminal as the dense path does: it showed none (only the dense
path called ``_progress``), so ``vidground ground --strategy coarse-to-fine`` on a long video with a slow describer
was minutes of silence. Its sparse pass is a bar of its planned frames, each refinement round a new one of the
frames it asks for, advanced as each frame is answered, drawn where the dense path's is and nowhere else. Counted
with a fake bar and a describer that looks at the bar as each frame is asked of it: no clock."""

from __future__ import annotations

import io
import sys

import pytest

from _helpers_eval import FakeDescriber, register_fakes
from pipelines import Session
from pipelines.cli import main
from test_search_session import static_video  # noqa: F401  (the fixture: 20 s at 5 fps, rendered once)

register_fakes()


class Bar:
    """tqdm as the bars are made (``tqdm(iterable=None, total=, desc=, unit=, leave=)``), recording them."""

    made: list["Bar"] = []

    def __init__(self, iterable=None, total=None, desc="", unit="it", leave=True, **_):
        self.iterable, self.total, self.desc, self.n, self.closed = iterable, total, desc, 0, False
        Bar.made.append(self)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1

    def update(self, n=1):
        assert not self.closed
        self.n += n

    def close(self):
        self.closed = True


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Watching(FakeDescriber):
    """Notes, as each frame is asked of it, how far the bar drawn then had come (what a user of a slow describer
    sees while that frame is described)."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def describe(self, frames, *, query=None):
        def watched():
            for f in frames:
                bar = next((b for b in reversed(Bar.made) if not b.closed), None)
                self.seen.append((bar.desc, bar.n) if bar is not None else ("", -1))
                yield f

        return super().describe(watched(), query=query)


@pytest.fixture
def bars(monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(Bar, "made", [])
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    return Bar.made


def test_a_search_shows_the_sparse_pass_and_each_round_as_frames_are_answered(static_video, bars, monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    describer = Watching()
    with Session(describer=describer, reasoner="fake-reasoner", search="coarse-to-fine", cache=False,
                 progress=True) as s:
        result = s.ground(static_video, "frame at 12.0")
    search = result.settings["search"]
    per_pass = [sum(1 for _, p, _ in search["frames"] if p == k) for k in range(search["rounds_done"] + 1)]
    assert search["rounds_done"] >= 1 and all(per_pass)
    name = f"describing {static_video.name}"
    assert [b.desc for b in bars] == [f"{name}, sparse pass"] + [f"{name}, round {k}" for k in
                                                                 range(1, search["rounds_done"] + 1)]
    assert [b.total for b in bars] == per_pass  # the sparse pass's planned frames, then each round's
    assert all(b.n == b.total and b.closed for b in bars)
    # live: each frame was asked of the describer with the bar advanced for every frame before it in its stage
    for bar in bars:
        steps = [n for desc, n in describer.seen if desc == bar.desc]
        assert steps == list(range(len(steps))) and steps, bar.desc
    assert len(describer.seen) == describer.calls == search["calls"]


def test_a_search_draws_nothing_where_the_dense_path_draws_nothing(static_video, bars, monkeypatch):
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", search="coarse-to-fine", cache=False) as s:
        s.ground(static_video, "frame at 12.0")  # a Python caller: progress is off by default
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: a log file, a pipe
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", search="coarse-to-fine", cache=False,
                 progress=True) as s:
        s.ground(static_video, "frame at 12.0")
    assert bars == []


@pytest.mark.parametrize("flags", [[], ["--json"], ["-q", "frame at 3.0", "-q", "frame at 12.0"]])
def test_the_command_line_shows_a_search_as_it_shows_the_dense_path(static_video, bars, monkeypatch, capsys, flags):
    monkeypatch.setattr(sys, "stderr", Terminal())
    argv = ["ground", str(static_video), *([] if "-q" in flags else ["frame at 12.0"]), *flags, "--describer", "fake",
            "--reasoner", "fake-reasoner", "--no-cache"]
    assert main(argv) == 0
    dense = [b.desc for b in bars]
    bars.clear()
    assert main(argv + ["--strategy", "coarse-to-fine"]) == 0
    searched = [b.desc for b in bars]
    name = f"describing {static_video.name}"
    assert dense == [name]  # described once, for every query
    queries = 2 if "-q" in flags else 1
    assert searched.count(f"{name}, sparse pass") == queries and f"{name}, round 1" in searched
    assert all(b.closed for b in bars)
