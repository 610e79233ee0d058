"""Reading and writing descriptions files (JSONL, one frame a line).

The minimal line is ``{"t": <seconds>, "text": "..."}``; any other keys are kept.
``vidground describe`` adds its metadata to every line (``video``, ``duration``, ``step``,
``describer``), so each line stands alone and the file stays "one frame a line".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidground.errors import InputError
from vidground.files import MAX_LINE_BYTES, check_readable, iter_json_lines, output_file
from vidground.types import FrameDescription


def read_descriptions(path: str | Path, *, format: str = "auto", clip_seconds: float | None = None,
                      notes: list[str] | None = None) -> list[FrameDescription]:
    """Read a descriptions file, sorted by time; raise :class:`InputError` naming the file and line on any bad line
    (a repeated time included, and lines naming two videos). A line's text may be empty: a frame the describer said
    nothing of (``vidground describe`` keeps such a reply, marked ``empty_reply``), grounded around; a file whose
    every text is empty is refused where it is used (``Transcript``).

    ``format="auto"`` (the default) reads vidground's JSONL and, recognised by their content, caption
    files written by other tools: VTG-GPT clip captions, per-second JSON, CSV, SRT and WebVTT subtitles (see
    :mod:`frame_describer.caption_formats` for their time conventions and ``clip_seconds``). A warning on how such a
    file was read (clips from after 0, subtitles read as timed captions) is logged and, when ``notes`` is given,
    added to it: a result built from the file tells its reader too.
    """
    from .caption_formats import OneVideo, check_clip_seconds, read_captions, resolve_format

    path = Path(path)
    check_readable(path, "descriptions file")
    fmt = resolve_format(path, format)
    if fmt != "vidground":
        return read_captions(path, fmt, clip_seconds=clip_seconds, notes=notes)
    check_clip_seconds(clip_seconds, fmt, path)
    out: list[FrameDescription] = []
    line_of: dict[float, int] = {}  # a time's line: two descriptions of one instant would be placed side by side
    video = OneVideo(path)
    for lineno, obj in iter_json_lines(path, not_object="each line must be a JSON object with 't' and 'text'",
                                       max_line_bytes=MAX_LINE_BYTES):
        missing = [k for k in ("t", "text") if k not in obj]
        if missing:
            raise InputError(f"missing key(s) {', '.join(missing)}", path=path, line=lineno)
        if not isinstance(obj["t"], (int, float)) or isinstance(obj["t"], bool) or not math.isfinite(obj["t"]) or obj["t"] < 0:
            raise InputError(f"'t' must be a finite number of seconds >= 0, got {obj['t']!r}", path=path, line=lineno)
        if line_of.setdefault(float(obj["t"]), lineno) != lineno:
            raise InputError(f"'t' {obj['t']!r} is already on line {line_of[float(obj['t'])]}: one description a "
                             "frame time (two files joined, or one written twice?)", path=path, line=lineno)
        if not isinstance(obj["text"], str):
            raise InputError(f"'text' must be a string, got {type(obj['text']).__name__}", path=path, line=lineno)
        video.see(obj, lineno)
        try:
            out.append(FrameDescription.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", path=path, line=lineno) from None
    if not out:
        raise InputError("no descriptions (the file is empty)", path=path)
    out.sort(key=lambda d: d.t)
    return out


def named_video(path: str | Path) -> str | None:
    """The video a descriptions or captions file names (the first ``video`` field of its JSON lines, or the first
    row's ``video`` column of a CSV), else ``None``; read lines are only the ones up to it. :func:`read_descriptions`
    refuses a file naming two, so the first is the file's. A file that cannot be read names none here: reading it
    says why."""
    from .caption_formats import _csv_rows, detect_format, video_name

    path = Path(path)
    try:
        fmt = detect_format(path)
    except (InputError, OSError):
        return None
    if fmt == "csv":
        try:
            rows = _csv_rows(path)
            header, first = next(rows, None), next(rows, None)
        except InputError:
            return None
        if header is None or first is None:
            return None
        names = [c.strip().lower() for c in header[1]]
        return video_name(first[1][names.index("video")]) if "video" in names and len(first[1]) == len(names) else None
    if fmt not in ("vidground", "vtggpt"):
        return None
    with path.open("rb") as fh:
        while raw := fh.readline(MAX_LINE_BYTES + 1):
            if b'"video"' not in raw:
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                return None  # read_descriptions names what is wrong with it
            if isinstance(obj, dict) and (name := video_name(obj.get("video"))) is not None:
                return name
    return None


def description_metadata(descriptions: list[FrameDescription], key: str) -> Any:
    """The value of an extra key when every line that has it agrees, else ``None``."""
    values = {json.dumps((d.model_extra or {}).get(key)) for d in descriptions if key in (d.model_extra or {})}
    return json.loads(values.pop()) if len(values) == 1 else None


def write_descriptions(path: str | Path, descriptions: Iterable[FrameDescription], **metadata: Any) -> int:
    """Write the file all or nothing (see :func:`vidground.files.output_file`: a crash leaves no half
    file, and a link or a special file given as ``path`` is written through, not replaced).

    ``metadata`` keys are added to every line (line keys win). Returns the number of lines.
    """
    n = 0
    with output_file(path) as fh:
        for d in descriptions:
            row = {**metadata, **d.model_dump(mode="json")}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
