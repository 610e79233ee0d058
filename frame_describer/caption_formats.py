"""Caption files written by other tools, read as vidground descriptions with the right times.

vidground's transcript lets each description hold from half-way after the previous one to half-way
before the next (the first from 0). A caption of a *clip* therefore becomes a description at the
clip's centre, with the clip length as the step: consecutive clips of equal length then meet exactly
at their shared boundary. A caption of a *frame* stays at the frame's instant.

========================  =========================================  ===================================
format                    a file                                     time of entry ``k`` (L = clip_seconds)
========================  =========================================  ===================================
``vidground``             JSONL, ``{"t": seconds, "text": ...}``     ``t`` (the frame's instant)
``vtggpt``                JSONL, ``{"moment": k, "description": ..}`` centre of ``[k*L, (k+1)*L)``, L = 2
``seconds-json``          one object ``{"0": text, "1": text, ...}`` ``k*L`` (frame k sampled every L s), L = 1
``csv`` ``t,text``        header optional                            ``t`` (like vidground)
``csv`` ``start,end,text`` contiguous clips (below)                   the centre of ``[start, end)``
``srt`` / ``vtt``         SubRip / WebVTT cues                       the centre of the cue (below)
========================  =========================================  ===================================

Clips (``csv`` ``start,end``, and ``srt``/``vtt`` cues read as clips) must be contiguous and of one length, except
the last, which may be shorter (a captioner cuts the video's end short): its caption is placed half a clip after
its start (at most at its end), so it too meets the previous one at their shared boundary. CSV clips of
varying length (per-shot captions) are refused with a way to import them: a transcript's spans meet
half-way between description times, so it cannot hold them exactly. Clips that start after 0 keep their
times, but the first span still reaches back to 0 (a transcript covers the video from 0): a warning
says so.

Subtitles are read as clips only when their cues are such clips (an import's, a captioner's); cues of a speech
transcript (Whisper's of varying length, YouTube's 10-ms roll-up cues, an editor's gaps and overlaps, a zero-length
cue) are timed captions: each a description at its cue's centre, as CSV ``t,text`` rows, with a warning that says so.
Cues most of which (4 in 5) are such clips but a few are not (a mistyped time, a cue pasted twice) are refused,
naming the first off the grid; format ``subtitle-times`` reads any SRT or WebVTT file's cues as timed captions. A
timed last cue far beyond the rest (a gap over 10 times the cues' median spacing) is warned of. In a roll-up file
(YouTube's: 10-ms cues, words timed by ``<00:00:01.000><c>`` tags) a cue keeps only the lines it adds over the cue
before it, so a spoken line is one description, not two or three; a cue adding none is left out.
Cues that share a centre are one description, their distinct texts joined in file order (neither is lost). A cue
without text is a moment nothing was said (an empty description, grounded around); a file of only such cues is
refused.

Per-second captions are of frames, not of one-second clips: NExT-GQA's caption sets hold frames 0..D
of a D-second video (up to D + 1 captions), which only instants at ``k`` seconds explain.

Clip formats (``vtggpt``, ``seconds-json``, ``csv`` with ``start,end``, ``srt``, ``vtt``) carry ``step`` (not
subtitles read as timed captions) and an inferred ``duration`` (the end of the last clip or cue) on every
description, so a known duration (an argument, a dataset's) still wins. Every rule is checked, never repaired: a
gap, a duplicate, an out-of-order moment, empty text or a bad time is an :class:`InputError` naming the file and the
line (or the key). Markup in subtitles is removed only where it is a tag SRT or WebVTT knows (``<i>``,
``<c.colorE5E5E5>``, ``<v Roger>``, ``<font color=...>``) or a timestamp (``if a<b and b>c``, ``press <Enter>``
stay), with ASS override tags (``{\\an8}``). Rows that carry their own times (CSV, SRT and WebVTT cues, like
vidground's JSONL) may come in any order: they are sorted, as the times say where each belongs. Lines naming two
videos (a ``video`` field or column) are refused: two files joined would be read as one video. Line formats are
streamed with a bound on the line length; ``seconds-json`` is one JSON document, read whole up to
:data:`MAX_JSON_BYTES`.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidground.files import MAX_LINE_BYTES, iter_json_lines, iter_text_lines, not_text
from vidground.errors import ConfigurationError, InputError
from vidground.types import FrameDescription

from .video_names import same_video

#: The formats :func:`~frame_describer.descriptions_io.read_descriptions` reads (``auto`` detects one).
CAPTION_FORMATS = ("vidground", "vtggpt", "seconds-json", "csv", "srt", "vtt", "subtitle-times")
FORMAT_CHOICES = ("auto", *CAPTION_FORMATS)
#: The default clip length (vtggpt) or sampling interval (seconds-json), in seconds.
DEFAULT_CLIP_SECONDS = {"vtggpt": 2.0, "seconds-json": 1.0}
#: The largest ``seconds-json`` file read (it is one JSON document, parsed whole).
MAX_JSON_BYTES = 128 << 20
#: File-name endings other tools put after the video id (``VID_cap.json`` in NExT-GQA caption sets).
ID_SUFFIXES = (".descriptions", "_cap")

log = logging.getLogger(__name__)

_FIRST_KEY = re.compile(r'\s*\{\s*"(-?[0-9][0-9.eE+-]*)"')
_TOLERANCE = 1e-3  # seconds: how far CSV clip boundaries may be from equal / contiguous (rounding)
_AS_TIMES = ("clips must be contiguous and of one length (the last may be shorter). To import them anyway, write one "
             "time per caption as CSV t,text (e.g. each clip's centre: their spans then meet half-way between those "
             "times), or save them as SRT or WebVTT, whose cues of any length are read at their centres")


def video_id_from_path(path: str | Path) -> str:
    """The video id a caption file is named after: its name without extension and without a trailing
    ``.descriptions`` or ``_cap`` (``VID_cap.json`` -> ``VID``)."""
    stem = Path(path).stem
    for suffix in ID_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def check_clip_seconds(clip_seconds: float | None, fmt: str, path: Path | None = None) -> float | None:
    """``clip_seconds`` or the format's default; a clip length given to a format without clips is refused
    (with ``fmt="auto"`` only the value is checked)."""
    if clip_seconds is None:
        return DEFAULT_CLIP_SECONDS.get(fmt)
    if fmt not in DEFAULT_CLIP_SECONDS and fmt != "auto":
        where = f"{path} is a {fmt} file; " if path is not None else ""
        raise ConfigurationError(f"{where}clip_seconds applies only to {' and '.join(DEFAULT_CLIP_SECONDS)} captions")
    if isinstance(clip_seconds, bool) or not isinstance(clip_seconds, (int, float)) or not math.isfinite(clip_seconds) \
            or clip_seconds <= 0:
        raise ConfigurationError(f"clip_seconds must be a positive number of seconds, got {clip_seconds!r}")
    return float(clip_seconds)


def check_format(format: str) -> str:
    """``format`` if it is one of :data:`FORMAT_CHOICES`, else a :class:`ConfigurationError` listing them."""
    if format not in FORMAT_CHOICES:
        raise ConfigurationError(f"unknown descriptions format {format!r}; choose one of {', '.join(FORMAT_CHOICES)}")
    return format


def resolve_format(path: Path, format: str = "auto") -> str:
    """``format`` checked, or the one :func:`detect_format` finds when it is ``auto``."""
    return detect_format(path) if check_format(format) == "auto" else format


def detect_format(path: str | Path) -> str:
    """Which of :data:`CAPTION_FORMATS` a file holds, from its first non-blank line and its extension.

    ``.csv`` files, and files whose first line is not JSON but has a comma, are ``csv``; a JSON
    object whose first key is a number is ``seconds-json``; a JSONL line with ``moment`` and no
    ``t`` is ``vtggpt``; other ``.json`` files are ``seconds-json`` unless their first line has a
    ``t``; ``.srt`` and ``.vtt`` files, a first line ``WEBVTT`` or an SRT cue (a number, then
    ``00:00:00,000 --> ...``) are subtitles; anything else is read as ``vidground`` (whose reader
    reports what is wrong).
    """
    path = Path(path)
    if path.suffix.lower() in (".csv", ".srt", ".vtt"):
        return path.suffix.lower()[1:]
    first, lineno = "", 0
    with path.open("rb") as fh:
        while raw := fh.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            if b"\0" in raw:
                raise InputError(not_text(raw, "a NUL byte: a binary file, not descriptions or captions"), path=path,
                                 line=lineno)
            first = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
            if first.strip():
                break
            first = ""
        second = fh.readline(MAX_LINE_BYTES).decode("utf-8", errors="replace").strip()  # an SRT cue's times
        if first.strip() == "{":  # a pretty-printed JSON object: look at its first key
            first += second
    if _FIRST_KEY.match(first):
        return "seconds-json"
    text = first.strip()
    if text.startswith("WEBVTT"):
        return "vtt"
    if _CUE_TIMES.match(text) or (text.isdigit() and _CUE_TIMES.match(second)):
        return "srt"
    if not text.startswith(("{", "[")) and path.suffix.lower() not in (".json", ".jsonl") and "," in text:
        return "csv"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and "moment" in obj and "t" not in obj:
        return "vtggpt"
    if path.suffix.lower() == ".json" and not (isinstance(obj, dict) and "t" in obj):
        return "seconds-json"  # a .json file is one document, unless its first line is a description
    return "vidground"


def read_captions(path: str | Path, format: str, *, clip_seconds: float | None = None,
                  notes: list[str] | None = None) -> list[FrameDescription]:
    """Descriptions, sorted by time, from a ``vtggpt``, ``seconds-json``, ``csv``, ``srt`` or ``vtt`` file (see the
    module doc). A warning on how the file was read (clips from after 0, subtitles read as times) is logged and
    added to ``notes`` when given, for a result's warnings."""
    path = Path(path)
    readers = {"vtggpt": _read_vtggpt, "seconds-json": _read_seconds_json, "csv": _read_csv, "srt": _read_subtitles,
               "vtt": _read_subtitles, "subtitle-times": _read_subtitle_times}
    if format not in readers:
        raise ConfigurationError(f"read_captions reads {', '.join(readers)}; got {format!r}")
    clip = check_clip_seconds(clip_seconds, format, path)
    return readers[format](path, clip, notes) if format in ("csv", "srt", "vtt", "subtitle-times") \
        else readers[format](path, clip)


