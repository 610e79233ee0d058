"""Checks of a describer's or reasoner's option values, made when the backend is built.

Options reach a backend from Python or from the command line's ``KEY=VALUE``, whose value is read as
JSON where it parses and kept as text otherwise: ``detect_faces=False`` arrives as the text ``'False'``
and ``person_score=abc`` as ``'abc'``. Left to Python, any text is true and a comparison with text is a
TypeError deep in the backend ("internal error"); these checks refuse a value that is not plainly of
its kind with a :class:`ConfigurationError` naming the option, the value and what is valid, before
anything runs or is cached. One rule for every on/off option: JSON's ``true`` / ``false`` (Python's
``True`` / ``False``), as ``--events-opt nested=`` takes it; ``False``, ``no`` or ``0`` are refused,
not guessed at.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

from .errors import ConfigurationError

#: torch's device forms (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``xpu:0``...), checked without importing torch
_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|hip|xla|meta|hpu|mtia|ipu|ve|lazy|vulkan|maia|fpga|ideep|mkldnn|opengl"
                     r"|opencl|privateuseone)(:\d+)?")


def flag(name: str, value: Any) -> Any:
    """``value`` as an on/off option: ``True`` or ``False`` (``true`` / ``false`` on the command line), or JSON's
    ``0`` / ``1``, which are not ambiguous and worked before these checks (``detect_faces=0``); returned as given, so
    a backend's settings, cache keys and a resumed run's options stay what they were. Text (``'False'``, ``no``) is
    refused: any text is true to Python."""
    if isinstance(value, bool) or (isinstance(value, Integral) and value in (0, 1)):
        return value
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")


def _bound(value: float, edge: float | None, open_: bool, below: bool) -> bool:
    if edge is None:
        return True
    if below:
        return value < edge if open_ else value <= edge
    return value > edge if open_ else value >= edge


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False, whole: bool = False, allow_none: bool = False, unit: str = "") -> Any:
    """``value`` as a finite number (an int with ``whole``) from ``low`` to ``high`` (either end open with
    ``low_open`` / ``high_open``, absent when ``None``); ``None`` passes with ``allow_none``. A bool is refused:
    ``True`` is not 1. Returns a float (with ``whole``, an int, or a float of a whole number as given)."""
    if value is None and allow_none:
        return None
    kind = ("a whole number" if whole else "a number") + (f" of {unit}" if unit else "")
    # a whole number may come as a float of one (top_k=2.0 from JSON, a run started before these checks): taken,
    # and kept as given, so settings, cache keys and a resumed run's options stay what they were
    ok = (not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
          and (not whole or isinstance(value, Integral) or float(value).is_integer())
          and _bound(value, low, low_open, below=False) and _bound(value, high, high_open, below=True))
    if ok:
        return (int(value) if isinstance(value, Integral) else value) if whole else float(value)
    if low is not None and high is not None and not (low_open or high_open):
        rule = f"from {low:g} to {high:g}"
    elif low is not None and high is not None:
        rule = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        rule = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        rule = f"{'<' if high_open else '<='} {high:g}"
    else:
        rule = ""
    rule = " ".join(p for p in (kind, rule, "or None" if allow_none else "") if p)
    raise ConfigurationError(f"{name} must be {rule}, got {value!r}")


def check_all(*checks: Callable[[], Any]) -> None:
    """Runs every check (a callable that raises :class:`ConfigurationError`); the faults found are said together, in
    one error: each option at fault with its value, not the first alone nor every rule of the group."""
    faults = []
    for check in checks:
        try:
            check()
        except ConfigurationError as exc:
            faults.append(str(exc))
    if faults:
        raise ConfigurationError("; ".join(faults))


def device(value: Any) -> str | None:
    """``value`` as a torch device string, or ``None`` (the default device). Checked by ``torch.device`` where torch
    is already imported, else by torch's forms (importing it here would cost every reasoner made its load time), so
    ``device=bogus`` fails when the reasoner is made, not at its first query, nor never on a warm embedding cache."""
    if value is None:
        return None
    if isinstance(value, str):
        torch = sys.modules.get("torch")
        if torch is not None:
            try:
                torch.device(value)
                return value
            except (RuntimeError, ValueError, TypeError):
                pass
        elif _DEVICE.fullmatch(value):
            return value
    raise ConfigurationError(f"device must be a torch device such as cpu, cuda, cuda:1, mps or xpu (or unset: a GPU "
                             f"when torch sees one, else the CPU), got {value!r}")


__all__ = ["check_all", "device", "flag", "number"]
