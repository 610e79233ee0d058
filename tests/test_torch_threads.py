"""Torch's thread count for models run on the CPU: a measured default, ``$VIDGROUND_TORCH_THREADS`` to
override it, and the embedding model's loader applying it."""

from __future__ import annotations

import contextlib
import sys
import types

import pytest

from vidground import models
from vidground.errors import ConfigurationError
from vidground.models import MAX_DEFAULT_THREADS, THREADS_ENV, set_torch_threads, torch_threads


@pytest.mark.parametrize("cpus, expected", [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, MAX_DEFAULT_THREADS),
                                            (64, MAX_DEFAULT_THREADS)])
def test_the_default_is_half_the_cpus_this_process_may_use(monkeypatch, cpus, expected):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(models.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert torch_threads() == expected == torch_threads(cpus)


@pytest.mark.parametrize("value, expected", [("1", 1), (" 3 ", 3), ("16", 16), ("", None)])
def test_the_environment_overrides_the_default(monkeypatch, value, expected):
    monkeypatch.setenv(THREADS_ENV, value)
    assert torch_threads(cpus=8) == (expected or MAX_DEFAULT_THREADS)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_override_is_a_configuration_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(ConfigurationError, match=f"{THREADS_ENV} must be a whole number.*{value!r}"):
        torch_threads()


class _FakeTorch:
    def __init__(self, threads: int):
        self.threads, self.calls = threads, []

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, n: int) -> None:
        self.calls.append(n)
        self.threads = n


@pytest.fixture(autouse=True)
def _nothing_applied_yet(monkeypatch):
    monkeypatch.setattr(models, "_APPLIED", None)


def test_set_torch_threads_sets_only_what_differs(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    torch = _FakeTorch(8)
    assert set_torch_threads(torch) == 3 and set_torch_threads(torch) == 3
    assert torch.calls == [3] and torch.threads == 3


@pytest.mark.parametrize("device, applied", [("cpu", True), ("cuda", False)])
def test_the_embedding_model_loads_with_the_setting_on_the_cpu_only(monkeypatch, device, applied):
    from temporal_reasoner import embedding

    loaded = []

    class FakeSentenceTransformer:  # what the loader builds, without loading weights
        def __init__(self, path, device, local_files_only):
            loaded.append((path, device, fake_torch.threads))

    fake_torch = _FakeTorch(2)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "sentence_transformers",
                        types.SimpleNamespace(SentenceTransformer=FakeSentenceTransformer))
    monkeypatch.setattr(embedding, "_quiet_loading", contextlib.nullcontext)
    monkeypatch.setenv(THREADS_ENV, "1")
    embedding._load_model("/models/minilm", device)
    assert loaded == [("/models/minilm", device, 1 if applied else 2)]  # set before the model is built
    assert fake_torch.calls == ([1] if applied else [])
    monkeypatch.setenv(THREADS_ENV, "nope")  # a bad value stops the load, naming the variable
    with pytest.raises(ConfigurationError, match=THREADS_ENV) if applied else contextlib.nullcontext():
        embedding._load_model("/models/minilm", device)


# ------------------------------------------------------------------ leaving another's choice alone

@pytest.fixture()
def fresh(monkeypatch):
    """A process where vidground has set nothing yet, torch starting with 8 threads, no variable set."""
    monkeypatch.setattr(models, "_APPLIED", None)
    monkeypatch.setattr(models, "_torch_default_threads", lambda: {8})
    for name in (THREADS_ENV, *models.OMP_ENVS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(models.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


@pytest.mark.parametrize("name", models.OMP_ENVS)
def test_omp_or_mkl_threads_set_by_the_user_are_left_alone(fresh, monkeypatch, name):
    monkeypatch.setenv(name, "8")
    torch = _FakeTorch(8)
    assert set_torch_threads(torch) == 8 and torch.calls == []
    monkeypatch.setenv(THREADS_ENV, "2")  # vidground's own variable still wins
    assert set_torch_threads(torch) == 2 and torch.calls == [2]


def test_a_count_the_user_set_before_loading_is_left_alone(fresh):
    torch = _FakeTorch(8)
    torch.set_num_threads(6)  # the user's torch.set_num_threads(6), before any model loads
    assert set_torch_threads(torch) == 6 and torch.calls == [6]


def test_a_count_the_user_set_after_a_load_is_left_alone(fresh):
    torch = _FakeTorch(8)
    assert set_torch_threads(torch) == MAX_DEFAULT_THREADS and torch.calls == [MAX_DEFAULT_THREADS]
    assert set_torch_threads(torch) == MAX_DEFAULT_THREADS and torch.calls == [MAX_DEFAULT_THREADS]
    torch.set_num_threads(7)
    assert set_torch_threads(torch) == 7 and torch.calls == [MAX_DEFAULT_THREADS, 7]


def test_torch_starting_counts_include_the_cpus(monkeypatch):
    monkeypatch.setattr(models, "_physical_cores", lambda: 3)
    assert {3, models.os.cpu_count()} <= models._torch_default_threads()
