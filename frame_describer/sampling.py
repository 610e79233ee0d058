"""Decode a video and sample frames by rate, by count or at given times, streaming, with real timestamps.

Decoder choice: PyAV. Both PyAV and OpenCV report exact timestamps and pick the nearest frame
on the benchmark's constant- and variable-rate files, and neither is reliably faster on this
project's machines (``python benchmarks/decode.py``; figures in docs/benchmarks.md). The choice
rests on what PyAV exposes that OpenCV's reader does not: each frame's own ``pts``/``time_base``
and display matrix (we apply and report the rotation ourselves), the container's claimed duration
apart from what really decodes (truncated files are clamped knowingly), and typed FFmpeg errors
for bad input where OpenCV only says ``isOpened() == False``.

Sampling reads the stream forward, in order, holding only the previous decoded frame: for
each requested time the nearer of the two frames around it is emitted, shrunk and converted
to RGB by FFmpeg's scaler in one pass (longest side <= ``max_side``, area averaging), and
turned upright. A source frame is never emitted twice, so sampling faster than the video's
own rate yields each frame once, and the rate used (recorded, planned) is the video's
(:func:`~frame_describer.rates.rate_used`). Where the stream's keyframe index puts a keyframe well past the decoder's
position and before the next requested time, the decoder seeks to it instead of decoding
the frames between (sparse passes cost what their frames' groups of pictures cost, dense
ones decode straight through); every seek is checked against the frame it lands on. Frames
that no other frame refers to and that lie far from every requested time are not decoded at
all (FFmpeg's ``skip_frame``); one that turns out to be the nearest after all (across a gap
in a variable-rate video) is fetched by seeking back (:class:`_Source`).
"""

from __future__ import annotations

import bisect
import heapq
import logging
import math
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from pydantic import BaseModel

from vidground import interrupts
from vidground.errors import ConfigurationError, VideoDecodeError
from vidground.files import file_kind, refuse_url
from vidground.types import DEFAULT_FPS, Frame

from .rates import IN_RESULT, rate_used


log = logging.getLogger(__name__)

#: Set at a Ctrl-C (the command line's handler, run_eval's): every frame stream then stops at its next frame with a
#: KeyboardInterrupt, in whatever thread it is read. The state is vidground.interrupts' (imported by the handlers
#: whether or not this module is): a Ctrl-C before this module was first imported stopped nothing.
INTERRUPTED = interrupts.INTERRUPTED


def stop_on_interrupt(event: threading.Event) -> None:
    """Set ``event`` at the next Ctrl-C (:func:`vidground.interrupts.interrupt`), or when the run of this thread stops
    (:func:`vidground.interrupts.scope`), or now if either is under way: a describer's stream sends no request it
    has not begun then (the frames decoded and waiting for a request slot), while those under way are answered.
    Held weakly: an event nobody holds any more is forgotten."""
    interrupts.watch(event)


_IMAGE_FORMATS = ("image2", "image2pipe")  # plus every "*_pipe" demuxer (png_pipe, jpeg_pipe, ...)


class VideoInfo(BaseModel):
    """What the container says about a video's first video stream (sizes are upright)."""

    path: str
    duration: float  # seconds; the container's claim, or the last packet's end when it has none
    fps: float | None
    width: int
    height: int
    rotation: int  # degrees counter-clockwise applied to show frames upright (display matrix)
    frame_count: int | None
    codec: str
    container: str
    start_time: float  # the stream's first presentation time; frame times are relative to it
    #: the last frame's presentation time (seconds, relative to ``start_time``), read from the packets at the end of
    #: the file without decoding (:func:`_last_frame`); ``None`` where they could not be read
    last_frame: float | None = None
    #: seconds from the frame before the last to the last (read with it): a frame's length where the stream ends
    last_step: float | None = None

    @property
    def step(self) -> float:
        """Seconds between the last frames (the stream's average rate where they are unknown; 0.04 without one)."""
        return self.last_step or (1.0 / self.fps if self.fps else 0.04)

    @property
    def truncated_at(self) -> float | None:
        """Where the stream really ends (its last frame's time plus a frame), when that is well before the container's
        claimed ``duration`` (a truncated file); else ``None``. As the decoding side decides it (:class:`FrameStream`)."""
        if self.last_frame is None:
            return None
        end = self.last_frame + self.step
        return end if self.duration - end > max(2 * self.step, 0.5) else None

    @property
    def extent(self) -> float:
        """The video's real length in seconds, as decoding it whole finds it: the stream's real end where the container
        claims more than the stream holds (a truncated file), the last frame's time where it claims less (a
        variable-rate file whose frames run past the claim), else the claim."""
        end = self.truncated_at
        if end is not None:
            return end
        return max(self.duration, self.last_frame or 0.0)