# ------------------------------------------------------------------------------------------ helpers

def _text(value: Any, path: Path, *, line: int | None = None, what: str = "text") -> str:
    if not isinstance(value, str):
        kind = "an object" if isinstance(value, (dict, _Pairs)) else type(value).__name__
        raise InputError(f"{what} must be a string, got {kind}", path=path, line=line)
    if not value.strip():
        raise InputError(f"{what} is empty", path=path, line=line)
    return value


def _clips(path: Path, items: list[tuple[float, str, dict[str, Any]]], step: float, end: float
           ) -> list[FrameDescription]:
    """Descriptions at the clips' centres, each carrying the clip grid (step, inferred duration)."""
    return _build(path, items, {"step": step, "duration": round(end, 6), "duration_inferred": True})


def _build(path: Path, items: list[tuple[float, str, dict[str, Any]]], grid: dict[str, Any]) -> list[FrameDescription]:
    """Descriptions from ``(t, text, other keys)``; ``grid`` is added to each (it may not clash with a key)."""
    out = []
    for k, (t, text, extra) in enumerate(items):
        clash = sorted(set(extra) & {"t", "text", "usage", *grid})
        if clash:
            raise InputError(f"key(s) {', '.join(clash)} would be overwritten by the import; rename them", path=path)
        try:
            out.append(FrameDescription.model_validate({**extra, "t": round(t, 6), "text": text, **grid}))
        except ValidationError as exc:  # e.g. a time past any video's length from a huge --clip-seconds
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "caption"
            raise InputError(f"caption {k} at {t:g} s{_grid_note(grid)}: {where}: "
                             f"{first['msg'].removeprefix('Value error, ')}", path=path) from None
    return out


