"""Reading and writing files safely: text and JSONL streamed line by line with bounded lines, outputs
written whole or not at all (without replacing what a path points at), and content fingerprints that
key the caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import select
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
    """The user's cache folder: ``$XDG_CACHE_HOME`` when it is an absolute path, else ``~/.cache`` (a relative value
    is ignored, as the XDG specification says, with a warning). A :class:`NoCacheFolderError` that names
    ``variable`` (the setting that picks the file instead) when there is neither: no ``$HOME`` and no home directory
    for this user (a container run as ``--user N`` with no passwd entry), where ``Path.home()`` raised RuntimeError."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        return Path(base)
    if base:  # the XDG spec: a relative value is invalid and ignored (it was taken relative to the current folder)
        _warn_once(f"$XDG_CACHE_HOME={base!r} is a relative path, which the XDG specification says to ignore: "
                   "vidground's caches are in ~/.cache instead (give an absolute path to move them)")
    try:
        return Path.home() / ".cache"
    except RuntimeError:
        raise NoCacheFolderError(f"no folder for vidground's caches: $XDG_CACHE_HOME and $HOME are not set and user "
                                 f"{os.getuid()} has no home directory (set ${variable} or $XDG_CACHE_HOME)") from None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` as a warning, once a process."""
    if message not in _warned:
        _warned.add(message)
        logging.getLogger("vidground").warning("%s", message)


def bounded_name(name: str, max_bytes: int, *, of: str | None = None) -> str:
    """``name`` itself when its UTF-8 form has at most ``max_bytes`` bytes (and ``of`` is not given), else its
    longest prefix that leaves room for ``~`` and 12 hex digits of the sha256 of ``of`` (the exact string ``name``
    was made from, when it is not ``name`` itself): one file name per string (up to the hash), within a file
    system's limit on a name's length (255 bytes on most)."""
    data = name.encode("utf-8", "surrogateescape")
    if of is None and len(data) <= max_bytes:
        return name
    tag = "~" + hashlib.sha256((name if of is None else of).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return data[:max(0, max_bytes - len(tag))].decode("utf-8", "ignore") + tag  # cut at a character's boundary


def file_kind(mode: int) -> str:
    """What a special file is, from its ``st_mode`` ("a FIFO", "a character device"...), for messages
    that refuse it."""
    return ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def check_readable(path: Path, what: str = "file") -> None:
    """Raise an :class:`InputError` naming ``path`` unless it is a regular file that can be opened
    without blocking, or a pipe this process reads (``<(...)``, ``/dev/stdin`` from a pipe): a missing path,
    a folder, a link loop, a named FIFO (opening one waits for a writer, maybe forever) or a device (which
    would block, or never end) are refused before anything is opened. A pipe is read whole into a temporary
    file that then stands in for it (:func:`_spool_pipe`), so readers that read a file twice (to tell its
    format, then to parse it) read it all both times."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if str(path) == "-":  # '-' is stdin only where the command line says so
            raise InputError(f"{what} not found: '-' reads standard input only as --queries -; give /dev/stdin to "
                             f"read this {what} from a pipe", path=path) from None
        raise InputError(f"{what} not found", path=path) from None
    except OSError as exc:  # a link loop, a path through a file, no permission
        raise InputError(f"cannot open the {what} ({exc.strerror or exc})", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a folder, not a {what}", path=path)
    if stat.S_ISFIFO(st.st_mode) and (fd := _own_fd(path)) is not None:
        _spool_pipe(fd, path, what)
        return
    if not stat.S_ISREG(st.st_mode):
        through = "" if _own_fd(path) is not None else " (or give it through a pipe: <(...), /dev/stdin)"
        raise InputError(f"is {file_kind(st.st_mode)}, not a regular {what}; save the content to a file first{through}",
                         path=path)
    try:  # a regular file opens at once; what stat cannot tell is whether we may read it
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot open the {what} ({exc.strerror or exc})", path=path) from None


#: the most a pipe given as an input file is read (bytes): past it, an endless stream (``<(yes)``) is refused
MAX_PIPE_BYTES = 1 << 30


def _own_fd(path: Path) -> int | None:
    """The file descriptor of this process that ``path`` names (``/dev/fd/63``, ``/dev/stdin``,
    ``/proc/self/fd/0``), following links, or ``None``: a named FIFO, or another process's descriptor."""
    try:
        fds = os.path.realpath(f"/proc/{os.getpid()}/fd")
        for _ in range(16):
            folder = os.path.realpath(path.parent)
            if folder == fds and path.name.isdigit():
                return int(path.name)
            if not path.is_symlink():
                return None
            path = Path(folder) / os.readlink(path)
    except OSError:
        return None
    return None


#: how long (seconds) a pipe given as an input may give nothing before the write ends this process holds are looked for
PIPE_QUIET = 2.0


def _spool_pipe(fd: int, path: Path, what: str) -> None:
    """Read the pipe ``fd`` to its end into an unnamed temporary file, and put that file in its place
    (``dup2``): ``path`` then opens the whole content, from its start, each time it is opened.

    The end comes when every write end is closed, this process's too: a caller that made the pipe itself
    (``r, w = os.pipe(); session.load(f"/dev/fd/{r}")``) must close ``w`` before the call, or have another thread
    write and close it, else the read waits for ever. When the pipe gives nothing for :data:`PIPE_QUIET` seconds
    and this process holds a write end, a warning says so (it may be a thread's, still writing: not refused)."""
    try:
        with tempfile.TemporaryFile() as tmp:
            size = 0
            quiet = select.poll()
            quiet.register(fd, select.POLLIN)
            while True:
                if quiet is not None and not quiet.poll(int(PIPE_QUIET * 1000)):
                    quiet = None  # looked once
                    if held := _write_ends(fd):
                        logging.getLogger("vidground").warning(
                            "waiting for the end of the pipe given as the %s (%s): this process holds its write end "
                            "(file descriptor %s), so it ends only when that is closed; if no thread of this process still "
                            "writes to it, close it before the call",
                            what, path, ", ".join(map(str, held)))
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_PIPE_BYTES:
                    raise InputError(f"more than {MAX_PIPE_BYTES >> 30} GiB read from the pipe given as the {what} "
                                     "(an endless stream?); save the content to a file first", path=path)
                tmp.write(chunk)
            tmp.flush()
            os.dup2(tmp.fileno(), fd)
    except OSError as exc:
        raise InputError(f"cannot read the {what} ({exc.strerror or exc})", path=path) from None


def _write_ends(fd: int) -> list[int]:
    """This process's file descriptors open for writing on the pipe ``fd`` reads (Linux: ``/proc``; else none)."""
    import fcntl  # POSIX; a pipe is spooled only where /proc names it

    fds = f"/proc/{os.getpid()}/fd"
    try:
        pipe = os.readlink(f"{fds}/{fd}")
        names = os.listdir(fds)
    except OSError:
        return []
    held = []
    for name in names:
        try:
            if int(name) != fd and os.readlink(f"{fds}/{name}") == pipe and \
                    fcntl.fcntl(int(name), fcntl.F_GETFL) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                held.append(int(name))
        except (OSError, ValueError):  # closed meanwhile
            continue
    return sorted(held)


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
                raise InputError(not_text(raw, "a NUL byte: a binary file, not text"), path=path, line=lineno)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(not_text(raw, "not UTF-8 text (a binary file?)"), path=path, line=lineno) from None
            yield lineno, text.removeprefix("\ufeff") if lineno == 1 else text


_CP1252_UNUSED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}  # the bytes Windows-1252 leaves undefined
#: the characters above 0x7F, other than letters, that text in Latin-1 or Windows-1252 has (quotes, dashes, signs);
#: a binary file's high bytes are seldom all letters and these (a PNG begins with 0x89, ‰)
_CP1252_TEXT = set("\u00a0\u00a1\u00a3\u00a7\u00a9\u00ab\u00ae\u00b0\u00b1\u00b2\u00b3\u00b4\u00b5\u00b7"
                   "\u00bb\u00bc\u00bd\u00be\u00bf\u00d7\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u2026\u20ac")
_RESAVE = "re-save it as UTF-8 (e.g. iconv -f {} -t UTF-8 FILE > NEW)"


def not_text(raw: bytes, otherwise: str) -> str:
    """What is wrong with text bytes ``raw`` (a line, or a file's start) that have a NUL byte or are not UTF-8: UTF-16
    text (a byte-order mark, or a NUL byte beside every ASCII character) and text in a one-byte encoding (Latin-1 or
    Windows-1252: printable bytes above 0x7F in text that is otherwise ASCII) are named, with how to re-save them as
    UTF-8; anything else is ``otherwise`` (a binary file)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (it begins with a UTF-16 byte-order mark), not UTF-8: " + _RESAVE.format("UTF-16")
    sample = raw[:4096]
    even, odd = sample[0::2], sample[1::2]
    for nuls, chars, order in ((odd, even, "UTF-16LE"), (even, odd, "UTF-16BE")):
        if len(nuls) >= 2 and nuls.count(0) >= 0.9 * len(nuls) and chars.count(0) <= 0.1 * len(chars):
            return f"UTF-16 text (a NUL byte beside each character), not UTF-8: " + _RESAVE.format(order)
    if b"\0" not in sample:
        high = [b for b in sample if b >= 0x80]
        controls = [b for b in sample if b < 0x20 and b not in b"\t\r\n\x0c"]
        if (high and not controls and len(high) <= 0.3 * len(sample) and not set(high) & _CP1252_UNUSED
                and all(c.isalpha() or c in _CP1252_TEXT for c in bytes(high).decode("cp1252"))):
            first = next(i for i, b in enumerate(raw) if b >= 0x80)
            before = raw[max(0, first - 20):first + 1].decode("cp1252", "replace")
            return (f"not UTF-8 text: byte 0x{raw[first]:02x} ({before!r}) looks like Latin-1 or Windows-1252 text: "
                    + _RESAVE.format("CP1252"))
    return otherwise


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


#: the longest file name most file systems take (bytes)
_NAME_MAX = 255


def _temporary_prefix(target: Path) -> str:
    """``.NAME.HOST.`` : a writer's temporaries carry its host, so only writers on this machine, whose pids
    can be checked here, are ever judged (a run folder on a shared disk has writers on other hosts)."""
    host = "".join(c if c.isascii() and c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:64] or "host"
    # NAME cut (with a hash of it) so that the whole ``.NAME.HOST.PID.XXXXXXXX.tmp`` fits in 255 bytes: a legal
    # 250-byte file name, or a long cluster host name, made a name the file system refused
    name = bounded_name(target.name, _NAME_MAX - len(host) - len("...4294967295.XXXXXXXX.tmp"))
    return f".{name}.{host}."


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


def refuse_url(video: object) -> None:
    """A :class:`VideoDecodeError` saying so when ``video`` is a URL (``scheme://...``) and no such local file exists:
    as a path, ``http://host/a.mp4`` reads ``http:/host/a.mp4``, "no such file", which hid what was wrong."""
    text = os.fspath(video) if isinstance(video, (str, os.PathLike)) else None
    if not isinstance(text, str) or "://" not in text:
        return
    scheme = text.partition("://")[0]
    if scheme[:1].isalpha() and scheme.isascii() and all(c.isalnum() or c in "+-." for c in scheme) \
            and not os.path.lexists(text):
        raise VideoDecodeError(text, "is a URL; vidground reads video files on this machine: download it first "
                                     "(curl -o FILE, yt-dlp) and give the file")
