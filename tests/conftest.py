"""Shared test set-up: offline model hubs, no network beyond loopback, rendered videos."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# on-disk embeddings go to a folder of this test session, never the user's ~/.cache
os.environ.setdefault("VIDGROUND_EMBEDDING_CACHE", os.path.join(tempfile.mkdtemp(prefix="vidground-tests-"), "embeddings.sqlite"))
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)

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
