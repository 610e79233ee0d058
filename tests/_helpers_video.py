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


def spy_decoding(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, int]]:
    """From now on, every packet the sampler hands its decoder is recorded as ``(pts, frames it produced)``:
    what decoding cost, counted, not timed (the containers ``frame_describer.sampling`` opens are wrapped)."""
    import frame_describer.sampling as sampling

    real_open = sampling._open
    calls: list[tuple[int | None, int]] = []

    class Packet:
        def __init__(self, packet):
            self._p = packet

        def __getattr__(self, name):
            return getattr(self._p, name)

        def decode(self):
            frames = self._p.decode()
            calls.append((self._p.pts, len(frames)))
            return frames

    class Container:
        def __init__(self, container):
            self._c = container

        def __getattr__(self, name):
            return getattr(self._c, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._c.close()

        def demux(self, *a):
            return (Packet(packet) for packet in self._c.demux(*a))

    def spying_open(p):
        container, stream = real_open(p)
        return Container(container), stream

    monkeypatch.setattr(sampling, "_open", spying_open)
    return calls


def render_gop_video(path: Path, *, n_frames: int, fps: int, gop: int, size: tuple[int, int] = (96, 64)) -> Path:
    """``n_frames`` frames, each showing its number, with a keyframe every ``gop`` frames and nowhere else
    (x264 without scene-cut keyframes): keyframes where a test needs them."""
    from fractions import Fraction

    import av
    import numpy as np

    from frame_describer.synthetic import draw_frame_number

    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "18", "g": str(gop), "x264-params": "scenecut=0", "threads": "1"}
        for i in range(n_frames):
            image = np.full((h, w, 3), 60 + (i * 37) % 120, np.uint8)
            draw_frame_number(image, i)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path
