"""An unreachable Ray cluster is a clear ProviderError naming the address, not the CLI's "internal error".

Found by following README's ``vidground eval charades-sta --videos DIR --executor ray --address
ray://head:10001 --out runs/big``: after Ray's 30-s client timeout it printed ``vidground: internal error:
ConnectionError: ray client connection timeout`` and exit 1. A stand-in ``ray`` module raises what the real
one raised there, so the test needs neither Ray nor a network wait."""

from __future__ import annotations

import sys
import types

import pytest

from vidground.errors import ProviderError


@pytest.fixture
def unreachable_ray(monkeypatch):
    fake = types.ModuleType("ray")
    calls: list[str | None] = []

    def init(address=None, **_):
        calls.append(address)
        raise ConnectionError("ray client connection timeout")  # ray.util.client's words after its timeout

    fake.init = init
    fake.is_initialized = lambda: False
    monkeypatch.setitem(sys.modules, "ray", fake)
    return calls


def test_an_unreachable_cluster_is_a_provider_error_naming_the_address(unreachable_ray):
    from pipelines.executors import make_executor

    with pytest.raises(ProviderError) as info:
        make_executor("ray", address="ray://head:10001")
    assert unreachable_ray == ["ray://head:10001"]
    err = info.value
    assert (err.provider, err.url, err.retryable) == ("ray", "ray://head:10001", True)
    assert str(err).startswith("could not connect to the Ray cluster at ray://head:10001: ray client connection timeout")
    assert "--address" in str(err)
    assert isinstance(err.__cause__, ConnectionError)


def test_the_cli_says_so_in_one_line_with_exit_1(unreachable_ray, tmp_path, capsys):
    from pipelines.cli import main

    rc = main(["eval", "charades-sta", "--videos", str(tmp_path), "--executor", "ray",
               "--address", "ray://head:10001", "--out", str(tmp_path / "runs" / "big")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "internal error" not in err
    assert "vidground: error: could not connect to the Ray cluster at ray://head:10001" in err