def _grid_note(grid: dict[str, Any]) -> str:
    return f" (clips of {grid['step']:g} s)" if "step" in grid else ""


def _empty(path: Path) -> InputError:
    return InputError("no captions (the file is empty)", path=path)


class OneVideo:
    """Checks that the lines of one file name at most one video (their ``video`` field or column): two files
    joined, or interleaved, were read as one video's transcript. Lines that name none are any video's."""

    def __init__(self, path: Path):
        self.path = path
        self.first: tuple[str, int | None] | None = None
        self.placed: tuple[str, int | None] | None = None  # the first name with a folder

    def see(self, fields: dict[str, Any], line: int | None) -> None:
        """Refuses a line naming another video than the first named; two paths of one file (demo.mp4 and
        /tmp/x/demo.mp4), or an id and its file, are one video, as a replay compares them."""
        name = video_name(fields.get("video"))
        if name is None:
            return
        if self.placed is None and len(Path(name).parts) > 1:
            self.placed = (name, line)
        if self.first is None:
            self.first = (name, line)
        for seen, at in dict.fromkeys(x for x in (self.first, self.placed) if x is not None):
            if name != seen and not _same_video(name, seen):
                raise InputError(f"names video {name!r}, but line {at} names {seen!r}: a descriptions file holds one "
                                 "video's (two files joined?); split it, one file a video named by its id",
                                 path=self.path, line=line)


def _same_video(a: str, b: str) -> bool:
    """Whether two names in one file are of one video: one name as another's (``demo.mp4``, ``v_demo``, ``demo``)
    where one side has no folder (an id, a bare name) or one path ends the other (``x/demo.mp4``,
    ``/data/x/demo.mp4``), or both are one file on disk; ``/data/day1/GOPR0001.MP4`` and
    ``/data/day2/GOPR0001.MP4`` are two videos of one name (two cameras' days joined)."""
    if not same_video(a, b):
        return False
    pa, pb = Path(a), Path(b)
    if len(pa.parts) < 2 or len(pb.parts) < 2:
        return True
    short, long = sorted((pa.parts, pb.parts), key=len)
    if long[len(long) - len(short):] == short:
        return True
    try:
        return pa.expanduser().samefile(pb.expanduser())
    except OSError:  # either is not here: they name other folders
        return False


