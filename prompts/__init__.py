"""Prompt templates as versioned files, one loader, and a stable hash of each template.

Templates live in ``prompts/templates/NAME.vN.txt`` and use ``$name`` placeholders
(:class:`string.Template`), so JSON examples with braces need no escaping. ``load("NAME")``
returns the newest version; ``load("NAME", version=1)`` a given one. ``Prompt.hash`` is a
SHA-256 of the template's name, version and text: it goes into cache keys, so changing a
prompt never serves descriptions written for the old one.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError

TEMPLATES_DIR = Path(__file__).parent / "templates"
_NAME = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.txt$")


class PromptError(ConfigurationError):
    """Unknown template or missing variable; the message lists the valid choices."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    text: str

    @property
    def hash(self) -> str:
        h = hashlib.sha256(f"{self.name}\x00{self.version}\x00{self.text}".encode()).hexdigest()
        return h[:16]

    @property
    def variables(self) -> set[str]:
        return {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(self.text)
                if m.group("named") or m.group("braced")}

    def render(self, **values: Any) -> str:
        missing = self.variables - values.keys()
        if missing:
            raise PromptError(f"prompt {self.name}.v{self.version} needs {', '.join(sorted(missing))}")
        return string.Template(self.text).substitute({k: str(v) for k, v in values.items()}).strip()


def _index() -> dict[str, dict[int, Path]]:
    out: dict[str, dict[int, Path]] = {}
    for p in TEMPLATES_DIR.glob("*.txt"):
        m = _NAME.match(p.name)
        if m:
            out.setdefault(m["name"], {})[int(m["version"])] = p
    return out


def names() -> list[str]:
    return sorted(_index())


@lru_cache(maxsize=None)
def load(name: str, version: int | None = None) -> Prompt:
    versions = _index().get(name)
    if not versions:
        raise PromptError(f"unknown prompt {name!r}; choose one of: {', '.join(names())}")
    if version is None:
        version = max(versions)
    if version not in versions:
        raise PromptError(f"prompt {name!r} has no version {version}; versions: {sorted(versions)}")
    return Prompt(name, version, versions[version].read_text(encoding="utf-8"))


__all__ = ["Prompt", "PromptError", "load", "names", "TEMPLATES_DIR"]
