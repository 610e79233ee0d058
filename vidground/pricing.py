"""Estimated cost: a price table (US dollars per 1M input/output tokens, per model) applied to Usage.

A small built-in table covers common OpenAI models (list prices as of ``PRICES_AS_OF``;
check your provider's page, prices change). Supply your own as a mapping, a :class:`PriceTable`
or a JSON file ``{"model": {"input": 0.15, "output": 0.60}, ...}`` (``"cached_input"`` is
accepted and ignored: vidground does not see cache hits). A model is matched exactly, else by
the longest table key it starts with (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). Unknown
models (a local server's) have no estimate: ``cost_usd`` stays ``None``, never a made-up zero; so have requests whose
reply counted no tokens (a server that sends no ``usage``).

Backends price every request, so :func:`price_table` builds each table once: the built-in one at
first use, a JSON file once per (path, modification time, size), a mapping once per content.
Tables it returns are shared; treat them as read-only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from vidground.errors import ConfigurationError, InputError
from vidground.types import Usage

PRICES_AS_OF = "2025-06"


@dataclass(frozen=True)
class Price:
    input: float   # USD per 1M prompt tokens (image tokens are billed as prompt tokens)
    output: float  # USD per 1M completion tokens

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ConfigurationError(f"a price's {name!r} must be a non-negative number (USD per 1M tokens), got {v!r}")


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
}


class PriceTable:
    """Model name -> :class:`Price`, with exact-then-longest-prefix lookup."""

    def __init__(self, prices: Mapping[str, Price | Mapping[str, float] | tuple[float, float]]):
        self.prices: dict[str, Price] = {}
        for model, p in prices.items():
            if isinstance(p, Price):
                price = p
            elif isinstance(p, Mapping):
                if "input" not in p or "output" not in p:
                    raise ConfigurationError(f"price for {model!r} needs 'input' and 'output' (USD per 1M tokens)")
                price = Price(p["input"], p["output"])
            elif isinstance(p, (tuple, list)) and len(p) == 2:
                price = Price(*p)
            else:
                raise ConfigurationError(f"price for {model!r} must be {{'input': x, 'output': y}} or (input, output)")
            self.prices[str(model).lower()] = price

    @classmethod
    def load(cls, path: str | Path) -> "PriceTable":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read the price table: {exc.strerror}", path=path) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"the price table is not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        if not isinstance(data, dict):
            raise InputError("the price table must be a JSON object of model -> {input, output}", path=path)
        return cls(data)

    def lookup(self, model: str) -> Price | None:
        name = model.lower().split("/")[-1]
        if name in self.prices:
            return self.prices[name]
        matches = [k for k in self.prices if name.startswith(k)]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.lookup(model)
        if price is None:
            return None
        return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6


PricesLike = Union[PriceTable, Mapping[str, Any], str, Path, None]


_TABLES: dict[tuple, PriceTable] = {}


def _cached(key: tuple, build: Callable[[], PriceTable]) -> PriceTable:
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= 32:
            _TABLES.clear()
        table = _TABLES[key] = build()
    return table


def _frozen(prices: Mapping[str, Any]) -> tuple | None:
    """A mapping's content as a hashable key (types included: ``1`` and ``True``, or a pair and a
    mapping, never share one), or ``None`` when a value cannot be part of a key."""
    def typed(v: Any) -> tuple:
        if isinstance(v, Mapping):
            return (type(v), tuple((type(k), k, type(x), x) for k, x in v.items()))
        if isinstance(v, (tuple, list)):
            return (type(v), tuple((type(x), x) for x in v))
        return (type(v), v)

    try:
        key = tuple((type(m), m, typed(p)) for m, p in prices.items())
        hash(key)
    except TypeError:
        return None
    return key


def price_table(prices: PricesLike = None) -> PriceTable:
    """Resolve a user's prices: None -> the built-in table; a mapping, table or JSON path otherwise."""
    if prices is None:
        return _cached(("built-in",), lambda: PriceTable(DEFAULT_PRICES))
    if isinstance(prices, PriceTable):
        return prices
    if isinstance(prices, (str, Path)):
        try:
            st = os.stat(prices)
        except OSError:
            return PriceTable.load(prices)  # raises the InputError that names the file
        key = ("file", os.path.abspath(prices), st.st_mtime_ns, st.st_size)
        return _cached(key, lambda: PriceTable.load(prices))
    if isinstance(prices, Mapping):
        key = _frozen(prices)
        return PriceTable(prices) if key is None else _cached(("mapping", key), lambda: PriceTable(prices))
    raise ConfigurationError(f"prices must be a PriceTable, a mapping, a JSON path or None, got {type(prices).__name__}")


def check_prices(prices: Any) -> None:
    """A backend's ``prices`` option resolved now (``False``: pricing off), so that a price file that cannot be read
    or a bad price is a :class:`ConfigurationError` naming the option when the backend is built, not an error raised
    after each request was answered (and paid for)."""
    if prices is False:
        return
    try:
        price_table(prices)
    except (InputError, ConfigurationError) as exc:
        raise ConfigurationError(f"prices={prices!r}: {exc}") from None


def with_cost(usage: Usage, model: str, prices: PricesLike = None) -> Usage:
    """``usage`` with ``cost_usd`` estimated for ``model``; left as is (``cost_usd`` None: its requests unpriced) for
    an unknown model, and for requests with no token counted: a server that sends no ``usage`` (or no counts in
    it) did not say what was spent, and a request always has prompt tokens, so pricing its zeros would be a
    made-up $0."""
    if usage.requests and not usage.prompt_tokens and not usage.completion_tokens:
        return usage
    cost = price_table(prices).cost(model, usage)
    return usage if cost is None else usage.model_copy(update={"cost_usd": cost, "unpriced": 0})


__all__ = ["Price", "PriceTable", "DEFAULT_PRICES", "PRICES_AS_OF", "price_table", "check_prices", "with_cost",
           "PricesLike"]