def video_name(value: Any) -> str | None:
    """A ``video`` field as a name: a string or a whole number (a NExT-GQA id read as a JSON number); ``None`` (or a
    blank) names none; anything else is named by its JSON text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value).strip()
    return json.dumps(value, sort_keys=True)


# ------------------------------------------------------------------------------------------ VTG-GPT

def _read_vtggpt(path: Path, clip: float) -> list[FrameDescription]:
    """``{"moment": k, "description": ...}`` a line, k = 0, 1, 2... in order: the clip ``[k*L, (k+1)*L)``."""
    items: list[tuple[float, str, dict[str, Any]]] = []
    video = OneVideo(path)
    for lineno, obj in iter_json_lines(path, not_object="each line must be a JSON object with 'moment' and 'description'",
                                       max_line_bytes=MAX_LINE_BYTES):
        missing = [k for k in ("moment", "description") if k not in obj]
        if missing:
            raise InputError(f"missing key(s) {', '.join(missing)}", path=path, line=lineno)
        k, expected = obj.pop("moment"), len(items)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"'moment' must be a whole number >= 0, got {k!r}", path=path, line=lineno)
        if k != expected:
            if k == expected - 1:
                problem = f"duplicate moment {k}"
            elif k < expected:
                problem = f"moment {k} out of order (after moment {expected - 1}; moments must run 0, 1, 2...)"
            else:
                gap = f"{expected}" if k == expected + 1 else f"{expected}-{k - 1}"
                after = f"follows moment {expected - 1}" if expected else "is the first"
                problem = f"moment {k} {after}: moment(s) {gap} missing"
            raise InputError(problem, path=path, line=lineno)
        text = _text(obj.pop("description"), path, line=lineno, what="'description'")
        video.see(obj, lineno)
        items.append(((k + 0.5) * clip, text, obj))
    if not items:
        raise _empty(path)
    return _clips(path, items, clip, len(items) * clip)


# ------------------------------------------------------------------------------------- seconds-json

class _Pairs(list):
    """A JSON object's (key, value) pairs in file order, so duplicate keys are seen (dict() keeps the last)."""


def _read_seconds_json(path: Path, interval: float) -> list[FrameDescription]:
    """One object ``{"0": caption, "1": ...}``: frame k, sampled every ``interval`` s, is at ``k * interval``."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(f"{size} bytes; a seconds-json file is read whole and may be at most {MAX_JSON_BYTES}", path=path)
    data = path.read_bytes()
    nul, text = data.find(b"\0"), None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        if nul < 0 or exc.start < nul:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(not_text(data.split(b"\n")[line - 1], "not UTF-8 text (a binary file?)"), path=path,
                             line=line) from None
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(not_text(data if line == 1 else data.split(b"\n")[line - 1], "a NUL byte: a binary file, not text"),
                         path=path, line=line)
    assert text is not None
    if not text.strip():
        raise _empty(path)
    try:
        obj = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(obj, _Pairs):
        raise InputError('expected one JSON object {"0": caption, "1": caption, ...}', path=path)
    if not obj:
        raise _empty(path)
    captions: dict[int, str] = {}
    for key, value in obj:
        if not re.fullmatch(r"[0-9]+", key):
            why = "a negative index" if re.fullmatch(r"-[0-9]+", key) else "not a whole number"
            raise InputError(f"key {key!r} is {why} (keys are frame indices 0, 1, 2...)", path=path)
        k = int(key)
        if k in captions:
            raise InputError(f"key {key!r}: duplicate frame index {k}", path=path)
        captions[k] = _text(value, path, what=f"key {key!r}: the caption")
    n = len(captions)
    if max(captions) != n - 1:  # distinct and >= 0, so a larger maximum means a gap
        seen = bytearray(n)
        for k in captions:
            if k < n:
                seen[k] = 1
        gap = seen.index(0)
        raise InputError(f"key {str(gap)!r} is missing ({max(captions) + 1 - n} of the keys 0..{max(captions)} missing "
                         "in all; keys are frame indices 0, 1, 2... without gaps)", path=path)
    items = [(k * interval, captions[k], {}) for k in range(n)]
    return _clips(path, items, interval, n * interval)


# ---------------------------------------------------------------------------------------------- CSV

_COLUMNS = {"t": "t", "time": "t", "seconds": "t", "timestamp": "t", "start": "start", "end": "end",
            "text": "text", "caption": "text", "description": "text"}


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(first line of the row, cells)`` for each non-blank CSV row; quoted cells may hold commas and newlines."""
    lines = iter_text_lines(path, max_line_bytes=MAX_LINE_BYTES)
    reader = csv.reader((text for _, text in lines), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"bad CSV ({exc}); quote text that holds commas, quotes or newlines",
                             path=path, line=start) from None
        if any(c.strip() for c in row):
            yield start, row
        start = reader.line_num + 1


def _seconds(cell: str, name: str, path: Path, line: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{name!r} must be a number of seconds, got {cell!r} (quote text that holds commas)",
                         path=path, line=line) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name!r} must be a finite number of seconds >= 0, got {cell!r}", path=path, line=line)
    return value


