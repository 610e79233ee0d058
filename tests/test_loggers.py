"""vidground.LOGGERS names every logger the library writes to (the README tells a service to quiet them by it)."""

from __future__ import annotations

import ast
from pathlib import Path

import vidground
from pipelines import cli

ROOT = Path(__file__).resolve().parents[1]


def _logger_names() -> set[str]:
    """The loggers the library's modules make: getLogger(__name__) (the module's package) or a literal name."""
    names = set()
    for package in ("vidground", "frame_describer", "temporal_reasoner", "pipelines", "prompts"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger" and node.args:
                    arg = node.args[0]
                    if isinstance(arg, ast.Name) and arg.id == "__name__":
                        names.add(package)
                    elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.add(arg.value)
    return names


def test_every_logger_the_library_makes_is_under_one_of_the_named_trees():
    made = _logger_names()
    assert made, "no logger found: the scan is broken"
    outside = {n for n in made if not any(n == t or n.startswith(t + ".") for t in vidground.LOGGERS)}
    assert outside == set(), outside


def test_the_command_line_sets_up_the_same_loggers():
    assert set(cli._OUR_LOGGERS) == set(vidground.LOGGERS)
