"""A Ctrl-C while pycocoevalcap's PTB tokenizer waits for Java (events eval's caption scoring) left its temp
file in the package folder (it removes the file only after Java answers): it is removed however the call ends,
and a file another tokenization is using at the same time is left alone."""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("pycocoevalcap")

from pycocoevalcap.tokenizer import ptbtokenizer  # noqa: E402

from pipelines.event_metrics import densevid_captions  # noqa: E402

FOLDER = os.path.dirname(os.path.abspath(ptbtokenizer.__file__))


class Unused:
    def compute_score(self, gts, res):
        raise AssertionError("the tokenizer was interrupted first")


def interrupted_java(monkeypatch, also=None):
    """Java's tokenizer is started, and a Ctrl-C arrives while it runs; ``also()`` runs first, on another
    thread. Returns the temp files the tokenizer handed to Java."""
    handed: list[str] = []

    class Popen:
        def __init__(self, cmd, cwd=None, **kwargs):
            handed.append(os.path.join(cwd or "", cmd[-1]))

        def communicate(self, input=None):
            assert os.path.exists(handed[-1])  # written, as Java reads it
            if also is not None:
                t = threading.Thread(target=also)
                t.start()
                t.join()
            raise KeyboardInterrupt

    class Subprocess:
        PIPE = -1

    Subprocess.Popen = Popen
    monkeypatch.setattr(ptbtokenizer, "subprocess", Subprocess)
    return handed


def test_a_ctrl_c_while_java_tokenizes_leaves_no_temp_file(monkeypatch):
    handed = interrupted_java(monkeypatch)
    refs = [{"v": {"timestamps": [[0, 10]], "sentences": ["a man chops onions"]}}]
    try:
        with pytest.raises(KeyboardInterrupt):
            densevid_captions({"v": [(0, 10, "a man chops onions")]}, refs, tious=(0.5,), scorers=[(Unused(), "X")])
        assert len(handed) == 1 and os.path.dirname(handed[0]) == FOLDER
        assert not os.path.exists(handed[0])
    finally:
        for name in handed:
            if os.path.exists(name):
                os.remove(name)


def test_another_threads_temp_file_is_left_to_it(monkeypatch):
    """Another tokenization writes its file to the same folder; only the interrupted call's own is removed."""
    others: list[str] = []

    def another_tokenization():
        made = ptbtokenizer.tempfile.NamedTemporaryFile(delete=False, dir=FOLDER)
        made.close()
        others.append(made.name)

    handed = interrupted_java(monkeypatch, also=another_tokenization)
    refs = [{"v": {"timestamps": [[0, 10]], "sentences": ["a man chops onions"]}}]
    try:
        with pytest.raises(KeyboardInterrupt):
            densevid_captions({"v": [(0, 10, "a man chops onions")]}, refs, tious=(0.5,), scorers=[(Unused(), "X")])
        assert not os.path.exists(handed[0]) and len(others) == 1 and os.path.exists(others[0])
    finally:
        for name in handed + others:
            if os.path.exists(name):
                os.remove(name)
