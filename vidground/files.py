"""Reading and writing files safely: text and JSONL streamed line by line with bounded lines, outputs
written whole or not at all (without replacing what a path points at), and content fingerprints that
key the caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO
from typing import Any

from .errors import ConfigurationError, InputError, NoCacheFolderError, VideoDecodeError

#: The longest line a descriptions or captions file may have (bytes, newline excluded): a longer one
#: is refused with an error naming it, instead of being read whole into memory.
MAX_LINE_BYTES = 1 << 20


#: control characters (C0, DEL, C1) and the Unicode bidirectional overrides, shown as escapes on a terminal
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} | {
    c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)}


def printable(text: Any) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``, ``\\x0a``...): a query, a
    caption or a model's answer printed in a table cannot move the cursor, recolour or retitle the
    user's terminal, or break the table's lines."""
    return str(text).translate(_UNPRINTABLE)


def check_database_path(path: Path, what: str) -> None:
    """Raise a :class:`ConfigurationError` unless ``path`` is a regular file or does not exist yet: SQLite
    opened on ``/dev/null``, a FIFO or another special file would create world-writable ``-journal`` and
    ``-wal`` files beside it (in ``/dev``) or block."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: cannot use it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ConfigurationError(f"{what} {path} is a folder; give a file such as {path / 'cache.sqlite'}")
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"{what} {path} is {file_kind(mode)}, not a file: give a file path "
                                 "(a SQLite database is created there), or turn the cache off")


def user_cache_dir(variable: str) -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache``. A :class:`NoCacheFolderError` that names
    ``variable`` (the setting that picks the file instead) when there is neither: no ``$HOME`` and no home directory
    for this user (a container run as ``--user N`` with no passwd entry), where ``Path.home()`` raised RuntimeError."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base)
    try:
        return Path.home() / ".cache"
    except RuntimeError:
        raise NoCacheFolderError(f"no folder for vidground's caches: $XDG_CACHE_HOME and $HOME are not set and user "
                                 f"{os.getuid()} has no home directory (set ${variable} or $XDG_CACHE_HOME)") from None


def file_kind(mode: int) -> str:
    """What a special file is, from its ``st_mode`` ("a FIFO", "a character device"...), for messages
    that refuse it."""
    return ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def check_readable(path: Path, what: str = "file") -> None:
    """Raise an :class:`InputError` naming ``path`` unless it is a regular file that can be opened
    without blocking: a missing path, a folder, a link loop, a FIFO or a device (which would block, or
    never end) are refused before anything is opened."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=path) from None
    except OSError as exc:  # a link loop, a path through a file, no permission
        raise InputError(f"cannot open the {what} ({exc.strerror or exc})", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a folder, not a {what}", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"is {file_kind(st.st_mode)}, not a regular {what}; save the content to a file first", path=path)
    try:  # a regular file opens at once; what stat cannot tell is whether we may read it
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot open the {what} ({exc.strerror or exc})", path=path) from None


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


_SAMPLES = 16
_CHUNK = 64 * 1024


def video_fingerprint(path: str | Path) -> str:
    """A content fingerprint: sha256 of the file size and 16 evenly spaced 64 KiB chunks.

    Reads at most 1 MiB whatever the file's size, so it is fast on multi-gigabyte videos.
    Small files (up to 1 MiB) are hashed whole.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        h = hashlib.sha256(f"vidground-fp1:{size}:".encode())
        with path.open("rb") as fh:
            if size <= _SAMPLES * _CHUNK:
                h.update(fh.read())
            else:
                for i in range(_SAMPLES):
                    fh.seek((size - _CHUNK) * i // (_SAMPLES - 1))
                    h.update(fh.read(_CHUNK))
    except OSError as exc:
        raise VideoDecodeError(path, f"cannot read the file to fingerprint it ({exc.strerror or exc})") from None
    return h.hexdigest()[:32]


def _temporary_prefix(target: Path) -> str:
    """``.NAME.HOST.`` : a writer's temporaries carry its host, so only writers on this machine, whose pids
    can be checked here, are ever judged (a run folder on a shared disk has writers on other hosts)."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:64] or "host"
    return f".{target.name}.{host}."


def _sweep_stale_temporaries(target: Path) -> None:
    """Remove the temporary files that writers of ``target`` on this host killed before their rename left
    beside it (``.NAME.HOST.PID.XXXX.tmp`` whose process is gone); a live writer's are left alone."""
    prefix = _temporary_prefix(target)
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid = name[len(prefix):].split(".", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def output_file(path: str | Path) -> Iterator[TextIO]:
    """A text file to write ``path`` through, all or nothing.

    A regular file (new or existing) is written to a temporary file beside it, renamed into place
    when the block ends without an error, and keeps an existing file's permissions (a new one gets
    the umask's). A symbolic link is followed, so the link stays and its target is replaced. A special
    file (``/dev/stdout``, a FIFO, a device) is written directly, never replaced by a regular file. A
    folder, or a place that cannot be written, is an :class:`InputError` naming the path.
    """
    path = Path(path)
    try:
        st = path.stat()  # through links: what is written to
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", path=path) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError("is a folder; give a file name", path=path)
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            # written through the path itself: a link to /proc/self/fd/1 (a pipe) resolves to a name
            # that cannot be opened, while opening the link reaches the pipe
            with open(path, "w", encoding="utf-8") as fh:
                yield fh
            return
        target = path.resolve() if path.is_symlink() else path
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale_temporaries(target)
        fd, tmp = tempfile.mkstemp(prefix=f"{_temporary_prefix(target)}{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", path=path) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write here ({exc.strerror or exc})", path=path) from None
        raise