def _check_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, refused with a message naming what is wrong before FFmpeg opens it: FFmpeg
    would block on a FIFO, read a device forever, and a special file's size of 0 says nothing."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:  # a dangling link too
        refuse_url(path)
        raise VideoDecodeError(p, "no such file") from None
    except OSError as exc:  # a symlink loop, a path through a file, no permission on a folder
        raise VideoDecodeError(p, f"cannot open the video file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoDecodeError(p, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise VideoDecodeError(p, f"is {file_kind(st.st_mode)}, not a regular video file; save the video to a file first")
    if st.st_size == 0:
        raise VideoDecodeError(p, "file is empty (0 bytes)")
    try:  # a regular file opens at once; what stat cannot tell is whether we may read it
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise VideoDecodeError(p, f"cannot open the video file ({exc.strerror or exc})") from None
    return p


def _open(p: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    try:
        container = av.open(str(p), "r")
    except av.FFmpegError as exc:
        raise VideoDecodeError(p, f"not a readable video file (FFmpeg: {_short(exc)})") from None
    fmt = container.format.name.split(",")[0]
    if fmt in _IMAGE_FORMATS or fmt.endswith("_pipe"):
        container.close()
        raise VideoDecodeError(p, f"is a still image ({fmt}), not a video")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoDecodeError(p, f"has no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:160]


class _Damage:
    """What damaged data cost, by presentation time, across seeks and reopenings: packets that failed to
    decode and frames dropped after them (decoding goes on; the result says what was lost)."""

    def __init__(self) -> None:
        self.packets: set[int] = set()  # pts of the packets that failed to decode
        # pts of the packets the demuxer flagged corrupt (MPEG-TS: a continuity or PES error) and of the frames the
        # decoder flagged: FFmpeg decodes them without an error, hiding the loss with made-up pixels
        self.flagged: set[int] = set()
        self.bad: dict[int, tuple[float, float]] = {}  # pts -> (start, end) seconds lost, each once
        self.resumed = 0  # demux errors skipped by seeking past them

    def span(self, start: float, end: float) -> None:
        """Nothing between ``start`` and ``end`` (seconds) can be shown."""
        self.bad[len(self.bad)] = (start, max(end, start))

    def ranges(self, step: float) -> list[tuple[float, float]]:
        """The lost stretches, seconds, adjacent packets merged (within ``step``)."""
        out: list[tuple[float, float]] = []
        for a, b in sorted(v for v in self.bad.values() if not math.isnan(v[0])):
            if out and a <= out[-1][1] + step / 2:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((max(a, 0.0), b))
        return out


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
            p: Path, hold: Callable[[av.Packet], bool] | None = None,
            damage: _Damage | None = None) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order. A packet that fails to decode (damaged data) is counted
    in ``damage`` and decoding goes on with the next one. Frames decoded after it, up to the next
    keyframe, may be built on the lost one (FFmpeg conceals the error with wrong pixels and does not
    always flag it), so they are dropped and counted too: a gap is honest, a wrong picture is not. A demux error mid-stream is skipped by seeking past it where the
    container allows; where it does not, or at the end of a truncated file, the stream ends there. If
    nothing at all decodes it raises VideoDecodeError.

    ``hold(packet)`` True decodes that packet only if other frames refer to it (FFmpeg's
    ``skip_frame=NONREF``): frames nobody will look at cost nothing. The setting is made per
    packet as it goes to the decoder, so it applies to exactly the packets held.
    """
    n = 0
    ctx = stream.codec_context
    tb = stream.time_base or Fraction(1, 1000)
    origin = stream.start_time or 0
    rate = stream.average_rate or stream.guessed_rate
    step = 1.0 / float(rate) if rate else 0.04

    def _after(pts: int | None) -> float:  # the time just after the frame shown at pts (else where this run began)
        if pts is None:
            return max(float(((first_pts or origin) - origin) * tb), 0.0)
        return float((pts - origin) * tb) + step * 0.5

    skipping = False
    # after a packet fails, every frame may rest on it (with frame threads FFmpeg reports the failure
    # some packets late): frames are dropped until a keyframe shown after every failed packet
    tainted = False
    lost_to = 0
    flagged_only: set[int] = set()  # the packets flagged corrupt since the last good keyframe, while none failed
    shown: int | None = None  # pts of the last frame yielded
    first_pts: int | None = None  # of the first packet this run demuxed
    gap_from: float | None = None  # where the frames stopped before a skipped demux error
    error: av.FFmpegError | None = None
    last_pts: int | None = None  # the latest packet time demuxed
    floor: int | None = None  # after skipping a demux error: packets up to here came before it
    packets = container.demux(stream)
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container itself is damaged here
                error = exc
                if damage is None or last_pts is None or damage.resumed >= MAX_DEMUX_RESUMES:
                    if n:
                        log.warning("%s: decoding stopped after %d frames (%s); the file looks truncated, "
                                    "using what decoded", p, n, _short(exc))
                    break
                damage.resumed += 1
                try:  # on at the first keyframe after the last good packet
                    container.seek(last_pts + 1, stream=stream, backward=False)
                except av.FFmpegError:
                    break
                log.warning("%s: damaged data after %.2fs (%s); skipped to the next keyframe", p,
                            float((last_pts - origin) * tb), _short(exc))
                floor, gap_from = last_pts, _after(shown)
                packets = container.demux(stream)
                continue
            if packet.pts is not None:
                if floor is not None and packet.pts <= floor:
                    continue  # a resumed demuxer must move on, not return to what came before
                last_pts = packet.pts if last_pts is None else max(last_pts, packet.pts)
                first_pts = packet.pts if first_pts is None else min(first_pts, packet.pts)
            if damage is not None and packet.is_corrupt and packet.size:
                # the demuxer lost data here (MPEG-TS): the decoder conceals it without an error, so the frames
                # from here to the next keyframe are dropped as after a packet that fails to decode
                flag = packet.pts if packet.pts is not None else -len(damage.flagged) - 1
                if flagged_only or not tainted:
                    flagged_only.add(flag)
                damage.flagged.add(flag)
                tainted = True
                lost_to = max(lost_to, packet.pts or 0)
            if hold is not None and hold(packet) != skipping:
                skipping = not skipping
                ctx.skip_frame = "NONREF" if skipping else "DEFAULT"
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                error = exc
                if damage is not None and packet.size:
                    damage.packets.add(packet.pts if packet.pts is not None else -len(damage.packets) - 1)
                    tainted = True
                    flagged_only.clear()
                    lost_to = max(lost_to, packet.pts or 0)
                continue
            for frame in decoded:
                if damage is not None and (frame.is_corrupt or tainted):
                    if tainted and frame.key_frame and not frame.is_corrupt and (frame.pts or 0) > lost_to:
                        tainted = False
                        flagged_only.clear()
                        damage.span(_after(shown), float(((frame.pts or 0) - origin) * tb))
                    elif tainted:
                        continue
                    else:  # flagged corrupt on its own: this frame alone
                        damage.flagged.add(frame.pts if frame.pts is not None else -len(damage.flagged) - 1)
                        damage.span(_after(shown), _after(frame.pts))
                        continue
                if gap_from is not None and frame.pts is not None:
                    damage.span(gap_from, float((frame.pts - origin) * tb))  # type: ignore[union-attr]
                    gap_from = None
                n += 1
                shown = frame.pts
                yield frame
        if tainted and damage is not None:  # lost to the end
            if flagged_only:  # the stream ends in a packet read in part (MP4): a truncated file, said as such
                damage.flagged.difference_update(flagged_only)
            else:
                damage.span(_after(shown), float(((last_pts or 0) - origin) * tb) + step)
    finally:
        if skipping:
            ctx.skip_frame = "DEFAULT"
    if error is not None and n == 0:
        raise VideoDecodeError(p, f"no frame could be decoded (FFmpeg: {_short(error)})")


def _scan_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The end of the last packet (seconds, relative to the stream start), demuxing without decoding."""
    end = 0
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0))
    origin = stream.start_time or 0
    return float((end - origin) * stream.time_base) if end else 0.0


