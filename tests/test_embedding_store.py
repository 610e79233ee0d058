"""The on-disk embedding cache: vectors survive the process, keyed by model content and text, bounded,
shared by threads and processes, and never the reason a query fails."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from temporal_reasoner.embedding import Encoder
from temporal_reasoner.embedding_store import EmbeddingStore, default_store_path, model_fingerprint, text_key

ROOT = Path(__file__).resolve().parents[1]


class _CountingModel:
    """A fake sentence-transformers model: a deterministic unit vector per text; counts what it encodes."""

    dim = 8

    def __init__(self):
        self.texts: list[str] = []

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, **_):
        self.texts.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, sum(map(ord, t)) % self.dim] = 1.0
        return out


def _vec(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1.0
    return v


def test_vectors_survive_a_new_store_on_the_same_file_and_are_keyed_by_model(tmp_path):
    path = tmp_path / "emb.sqlite"
    a = EmbeddingStore(path)
    a.store("model-a", [("a cat", _vec(1)), ("a dog", _vec(2))])
    a.close()
    b = EmbeddingStore(path)
    got = b.lookup("model-a", ["a cat", "a dog", "a bird"])
    assert set(got) == {"a cat", "a dog"}
    assert np.array_equal(got["a dog"], _vec(2))
    assert b.lookup("model-b", ["a cat"]) == {}  # another model never reads these vectors
    assert (b.hits, b.misses) == (2, 2)


def test_a_stored_vector_of_another_length_counts_as_missing(tmp_path):
    store = EmbeddingStore(tmp_path / "emb.sqlite")
    store.store("m", [("a cat", _vec(1, dim=4))])
    assert store.lookup("m", ["a cat"], dim=8) == {}
    assert set(store.lookup("m", ["a cat"], dim=4)) == {"a cat"}


def test_the_size_bound_drops_the_least_recently_used(tmp_path):
    # rows count as about 8 * 4 * 1.4 + 64 bytes: a bound of 2 KB keeps a couple of dozen vectors
    store = EmbeddingStore(tmp_path / "emb.sqlite", max_mb=2 / 1024)
    store.store("m", [("keep me", _vec(0))])
    for k in range(10):
        store.lookup("m", ["keep me"])  # used again and again: the most recently used
        store.store("m", [(f"text {k} {j}", _vec(j)) for j in range(10)])
    assert len(store) <= (2 * 1024) // (int(8 * 4 * 1.4) + 64)
    assert set(store.lookup("m", ["keep me"])) == {"keep me"}
    assert store.lookup("m", ["text 0 0"]) == {}  # the oldest went first


def test_an_encoder_with_a_store_encodes_each_text_once_across_processes_worth_of_encoders(tmp_path):
    path = tmp_path / "emb.sqlite"
    first_model = _CountingModel()
    first = Encoder(first_model, "fake", "cpu", store=EmbeddingStore(path), model_id="fake-model")
    v1 = first.encode(["a cat", "a dog", "a cat"])
    assert first_model.texts == ["a cat", "a dog"]
    # a fresh encoder (a new process: empty memory cache) over the same file asks the model for nothing known
    second_model = _CountingModel()
    second = Encoder(second_model, "fake", "cpu", store=EmbeddingStore(path), model_id="fake-model")
    v2 = second.encode(["a dog", "a cat", "a bird"])
    assert second_model.texts == ["a bird"]
    assert np.array_equal(v2[0], v1[1]) and np.array_equal(v2[1], v1[0])
    assert second.encoded == 1


def test_an_unusable_cache_warns_once_and_the_encoder_goes_on(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache's folder should be")
    store = EmbeddingStore(blocker / "emb.sqlite")
    model = _CountingModel()
    enc = Encoder(model, "fake", "cpu", store=store, model_id="m")
    with caplog.at_level(logging.WARNING, logger="temporal_reasoner.embedding_store"):
        enc.encode(["a cat"])
        enc.encode(["a dog"])
    assert store.broken and sum("not usable" in r.getMessage() for r in caplog.records) == 1
    assert model.texts == ["a cat", "a dog"]


def test_a_corrupt_cache_file_degrades_to_misses(tmp_path, caplog):
    path = tmp_path / "emb.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = EmbeddingStore(path)
    with caplog.at_level(logging.WARNING, logger="temporal_reasoner.embedding_store"):
        assert store.lookup("m", ["a cat"]) == {}
        store.store("m", [("a cat", _vec(1))])
    assert store.broken


def test_threads_share_one_store_without_losing_or_mixing_vectors(tmp_path):
    store = EmbeddingStore(tmp_path / "emb.sqlite")
    model = _CountingModel()
    enc = Encoder(model, "fake", "cpu", cache_size=4, store=store, model_id="m")
    texts = [f"caption {i}" for i in range(40)]

    def job(k: int):
        batch = [texts[(k * 3 + j) % len(texts)] for j in range(7)]
        return enc.encode(batch), batch

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(100)))
    for vecs, batch in results:
        assert [int(np.argmax(v)) for v in vecs] == [sum(map(ord, t)) % 8 for t in batch]
    assert store.broken is None and len(store) == len(texts)


@pytest.mark.slow
def test_two_processes_write_the_same_file_at_once(tmp_path):
    path = tmp_path / "emb.sqlite"
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from temporal_reasoner.embedding_store import EmbeddingStore
        store = EmbeddingStore({str(path)!r})
        who = int(sys.argv[1])
        for k in range(30):
            store.store("m", [(f"text {{who}} {{k}} {{j}}", np.full(8, who, np.float32)) for j in range(20)])
            store.lookup("m", [f"text {{1 - who}} {{k}} {{j}}" for j in range(20)])
        assert store.broken is None, store.broken
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = EmbeddingStore(path)
    assert len(store) == 2 * 30 * 20
    assert np.array_equal(store.lookup("m", ["text 1 29 19"])["text 1 29 19"], np.full(8, 1, np.float32))


def test_the_model_fingerprint_follows_content_not_location(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "config.json").write_text('{"dim": 8}')
    (a / "weights.bin").write_bytes(bytes(range(256)) * 10000)
    b = tmp_path / "elsewhere" / "b"
    b.parent.mkdir()
    import shutil

    shutil.copytree(a, b)
    assert model_fingerprint(a) == model_fingerprint(b)
    (b / "config.json").write_text('{"dim": 16}')
    assert model_fingerprint(a) != model_fingerprint(b)


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE", "off")
    assert default_store_path() is None
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("VIDGROUND_EMBEDDING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_store_path() == tmp_path / "cache" / "vidground" / "embeddings.sqlite"
    assert text_key("m", "a cat") != text_key("m", "a cat ") and text_key("m", "a cat") != text_key("n", "a cat")


@pytest.mark.parametrize("value", ["-3", "lots"])
def test_a_bad_size_setting_falls_back_to_the_default(monkeypatch, tmp_path, value):
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE_MB", value)
    from temporal_reasoner.embedding_store import DEFAULT_MAX_MB

    assert EmbeddingStore(tmp_path / "e.sqlite").max_bytes == DEFAULT_MAX_MB * 1024 * 1024


def test_an_encoder_whose_texts_are_all_stored_never_loads_its_model(tmp_path):
    path = tmp_path / "emb.sqlite"
    Encoder(_CountingModel(), "fake", "cpu", store=EmbeddingStore(path), model_id="m").encode(["a cat", "a dog"])
    loads = []
    lazy = Encoder(None, "fake", "cpu", store=EmbeddingStore(path), model_id="m",
                   loader=lambda: loads.append(1) or _CountingModel())
    assert lazy.encode(["a dog", "a cat"]).shape == (2, 8) and not lazy.loaded and loads == []
    lazy.encode(["a bird"])  # a text never seen: now the model loads, once
    lazy.encode(["a fish"])
    assert lazy.loaded and loads == [1]


@pytest.mark.slow
def test_a_repeat_query_in_a_new_process_on_known_captions_does_not_import_torch(tmp_path):
    """The second `vidground ground --descriptions` on the same captions answers from the on-disk cache:
    no model load, no torch import (the 15-20 s a user waited on every call)."""
    descriptions = tmp_path / "d.jsonl"
    # more distinct captions than Encoder.NUMPY_MAX_TEXTS: the first call loads the torch model
    lines = [(0, "A man walks a dog."), (1, "A man walks a dog."), (2, "A woman cooks pasta."),
             (3, "A woman cooks pasta."), *((t, f"A car number {t} drives by.") for t in range(4, 24))]
    descriptions.write_text("".join(f'{{"t": {t}, "text": "{text}"}}\n' for t, text in lines))
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pipelines import ground
        res = ground(descriptions={str(descriptions)!r}, query="someone is cooking")
        print(res.best.start, res.best.end, 'torch' in sys.modules)
    """)
    env = {**__import__("os").environ, "VIDGROUND_EMBEDDING_CACHE": str(tmp_path / "emb.sqlite")}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    *span1, torch1 = first.stdout.split()
    *span2, torch2 = second.stdout.split()
    assert torch1 == "True" and torch2 == "False"
    assert span1 == span2


