"""Rephrasings of queries, given by the user (written once by an LLM, or by hand).

A query and a few paraphrases of it find more of the words a describer used than the query alone
(VTG-GPT, 2024, grounds each of five LLM rephrasings and merges the spans). Reasoners that accept
``rephrasings=`` take them as a mapping ``{query: [paraphrase, ...]}`` or as the path of a JSONL
file with one ``{"query": ..., "rephrased_query": [...]}`` object a line (VTG-GPT's format;
``"rephrasings"`` is accepted as the key too). Queries are matched after normalising case and spaces,
and a query without rephrasings is grounded alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidground.files import check_readable, iter_json_lines
from vidground.errors import ConfigurationError, InputError

Rephrasings = Mapping[str, Sequence[str]]


def normalize(query: str) -> str:
    return " ".join(query.lower().split())


def _clean(values: Any, where: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{where}: rephrasings must be a list of strings")
    out = []
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"{where}: a rephrasing is {type(v).__name__}, not text")
        v = " ".join(v.split())
        if v:
            out.append(v)
    return list(dict.fromkeys(out))


def read_rephrasings(path: str | Path) -> dict[str, list[str]]:
    """Read a JSONL rephrasings file; a bad line is an :class:`InputError` naming the file and line."""
    path = Path(path)
    check_readable(path, "rephrasings file")  # a folder, a FIFO or a missing file, each named for what it is
    out: dict[str, list[str]] = {}
    needs = 'each line needs {"query": "...", "rephrased_query": ["...", ...]}'
    for lineno, obj in iter_json_lines(path, not_object=needs):
        query = obj.get("query")
        values = obj.get("rephrased_query", obj.get("rephrasings"))
        if not isinstance(query, str) or not query.strip() or values is None:
            raise InputError(needs, path=path, line=lineno)
        try:
            out.setdefault(normalize(query), []).extend(_clean(values, "rephrased_query"))
        except ValueError as exc:
            raise InputError(str(exc), path=path, line=lineno) from None
    if not out:
        raise InputError("no rephrasings in the file", path=path)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def load_rephrasings(source: str | Path | Rephrasings | None) -> dict[str, list[str]]:
    """A normalised ``{query: [paraphrase, ...]}`` from a mapping or a JSONL file (``None``: empty)."""
    if source is None:
        return {}
    if isinstance(source, (str, Path)):
        return read_rephrasings(source)
    if not isinstance(source, Mapping):
        raise ConfigurationError("rephrasings must be a mapping {query: [paraphrase, ...]} or a JSONL file path")
    out: dict[str, list[str]] = {}
    for query, values in source.items():
        if not isinstance(query, str):
            raise ConfigurationError(f"rephrasings: a key is {type(query).__name__}, not a query")
        try:
            out.setdefault(normalize(query), []).extend(_clean(values, f"rephrasings of {query!r}"))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    return out


def query_forms(query: str, rephrasings: Mapping[str, Sequence[str]]) -> list[str]:
    """The query followed by its rephrasings (none when it has none), duplicates removed."""
    return list(dict.fromkeys([query, *rephrasings.get(normalize(query), ())]))