def _last_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                claim: int | None) -> tuple[int, int | None] | None:
    """The two largest presentation times (stream ticks; the second ``None`` when there is one packet) among the
    packets from the last keyframe to the end of the file, none decoded. The keyframe is the index's last (MP4: the
    index is read in full at opening), else the one FFmpeg's seek to ``claim`` (the claimed end, stream ticks) lands
    on: Matroska reads its cues then, MPEG-TS searches the file by timestamps. Wherever a seek lands, the packets are
    read to the end of the file, so a wrong claim costs time, not the answer: a Matroska file cut before its cues is
    read through (demuxed, not decoded). A truncated file's index promises keyframes past its data: the last one
    whose packet can still be read is found by bisection (one seek and one packet each). ``None`` where nothing
    could be read (a raw stream that cannot seek).

    Measured (a 30-min 360p H.264 video, keyframe every 10 s, as MP4 and remuxed to MKV and TS; CPU per probe, 3
    interleaved rounds of 20 probes, load 9): MP4 0.0136 -> 0.0165 s, MKV 0.0061 -> 0.0098 s, TS 0.0066 -> 0.0080 s.
    Reading the MP4's index entries into a list first cost 0.03 s; a seek to the last 1 MiB by byte position made
    Matroska's demuxer go back to its first cluster and read all 44874 packets (0.3 s)."""

    def tail() -> tuple[int, int | None] | None:
        seq: list[tuple[int, bool]] = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    seq.append((packet.pts, packet.is_corrupt))
        except av.FFmpegError:  # the end of a truncated or damaged file: what came is the end
            pass
        # a last packet read in part (a truncated MP4): the decoder shows no frame from its time on
        cut = seq.pop()[0] if seq and seq[-1][1] else None
        pts = {t for t, _ in seq if cut is None or t < cut}
        top = sorted(pts)[-2:]
        return (top[-1], top[0] if len(top) == 2 else None) if top else None

    def readable(i: int) -> bool:  # whether the packet of the keyframe at or before index entry i is all in the file
        try:
            container.seek(index[i].timestamp, stream=stream, backward=True)
            return any(p.size and not p.is_corrupt for p in [next(container.demux(stream), None)] if p is not None)
        except (av.FFmpegError, StopIteration):
            return False

    index = stream.index_entries
    try:
        if len(index) > 1:  # entries are read one by one (an MP4's index holds every frame): only those needed
            lo, hi = 0, len(index) - 1
            if not readable(hi):  # bisect for the last entry whose keyframe is in the file
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if readable(mid) else (lo, mid - 1)
                hi = lo
            container.seek(index[hi].timestamp, stream=stream, backward=True)
            return tail()
        if not claim:  # no claim: the probe's scan of every packet already found the end
            return None
        container.seek(claim, stream=stream, backward=True)
        return tail()
    except av.FFmpegError:  # a container that cannot seek (a raw stream): the claim stands
        return None


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path``, check that a frame decodes, and report its stream's metadata, with its last frame's time read
    from the packets at the end of the file (:func:`_last_frame`): the container's claimed duration can be wrong both
    ways (a truncated file, a variable-rate one whose frames run past it), and :attr:`VideoInfo.extent` is the real
    one."""
    p = _check_path(path)
    container, stream = _open(p)
    with container:
        tb = stream.time_base or Fraction(1, 1000)
        first = next(iter(_decode(container, stream, p)), None)
        if first is None:
            raise VideoDecodeError(p, "the video stream has no decodable frames")
        rotation = int(first.rotation or 0)
        origin = stream.start_time if stream.start_time is not None else (first.pts or 0)
        if stream.duration:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = float(container.duration / av.time_base) - float(origin * tb)
        else:  # a fresh demuxer: raw streams cannot seek back to the start
            scan, scan_stream = _open(p)
            with scan:
                duration = _scan_duration(scan, scan_stream)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        w, h = first.width, first.height
        if rotation % 180:
            w, h = h, w
        last = _last_frame(container, stream, origin + int(max(duration, 0.0) / tb) if duration > 0 else None)
        secs = None if last is None else [None if x is None else float((x - origin) * tb) for x in last]
        return VideoInfo(
            path=str(p), duration=max(duration, 0.0), fps=float(rate) if rate else None,
            width=w, height=h, rotation=rotation, frame_count=stream.frames or None,
            codec=stream.codec_context.name, container=container.format.name,
            start_time=float(origin * tb),
            last_frame=None if secs is None else max(secs[0], 0.0),  # type: ignore[type-var]
            last_step=None if secs is None or secs[1] is None else secs[0] - secs[1],  # type: ignore[operator]
        )


def to_image(frame: av.VideoFrame, rotation: int, max_side: int | None,
             reformatter: VideoReformatter | None = None) -> np.ndarray:
    """RGB uint8, turned upright by the display matrix, longest side at most ``max_side``.

    FFmpeg's scaler (swscale, area averaging) shrinks and converts to RGB in one pass from the
    decoder's own planes, where converting the full frame and then shrinking it with OpenCV reads
    and writes every pixel twice; the output size is :func:`~frame_describer.images.bounded`'s.
    Pass one ``reformatter`` per stream to keep its scaler set up between frames.
    """
    k = (rotation // 90) % 4
    w, h = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)  # upright
    if max_side is not None and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    if k % 2:
        w, h = h, w
    image = (reformatter or VideoReformatter()).reformat(
        frame, width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    # rows come padded to the scaler's alignment unless 3 * width is a multiple of it
    return np.ascontiguousarray(np.rot90(image, k) if k else image)


class FrameStream(Iterator[Frame]):
    """The frames :func:`sample_frames` yields, decoded lazily; also says what it will do.

    ``info`` is the probed :class:`VideoInfo`; ``fps`` the effective sampling rate: the rate asked, lowered by
    ``max_frames``, at most the video's own (:func:`~frame_describer.rates.rate_used`; ``None`` by count or at
    given times); ``planned`` how many frames the plan asks for (fewer come when
    the stream ends early or the video has fewer frames than requested times); ``seeks`` and
    ``fallbacks`` what the decoder did to get them; ``damage``, ``bad_packets``, ``lost_seconds``,
    ``truncated_at`` and ``warnings`` what a damaged or truncated file lost (complete once the
    stream has been read). Close it (or use ``with``) to release the file early.
    """

    def __init__(self, info: VideoInfo, targets: Iterator[float], *, fps: float | None,
                 planned: int, max_side: int | None, limit: int | None = None, keyframes_only: bool = False,
                 tolerance: float = 0.0, notes: Sequence[str] = ()):
        self.info, self.fps, self.planned, self.max_side = info, fps, planned, max_side
        self._notes = list(notes)  # what the plan said about the request (a rate above the video's), for warnings
        #: each requested time was answered by the nearest keyframe (see :func:`sample_frames`)
        self.keyframes_only = keyframes_only
        #: seconds: a keyframe this close to a requested time answers it (see :func:`sample_frames`)
        self.tolerance = tolerance
        #: how many requested times a keyframe within the tolerance answered (known once reading began)
        self.snapped = 0
        #: where the stream really ended, when that is well before the container's claimed duration: known from the
        #: probe's read of the last packets (:attr:`VideoInfo.truncated_at`), and confirmed by decoding to the end
        self.truncated_at: float | None = info.truncated_at
        self._src: _Source | None = None
        self._damage: _Damage | None = None  # keyframes_only: what failed to decode
        self._reformatter = VideoReformatter()
        self._limit = limit
        self._step = 1.0 / info.fps if info.fps else 0.04
        self._told: set[str] = set()  # what _explain logged
        self._gen = self._run(targets)
        self._opened_after = interrupts.count()  # how many Ctrl-Cs came before it
        self._stops = interrupts.stops()  # its run's stop (an eval's video worker): it stops as at a Ctrl-C

    def __next__(self) -> Frame:
        if interrupts.stopped(self._opened_after, self._stops):
            self.close()
            raise KeyboardInterrupt(f"{self.info.path}: interrupted")
        return next(self._gen)

    def __iter__(self) -> "FrameStream":
        return self

    def close(self) -> None:
        self._gen.close()

    def __enter__(self) -> "FrameStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, targets: Iterator[float]) -> Iterator[Frame]:
        info, p = self.info, Path(self.info.path)
        if self.keyframes_only:
            yield from self._keyframes(targets)
            return
        threads = "AUTO"
        if self.tolerance > 0 and isinstance(targets, _Times):
            targets = self._snap(targets)
            if 2 * self.snapped > len(targets):
                # mostly single keyframes, each after a seek: frame threads would decode a frame per thread
                # ahead of each and throw them away at the next seek
                threads = "SLICE"
        src = self._src = _Source(p, info, getattr(targets, "after", None), threads=threads)
        try:
            yield from self._sample(src, targets)
        finally:
            src.close()

    def _keyframes(self, targets: Iterator[float]) -> Iterator[Frame]:
        """The nearest keyframe to each requested time, in one forward read of the packets: only the
        keyframes picked are decoded, each on its own (a keyframe needs no other frame); the previous
        keyframe's packet is held undecoded until the next one shows which is nearer."""
        p = Path(self.info.path)
        container, stream = _open(p)
        stream.thread_type = "SLICE"  # one frame at a time: frame threads would hold it back
        ctx = stream.codec_context
        tb = stream.time_base or Fraction(1, 1000)
        origin = round(self.info.start_time / tb)
        damage = self._damage = _Damage()
        skip = getattr(targets, "skip_past", None)
        out, emitted, end = 0, None, -math.inf

        def shown(pick: tuple[av.Packet, float]) -> Frame | None:
            try:
                frames = [*pick[0].decode(), *ctx.decode(None)]
            except av.FFmpegError:
                damage.packets.add(pick[0].pts)
                damage.span(pick[1], pick[1] + self._step)
                frames = []
            if pick[0].is_corrupt or (frames and frames[0].is_corrupt):  # FFmpeg's made-up pixels: not shown
                damage.flagged.add(pick[0].pts or 0)
                damage.span(pick[1], pick[1] + self._step)
                frames = []
            ctx.flush_buffers()
            if not frames:
                return None
            frame = frames[0]
            t = float(((frame.pts if frame.pts is not None else pick[0].pts) - origin) * tb)
            return Frame(t=max(t, 0.0), index=out, source_index=None,
                         image=to_image(frame, self.info.rotation, self.max_side, self._reformatter))

        with container:
            prev: tuple[av.Packet, float] | None = None
            target = next(targets, None)
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                t = float((packet.pts - origin) * tb)
                end = max(end, t + (float(packet.duration * tb) if packet.duration else self._step))
                if target is None or not packet.is_keyframe:
                    continue
                cur = (packet, t)
                while target is not None and t >= target:
                    pick = prev if prev is not None and target - prev[1] <= t - target else cur
                    if pick[1] != emitted:
                        emitted = pick[1]
                        frame = shown(pick)
                        if frame is not None:
                            yield frame
                            out += 1
                    if out == self._limit:
                        target = None
                    elif skip is None:
                        target = next(targets, None)
                    else:  # the rest up to this keyframe (or half-way to it) would repeat the pick
                        target = skip(t if pick is cur else (prev[1] + t) / 2)  # type: ignore[index]
                prev = cur
            if target is not None and prev is not None and prev[1] != emitted and out != self._limit and (
                    isinstance(targets, _Times) or target < end):
                frame = shown(prev)
                if frame is not None:
                    yield frame
        if out == 0 and emitted is None and prev is None:
            raise VideoDecodeError(p, "the video stream has no keyframes")

    def _snap(self, targets: "_Times") -> "_Times":
        """The requested times, each one with a keyframe within the tolerance replaced by that keyframe's
        own time (the nearer one; ties to the earlier), so the exact sampler seeks to it and decodes it
        alone, where the frame nearest the time asked would cost the frames from the keyframe to it."""
        wanted = targets.times
        keys = _keyframe_times(self.info, wanted, self.tolerance)
        out = []
        for t in wanted:
            i = bisect.bisect_left(keys, t)
            near = min((keys[j] for j in (i - 1, i) if 0 <= j < len(keys)), key=lambda k: (abs(k - t), k), default=None)
            if near is not None and abs(near - t) <= self.tolerance + 1e-9:
                out.append(near)
                self.snapped += 1
            else:
                out.append(t)
        return _Times(out)

    @property
    def seeks(self) -> int:
        """How many times the decoder jumped to a keyframe instead of decoding on."""
        return self._src.seeks if self._src else 0

    @property
    def fallbacks(self) -> int:
        """1 when a seek proved broken (refused, or landing past its time even from earlier keyframes) and the
        stream was decoded from the start instead."""
        return self._src.fallbacks if self._src else 0

    @property
    def bad_packets(self) -> int:
        """How many packets failed to decode (damaged data) among those the sampler decoded."""
        record = self._record()
        return len(record.packets) if record else 0

    def _record(self) -> "_Damage | None":
        return self._src.damage if self._src else self._damage

    @property
    def damage(self) -> list[tuple[float, float]]:
        """The stretches ``(start, end)`` in seconds where packets failed to decode: their frames are
        missing, and a requested time there gets the nearest frame that did decode."""
        record = self._record()
        return record.ranges(self._step) if record else []

    @property
    def lost_seconds(self) -> float:
        """Seconds of video that could not be decoded: the damaged stretches, plus what a truncated
        file's container claims past the stream's real end."""
        lost = sum(b - a for a, b in self.damage)
        if self.truncated_at is not None:
            lost += max(self.info.duration - self.truncated_at, 0.0)
        return lost

    @property
    def warnings(self) -> list[str]:
        """What a result built from these frames should tell its reader about the video (damage,
        truncation) and the request (a rate above the video's, also logged); empty for a sound file asked for no
        more frames than it has. Complete once the stream has been read to its end."""
        name, out = Path(self.info.path).name, list(self._notes)
        ranges = self.damage
        record = self._record()
        resumed = record.resumed if record else 0
        flagged = len(record.flagged) if record else 0
        if self.bad_packets or resumed or flagged:
            what = [f"{self.bad_packets} packet(s) could not be decoded"] if self.bad_packets else []
            what += [f"FFmpeg flagged {flagged} packet(s) or frame(s) corrupt"] if flagged else []
            what += [f"its container could not be read in {resumed} place(s)"] if resumed else []
            where = ", ".join(f"{a:.2f}-{b:.2f}s" for a, b in ranges[:5]) + (", ..." if len(ranges) > 5 else "")
            out.append(f"{name} is damaged: {' and '.join(what)}"
                       + (f" ({sum(b - a for a, b in ranges):.2f}s of video lost, at {where})" if ranges else "")
                       + "; times there are described from the nearest frame that decoded")
        if self.truncated_at is not None:
            out.append(f"{name} looks truncated: its video stream ends at {self.truncated_at:.2f}s although "
                       f"the container claims {self.info.duration:.2f}s; the rest is missing")
        return out

    def _sample(self, src: "_Source", targets: Iterator[float]) -> Iterator[Frame]:
        info, p = self.info, Path(self.info.path)
        target = next(targets, None)
        skip = getattr(targets, "skip_past", None)
        prev: tuple[av.VideoFrame, float, int | None] | None = None
        emitted: float | None = None  # time of the last frame emitted (times strictly increase)
        last_t = -math.inf  # time of the last frame decoded, across seeks
        out = 0
        step = 1.0 / info.fps if info.fps else 0.04
        planned_for: float | None = None  # the target the seek decision was last made for
        before_seek, last_t_before_seek = prev, last_t
        past: tuple[float, float] | None = None  # (wanted, landed): a seek that landed past, not yet explained
        while target is not None:
            if target != planned_for:
                planned_for = target
                if src.seek_for(target, max(last_t, 0.0)):
                    before_seek, prev = prev, None  # the nearest frame is at or after the keyframe landed on
                    last_t_before_seek = last_t
                src.aim()
            got = src.next()
            at = None if got is None else got[1]
            if src.landed and (at is None or at > target + 1e-6):
                # the seek found no frame, or one past the target: the frame before it may be the nearest, and
                # the keyframe landed on cannot say where it is (a gap in the video, damaged frames, an inexact
                # seek): decode on from an earlier keyframe (or from the start)
                if at is not None and (past is None or past[0] != target):
                    past = (target, at)
                if _retry_seek(src, target, at):
                    if prev is None:  # else a seek back after a doubt: prev is still the frame at last_t
                        prev = before_seek
                    continue
            if got is None:
                held = src.doubt(prev[1], None) if prev is not None else None
                if held is not None:  # the stream's last frame was skipped: decode its tail whole
                    src.redos += 1
                    last_t = prev[1]  # type: ignore[index]
                    if src.seek_for(held, 0.0, force=True) or src.fall_back("the seek back to the tail failed"):
                        continue
                break
            frame, t, index = got
            if src.landed:
                src.settle()
            if t <= last_t:
                log.debug("%s: skipping frame with non-increasing time %.3fs", p, t)
                continue
            cur = (frame, t, index)
            if past is not None and t >= past[0]:  # the first frame at or after the time whose seek landed past it
                self._explain(*past, t, max([prev[1] if prev is not None else -math.inf, *src.gap]))
                past = None
            if t >= target and src.doubt(prev[1] if prev else -math.inf, t) is not None:
                # a skipped frame between this one and the one before may be nearest: decode that stretch whole
                src.redos += 1
                if prev is None:
                    prev, last_t = before_seek, last_t_before_seek
                else:
                    last_t = prev[1]
                if not src.seek_for(target, 0.0, force=True):
                    src.fall_back(f"the seek back to {target:.3f}s failed")
                continue
            while target is not None and t >= target:
                pick = prev if prev is not None and target - prev[1] <= t - target else cur
                if pick[1] != emitted:
                    emitted = pick[1]
                    yield self._frame(pick, out)
                    out += 1
                if out == self._limit:
                    target = None
                elif skip is not None and emitted == t:  # the rest up to t would repeat this frame
                    target = skip(t)
                elif skip is not None and prev is not None and emitted == prev[1]:
                    target = skip((prev[1] + t) / 2)  # the rest up to half-way would repeat prev
                else:
                    target = next(targets, None)
            if prev is not None:
                step = t - max([prev[1], *src.gap])  # from the frame just before, skipped or not
            prev, last_t = cur, t
        if target is None:
            return
        if prev is None:
            raise VideoDecodeError(p, "the video stream has no decodable frames")
        real_end = max([prev[1], *src.gap]) + step  # the last frame, skipped or not
        past_end_too = isinstance(targets, _Times)  # a time asked for explicitly: the last frame is its nearest
        if (past_end_too or target < real_end - 1e-6) and prev[1] != emitted and out != self._limit:
            yield self._frame(prev, out)  # the last frame is nearest to what remains
            out += 1
        if info.duration - real_end > max(2 * step, 0.5):
            # said once, by warnings (a result's): logged as well, it was printed twice by the command line
            self.truncated_at = real_end
            log.info("%s: the stream ends at %.2fs although the container claims %.2fs; "
                     "clamped to the real end", p, real_end, info.duration)

    def _explain(self, wanted: float, landed: float, after: float, before: float) -> None:
        """Say once why a seek for ``wanted`` landed on a frame at ``landed``, now that decoding from an earlier
        keyframe found the frames around ``wanted`` (the last before it at ``before``, the first at or after it
        at ``after``): damaged frames, a gap in the video, or a seek that really was inexact."""
        name = Path(self.info.path).name
        lost = [(a, b) for a, b in self.damage if a < after and b > before]
        if after < landed - 1e-6:
            how = "from the start" if self.fallbacks else "on from an earlier keyframe"
            what = (f"the seek to {wanted:.3f}s landed at {landed:.3f}s, past frames it should have shown (an "
                    f"inexact seek); decoded {how} instead")
        elif lost:
            what = (f"no frame could be decoded from {lost[0][0]:.2f}s to {lost[-1][1]:.2f}s (damaged data); "
                    f"{wanted:.3f}s gets the nearest frame that decoded")
        elif landed - before > max(GAP_SECONDS, 4 * self._step):  # no frame between: a gap in the video
            before = max(before, 0.0)
            what = (f"no frame from {before:.3f}s to {landed:.3f}s (a gap of {landed - before:.2f}s in the video); "
                    f"{wanted:.3f}s gets the nearest frame")
        else:
            return  # frames a little irregular: the seek landed on the frame just after the time wanted
        if what not in self._told:
            self._told.add(what)
            log.warning("%s: %s", name, what)

    def _frame(self, pick: tuple[av.VideoFrame, float, int | None], index: int) -> Frame:
        frame, t, src = pick
        return Frame(t=max(t, 0.0), index=index, source_index=src,
                     image=to_image(frame, self.info.rotation, self.max_side, self._reformatter))