def _read_csv(path: Path, _: float | None, notes: list[str] | None = None) -> list[FrameDescription]:
    """``t,text`` (frame instants) or ``start,end,text`` (equal, contiguous clips); the header is optional."""
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise _empty(path)
    line, cells = first
    try:
        float(cells[0])
        header = None
    except ValueError:
        header = [c.strip().lower() for c in cells]
    if header is None:
        if len(cells) not in (2, 3):
            raise InputError(f"{len(cells)} fields; without a header a row is t,text or start,end,text "
                             "(quote text that holds commas)", path=path, line=line)
        names = ["t", "text"] if len(cells) == 2 else ["start", "end", "text"]
        body: Iterator[tuple[int, list[str]]] = itertools.chain([first], rows)
    else:
        names = [_COLUMNS.get(h, h) for h in header]
        dup = sorted({n for n in names if names.count(n) > 1})
        layout = {"t", "text"} if "t" in names else {"start", "end", "text"}
        if dup or not layout <= set(names) or ("t" in names and {"start", "end"} & set(names)):
            raise InputError(f"header {','.join(cells)!r}: expected columns t,text or start,end,text "
                             f"(t also as time/seconds/timestamp, text as caption/description)"
                             + (f"; repeated: {', '.join(dup)}" if dup else ""), path=path, line=line)
        body = rows
    clips = "start" in names
    items: list[tuple[float, str, dict[str, Any]]] = []
    spans: list[tuple[int, float, float, str, dict[str, Any]]] = []
    line_of: dict[float, int] = {}
    video = OneVideo(path)
    for line, cells in body:
        if len(cells) != len(names):
            raise InputError(f"{len(cells)} fields, expected {len(names)} ({','.join(names)}); "
                             "quote text that holds commas", path=path, line=line)
        row = dict(zip(names, cells))
        text = _text(row.pop("text"), path, line=line)
        video.see(row, line)
        if clips:
            spans.append((line, _seconds(row.pop("start"), "start", path, line),
                          _seconds(row.pop("end"), "end", path, line), text, row))
            continue
        t = _seconds(row.pop("t"), "t", path, line)
        if line_of.setdefault(t, line) != line:
            raise InputError(f"duplicate time {t:g} s (also on line {line_of[t]})", path=path, line=line)
        items.append((t, text, row))
    if clips:
        return _clip_spans(path, spans, "clip", notes)
    if not items:
        raise _empty(path)
    return _build(path, sorted(items, key=lambda item: item[0]), {})


def _clip_spans(path: Path, spans: list[tuple[int, float, float, str, dict[str, Any]]], what: str,
                notes: list[str] | None = None) -> list[FrameDescription]:
    """Descriptions of clips ``(line, start, end, text, other keys)`` in any order: contiguous once sorted, of one
    length but the last, which may be shorter (see the module doc)."""
    if not spans:
        raise _empty(path)
    spans = sorted(spans, key=lambda s: s[1])
    problem = _grid_problem(path, spans, what)
    if problem is not None:
        raise problem
    first_start, first_end = spans[0][1:3]
    length = first_end - first_start
    items: list[tuple[float, str, dict[str, Any]]] = []
    for k, (line, start, end, text, extra) in enumerate(spans):
        # a shorter last clip: half a clip after its start meets the previous centre at their boundary
        last = k == len(spans) - 1
        t = min(start + length / 2, end) if last and end - start < length - _TOLERANCE else (start + end) / 2
        items.append((t, text, extra))
    if first_start > _TOLERANCE:
        _note(notes, f"{path}: the first {what} starts at {first_start:g} s: the transcript covers the video from 0, "
                     f"so its caption's span reaches back to 0 (nothing is known of 0-{first_start:g} s)")
    return _clips(path, items, round(length, 6), spans[-1][2])


def _grid_problem(path: Path, spans: list[tuple[int, float, float, str, dict[str, Any]]], what: str
                  ) -> InputError | None:
    """Why clips sorted by start are not contiguous clips of one length but the last (shorter), or ``None``."""
    for line, start, end, _, _ in spans:
        if end <= start:
            why = "has no length (it ends where it starts)" if end == start else "ends before it starts"
            return InputError(f"{what} [{start:g}, {end:g}) {why}; {_AS_TIMES}", path=path, line=line)
    first_line, length = spans[0][0], spans[0][2] - spans[0][1]
    for k, (line, start, end, _, _) in enumerate(spans):
        if k:
            prev_line, prev_end = spans[k - 1][0], spans[k - 1][2]
            if abs(start - prev_end) > _TOLERANCE:
                return InputError(f"{what} starts at {start:g} s but the previous one ended at {prev_end:g} s: "
                                  f"{'a gap' if start > prev_end else 'an overlap'} (the previous on line "
                                  f"{prev_line}); {_AS_TIMES}", path=path, line=line)
        if abs(end - start - length) > _TOLERANCE and not (k == len(spans) - 1 and end - start < length):
            return InputError(f"{what} length {end - start:g} s differs from {length:g} s (line {first_line}): a "
                              "transcript's spans meet half-way between description times, so it cannot hold clips "
                              f"of varying length (per-shot captions); {_AS_TIMES}", path=path, line=line)
    return None


# ------------------------------------------------------------------------------------ SRT and WebVTT

