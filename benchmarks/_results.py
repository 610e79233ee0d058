"""Where the engineering benchmarks leave their figures: one JSON file per script.

Each script (``decode.py``, ``pipeline_offline.py``, ``local_models.py``, ``stage1_throughput.py``)
writes ``benchmarks/results/NAME.json`` with what it measured (``rows``), how it was run
(``settings``, ``command``), on what (``machine``), under what load (``load``) and when (``date``);
``benchmarks/make_page.py`` renders docs/benchmarks.md from those files, so the page and the
docstrings that point to it never carry figures of their own.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """``--json PATH`` (default ``benchmarks/results/NAME.json``; ``-`` writes none) and ``--load-note``."""
    parser.add_argument("--json", dest="json_out", default=str(RESULTS / f"{name}.json"), metavar="PATH",
                        help=f"where the result JSON goes (default benchmarks/results/{name}.json; '-': nowhere)")
    parser.add_argument("--load-note", default="", metavar="TEXT",
                        help="what else ran on the machine (recorded with the load averages)")


def machine() -> dict[str, Any]:
    """The machine in a few words: CPU model and cores, GPU if one is visible, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            gpu = ", ".join(x.strip() for x in out.stdout.splitlines() if x.strip()) or None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def command(argv: list[str]) -> str:
    """The command line that reproduces the run, without where its JSON went or the load note."""
    args, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
        elif a in ("--json", "--load-note"):
            skip = True
        elif not a.startswith(("--json=", "--load-note=")):
            args.append(a)
    return shlex.join(["python", f"benchmarks/{Path(argv[0]).name}", *args])


def run_timed(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """``vidground ARGS`` in a fresh process: its wall and CPU seconds (user + system, from the children's
    rusage, so other processes' load does not count) and its stdout; exits the benchmark when it fails."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"vidground {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


class Recorder:
    """Notes the load when the benchmark starts; :meth:`write` adds the rest and saves the file."""

    def __init__(self, name: str, args: argparse.Namespace, settings: dict[str, Any]):
        self.name, self.settings = name, settings
        self.out = None if args.json_out in ("", "-") else Path(args.json_out)
        self.note = args.load_note
        self.before = loadavg()
        self.command = command(sys.argv)

    def write(self, rows: list[dict[str, Any]], **extra: Any) -> Path | None:
        if self.out is None:
            return None
        data = {"benchmark": self.name, "command": self.command,
                "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
                "machine": machine(),
                "load": {"note": self.note, "loadavg_1_5_15_before": self.before, "loadavg_1_5_15_after": loadavg()},
                "settings": self.settings, "rows": rows, **extra}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwrote {self.out}")
        return self.out


#: settings that change no figure of a result JSON: a run differing from the defaults only in these is a full run
_NOT_FIGURES = ("jobs", "json_out", "load_note", "keep")


def parse_for_results(parser: argparse.ArgumentParser, argv: list[str] | None, name: str) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with ``json_out`` decided by what the run measures (:func:`add_arguments` gave
    the option): ``--json`` when given; else the published ``benchmarks/results/NAME.json`` for a run of the default
    settings, or one that merges into it (``--keep``, where the script has it); else ``NAME.subset.json`` in the
    current folder, said on stderr. A subset run (``long_videos.py --lengths 1800 --videos 2 --halves dev``,
    ``events.py --sets nextgqa --no-demo``) that wrote the published file replaced every published row with its
    few, and the benchmarks page is rendered from that file."""
    published = parser.get_default("json_out")
    parser.set_defaults(json_out=None)  # None: not given
    args = parser.parse_args(argv)
    if args.json_out is not None:
        return args
    changed = [k for k, v in vars(args).items() if k not in _NOT_FIGURES and v != parser.get_default(k)]
    if not changed or getattr(args, "keep", False):
        args.json_out = published
        return args
    merge = "--keep merges them into it; " if "keep" in vars(args) else ""
    print(f"a subset of the benchmark ({', '.join('--' + k.replace('_', '-') for k in changed)}): its rows go to "
          f"{name}.subset.json, not {published} ({merge}--json PATH writes PATH)", file=sys.stderr)
    args.json_out = f"{name}.subset.json"
    return args