def _retry_seek(src: "_Source", target: float, landed_at: float | None) -> bool:
    """A seek for ``target`` landed on a frame past it (at ``landed_at``) or on none (``None``): seek to an earlier
    keyframe (:meth:`_Source.walk_back`), else decode from the start (:meth:`_Source.fall_back`); False when neither
    is left to try."""
    if src.walk_back(landed_at):
        return True
    if landed_at is None:
        why = f"the seek to {target:.3f}s found no frame"
    else:
        why = (f"the seek to {target:.3f}s landed at {landed_at:.3f}s, past it, and "
               + ("so did seeks to earlier keyframes" if src.tries else "no earlier keyframe is known"))
    return src.fall_back(why)


# Seeking flushes the decoder, throwing away the frames its threads have in flight, so a seek pays
# only when it skips more than a few frames' decoding.
SEEK_MARGIN_FRAMES = 32
SLICE_SEEK_MARGIN_FRAMES = 2  # with slice threads nothing decoded is in flight: a seek pays once it skips a frame or two
NO_INDEX_SEEK_GAP = 30.0  # seconds; without a keyframe index, seek only over gaps this long
MAX_DEMUX_RESUMES = 16  # demux errors skipped per stream before the rest is given up as unreadable
# Frames that no other frame refers to are not decoded unless this close to the next wanted time
# (they cannot be the nearest frame unless the video has a gap; :meth:`_Source.doubt` checks).
HOLD_MARGIN_FRAMES = 2
# A stretch without frames this long (seconds, and at least 4 frame intervals) that a seek landed across is
# logged as a gap in the video; shorter ones are a variable frame rate's irregularity, not worth a word.
GAP_SECONDS = 1.0