_CUE_TIMES = re.compile(r"((?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})(?:\s.*)?$")
# markup only: SRT's and WebVTT's own tags (with classes: <c.colorE5E5E5>; v, lang, font and span with an annotation
# or attributes: <v Roger>, <font color="#fff">) and karaoke timestamps (<00:00:01.000>), so "if a<b and b>c then",
# "I <3 you" and "press <Enter>" stay
_TAG = re.compile(r"</?(?:(?:b|i|u|s|c|ruby|rt)(?:\.[^<>\s]*)?|(?:v|lang|font|span)(?:[.\s][^<>]*)?)>"
                  r"|<(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>", re.IGNORECASE)
_EOL = re.compile(rb"\r\n|\r|\n")
_KARAOKE = re.compile(r"<(?:\d+:)?\d{1,2}:\d{2}[.,]\d|<c[.>]")  # word times and <c> of a roll-up
_ASS_TAG = re.compile(r"\{\\[^{}]*\}")  # ASS override tags ffmpeg carries over: {\an8}
_HEADERS = ("WEBVTT", "NOTE", "STYLE", "REGION")


def _cue_seconds(stamp: str) -> float:
    """``HH:MM:SS,mmm`` (SRT) or ``[HH:]MM:SS.mmm`` (WebVTT) in seconds."""
    *hm, sec = stamp.replace(",", ".").split(":")
    return sum(int(v) * 60 ** (len(hm) - i) for i, v in enumerate(hm)) + float(sec)


def _subtitle_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, split at LF, CRLF or a CR alone (classic-Mac line endings) as the file is
    read, so a CR-only file's lines are each bounded by :data:`MAX_LINE_BYTES`, not the file as one line; a NUL byte,
    bytes not UTF-8 or a longer line are an :class:`InputError` naming the line, as for other text files."""
    lineno, pending = 0, b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 16)
            data = pending + chunk
            held = b"\r" if chunk and data.endswith(b"\r") else b""  # may be a CRLF split across reads
            *lines, pending = _EOL.split(data[:-1] if held else data)
            if not chunk:
                lines.append(pending)
            for raw in lines:
                lineno += 1
                yield lineno, _line_text(path, raw, lineno)
            if not chunk:
                return
            if len(pending) > MAX_LINE_BYTES:
                raise InputError(f"line longer than {MAX_LINE_BYTES} bytes (a binary file?)", path=path,
                                 line=lineno + 1)
            pending += held


def _line_text(path: Path, raw: bytes, lineno: int) -> str:
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"line longer than {MAX_LINE_BYTES} bytes (a binary file?)", path=path, line=lineno)
    try:
        if b"\0" in raw:
            raise ValueError("a NUL byte: a binary file, not text")
        text = raw.decode("utf-8")
    except ValueError as exc:  # UnicodeDecodeError too
        why = str(exc) if not isinstance(exc, UnicodeDecodeError) else "not UTF-8 text (a binary file?)"
        raise InputError(not_text(raw, why), path=path, line=lineno) from None
    return text.removeprefix("\ufeff") if lineno == 1 else text


def _subtitle_blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """The file's blocks of lines, split at truly empty lines (a line of one space is a yt-dlp cue's text line)."""
    block: list[tuple[int, str]] = []
    for lineno, text in _subtitle_lines(path):
        if text:
            block.append((lineno, text))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _cue_lines(lines: list[tuple[int, str]]) -> list[str]:
    """A cue's text lines, markup removed and entities decoded, spaces collapsed; blank ones left out."""
    out = (" ".join(html.unescape(_TAG.sub("", _ASS_TAG.sub("", t))).split()) for _, t in lines)
    return [t for t in out if t]


def _rolled_up(cues: list[tuple[int, float, float, list[tuple[int, str]]]]) -> bool:
    """Whether cues are a roll-up's (YouTube's automatic captions): 10-ms cues, or words timed by karaoke tags."""
    return any(0 < end - start <= 0.02 for _, start, end, _ in cues) or any(
        _KARAOKE.search(t) for *_, body in cues for _, t in body)


def _added_texts(cues: list[tuple[int, float, float, list[tuple[int, str]]]]) -> list[tuple[int, float, float, str]]:
    """A roll-up's cues with only the lines each adds over the cue before it (in time), so a spoken line is in one
    description, not two or three; a cue that adds nothing (a 10-ms cue repeating the lines) is left out."""
    out = []
    before: list[str] = []
    for line, start, end, body in sorted(cues, key=lambda c: c[1]):
        lines = _cue_lines(body)
        added = [t for t in lines if t not in before]
        before = lines
        if lines and not added:
            continue
        out.append((line, start, end, " ".join(added)))
    return out


