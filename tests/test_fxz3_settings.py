"""FX-Z3 item 5: the embedding cache's size setting took 0 and negative numbers as 1024 MB without a word (and
``inf`` crashed); a bad ``$VIDGROUND_TORCH_THREADS`` failed only when torch loaded, so the same command passed when
the cache held the query."""

from __future__ import annotations

import logging

import pytest

from vidground.errors import ConfigurationError


def test_an_embedding_cache_size_of_0_turns_the_cache_off(monkeypatch, tmp_path):
    from temporal_reasoner.embedding_store import default_store_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("VIDGROUND_EMBEDDING_CACHE", raising=False)
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE_MB", "0")
    assert default_store_path() is None
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE", str(tmp_path / "e.sqlite"))  # a path named, and no room: off too
    assert default_store_path() is None
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE_MB", "12")
    assert default_store_path() == tmp_path / "e.sqlite"


@pytest.mark.parametrize("value, why", [("-5", "negative"), ("inf", "not a number"), ("nan", "not a number")])
def test_a_negative_or_endless_size_is_warned_about_and_the_default_used(monkeypatch, tmp_path, caplog, value, why):
    from temporal_reasoner import embedding_store
    from temporal_reasoner.embedding_store import DEFAULT_MAX_MB, EmbeddingStore

    monkeypatch.setattr(embedding_store, "_size_said", set(), raising=False)  # said once a process
    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE_MB", value)
    with caplog.at_level(logging.WARNING):
        store = EmbeddingStore(tmp_path / "e.sqlite")  # inf was an OverflowError
    assert store.max_bytes == DEFAULT_MAX_MB * 1024 * 1024
    assert f"ignoring VIDGROUND_EMBEDDING_CACHE_MB={value!r} ({why}" in caplog.text


@pytest.mark.parametrize("name", ["embedding", "naive"])
def test_a_bad_torch_threads_setting_fails_when_the_reasoner_is_made(monkeypatch, name):
    """Not only when torch loads: a query the embedding cache (or the numpy encoder) answers never loads it."""
    from temporal_reasoner import get_reasoner

    monkeypatch.setenv("VIDGROUND_TORCH_THREADS", "abc")
    with pytest.raises(ConfigurationError, match="VIDGROUND_TORCH_THREADS must be a whole number.*'abc'"):
        get_reasoner(name)
    monkeypatch.setenv("VIDGROUND_TORCH_THREADS", "2")
    assert get_reasoner(name).name == name