class _Source:
    """Decoded frames ``(frame, t, source_index)`` in presentation order, read on from where the
    decoder is, or from the keyframe before a wanted time when that skips enough decoding.

    The keyframe comes from the stream's own index (``av_index_search_timestamp``). Where the
    index is there, packets more than ``HOLD_MARGIN_FRAMES`` from every requested time
    (``near``: the first requested time at or after a time) are decoded only if other frames
    refer to them; their times are kept, so a skipped frame that would be the nearest to a
    requested time (:meth:`doubt`) is fetched by seeking back and decoding that stretch whole,
    and source indices still count it. A seek is checked, not trusted: when the first frame after
    it is later than the wanted time or nothing decodes after it, the frame before may be nearer and
    cannot be placed from there (a gap in a variable-rate video, whose keyframe after the gap the
    index files under its earlier decoding time; a damaged keyframe; an inexact seek), so it seeks to
    an earlier keyframe of the index and decodes on (:meth:`walk_back`; frames already passed are
    skipped). Where there is none, or FFmpeg refuses a seek, the file is reopened and decoded from
    the start and seeking is off for the rest of the stream.
    ``source_index`` is the frame's position in the stream while decoding runs from the start,
    ``None`` after a seek (an index counts frames, and a seek skips them uncounted).
    """

    def __init__(self, p: Path, info: VideoInfo, near: Callable[[float], float | None] | None = None,
                 threads: str = "AUTO"):
        self.p, self.info, self.near, self.threads = p, info, near, threads
        self.margin = HOLD_MARGIN_FRAMES / (info.fps or 25.0)
        self.seeks = self.fallbacks = self.redos = 0  # redos: seeks repeated without skipping frames
        self.backs = 0  # seeks to an earlier keyframe after a seek landed past its target (walk_back)
        self.tries = 0  # walk_back's steps for the current target
        self.entry: int | None = None  # the index entry the last seek aimed at (None: a seek by time alone)
        self.aimed: int | None = None  # the entry FFmpeg finds for the current target
        self.wanted = 0.0  # the current target
        self.first_past = math.inf  # where the current target's first seek landed, past it
        # FFmpeg's entry -> (an earlier entry that lands at or before targets, the first target it need not serve)
        self.detours: dict[int, tuple[int, float]] = {}
        self.seekable = True
        self.landed = False  # a seek just happened and its first frame has not been checked yet
        self.damage = _Damage()  # kept across seeks and reopenings
        self._open()

    def _open(self) -> None:
        self.container, self.stream = _open(self.p)
        stream = self.stream
        stream.thread_type = self.threads
        self.tb = stream.time_base or Fraction(1, 1000)
        self.origin = round(self.info.start_time / self.tb)  # in stream ticks
        self.index = stream.index_entries if len(stream.index_entries) else None
        # index timestamps are decoding times; a keyframe is shown `delay` ticks after it is decoded
        self.delay = max(0, self.origin - self.index[0].timestamp) if self.index is not None else 0
        self.frames = _decode(self.container, stream, self.p, self._hold, self.damage)
        self.count: int | None = 0
        self.last = 0.0
        self.tbf = float(self.tb)
        self.holding = self.near is not None and self.index is not None  # where a seek back can undo it
        self.held: list[int] = []  # pts of held packets not yet passed: those never shown were skipped
        self.gap: list[float] = []  # times of the frames skipped just before the last frame decoded

    def close(self) -> None:
        self.frames.close()
        self.container.close()

    def next(self) -> tuple[av.VideoFrame, float, int | None] | None:
        try:
            frame = next(self.frames, None)
        except VideoDecodeError:
            if not self.landed:
                raise
            frame = None  # nothing decodes after the seek: the caller falls back
        if frame is None:
            return None
        if frame.pts is None:  # no time to seek by or to check a seek against
            self.seekable = False
            if self.count is None:  # after a seek it cannot be placed: the caller's check falls back
                t = math.inf
            else:
                t = self.last + 1.0 / (self.info.fps or 25.0) if self.count else 0.0
        else:
            t = float((frame.pts - self.origin) * self.tb)
        self.last = t
        skipped = self._passed(frame.pts)
        index = self.count
        if index is not None:
            index += skipped
            self.count = index + 1
        return frame, t, index

    def _passed(self, pts: int | None) -> int:
        """Frames come in time order: held packets shown before this one were skipped; how many."""
        held, gap = self.held, []
        while held and (pts is None or held[0] <= pts):
            h = heapq.heappop(held)
            if h != pts:
                gap.append((h - self.origin) * self.tbf)
        self.gap = gap
        return len(gap)

    def seek_for(self, target: float, at: float, *, force: bool = False) -> bool:
        """Seek to the keyframe before ``target`` when that skips enough decoding past ``at`` (the time
        of the last decoded frame), or ``force`` (then skipping nothing until ``target``); True when it
        seeked."""
        if not self.seekable:
            return False
        fps = self.info.fps or 25.0
        # a hair past the target: a keyframe's own time, converted back to ticks, can round a tick short
        want = self.origin + int((target + 1e-7) / self.tb)
        entry = i = None  # the index entry of the keyframe to land on; the one FFmpeg finds for the target
        if self.index is not None:
            # FFmpeg searches decoding times, its time less the first packet's delay: where decoding and display
            # orders differ by more than that (a gap in a variable-rate video), it lands on a keyframe shown
            # past the target; a keyframe found earlier to land on or before such a target is used instead
            i = self.index.search_timestamp(want - self.delay, backward=True)
            if i >= 0:
                entry, landed_at = self.detours.get(i, (i, -math.inf))
                if target >= landed_at:  # the keyframe FFmpeg finds is shown at or before this target: fine
                    entry = i
            else:
                i = None
        if not force and self.index is not None:  # where the keyframe before the target is decides
            if entry is None:
                return False
            key = float((self._entry_ticks(entry) - self.origin) * self.tb)
            if key - at <= (SEEK_MARGIN_FRAMES if self.threads == "AUTO" else SLICE_SEEK_MARGIN_FRAMES) / fps:
                return False
        elif not force and target - at <= NO_INDEX_SEEK_GAP:
            return False
        self.tries, self.aimed, self.wanted = 0, i, target
        return self._seek(want if entry is None or entry == i else self._entry_ticks(entry), target, entry,
                          holding=not force and self.near is not None)

    def _entry_ticks(self, entry: int) -> int:
        """The time to seek to for FFmpeg to land on index ``entry`` (its decoding time plus the shift FFmpeg
        takes off)."""
        return self.index[entry].timestamp + self.delay  # type: ignore[index]

    def _seek(self, ticks: int, target: float, entry: int | None, *, holding: bool) -> bool:
        try:  # FFmpeg lands on the last keyframe shown at or before the time asked for
            self.container.seek(ticks, stream=self.stream, backward=True)
        except av.FFmpegError as exc:  # a refused seek can leave the demuxer anywhere: start again
            self.fall_back(f"seeking to {target:.3f}s failed ({_short(exc)})")
            return False
        self.frames.close()
        self.held, self.gap = [], []
        self.holding = holding
        self.frames = _decode(self.container, self.stream, self.p, self._hold, self.damage)
        self.seeks += 1
        self.count = None
        self.landed = True
        self.entry = entry
        return True

    def walk_back(self, landed_at: float | None) -> bool:
        """The last seek landed past its wanted time (on a frame at ``landed_at``), or on no frame (``None``):
        seek to an earlier keyframe of the index (one back, then two more, four more... while the same target
        keeps landing past), holding frames as that seek did. False when there is no earlier keyframe to try
        (the caller falls back); True once it seeked, or fell back itself when FFmpeg refused the seek: either
        way the caller reads on.

        Whether that seek held frames back is :attr:`holding` still: between a seek and the check of where it
        landed only :meth:`aim` sets it, right after a seek made for a new target, and to that seek's own value
        (a seek that holds is made only with ``near``, an index and seeking on); a seek back after a doubt, which
        holds nothing, keeps its target, so no :meth:`aim` follows it."""
        if not self.seekable or self.entry is None or self.index is None:
            return False
        if not self.tries:  # the first landing: FFmpeg's keyframe is no use for targets before it
            self.first_past = math.inf if landed_at is None else landed_at
        j = self.entry
        for _ in range(1 << self.tries):
            k = self.index.search_timestamp(self.index[j].timestamp - 1, backward=True)
            if k < 0:
                break
            j = k
        if j == self.entry:
            return False
        self.tries += 1
        self.backs += 1
        self._seek(self._entry_ticks(j), self.wanted, j, holding=self.holding)
        return True

    def settle(self) -> None:
        """The first frame after a seek is at or before its wanted time: when that took walking back, the keyframe
        that served is remembered, for the later targets that FFmpeg's own keyframe would land past."""
        self.landed = False
        if self.tries and self.aimed is not None and self.entry is not None:
            self.detours[self.aimed] = (self.entry, self.first_past)
        self.tries = 0

    def _hold(self, packet: av.Packet) -> bool:
        if not self.holding or packet.pts is None:
            return False
        t = (packet.pts - self.origin) * self.tbf
        nearest_wanted = self.near(t - self.margin)  # type: ignore[misc]
        if nearest_wanted is not None and nearest_wanted <= t + self.margin:
            return False
        heapq.heappush(self.held, packet.pts)
        return True

    def aim(self) -> None:
        """A new wanted time: hold frames again if a doubt stopped it (only where a seek back can
        fetch a held frame that turns out to be needed: an index, and seeking works)."""
        self.holding = self.near is not None and self.seekable and self.index is not None

    def doubt(self, before: float, after: float | None) -> float | None:
        """The time of a frame skipped between the decoded frames at ``before`` and ``after`` (``None``:
        the stream's end) that is the nearest frame to some wanted time, else ``None``."""
        if after is None:
            self._passed(None)
        for s in self.gap:
            if before < s and (after is None or s < after):
                lo, hi = max((before + s) / 2, 0.0), math.inf if after is None else (s + after) / 2
                wanted = self.near(lo - 1e-9)  # type: ignore[misc]
                if wanted is not None and wanted <= hi + 1e-9:
                    return s
        return None

    def fall_back(self, why: str) -> bool:
        """Reopen and decode from the start, seeking no more; False when that already happened."""
        if self.fallbacks:
            return False
        log.warning("%s: %s; decoding from the start instead of seeking", self.p, why)
        self.fallbacks += 1
        self.close()
        self._open()
        self.seekable = self.landed = self.holding = False
        return True