def _block_cues(path: Path, block: list[tuple[int, str]]) -> Iterator[tuple[int, float, float, list[tuple[int, str]]]]:
    """``(line, start, end, text)`` of each cue in a block. A block holds one cue (an optional identifier, its times,
    its text) or a header/NOTE/STYLE/REGION; cues with no empty line between them (a line of spaces between them,
    or a cue right after the header or a NOTE line) are each read: a timing line starts a cue, the line before it
    being its identifier when it follows a line of spaces or is a number."""
    timings = [i for i, (_, text) in enumerate(block) if _CUE_TIMES.match(text.strip())]
    # a malformed timing line in a cue's place (first line, or second after an identifier) is refused below; an
    # arrow elsewhere is text ("Go to File --> Save")
    place = 0 if not timings or timings[0] != 0 else None
    if place is not None and len(block) > 1 and "-->" not in block[0][1]:
        place = 1
    if place is not None and "-->" in block[place][1] and place not in timings:
        timings.insert(0, place)
    if not timings:
        if block[0][1].strip().startswith(_HEADERS):
            return
        raise InputError("expected a cue: its times 'HH:MM:SS,mmm --> HH:MM:SS,mmm' on the first or second line "
                         "(after its number)", path=path, line=block[0][0])
    if timings[0] > 1 and not block[0][1].strip().startswith(_HEADERS):
        raise InputError("expected a cue: its times 'HH:MM:SS,mmm --> HH:MM:SS,mmm' on the first or second line "
                         "(after its number)", path=path, line=block[0][0])
    for k, i in enumerate(timings):
        line, times = block[i]
        m = _CUE_TIMES.match(times.strip())
        if m is None:
            raise InputError(f"bad cue times {times.strip()!r}: expected HH:MM:SS,mmm --> HH:MM:SS,mmm (SRT) or "
                             "HH:MM:SS.mmm --> HH:MM:SS.mmm (WebVTT)", path=path, line=line)
        body = block[i + 1: timings[k + 1] if k + 1 < len(timings) else len(block)]
        if k + 1 < len(timings) and body:  # the next cue's identifier is not this cue's text
            spaces = [j for j, (_, t) in enumerate(body) if not t.strip()]
            if spaces:
                body = body[:spaces[-1]]
            elif body[-1][1].strip().isdigit():
                body = body[:-1]
        yield line, _cue_seconds(m.group(1)), _cue_seconds(m.group(2)), body


def _read_subtitles(path: Path, _: float | None, notes: list[str] | None = None, *, as_times: bool = False
                    ) -> list[FrameDescription]:
    """SubRip (``.srt``) or WebVTT (``.vtt``) cues: a block of an optional identifier, a line ``START --> END``
    (WebVTT's cue settings after it are ignored) and the caption's lines, joined by a space (markup and ASS override
    tags removed, entities decoded); WebVTT's header, ``NOTE``, ``STYLE`` and ``REGION`` blocks are skipped.

    Cues that are equal contiguous clips (the last may be shorter) are read as clips, as CSV ``start,end``; any
    other cues (a speech transcript's: Whisper's of varying length, YouTube's 10-ms roll-up cues, an editor's gaps
    and overlaps, a zero-length cue) as timed captions, each at its cue's centre, as CSV ``t,text`` rows are, with
    one warning saying so. Cues with one centre are one caption, their distinct texts joined in file order. A cue
    with no text is a moment nothing was said: an empty description, grounded around.

    Cues most of which are such clips, but for a few (a mistyped time, a cue pasted twice) are refused, naming the
    first cue off the grid: read as timed captions they would silently shift every caption's span (and a typo's
    hour would stretch the video's inferred length). ``as_times`` (format ``subtitle-times``) reads every file's
    cues as timed captions."""
    cues = [cue for block in _subtitle_blocks(path) for cue in _block_cues(path, block)]
    texts = _added_texts(cues) if _rolled_up(cues) else [
        (line, start, end, " ".join(_cue_lines(body))) for line, start, end, body in cues]
    spans = [(line, start, end, text, {}) for line, start, end, text in texts]
    if not spans:
        raise _empty(path)
    for line, start, end, _, _ in spans:
        if end < start:
            raise InputError(f"cue {_stamp(start)} --> {_stamp(end)} ends before it starts", path=path, line=line)
    if not any(text for *_, text, _ in spans):
        raise InputError("every cue's text is empty", path=path)
    if as_times:
        return _timed_cues(path, spans, notes)
    if _grid_problem(path, sorted(spans, key=lambda s: s[1]), "cue") is None:
        return _clip_spans(path, spans, "cue", notes)
    off = _off_grid(spans)
    if off is not None:
        raise InputError(off[0], path=path, line=off[1])
    _far_cue(path, spans, notes)
    return _timed_cues(path, spans, notes)


def _read_subtitle_times(path: Path, clip: float | None, notes: list[str] | None = None) -> list[FrameDescription]:
    return _read_subtitles(path, clip, notes, as_times=True)


_MOSTLY = 0.8  # the share of cues on a grid of equal clips above which the others are taken for mistakes


