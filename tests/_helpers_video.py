"""Shared fixtures for the video tests: tiny videos rendered once per session (never downloaded).

The demo video is conftest.py's ``demo_video``: one rendering for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from frame_describer.synthetic import render_numbered_video

# variable frame rate: bursts and gaps, times in seconds
VFR_TIMES = [0.0, 0.04, 0.08, 0.5, 0.52, 1.3, 1.35, 1.4, 2.2, 2.9, 2.95, 3.6, 4.0, 4.45, 5.1, 5.12]


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def cfr_video(video_dir: Path) -> Path:
    """60 frames at 10 fps (6 s), 320x240."""
    return render_numbered_video(video_dir / "cfr.mp4", n_frames=60, fps=10)


@pytest.fixture(scope="session")
def vfr_video(video_dir: Path) -> Path:
    return render_numbered_video(video_dir / "vfr.mp4", n_frames=len(VFR_TIMES), fps=10, vfr_times=VFR_TIMES)


def remux(src: Path, dst: Path, *, format: str | None = None, options: dict[str, str] | None = None) -> Path:
    """``src``'s video packets copied into another container (no re-encoding): a raw stream
    (``format="h264"``), or an MP4 with its index first (``options={"movflags": "faststart"}``)."""
    import av

    with av.open(str(src)) as source, av.open(str(dst), "w", format=format, options=options or {}) as out:
        stream = source.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is not None:  # the demuxer's final empty packet
                packet.stream = copy
                out.mux(packet)
    return dst