class _Grid(Iterator[float]):
    """Requested times ``value(k)`` for ``k = 0, 1, ...`` (increasing), below ``stop`` and fewer than
    ``count``; :meth:`skip_past` jumps to the first one after a time without walking those before it,
    so a request far denser than the video's frames (``--fps 1e8``) costs what its frames cost."""

    def __init__(self, value: Callable[[int], float], slope: float, *, stop: float = math.inf,
                 count: int | None = None):
        self.value, self.slope, self.stop, self.count, self.k = value, slope, stop, count, 0

    def __next__(self) -> float:
        if self.count is not None and self.k >= self.count:
            raise StopIteration
        t = self.value(self.k)
        if t >= self.stop:
            raise StopIteration
        self.k += 1
        return t

    def after(self, t: float) -> float | None:
        """The first requested time at or after ``t``, served or not (``None`` when there is none)."""
        k = max(0, math.ceil((t - self.value(0)) / self.slope)) if self.slope > 0 else 0
        while k > 0 and self.value(k - 1) >= t:
            k -= 1
        while self.value(k) < t:
            k += 1
        if self.count is not None and k >= self.count:
            return None
        v = self.value(k)
        return v if v < self.stop else None

    def skip_past(self, t: float) -> float | None:
        """The first time after ``t`` (``None`` when there is none)."""
        guess = int(math.floor((t - self.value(0)) / self.slope)) - 1 if self.slope > 0 else self.k
        self.k = max(self.k, guess)
        while True:
            nxt = next(self, None)
            if nxt is None or nxt > t:
                return nxt