def _off_grid(spans: list[tuple[int, float, float, str, dict[str, Any]]]) -> tuple[str, int] | None:
    """``(why, line)`` of the first cue (in file order) off the grid of equal contiguous clips that most cues (at
    least :data:`_MOSTLY`, of 5 or more) are on, or ``None``: a speech transcript's cues vary in length."""
    if len(spans) < 5:
        return None
    lengths = [round(end - start, 3) for _, start, end, _, _ in spans]
    length = max(set(lengths), key=lengths.count)
    if length < 0.1:  # 10-ms roll-up cues are no clips
        return None
    origin = min(start for (_, start, _, _, _), n in zip(spans, lengths) if n == length) % length
    last_start = max(start for _, start, _, _, _ in spans)
    taken: dict[int, tuple[int, float, float]] = {}
    off = []
    for (line, start, end, _, _), n in sorted(zip(spans, lengths), key=lambda x: x[0][0]):
        k = round((start - origin) / length)
        on_grid = abs(origin + k * length - start) <= _TOLERANCE and k not in taken and (
            abs(n - length) <= _TOLERANCE or (start == last_start and n < length))
        if on_grid:
            taken[k] = (line, start, end)
        else:
            off.append((line, start, end))
    ks = sorted(taken)
    off += [taken[k] for prev, k in itertools.pairwise(ks) if k - prev > 10]  # far beyond the rest: a typo's hour
    off.sort()
    if not off or len(spans) - len(off) < _MOSTLY * len(spans):
        return None
    line, start, end = off[0]
    return (f"cue {_stamp(start)} --> {_stamp(end)} is off the grid the others are on ({len(spans) - len(off)} of "
            f"{len(spans)} cues are contiguous clips of {length:g} s; {len(off)} not): a mistyped time, or a cue "
            "written twice? Fix it; or, if the cues are a speech transcript's, read them as timed captions (each at "
            "its cue's centre) with --descriptions-format subtitle-times (format='subtitle-times')", line)


def _far_cue(path: Path, spans: list[tuple[int, float, float, str, dict[str, Any]]], notes: list[str] | None) -> None:
    """Warn of a last cue far beyond the rest (a gap over 10 times the median spacing of the cues' starts): a
    mistyped hour stretches the video's inferred length and the caption before it over the gap."""
    ordered = sorted(spans, key=lambda s: s[1])
    if len(ordered) < 3:
        return
    steps = sorted(b[1] - a[1] for a, b in itertools.pairwise(ordered))
    median = steps[len(steps) // 2]
    line, start, end = ordered[-1][:3]
    gap = start - max(s[2] for s in ordered[:-1])
    if median > 0 and gap > 10 * median:
        _note(notes, f"{path}:{line}: cue {_stamp(start)} --> {_stamp(end)} starts {gap:g} s after the others end "
                     f"(over 10 times their median spacing, {median:g} s): a mistyped time? The video is taken to "
                     f"be {end:g} s long, and the caption before it holds until half-way there")


def _stamp(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{round((seconds - whole) * 1000):03d}"


def _timed_cues(path: Path, spans: list[tuple[int, float, float, str, dict[str, Any]]], notes: list[str] | None
                ) -> list[FrameDescription]:
    """Cues of a speech transcript as timed captions at their centres (see :func:`_read_subtitles`)."""
    at: dict[float, list[str]] = {}
    for _, start, end, text, _ in sorted(spans, key=lambda s: s[0]):  # file order: the texts of a centre joined so
        texts = at.setdefault(round((start + end) / 2, 6), [])
        if text and text not in texts:
            texts.append(text)
    _note(notes, f"{path}: its {len(spans)} cues are not equal contiguous clips (a speech transcript's: of varying "
                 "length, with gaps or overlaps): each is read as a caption at its cue's centre, as CSV t,text rows "
                 "are, not as a clip; each caption's span reaches half-way to its neighbours'",
          kind="subtitle files read as timed captions")
    end = max(s[2] for s in spans)
    return _build(path, [(t, " ".join(at[t]), {}) for t in sorted(at)], {"duration": round(end, 6),
                                                                        "duration_inferred": True})


def _note(notes: list[str] | None, message: str, *, kind: str | None = None) -> None:
    """A warning about how a file was read: logged, and added to ``notes`` (a result's warnings) when given. While
    :func:`summarise_notes` is in effect a note of a ``kind`` is logged for the first file only, the others counted."""
    if notes is not None:
        notes.append(message)
    with _summary_lock:
        quiet = kind is not None and _summary["depth"] > 0 and _summary["seen"][kind] > 0
        if kind is not None and _summary["depth"] > 0:
            _summary["seen"][kind] += 1
    if quiet:
        log.debug("%s", message)
    else:
        log.warning("%s", message)


_summary_lock = threading.Lock()
_summary: dict[str, Any] = {"depth": 0, "seen": Counter()}


def summarise_notes() -> Callable[[], None]:
    """Until the function returned is called: one warning of each kind of note (subtitles read as timed captions),
    not one a file, for an eval over many files (each file's note is still in its result's warnings); then one line
    says how many more files had it. Nested or concurrent evals in one process share one count, told at the end."""
    with _summary_lock:
        if _summary["depth"] == 0:
            _summary["seen"] = Counter()
        _summary["depth"] += 1
    ended = False

    def end() -> None:
        nonlocal ended
        with _summary_lock:
            if ended:
                return
            ended = True
            _summary["depth"] -= 1
            more = {k: n - 1 for k, n in _summary["seen"].items() if n > 1} if _summary["depth"] == 0 else {}
        for kind, n in sorted(more.items()):
            log.warning("... and %d more %s, warned of in their results' warnings only", n, kind)

    return end
