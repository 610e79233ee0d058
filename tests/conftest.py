"""Shared test set-up: offline model hubs, no network beyond loopback, rendered videos."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# on-disk embeddings go to a folder of this test session, never the user's ~/.cache
os.environ.setdefault("VIDGROUND_EMBEDDING_CACHE", os.path.join(tempfile.mkdtemp(prefix="vidground-tests-"), "embeddings.sqlite"))
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
# a test run started as a background job of a non-interactive shell inherits SIGINT ignored, and Python then
# keeps it ignored: the Ctrl-C tests (which check that each run puts back the handler it found) need Python's
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: the user's cache folder as the session found it. The tests read from it only what they cannot make in a moment
#: (the GGUFs vidground.models assembles, Hugging Face models, matplotlib's font list): those paths
#: are pinned to it here, before XDG_CACHE_HOME is moved off it. Nothing else of a test's goes there.
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
os.environ.setdefault("VIDGROUND_MODELS", str(USER_CACHE / "vidground" / "models"))
os.environ.setdefault("HF_HOME", str(USER_CACHE / "huggingface"))
os.environ.setdefault("MPLCONFIGDIR", str(USER_CACHE / "matplotlib"))
# the description cache (run_eval's default: $VIDGROUND_CACHE, else $XDG_CACHE_HOME/vidground/descriptions.sqlite)
# of session-scoped fixtures goes to a folder of this test session; each test gets its own (_own_cache_folder)
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="vidground-tests-xdg-")
os.environ.pop("VIDGROUND_CACHE", None)

_real_connect = socket.socket.connect


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    # TCP only: the tests must never reach past this machine (UDP "connects" send nothing).
    if self.type == socket.SOCK_STREAM and self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
        raise OSError(f"tests may not open network connections (tried {address!r})")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect


@pytest.fixture(autouse=True)
def _own_cache_folder(tmp_path_factory, monkeypatch):
    """Each test its own cache folder: a description cache it writes without ``cache=`` (run_eval, vidground eval)
    is its own, never the user's ~/.cache/vidground/descriptions.sqlite nor another test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("VIDGROUND_CACHE", raising=False)


@pytest.fixture(scope="session")
def user_cache() -> Path:
    """The user's cache folder as the session found it (``USER_CACHE``), before the tests moved XDG_CACHE_HOME."""
    return USER_CACHE


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory):
    """The demo's synthetic video and its known events (rendered once per test session)."""
    from frame_describer.synthetic import render_demo_video

    path = tmp_path_factory.mktemp("demo") / "demo.mp4"
    events = render_demo_video(path)
    return path, events


@pytest.fixture(scope="session")
def demo_described(demo_video):
    """The demo video described once by the offline describer."""
    from pipelines import describe

    return describe(demo_video[0])