def _rate_targets(start: float, stop: float, fps: float) -> _Grid:
    return _Grid(lambda k: start + k / fps, 1.0 / fps, stop=stop)


class _Times(Iterator[float]):
    """Requested times from a list, served in increasing order without duplicates; :meth:`skip_past`
    jumps over those a frame already answers (as :class:`_Grid` does)."""

    def __init__(self, times: list[float]):
        self.times, self.k = sorted(set(times)), 0

    def __len__(self) -> int:
        return len(self.times)

    def __next__(self) -> float:
        if self.k >= len(self.times):
            raise StopIteration
        self.k += 1
        return self.times[self.k - 1]

    def after(self, t: float) -> float | None:
        """The first requested time at or after ``t``, served or not (``None`` when there is none)."""
        i = bisect.bisect_left(self.times, t)
        return self.times[i] if i < len(self.times) else None

    def skip_past(self, t: float) -> float | None:
        """The first time after ``t`` (``None`` when there is none)."""
        self.k = max(self.k, bisect.bisect_right(self.times, t))
        return next(self, None)


# How much later than it is decoded a keyframe can be shown (its pts over its dts), at most, in seconds: the
# container index gives decoding times, so keyframes are looked up this much earlier than a wanted time.
MAX_KEYFRAME_DELAY = 2.0


def _keyframe_times(info: VideoInfo, wanted: Sequence[float], tolerance: float) -> list[float]:
    """The presentation times (seconds, as the decoding side computes them) of the keyframes that may lie
    within ``tolerance`` of a ``wanted`` time (sorted), read from packets, none decoded.

    With a container index read in full (MP4's) only those keyframes' packets are read, one seek each: the
    index holds decoding times, so every keyframe decoded up to ``MAX_KEYFRAME_DELAY`` before the window is
    a candidate and its packet says its real time (a constant decode-to-display delay is not assumed:
    open groups of pictures break it). Without an index the packets are read from the start up to the last
    time wanted. A container that fails to demux gives the keyframes it could read (the other times are
    sampled exactly)."""
    container, stream = _open(Path(info.path))
    tb = stream.time_base or Fraction(1, 1000)
    origin = round(info.start_time / tb)
    index = stream.index_entries
    # an index read in full (MP4's); Matroska reads its cues only at its first seek: the packets then
    covered = len(index) > 1 and float((index[-1].timestamp - origin) * tb) >= min(wanted[-1], info.extent) - (
        tolerance + MAX_KEYFRAME_DELAY)
    keys: set[float] = set()
    with container:
        try:
            if covered:
                decoded_at = [e.timestamp for e in index if e.is_keyframe]  # ticks, increasing
                reach = (tolerance + MAX_KEYFRAME_DELAY) / tb
                ticks: set[int] = set()
                for t in wanted:
                    g = origin + t / tb
                    lo = bisect.bisect_left(decoded_at, g - reach)
                    ticks.update(decoded_at[lo:bisect.bisect_right(decoded_at, g + tolerance / tb)])
                # FFmpeg seeks by display time, about the first packet's delay past the decoding time; a seek
                # that lands a keyframe early reads on to the one wanted
                delay = max(0, origin - index[0].timestamp)
                for tick in sorted(ticks):
                    container.seek(tick + delay, stream=stream, backward=True)
                    for packet in container.demux(stream):
                        decoded_tick = packet.dts if packet.dts is not None else packet.pts
                        if decoded_tick is None or decoded_tick > tick:
                            break
                        if packet.is_keyframe and packet.pts is not None:
                            keys.add(float((packet.pts - origin) * tb))
            else:
                until = wanted[-1] + tolerance
                for packet in container.demux(stream):
                    if packet.pts is None or not packet.is_keyframe:
                        continue
                    keys.add(float((packet.pts - origin) * tb))
                    if float((packet.pts - origin) * tb) > until:
                        break
        except av.FFmpegError as exc:
            log.info("%s: keyframes read in part only (%s); the other times are sampled exactly", info.path, _short(exc))
    return sorted(keys)


def _check_tolerance(tolerance: object, times: object, keyframes_only: bool) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)) \
            or not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigurationError(f"tolerance must be a number of seconds >= 0, got {tolerance!r}")
    if tolerance > 0 and times is None:
        raise ConfigurationError("tolerance applies to times=[...] (a list of requested times), not to fps or "
                                 "num_frames sampling")
    if tolerance > 0 and keyframes_only:
        raise ConfigurationError("give keyframes_only=True (every time answered by its nearest keyframe) or "
                                 "tolerance (a keyframe only where one is that close), not both")
    return float(tolerance)


def _check_times(times: object) -> list[float]:
    if isinstance(times, (str, bytes)) or not isinstance(times, Iterable):
        raise ConfigurationError(f"times must be a list of seconds, got {type(times).__name__}")
    out = []
    for i, t in enumerate(times):
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise ConfigurationError(f"times[{i}] must be a number of seconds, got {t!r}")
        if not (math.isfinite(t) and t >= 0):
            raise ConfigurationError(f"times[{i}] must be a finite number of seconds >= 0, got {t!r}")
        out.append(float(t))
    if not out:
        raise ConfigurationError("times is empty: give at least one time in seconds")
    return out


def sample_frames(
    video: str | os.PathLike[str],
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    max_side: int | None = 512,
    start: float | None = None,
    end: float | None = None,
    times: Sequence[float] | None = None,
    keyframes_only: bool = False,
    tolerance: float = 0.0,
) -> FrameStream:
    """Sample frames from ``video``, streaming: memory stays flat whatever the video's length.

    By rate (``fps``, default 1.0: requested times ``start, start + 1/fps, ...``) or by count
    (``num_frames`` evenly spaced times, each at the centre of its equal share of
    ``[start, end)``) or at given times (``times``, seconds in any order, for the refine passes
    of a coarse-to-fine search); give one of the three. Frames come in time order and a decoded
    frame comes once, however many requested times it is nearest to; times past the end get the
    stream's real last frame. ``max_frames`` caps the count, lowering the rate when
    ``fps * duration`` would exceed it. Each :class:`Frame` is the decoded frame nearest
    its requested time and carries that frame's real presentation time.

    ``keyframes_only=True`` trades that exactness for speed, for sparse passes (a coarse-to-fine
    search's first look at a long video): each requested time gets the nearest *keyframe* instead of
    the nearest frame, read without decoding any other frame, so the cost is one keyframe decode per
    frame returned plus reading the packets, whatever the keyframe interval. A frame can then be up
    to half a keyframe interval (seconds, in most encodings) from its requested time; its ``t`` is
    its own real time, so a caller sees how far it is. Nearby requested times can share a keyframe
    (it comes once), so fewer frames than requested may come.

    ``tolerance`` (seconds, with ``times``) is the bounded form of that trade: a requested time with a
    keyframe within ``tolerance`` of it is answered by that keyframe (decoded alone, after a seek), any
    other time by its exact nearest frame as without it; ``0`` (the default) is exact. Every frame
    carries its real time, :attr:`FrameStream.snapped` counts the times a keyframe answered, and the
    keyframes' times are read from their packets first (no frame decoded; the container's index says
    which). A coarse-to-fine search's
    sparse pass uses it (:mod:`pipelines.search`): a frame a quarter of its spacing off still stands for
    its stretch of video, at the cost of one decoded frame instead of a group of pictures. Raises
    :class:`VideoDecodeError` for unreadable input (checked before returning) and
    :class:`ConfigurationError` for bad arguments.
    """
    tol = _check_tolerance(tolerance, times, keyframes_only)
    notes: list[str] = []
    info, targets, rate, planned, limit = _plan(video, fps=fps, num_frames=num_frames, max_frames=max_frames,
                                                max_side=max_side, start=start, end=end, times=times, notes=notes)
    return FrameStream(info, targets, fps=rate, planned=planned, max_side=max_side, limit=limit,
                       keyframes_only=bool(keyframes_only), tolerance=tol, notes=notes)