def test_short_lived_threads_do_not_pile_up_connections(tmp_path):
    """The eval builds a thread pool per video: each new thread must not open (and keep) its own connection."""
    import os

    store = EmbeddingStore(tmp_path / "emb.sqlite")
    store.store("m", [("a cat", _vec(1))])
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = fds()
    for _ in range(60):
        with ThreadPoolExecutor(2) as pool:
            assert all(pool.map(lambda _: store.lookup("m", ["a cat"]) != {}, range(4)))
    assert fds() - before <= 2 and store.broken is None


def test_a_database_busy_in_another_process_is_a_miss_not_the_end_of_the_cache(tmp_path):
    import sqlite3

    path = tmp_path / "emb.sqlite"
    store = EmbeddingStore(path, timeout=0.05)
    store.store("m", [("a cat", _vec(1))])
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for longer than the timeout
    store.store("m", [("a dog", _vec(2))])
    assert store.busy >= 1 and store.broken is None
    holder.execute("ROLLBACK")
    holder.close()
    store.store("m", [("a dog", _vec(2))])
    assert set(store.lookup("m", ["a cat", "a dog"])) == {"a cat", "a dog"}


def test_a_model_folder_that_cannot_be_fingerprinted_leaves_the_reasoner_working(monkeypatch):
    """Reading the model folder for the cache key fails (an unreadable file the model does not need):
    the encoder goes on with its memory cache, the query does not fail."""
    from vidground.errors import VideoDecodeError
    from temporal_reasoner import embedding

    def unreadable(_folder):
        raise VideoDecodeError("/models/x/secret.bin", "permission denied")

    monkeypatch.setattr(embedding, "model_fingerprint", unreadable)
    monkeypatch.setattr("vidground.models._MODELS", {})  # no encoder loaded yet; the real cache comes back after
    enc = embedding.get_encoder(None, "cpu")
    assert enc.store is None and enc.encode(["a cat"]).shape == (1, 384)
