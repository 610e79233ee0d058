"""Secrets out of anything that is stored or shown: settings, records, command lines, messages.

:func:`redact` replaces the values of secret-looking keys (``api_key``, ``apiKey``, ``token``,
``password``...), credentials and secret query parameters in URLs, secret headers (``Authorization:
Bearer ...``) and whole tokens that look like OpenAI-style keys. It lives in the core because every
layer stores what backends report about themselves: run records (``pipelines``), and the description
cache's settings table (``frame_describer``), which a third-party describer's ``settings()`` reaches
unfiltered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

_SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|key|secret|token|access[_-]?token|password|passwd|"
                         r"authorization|auth|credentials?|cookie|signature)$", re.IGNORECASE)
#: Word boundaries inside a camelCase name: ``openaiApiKey`` -> ``openai_Api_Key``, ``HTTPAuth`` -> ``HTTP_Auth``.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
#: ``NAME=VALUE`` / ``NAME: VALUE`` inside a text: URL query parameters (``?api_key=...&``), headers
#: (``Authorization: Bearer ...``), ``key=value`` lists and JSON-like ``"token": "..."``. The value is
#: redacted when NAME is secret-looking (:func:`is_secret_key`); a name inside a path (after ``/``) is not one.
_NAME_SEP = re.compile(r"""(?<![\w.\-/])(?P<name>[A-Za-z_][\w.\-]*)["']?\s*[:=]\s*""")
_VALUE = re.compile(r""""[^"]*"|'[^']*'|(?:(?:Bearer|Basic|Token)\s+)?[^\s"',;&#}\]]+""")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
#: A whole token that looks like an API key (``sk-...``, ``hf_...`` with a digit, as random keys have): alone or
#: after a space, quote, ``=`` or ``:``, never a piece of a path (``/data/sk-learn-experiments-2/videos``) nor
#: a name such as ``sk-learn-experiments-charades``.
_KEY_LIKE = re.compile(r"""(?<![^\s"'=:,(\[{])(?=[A-Za-z_\-]*\d)"""
                       r"""(?:(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})(?![^\s"',;)\]}&])""")
#: Names of secrets in texts besides the secret-looking ones: the signature of a signed URL (``?sig=...``).
_SECRET_PARAMS = {"sig"}


def is_secret_key(key: str) -> bool:
    """Whether a setting named ``key`` holds a secret (``api_key``, ``openai_api_key``, ``openaiApiKey``,
    ``X-Api-Key``, ``token``, but not ``max_tokens`` or ``maxTokens``)."""
    return bool(_SECRET_KEY.search(_CAMEL.sub("_", str(key).strip())))


def _redact_assignments(text: str) -> str:
    """``text`` with the value of every secret ``NAME=VALUE`` / ``NAME: VALUE`` pair redacted (see
    :data:`_NAME_SEP`); a quoted value keeps its quotes."""
    out, pos = [], 0
    for m in _NAME_SEP.finditer(text):
        name = m["name"]
        if m.start() < pos or not (is_secret_key(name) or name.lower() in _SECRET_PARAMS):
            continue
        value = _VALUE.match(text, m.end())
        if value is None:
            continue
        quote = value[0][0] if value[0][0] in "\"'" else ""
        out += [text[pos:m.end()], f"{quote}{REDACTED}{quote}"]
        pos = value.end()
    return "".join([*out, text[pos:]])


def _redact_text(text: str) -> str:
    text = _URL_CREDENTIALS.sub(f"{REDACTED}@", text)
    text = _redact_assignments(text)
    text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
    return _KEY_LIKE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by ``"<redacted>"``: values of secret-looking keys at any
    depth (``api_key``, ``apiKey``...), credentials and secret query parameters in URLs, secret
    ``NAME: VALUE`` / ``NAME=VALUE`` pairs and headers inside texts, and whole tokens that look like API keys."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


__all__ = ["REDACTED", "is_secret_key", "redact"]