def _plan(video: str | os.PathLike[str], *, fps: float | None, num_frames: int | None, max_frames: int | None,
          max_side: int | None, start: float | None, end: float | None, times: Sequence[float] | None,
          say: bool = True, notes: list[str] | None = None
          ) -> tuple[VideoInfo, Iterator[float], float | None, int, int | None]:
    """Check the arguments and probe the video: its info, the requested times, the effective rate, how
    many frames are planned and the cap. The times span the video's real length (:attr:`VideoInfo.extent`), not
    the container's claim. ``say=False`` logs nothing about the request (a plan made before the sampling that
    logs it: :func:`planned_times`). ``notes`` takes what a reader of the frames should be told (a rate above the
    video's), logged as well: :attr:`FrameStream.warnings` gives it to a result's ``warnings`` (a Python or
    ``--json`` user reads no log)."""
    if fps is not None and num_frames is not None:
        raise ConfigurationError("give either fps (sample by rate; --fps) or num_frames (sample by count; --num-frames), "
                                 "not both")
    if times is not None:
        if fps is not None or num_frames is not None:
            raise ConfigurationError("give times (sample at given times) or fps/num_frames, not both")
        if start is not None or end is not None:
            raise ConfigurationError("start/end bound fps or num_frames sampling; with times, give only the times wanted")
        wanted = _check_times(times)
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ConfigurationError(f"fps must be a positive number, got {fps!r}")
    for name, value in (("num_frames", num_frames), ("max_frames", max_frames)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigurationError(f"{name} must be an integer >= 1, got {value!r}")
    if max_side is not None and (not isinstance(max_side, int) or max_side < 16):
        raise ConfigurationError(f"max_side must be an integer >= 16 or None, got {max_side!r}")
    if start is not None and not (math.isfinite(start) and start >= 0):
        raise ConfigurationError(f"start must be >= 0 seconds, got {start!r}")
    if end is not None and not (math.isfinite(end) and end > (start or 0.0)):
        raise ConfigurationError(f"end must be after start ({start or 0.0}s), got {end!r}")

    info = probe_video(video)
    if times is not None:
        grid = _Times(wanted)
        planned = min(len(grid), max_frames) if max_frames else len(grid)
        return info, grid, None, planned, max_frames
    lo = start or 0.0
    length = info.extent
    hi = min(end, length) if end is not None and length > 0 else (end or length)
    if length > 0 and lo >= length:
        raise ConfigurationError(f"start {lo:g}s is at or past the end of the video ({length:.2f}s)")
    span = max(hi - lo, 0.0)
    if say and info.fps and span > 0 and ((fps is not None and fps > info.fps * 1.01)
                                  or (num_frames is not None and num_frames > span * info.fps * 1.01 + 1)):
        # not an error (every frame is a fair request), but with a paid describer it is one call per frame
        text = (f"{Path(info.path).name}: {f'fps={fps:g}' if fps is not None else f'num_frames={num_frames}'} asks "
                f"for more frames than the video has ({info.fps:.4g} fps): every frame is sampled once, about "
                f"{max(1, round(span * info.fps))}"
                + (f", and the rate used is recorded as {info.fps:.4g} fps" if fps is not None else ""))
        if notes is not None:
            notes.append(text)
        log.warning("%s", text, extra={IN_RESULT: notes is not None})  # marked: a CLI printing warnings says it once
    if num_frames is not None:
        n = min(num_frames, max_frames) if max_frames else num_frames
        if n < num_frames and say:
            log.info("num_frames %d capped to max_frames %d", num_frames, n)
        if span <= 0:
            targets: Iterator[float] = iter([lo])
            n = 1
        else:
            targets = _Grid(lambda k: lo + (k + 0.5) * span / n, span / n, count=n)
        return info, targets, None, n, None
    rate = DEFAULT_FPS if fps is None else float(fps)
    if max_frames and span > 0 and math.ceil(span * rate_used(rate, info.fps) - 1e-9) > max_frames:
        rate = max_frames / span
        if say:
            log.info("sampling rate lowered to %.4g fps to stay within max_frames=%d", rate, max_frames)
    used = rate_used(rate, info.fps)
    planned = max(1, math.ceil(span * used - 1e-9))
    if max_frames:
        planned = min(planned, max_frames)
    # Without an explicit end the stream's real end decides: containers misstate durations
    # both ways, so the plan above is an estimate and max_frames a hard cap. The requested times stay on the
    # rate asked: above the video's rate each frame still comes once (the nearest to its times), and a
    # variable-rate video's stretches denser than its average rate keep all their frames.
    stop_at = math.inf if end is None else end
    return info, _rate_targets(lo, stop_at, rate), used, planned, max_frames



def planned_times(
    video: str | os.PathLike[str],
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    start: float | None = None,
    end: float | None = None,
    times: Sequence[float] | None = None,
) -> list[float]:
    """The presentation times of the frames :func:`sample_frames` would return for these arguments,
    read from the container's packets without decoding a frame (beyond the probe's first).

    So a caller can answer what a description cache already holds and decode only the rest
    (``sample_frames(video, times=missing)`` returns exactly those frames). The times come from
    the packets' own timestamps, so they match what decoding yields wherever every packet decodes;
    a frame that fails to decode (a damaged file) is planned but will not come.
    """
    info, targets, _, _, limit = _plan(video, fps=fps, num_frames=num_frames, max_frames=max_frames,
                                       max_side=None, start=start, end=end, times=times, say=False)
    container, stream = _open(Path(info.path))
    with container:
        tb = stream.time_base or Fraction(1, 1000)
        origin = round(info.start_time / tb)
        pts = sorted({p.pts for p in container.demux(stream) if p.pts is not None and p.size})
    shown = [float((x - origin) * tb) for x in pts]  # exactly as the decoding side computes times
    if not shown:
        raise VideoDecodeError(info.path, "the video stream has no packets with timestamps")
    skip = getattr(targets, "skip_past", None)
    out: list[float] = []
    i, n = 0, len(shown)
    target = next(targets, None)
    while target is not None and len(out) != limit:
        i = bisect.bisect_left(shown, target, i)
        if i == n:
            break
        pick = i - 1 if i and target - shown[i - 1] <= shown[i] - target else i
        if not out or out[-1] != shown[pick]:
            out.append(shown[pick])
        if skip is None:
            target = next(targets, None)
        else:  # the rest up to the frame after (or half-way to it) would repeat this pick
            target = skip(shown[i] if pick == i else (shown[i - 1] + shown[i]) / 2)
    if target is not None and len(out) != limit:
        step = shown[-1] - shown[-2] if n > 1 else (1.0 / info.fps if info.fps else 0.04)
        if (isinstance(targets, _Times) or target < shown[-1] + step - 1e-6) and (not out or out[-1] != shown[-1]):
            out.append(shown[-1])
    return [max(t, 0.0) for t in out]

__all__ = ["VideoInfo", "FrameStream", "probe_video", "sample_frames", "planned_times", "to_image", "DEFAULT_FPS",
           "rate_used"]
