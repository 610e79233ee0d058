"""Reading and writing descriptions files (JSONL, one frame a line).

The minimal line is ``{"t": <seconds>, "text": "..."}``; any other keys are kept.
``vidground describe`` adds its metadata to every line (``video``, ``duration``, ``step``,
``describer``), so each line stands alone and the file stays "one frame a line".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import InputError
from .types import FrameDescription


#: The longest line a descriptions or captions file may have (bytes, newline excluded): a longer one
#: is refused with an error naming it, instead of being read whole into memory.
MAX_LINE_BYTES = 1 << 20


def iter_text_lines(path: Path, *, max_line_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of a UTF-8 text file, streamed (a leading BOM is dropped).

    A NUL byte, bytes that are not UTF-8, or a line over ``max_line_bytes`` are an
    :class:`InputError` naming the file and the line, so a binary file is refused at its first bad line.
    """
    limit = -1 if max_line_bytes is None else max_line_bytes + 1
    with path.open("rb") as fh:
        lineno = 0
        while raw := fh.readline(limit):
            lineno += 1
            if max_line_bytes is not None and len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise InputError(f"line longer than {max_line_bytes} bytes (a binary file, or not one item a line?)",
                                 path=path, line=lineno)
            if b"\0" in raw:
                raise InputError("a NUL byte: a binary file, not text", path=path, line=lineno)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text (a binary file?)", path=path, line=lineno) from None
            yield lineno, text.removeprefix("\ufeff") if lineno == 1 else text


def iter_json_lines(path: Path, *, not_object: str = "each line must be a JSON object",
                    max_line_bytes: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file; a line that is not a JSON
    object is an :class:`InputError` naming the file and the line (with ``not_object`` as its message)."""
    for lineno, line in iter_text_lines(path, max_line_bytes=max_line_bytes):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path=path, line=lineno) from None
        if not isinstance(obj, dict):
            raise InputError(not_object, path=path, line=lineno)
        yield lineno, obj


def read_descriptions(path: str | Path, *, format: str = "auto", clip_seconds: float | None = None
                      ) -> list[FrameDescription]:
    """Read a descriptions file, sorted by time; raise :class:`InputError` naming the file and line on any bad line.

    ``format="auto"`` (the default) reads vidground's JSONL and, recognised by their content, caption
    files written by other tools: VTG-GPT clip captions, per-second JSON, CSV (see
    :mod:`frame_describer.caption_formats` for their time conventions and ``clip_seconds``).
    """
    from .caption_formats import check_clip_seconds, read_captions, resolve_format

    path = Path(path)
    if not path.exists():
        raise InputError("descriptions file not found", path=path)
    if path.is_dir():
        raise InputError("is a folder, not a descriptions file", path=path)
    fmt = resolve_format(path, format)
    if fmt != "vidground":
        return read_captions(path, fmt, clip_seconds=clip_seconds)
    check_clip_seconds(clip_seconds, fmt, path)
    out: list[FrameDescription] = []
    for lineno, obj in iter_json_lines(path, not_object="each line must be a JSON object with 't' and 'text'",
                                       max_line_bytes=MAX_LINE_BYTES):
        missing = [k for k in ("t", "text") if k not in obj]
        if missing:
            raise InputError(f"missing key(s) {', '.join(missing)}", path=path, line=lineno)
        if not isinstance(obj["t"], (int, float)) or isinstance(obj["t"], bool) or not math.isfinite(obj["t"]) or obj["t"] < 0:
            raise InputError(f"'t' must be a finite number of seconds >= 0, got {obj['t']!r}", path=path, line=lineno)
        if not isinstance(obj["text"], str):
            raise InputError(f"'text' must be a string, got {type(obj['text']).__name__}", path=path, line=lineno)
        try:
            out.append(FrameDescription.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", path=path, line=lineno) from None
    if not out:
        raise InputError("no descriptions (the file is empty)", path=path)
    out.sort(key=lambda d: d.t)
    return out


def description_metadata(descriptions: list[FrameDescription], key: str) -> Any:
    """The value of an extra key when every line that has it agrees, else ``None``."""
    values = {json.dumps((d.model_extra or {}).get(key)) for d in descriptions if key in (d.model_extra or {})}
    return json.loads(values.pop()) if len(values) == 1 else None


def write_descriptions(path: str | Path, descriptions: Iterable[FrameDescription], **metadata: Any) -> int:
    """Write atomically (a temporary file renamed into place): a crash leaves no half file.

    ``metadata`` keys are added to every line (line keys win). Returns the number of lines.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for d in descriptions:
                row = {**metadata, **d.model_dump(mode="json")}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return n
