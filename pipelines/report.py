"""Run reports: ``metrics.json``, ``report.md``, summary plots and ``index.html`` with per-query timelines.

Everything is rebuilt from the run folder alone (see :mod:`pipelines.runs`), so
``vidground report runs/NAME`` works on a finished, resumed or half-finished run. By default the
report draws three summary plots (matplotlib PNGs) and, inline in ``index.html`` as small SVG drawn
as text, the timelines of the :data:`DEFAULT_TIMELINES` worst queries (failures first, then lowest
IoU), so the page stays short however many queries there are; ``all_timelines``
(``--all-timelines``) draws one for every query.

A grounded-QA run (NExT-GQA) is reported on its own metrics: R1@m is not one of them, so its plots are the
top-1 span's IoU@m and IoP@m curves (:data:`QA_SUMMARY_PLOTS`), and its questions are listed worst first by what
Acc@GQA asks (a wrong answer first, then the lowest IoP), each with the chosen option and the right one.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError, InputError, MissingDependencyError, VidgroundError
from vidground.files import output_file

from .datasets import Query
from .metrics import (ANSWER_KEYS, CHOICE_KEYS, NO_ANSWER, QA_KEYS, TOLERANCE, Metrics, baselines_text, compute_metrics,
                      compute_qa_metrics, iop, iou, predicted_choice, reaches, score_query)
from .baselines import known_duration
from .runs import (format_cost, load_run, missing_videos, read_jsonl, read_run_json, read_transcript, run_durations,
                   run_metrics, run_totals, transcript_name)

#: Per-query timelines drawn by default: the worst queries (failures first, then lowest IoU).
DEFAULT_TIMELINES = 50
#: The IoU thresholds of the R1@m curve in the summary plots.
CURVE_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: The summary plots, drawn in ``plots/summary/`` whenever plots are drawn.
SUMMARY_PLOTS = {"r1_curve.png": "R1@m for m in 0.1..0.9, this run against the baselines",
                 "iou_histogram.png": "top-1 IoU histogram",
                 "r1_by_gt_length.png": "R1@0.5 by GT length tercile"}
#: A grounded-QA run's summary plots in place of :data:`SUMMARY_PLOTS`: NExT-GQA scores the top-1 span by IoU and IoP
#: (R1@m is not one of its metrics; the report of such a run drew an empty R1 curve before).
QA_SUMMARY_PLOTS = {"iou_iop_curve.png": "IoU@m and IoP@m of the top-1 span for m in 0.1..0.9, this run against the "
                                         "whole video as the span",
                    "iou_histogram.png": "top-1 IoU histogram",
                    "iou_iop_by_gt_length.png": "IoU@0.5 and IoP@0.5 of the top-1 span by GT length tercile"}
#: Every summary plot's caption by file name (a QA run's histogram has the same name and caption as a grounding run's).
_PLOT_CAPTIONS = {**SUMMARY_PLOTS, **QA_SUMMARY_PLOTS}

_ORDER = ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.3", "R5@0.5", "R5@0.7", "mIoU", "mAP@0.5", "mAP@0.75", "mAP")


def _keys(values: dict[str, float]) -> list[str]:
    order = QA_KEYS if "mIoP" in values else _ORDER  # a grounded-QA run (answers scored or not): NExT-GQA's order
    return [k for k in order if k in values] + [k for k in values if k not in order]


def metrics_table(m: Metrics, label: str = "this run") -> str:
    """A markdown table: the run (with 95% CIs) and the trivial baselines on the same queries."""
    keys = _keys(m.values)
    lines = ["| | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    cells = []
    for k in keys:
        ci = m.ci.get(k)
        cells.append(f"{m.values[k]:.2f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""))
    lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    for name, vals in m.baselines.items():
        if name == "prior span" and m.prior:
            name = f"prior span [{m.prior[0]:.2f}, {m.prior[1]:.2f}] x duration"
        lines.append(f"| {name} | " + " | ".join(f"{vals[k]:.2f}" if k in vals else "–" for k in keys) + " |")
    return "\n".join(lines)


#: What to fix, by problem kind, for a predictions file (``vidground score``).
SCORE_FIXES: dict[str, str] = {
    "missing": "predict every query (--predicted-only scores the predicted ones alone, not comparable with published figures)",
    "error": "the rows carry an 'error': rerun those queries",
    "empty": "give at least one interval per query",
    "unparseable": 'give each line "intervals": [[start, end], ...] or [[start, end, score], ...] in seconds '
                   '(or moment_detr\'s "pred_relevant_windows")',
    "reversed": "each interval needs end > start",
    "out of range": "times are seconds from the video's start, within [0, duration] (not milliseconds or frames)",
    NO_ANSWER: "give the chosen option as " + " / ".join(f'"{k}": INDEX' for k in CHOICE_KEYS) + " (0-based) or "
               + " / ".join(f'"{k}": "the option\'s text"' for k in ANSWER_KEYS),
}
#: The same for a run's results (``vidground eval``).
EVAL_FIXES: dict[str, str] = SCORE_FIXES | {
    "missing": "the run has no result for them yet: rerun the same eval command to finish",
    "error": "see each error (report.md lists them); rerun with --retry-failed once the cause is fixed",
    "empty": "the reasoner found no interval: check their transcripts",
    "unparseable": "the reasoner's output did not parse: check its settings",
    "reversed": "the reasoner returned end <= start: a bug in the backend",
    "out of range": "check the videos' durations and the descriptions' times",
    NO_ANSWER: "the reasoner chose none of the options: check its outputs in results.jsonl",
}


def problems_text(m: Metrics, records: dict[str, Any] | None = None, queries: list[Query] | None = None, *,
                  fixes: dict[str, str] = SCORE_FIXES, limit: int = 5) -> str:
    """The failures line: how many predictions were missing, failed, unparseable, reversed or out of
    range, up to ``limit`` examples (one of each kind first; the file's line when ``records`` has it)
    and what to fix."""
    problems = m.problems
    unscored = f"; {m.unscored}" if m.unscored else ""
    if not problems:
        return f"prediction problems: none ({m.n} predictions parsed, each with end > start, within the video){unscored}"
    kinds = lambda ks: ", ".join(f"{k} {problems[k]}" for k in ks if k in problems)  # noqa: E731
    parts = [f"{m.n_failures} scored as IoU 0 ({kinds(m.failures)})"] if m.failures else []
    if m.warnings:
        parts.append(f"{sum(m.warnings.values())} scored as given ({kinds(m.warnings)})")
    if m.answer_problems:
        parts.append(f"{sum(m.answer_problems.values())} counted as wrong answers ({kinds(m.answer_problems)})")
    # a row with a bad span and no answer is one row with two problems: the count is of rows, each kind listed
    lines = [f"prediction problems: {m.problem_rows} of {m.n}: " + "; ".join(parts) + unscored]
    bad = [i for i, s in enumerate(m.per_query) if s.failure or s.warning or s.answer_problem]
    first_of_kind = {}  # one example of each kind first, then the rest in order
    for i in bad:
        first_of_kind.setdefault(m.per_query[i].failure or m.per_query[i].warning or NO_ANSWER, i)
    shown = sorted((list(first_of_kind.values()) + [i for i in bad if i not in first_of_kind.values()])[:limit])
    by_qid = {q.qid: q for q in queries or []}
    for s in (m.per_query[i] for i in shown):
        rec, q = (records or {}).get(s.qid), by_qid.get(s.qid)
        where = f"line {rec['_line']}" if isinstance(rec, dict) and "_line" in rec else f"query {s.qid}"
        about = f" ({q.video}: {q.query[:50]!r})" if q else ""
        if s.failure or s.warning:
            lines.append(f"  {where}{about}: {s.failure or s.warning}: {s.detail}")
        if s.answer_problem:
            lines.append(f"  {where}{about}: {NO_ANSWER}: {s.answer_problem}")
    if len(bad) > len(shown):
        lines.append(f"  ... and {len(bad) - len(shown)} more")
    lines += [f"  fix ({k}): {fixes[k]}" for k in problems if k in fixes]
    return "\n".join(lines)


def load_provenance(out: str | Path) -> dict[str, Any] | None:
    """A run folder's ``provenance.json``, or ``None`` for a run made before runs recorded one."""
    return read_run_json(Path(out) / "provenance.json")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def provenance_lines(p: dict[str, Any] | None) -> list[str]:
    """The provenance record as markdown bullets (also what ``vidground report`` prints)."""
    if not p:
        return ["- no provenance.json: this run was made before vidground recorded provenance"]
    git = p.get("git")
    commit = f"commit {git['commit'][:12]}" + (" (uncommitted changes)" if git.get("dirty") else "") if git \
        else "not run from a git checkout"
    lines = [f"- vidground {p.get('vidground')}, {commit}; {p.get('date')}",
             f"- {p.get('python')} on {p.get('platform')}",
             f"- command: `{p.get('command')}`"]
    for kind in ("annotations", "predictions"):
        for name, digest in (p.get(kind) or {}).items():
            lines.append(f"- {kind}: {name} sha256 `{digest}`")
    for stage, b in (p.get("backends") or {}).items():
        lines.append(f"- {stage}: `{b.get('spec')}` options `{_compact(b.get('options') or {})}` settings "
                     + (f"`{_compact(b['settings'])}`" if "settings" in b else "not recorded (no video finished)"))
    lines.append("- packages: " + ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items()))
    lines.append("- prompts: " + ", ".join(f"{k} `{v}`" for k, v in (p.get("prompts") or {}).items()))
    calls = p.get("invocations") or []
    if len(calls) > 1:
        versions = {(c.get("vidground"), (c.get("git") or {}).get("commit")) for c in calls}
        lines.append(f"- run in {len(calls)} invocations (resumed)" + (
            ": WARNING, with different vidground versions or commits: "
            + "; ".join(f"{c.get('date')} vidground {c.get('vidground')} {((c.get('git') or {}).get('commit') or '')[:12]}"
                        for c in calls) if len(versions) > 1 else ", all with the same vidground version and commit"))
    return lines


def fmt_iou(iou: float) -> str:
    """An IoU with three decimals, rounded the way a hit is decided (``IoU >= m - TOLERANCE``): down,
    so 0.4968 shows "0.496" beside a miss at 0.5, never "0.50"; for any threshold with at most three
    decimals the shown value is >= m exactly when the query is a hit at m."""
    return f"{math.floor((iou + TOLERANCE) * 1000) / 1000:.3f}"


def _is_failed(rec: dict[str, Any] | None, s: Any) -> bool:
    return rec is None or rec.get("status") != "ok" or (s is not None and s.failure is not None)


def worst_first(queries: Sequence[Query], results: dict[str, dict[str, Any]], scored: dict[str, Any]) -> list[Query]:
    """The scored queries, failed ones (no result, an error, an unparseable or reversed prediction) first,
    then by top-1 IoU from the lowest; ties by query id. Unscored queries (missing videos) come last.

    Grounded-QA questions (scores with ``iop``) are ordered by what Acc@GQA asks instead: after the failed ones,
    the wrong answers, then the right ones, each by top-1 IoP from the lowest (a right answer with IoP >= 0.5
    is what Acc@GQA counts)."""
    def key(q: Query) -> tuple:
        s = scored.get(q.qid)
        if s is None:
            return (2, 0, 0.0, q.qid)
        if _is_failed(results.get(q.qid), s):
            return (0, 0, 0.0, q.qid)
        if s.iop is not None:
            return (1, 1 if s.correct else 0, s.iop, q.qid)
        return (1, 0, s.iou, q.qid)
    return sorted(queries, key=key)


def _is_qa(m: Metrics | None) -> bool:
    """Whether ``m`` scores a grounded-QA run (NExT-GQA's metrics, answers scored or not)."""
    return m is not None and "mIoP" in m.values


def _at(values: Sequence[float], name: str) -> dict[str, float]:
    """``{"NAME@m": percent of values >= m}`` for m in :data:`CURVE_THRESHOLDS` (the tolerance as the metrics')."""
    return {f"{name}@{m:g}": round(100.0 * sum(v >= m - TOLERANCE for v in values) / len(values), 2) if values else 0.0
            for m in CURVE_THRESHOLDS}


def qa_curves(m: Metrics, queries: Sequence[Query], durations: dict[str, float] | None = None) -> dict[str, Any]:
    """A grounded-QA run's IoU@m and IoP@m of the top-1 span for m in :data:`CURVE_THRESHOLDS` (percent of the scored
    questions, as its IoU@0.3/0.5 and IoP@0.3/0.5), and the same for the whole video [0, duration] as the span on
    the questions whose duration is known (the span half of the "random choice, whole video" baseline)."""
    curves: dict[str, Any] = {"this run": _at([s.iou for s in m.per_query], "IoU")
                              | _at([s.iop or 0.0 for s in m.per_query], "IoP")}
    by_qid = {q.qid: q for q in queries}
    timed = [(q, d) for q in (by_qid.get(s.qid) for s in m.per_query) if q is not None and q.windows
             and (d := known_duration(q, durations))]
    if timed:
        whole = [((0.0, float(d)), q.windows) for q, d in timed]
        curves["whole video"] = (_at([max(iou(w, g) for g in gts) for w, gts in whole], "IoU")
                                 | _at([max(iop(w, g) for g in gts) for w, gts in whole], "IoP"))
    return curves


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: Inline SVG timeline geometry (CSS pixels): label column, plot width, rows, axis.
_SVG_LEFT, _SVG_PLOT, _SVG_RIGHT = 34, 660, 12
_SVG_HEIGHT = 62
#: Score-curve points kept per timeline (the highest score per slice): a 2-hour curve stays a few KB.
_SVG_CURVE_POINTS = 220


def _ticks(duration: float, most: int = 8) -> list[float]:
    """Round axis ticks (1, 2 or 5 times a power of ten seconds) from 0 to ``duration``."""
    step = 10 ** math.floor(math.log10(duration / most)) if duration > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if duration / (step * factor) <= most:
            step *= factor
            break
    return [i * step for i in range(int(duration / step + 1e-9) + 1)]


def _pairs(values: Any) -> list[tuple[float, float]]:
    """The first two items of each of ``values`` (``[start, end, score]``, ``[t, score]``) where both are
    finite numbers; anything else is skipped."""
    out = []
    for v in values or []:
        try:
            s, e = float(v[0]), float(v[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if math.isfinite(s) and math.isfinite(e):
            out.append((s, e))
    return out


def _curve_points(curve: Any, x: Any, duration: float) -> str:
    """The reasoner's score curve as SVG polyline points over the two rows, scaled to its own range."""
    pts = [(min(max(t, 0.0), duration), v) for t, v in _pairs(curve)]
    if len(pts) < 2:
        return ""
    if len(pts) > _SVG_CURVE_POINTS:  # one point per slice, its highest score: peaks survive
        slices: dict[int, tuple[float, float]] = {}
        for t, v in pts:
            k = min(int(t / duration * _SVG_CURVE_POINTS), _SVG_CURVE_POINTS - 1)
            if k not in slices or v > slices[k][1]:
                slices[k] = (t, v)
        pts = [slices[k] for k in sorted(slices)]
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = hi - lo or 1.0
    return " ".join(f"{x(t):.1f},{40 - 36 * (v - lo) / span:.1f}" for t, v in pts)


def _timeline_svg(q: Query, rec: dict[str, Any] | None, status: str) -> str:
    """A query's timeline as inline SVG: ground truth, the top-5 predictions (top 1 solid) and the
    reasoner's score curve over seconds. Drawn as text, so a report of thousands of queries costs
    milliseconds per query where a matplotlib PNG cost about a third of a second; every piece of
    text in it (the query, the status) goes through ``html.escape``."""
    esc = html.escape
    windows = _pairs(q.windows)
    duration = next((float(d) for d in ((rec or {}).get("duration"), q.duration) if isinstance(d, (int, float))
                     and math.isfinite(d) and d > 0), max((e for _, e in windows), default=0.0)) or 1.0
    width = _SVG_LEFT + _SVG_PLOT + _SVG_RIGHT

    def x(t: float) -> float:
        return _SVG_LEFT + _SVG_PLOT * min(max(t, 0.0), duration) / duration

    def bar(s: float, e: float, y: int, cls: str) -> str:
        x0, x1 = x(min(s, e)), x(max(s, e))
        return f"<rect class='{cls}' x='{x0:.1f}' y='{y}' width='{max(x1 - x0, 1.5):.1f}' height='14'/>"

    parts = [f"<svg class='timeline' role='img' width='{width}' height='{_SVG_HEIGHT}' "
             f"viewBox='0 0 {width} {_SVG_HEIGHT}' xmlns='http://www.w3.org/2000/svg' data-qid='{esc(q.qid)}'>",
             f"<title>{esc(q.qid)} · {esc(q.query)} · {esc(status)}</title>",
             f"<text class='lab' x='{_SVG_LEFT - 4}' y='15'>GT</text><text class='lab' x='{_SVG_LEFT - 4}' y='35'>pred</text>",
             f"<line class='axis' x1='{_SVG_LEFT}' y1='44' x2='{_SVG_LEFT + _SVG_PLOT}' y2='44'/>"]
    for t in _ticks(duration):
        parts.append(f"<line class='axis' x1='{x(t):.1f}' y1='44' x2='{x(t):.1f}' y2='47'/>"
                     f"<text class='tick' x='{x(t):.1f}' y='57'>{t:g}</text>")
    parts += [bar(s, e, 4, "gt") for s, e in windows]
    preds = _pairs((rec or {}).get("intervals"))[:5]
    parts += [bar(s, e, 24, "pred" if rank == 0 else "pred alt") for rank, (s, e) in reversed(list(enumerate(preds)))]
    if points := _curve_points((rec or {}).get("curve"), x, duration):
        parts.append(f"<polyline class='curve' points='{points}'/>")
    parts.append(f"<text class='lab' x='{_SVG_LEFT - 10}' y='57'>s</text></svg>")
    return "".join(parts)


def gt_length_buckets(queries: Sequence[Query], scored: dict[str, Any], m: float = 0.5) -> list[dict[str, Any]]:
    """R1@m by GT length tercile: the scored queries split at the 1/3 and 2/3 quantiles of their total GT
    length (the sum of their GT windows, seconds); each bucket's label, bounds, query count and R1@m
    (percent, ``None`` for an empty bucket). Grounded-QA questions (scores with ``iop``) get ``IoU@m`` and ``IoP@m``
    of the top-1 span in place of ``R1``, NExT-GQA's names."""
    import numpy as np

    rows = [(sum(e - s for s, e in q.windows), scored[q.qid]) for q in queries if q.qid in scored]
    if not rows:
        return []
    qa = all(s.iop is not None for _, s in rows)
    measures = {f"IoU@{m:g}": lambda s: s.iou, f"IoP@{m:g}": lambda s: s.iop} if qa else {"R1": lambda s: s.iou}
    lengths = np.array([r[0] for r in rows])
    lo, hi = (float(x) for x in np.quantile(lengths, [1 / 3, 2 / 3]))
    buckets = (("short", f"< {lo:.1f} s", lambda x: x < lo), ("medium", f"{lo:.1f}-{hi:.1f} s", lambda x: lo <= x < hi),
               ("long", f">= {hi:.1f} s", lambda x: x >= hi))
    out = []
    for name, bounds, inside in buckets:
        kept = [s for length, s in rows if inside(length)]
        out.append({"bucket": name, "bounds": bounds, "n": len(kept)}
                   | {k: round(100.0 * sum(of(s) >= m - TOLERANCE for s in kept) / len(kept), 2) if kept else None
                      for k, of in measures.items()})
    return out


def _bucket_measures(buckets: Sequence[dict[str, Any]]) -> list[str]:
    """The measures :func:`gt_length_buckets` gave each bucket (``R1``, or ``IoU@0.5`` and ``IoP@0.5``)."""
    return [k for k in (buckets[0] if buckets else {}) if k not in ("bucket", "bounds", "n")]


def _summary_plots(folder: Path, curves: dict[str, Any] | None, m: Metrics, buckets: list[dict[str, Any]]) -> list[str]:
    """Draw the three summary plots into ``folder`` (:data:`SUMMARY_PLOTS`, or :data:`QA_SUMMARY_PLOTS` for a
    grounded-QA run); returns their file names. ``curves`` is ``metrics.json``'s ``r1_curve`` (or, QA,
    ``iou_iop_curve``): each line's values by ``NAME@m``."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    qa = _is_qa(m)
    names = list(QA_SUMMARY_PLOTS if qa else SUMMARY_PLOTS)
    for stale in (set(SUMMARY_PLOTS) | set(QA_SUMMARY_PLOTS)) - set(names):  # the other kind's, from an older report
        (folder / stale).unlink(missing_ok=True)
    # R1@m curve against the baselines; QA: IoU@m (solid) and IoP@m (dashed) of this run and of the whole video
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=80)
    for i, (name, vals) in enumerate((curves or {}).items()):
        for measure, style in ((("IoU", "-"), ("IoP", "--")) if qa else (("R1", "-" if i == 0 else "--"),)):
            ms = [t for t in CURVE_THRESHOLDS if f"{measure}@{t:g}" in vals]
            ax.plot(ms, [vals[f"{measure}@{t:g}"] for t in ms], ls=style, marker="o" if i == 0 else ".",
                    lw=2 if i == 0 else 1, color=f"C{i}", label=f"{name}: {measure}@m" if qa else name)
    ax.set_xlabel("IoU / IoP threshold m" if qa else "IoU threshold m")
    ax.set_ylabel("% of questions" if qa else "R1@m (%)")
    ax.set_ylim(0, 100)
    ax.set_title("top-1 span: IoU@m and IoP@m" if qa else "R1@m", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / names[0])
    plt.close(fig)
    # IoU histogram
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=80)
    ax.hist([s.iou for s in m.per_query], bins=[i / 20 for i in range(21)], color="#1f77b4", edgecolor="white")
    ax.axvline(0.5, color="#d62728", ls=":", lw=1)
    ax.set_xlabel("top-1 IoU")
    ax.set_ylabel("questions" if qa else "queries")
    ax.set_title(f"IoU histogram ({m.n} {'questions' if qa else 'queries'})", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / names[1])
    plt.close(fig)
    # R1@0.5 (QA: IoU@0.5 and IoP@0.5) by GT length bucket
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=80)
    labels = [f"{b['bucket']}\n{b['bounds']}\nn={b['n']}" for b in buckets]
    measures = _bucket_measures(buckets)
    width = 0.8 / max(len(measures), 1)
    for j, k in enumerate(measures):
        ax.bar([i + (j - (len(measures) - 1) / 2) * width for i in range(len(buckets))],
               [b[k] or 0.0 for b in buckets], width=width, color="#2ca02c" if j == 0 else "#9467bd", label=k)
    ax.set_xticks(range(len(buckets)), labels, fontsize=8)
    ax.set_ylabel(" / ".join(measures) + " (%)" if measures else "%")
    ax.set_ylim(0, 100)
    ax.set_title(f"{' and '.join(measures) or 'R1@0.5'} by GT length (terciles)", fontsize=10)
    if len(measures) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / names[2])
    plt.close(fig)
    return names


def _fmt_spans(spans: Any) -> str:
    try:
        return ", ".join(f"{float(s[0]):.1f}–{float(s[1]):.1f}" for s in spans)
    except (TypeError, ValueError, IndexError):
        return html.escape(str(spans))


def check_count(name: str, value: int | None, least: int = 0) -> None:
    """A count option (``bootstrap``, ``max_plots``, ``top``) below ``least`` is a :class:`ConfigurationError`:
    a negative one would silently mean no CIs, or cut a list from its end (``[:-1]``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise ConfigurationError(f"{name} must be a whole number >= {least}, got {value!r}")


def write_report(out: str | Path, *, bootstrap: int = 1000, max_plots: int | None = DEFAULT_TIMELINES,
                 plots: bool = True, all_timelines: bool = False, pages: bool = True) -> dict[str, Any]:
    """(Re)build the report files of a run folder; returns the metrics summary written to metrics.json.
    Without ``pages`` only metrics.json is written (see :func:`remove_pages` for the pages a run left).

    With ``plots`` it draws the :data:`SUMMARY_PLOTS` (a grounded-QA run: :data:`QA_SUMMARY_PLOTS`) and puts inline SVG timelines into ``index.html``
    for the ``max_plots`` worst queries (see :func:`worst_first`), or for every query with
    ``all_timelines`` (or ``max_plots=None``); timeline PNGs that reports made before the SVG timelines
    left in ``plots/`` are removed."""
    check_count("bootstrap", bootstrap)
    check_count("max_plots", max_plots)
    out = Path(out)
    if is_events_run(out):
        raise InputError("an `eval activitynet-events` run has no report pages (report.md, index.html) to rebuild: its "
                         "scores are its metrics.json, which the eval writes and `vidground report` prints "
                         "(events_report)", path=out)
    config, queries, results = run = load_run(out)
    metrics = run_metrics(out, bootstrap=bootstrap, run=run)
    totals = run_totals(out)
    missing = sorted(missing_videos(out))
    provenance = load_provenance(out)
    scored = {s.qid: s for s in metrics.per_query} if metrics else {}
    buckets = gt_length_buckets(queries, scored)
    curves: dict[str, Any] | None = None
    if _is_qa(metrics):  # NExT-GQA's measures of the top-1 span: R1@m is not one (an empty curve before)
        curves = qa_curves(metrics, queries, run_durations(out, results))  # type: ignore[arg-type]
        shapes = {"r1_curve": None, "r1_by_gt_length": None, "iou_iop_curve": curves, "iou_iop_by_gt_length": buckets}
    else:
        curve = run_metrics(out, bootstrap=0, thresholds=CURVE_THRESHOLDS, mean_ap=False, run=run) if metrics else None
        curves = ({"this run": {k: v for k, v in curve.values.items() if k.startswith("R1@")}}
                  | curve.baselines) if curve else None
        shapes = {"r1_curve": curves, "r1_by_gt_length": buckets}
    summary = {"config": config, "provenance": provenance, "selected": len(queries), "missing_videos": missing, **totals,
               "metrics": metrics.summary() if metrics else None, **shapes,
               "per_query": [s.model_dump(mode="json") for s in metrics.per_query] if metrics else []}
    with output_file(out / "metrics.json") as fh:  # a folder that cannot be written: an InputError naming the file
        fh.write(json.dumps(summary, indent=2) + "\n")
    if not pages:
        return summary
    order = worst_first(queries, results, scored)
    summary_plots: list[str] = []
    plotted: set[str] = set()
    if plots and metrics is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise MissingDependencyError("matplotlib", "eval", "summary plots") from None
        (out / "plots").mkdir(exist_ok=True)
        summary_plots = _summary_plots(out / "plots" / "summary", curves, metrics, buckets)
        limit = None if all_timelines else max_plots
        # the worst first: those a person looks at
        plotted = {q.qid for q in [q for q in order if q.qid in scored][:limit]}
        for old in _old_timelines(out, queries):  # timeline PNGs of reports made before timelines were SVG
            old.unlink()
    with output_file(out / "report.md") as fh:
        fh.write(_markdown(out, config, queries, results, metrics, totals, missing, summary_plots)
                 + "\n".join(["", "## Provenance", "", *provenance_lines(provenance), ""]))
    with output_file(out / "index.html") as fh:
        fh.write(_html(out, config, order, results, scored, plotted, metrics, provenance, summary_plots, buckets,
                       missing))
    return summary


def _old_timelines(out: Path, queries: Sequence[Query]) -> list[Path]:
    """The timeline PNGs that reports made before timelines were SVG left in ``plots/``: one per query of the run,
    named by its id; any other picture there is not vidground's and stays."""
    return [p for p in dict.fromkeys(out / "plots" / f"{_safe(q.qid)}.png" for q in queries) if p.is_file()]


def remove_pages(out: str | Path) -> list[Path]:
    """Remove the report pages a run folder holds (report.md, index.html, the :data:`SUMMARY_PLOTS` or :data:`QA_SUMMARY_PLOTS` and the old
    timeline PNGs of its queries): an invocation that writes none (``eval --no-report``) leaves no page describing an
    earlier state of the run. Only those names are removed (another file in ``plots/`` stays), and only in a run
    folder (``config.json``; ``eval`` refuses an ``--out`` that holds such names without being one). Returns what
    was removed."""
    out = Path(out)
    if not (out / "config.json").is_file():
        return []
    try:
        queries = load_run(out)[1]
    except VidgroundError:  # a damaged queries.jsonl: its timelines are not known, and stay
        queries = []
    found = [out / "report.md", out / "index.html", *_old_timelines(out, queries),
             *(out / "plots" / "summary" / name for name in _PLOT_CAPTIONS)]
    removed = [p for p in found if p.is_file()]
    for p in removed:
        p.unlink()
    for folder in (out / "plots" / "summary", out / "plots"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def _anchor(video: str) -> str:
    """The HTML id of ``video``'s transcript: one per video, as its file name is (``my video`` and ``my_video``
    shared one)."""
    return html.escape("v-" + transcript_name(video).removesuffix(".jsonl"))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def failed_results(queries: Sequence[Query], results: dict[str, dict[str, Any]]) -> list[tuple[Query, str]]:
    """Every query whose latest result failed, with its error as ``Type: message``, in query order."""
    out = []
    for q in queries:
        rec = results.get(q.qid)
        if rec is not None and rec.get("status") != "ok":
            err = rec.get("error") or {}
            out.append((q, f"{err.get('type', 'Error')}: {err.get('message', '')}".rstrip(": ")))
    return out


def _answer_line(q: Query, rec: dict[str, Any] | None) -> str:
    """A question's options as the report shows them (HTML): the one the run chose (``none`` for a failed query or an
    unreadable choice) and the right one."""
    esc = html.escape
    option = lambda i: f"{i}. {q.choices[i]}" if i is not None and 0 <= i < len(q.choices) else "none"  # noqa: E731
    chosen = predicted_choice(q, rec) if rec is not None and rec.get("status") == "ok" else None
    return f"<span class='answer'>chosen: <b>{esc(option(chosen))}</b> · right answer: <b>{esc(option(q.answer))}</b></span>"


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def frame_choice(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The settings of a run's ``config`` that choose which frames are described, those set only: the search's
    (``search.strategy``, ``search.budget``, ``search.budget_seconds``, ``search.keyframe_tolerance``...),
    ``skip_unchanged`` and ``motion``. A uniform run without them has none."""
    search = config.get("search")
    shown = [(f"search.{k}", v) for k, v in search.items()] if isinstance(search, dict) else []
    if config.get("skip_unchanged") is not None:
        shown.append(("skip_unchanged", config["skip_unchanged"]))
    if config.get("motion"):
        shown.append(("motion", config["motion"]))
    return shown


def _markdown(out: Path, config: dict[str, Any], queries: list[Query], results: dict[str, dict[str, Any]],
              m: Metrics | None, totals: dict[str, Any], missing: list[str], summary_plots: Sequence[str] = ()) -> str:
    scored = m.n if m else 0
    missing_videos = set(missing)
    skipped = sum(q.video in missing_videos for q in queries)
    lines = [f"# Evaluation: {out.name}", "",
             f"{config.get('dataset')} / {config.get('split') or 'default split'}: {len(queries)} queries selected"
             f" (limit={config.get('limit')}, seed={config.get('seed')}, subset={config.get('subset')}); "
             f"{scored} scored, {skipped} skipped "
             f"for {len(missing)} missing video(s); {totals['results']} results recorded.", ""]
    if m:
        lines += ["## Metrics (percent; 95% bootstrap CI in brackets)", "", metrics_table(m), "",
                  f"Convention: {m.convention}", "", baselines_text(m), ""]
        if m.failures:
            lines += ["Scored as IoU 0: " + ", ".join(f"{k} {v}" for k, v in m.failures.items()), ""]
        lines += ["## Prediction problems", "", "```", problems_text(m, results, queries, fixes=EVAL_FIXES, limit=50),
                  "```", ""]
    if summary_plots:
        lines += ["## Summary plots", ""] + [f"![{_PLOT_CAPTIONS[name]}](plots/summary/{name})" for name in summary_plots]
        lines += [""]
    failed = failed_results(queries, results)
    lines += ["## Failed queries", ""]
    if failed:
        lines += [f"{len(failed)} queries whose latest result is an error (each scored IoU 0); rerun them with "
                  "`vidground eval ... --retry-failed` once the cause is fixed.", "",
                  "| id | video | query | error |", "|---|---|---|---|"]
        lines += [f"| {_md_cell(q.qid)} | {_md_cell(q.video)} | {_md_cell(q.query)} | {_md_cell(err)} |"
                  for q, err in failed]
    else:
        lines += ["- none"]
    lines += ["", "## Configuration", ""]
    for k in ("mode", "describer", "reasoner", "fps", "num_frames", "max_frames", "max_side", "top_k", "clip_gt",
              "videos", "descriptions", "cache", "concurrency"):
        lines.append(f"- {k}: `{config.get(k)}`")
    lines += [f"- {k}: `{v}`" for k, v in frame_choice(config)]
    lines += ["", "## Cost", "",
              f"- describer calls made: {totals['describe_calls']}, saved by the cache: {totals['describe_saved']}",
              f"- cost: {format_cost(totals['cost_usd'], totals['requests'], totals['unpriced_requests'])} "
              f"(every attempt, as reported by the backends; {totals['requests']} answered requests, "
              f"{totals['failed_requests']} of them for query attempts that ended in an error)", "",
              "## Failures by type", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(totals["failures_by_type"].items())] or ["- none"]
    if missing:
        lines += ["", "## Missing videos", "", ", ".join(missing[:50]) + (" ..." if len(missing) > 50 else "")]
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px}td small{color:#666;white-space:nowrap}.q{margin:1em 0;padding:.5em;border-left:4px solid #2ca02c}
.q.miss{border-color:#d62728}.q.failed{border-color:#7f0000;background:#fff0f0}.verdict{font-weight:bold}
.q.miss .verdict,.q.failed .verdict{color:#d62728}.summary img{margin:0 .5em .5em 0}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;max-height:20em;overflow:auto}
svg.timeline{display:block;margin-top:.3em;max-width:100%;height:auto}.timeline text{font-size:10px;fill:#444}
.timeline .lab{text-anchor:end}.timeline .tick{text-anchor:middle;font-size:9px}.timeline .axis{stroke:#999}
.timeline .gt{fill:#2ca02c}.timeline .pred{fill:#1f77b4}.timeline .alt{opacity:.25}
.timeline .curve{fill:none;stroke:#ff7f0e;stroke-width:1.2}.legend{font-size:12px;color:#444}
.legend i{display:inline-block;width:1.2em;height:.7em;margin:0 .3em 0 .8em}"""


def _html(out: Path, config: dict[str, Any], order: list[Query], results: dict[str, dict[str, Any]],
          scored: dict[str, Any], plotted: set[str], m: Metrics | None, provenance: dict[str, Any] | None,
          summary_plots: Sequence[str] = (), buckets: Sequence[dict[str, Any]] = (),
          missing: Sequence[str] = ()) -> str:
    """The page: metrics with CIs and baselines, summary plots, provenance, the queries worst first
    (failures at the top; ``order`` from :func:`worst_first`), then the transcripts."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vidground · {esc(out.name)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(out.name)}</h1><p>{esc(str(config.get('dataset')))} · "
             + (f"describer {esc(str(config.get('describer')))}" if config.get("describer")
                else f"descriptions from {esc(str(config.get('descriptions')))}")
             + f" · reasoner {esc(str(config.get('reasoner')))}</p>"]
    if m:
        keys = _keys(m.values)
        parts.append("<h2>Metrics</h2><p>percent; 95% bootstrap CI in brackets"
                     + (f" ({m.bootstrap} resamples)" if m.ci else " (not computed: bootstrap 0)") + f"; {m.n} queries</p>")
        parts.append("<table id='metrics'><tr><th></th>" + "".join(f"<th>{esc(k)}</th>" for k in keys) + "</tr>")
        cells = []
        for k in keys:
            ci = m.ci.get(k)
            cells.append(f"<td>{m.values[k]:.2f}" + (f" <small class='ci'>[{ci[0]:.1f}, {ci[1]:.1f}]</small>" if ci else "")
                         + "</td>")
        parts.append("<tr><th>this run</th>" + "".join(cells) + "</tr>")
        for name, vals in m.baselines.items():
            parts.append(f"<tr><th>{esc(name)}</th>" + "".join(
                f"<td>{vals[k]:.2f}</td>" if k in vals else "<td>–</td>" for k in keys) + "</tr>")
        parts.append(f"</table><p><small>{esc(m.convention)}<br>{esc(baselines_text(m))}</small></p>")
    if summary_plots:
        parts.append("<h2>Summary</h2><div class='summary'>" + "".join(
            f"<img class='summary-plot' alt='{esc(_PLOT_CAPTIONS[name])}' src='plots/summary/{esc(name)}'>"
            for name in summary_plots) + "</div>")
    if buckets:
        parts.append("<p><small>GT length buckets: terciles of the scored queries' total GT length (seconds): "
                     + "; ".join(f"{esc(b['bucket'])} {esc(b['bounds'])}: " + ", ".join(
                         f"{esc('R1@0.5' if k == 'R1' else k)} " + ("–" if b[k] is None else f"{b[k]:.2f}")
                         for k in _bucket_measures(buckets)) + f" (n={b['n']})" for b in buckets)
                     + "</small></p>")
    parts.append("<details><summary>provenance</summary><ul>" + "".join(
        f"<li>{esc(line[2:])}</li>" for line in provenance_lines(provenance)) + "</ul></details>")
    n_failed = sum(q.qid in scored and _is_failed(results.get(q.qid), scored[q.qid]) for q in order)
    qa = _is_qa(m)
    if qa:
        parts.append(f"<h2>Questions, worst first</h2><p id='order-note'>{n_failed} failed (at the top), then the wrong "
                     "answers, then the right ones, each by the top-1 span's IoP from the lowest: Acc@GQA counts a "
                     "question whose answer is right and whose IoP &gt;= 0.5 (a <i>hit</i>). IoP and IoU shown rounded "
                     f"down to 3 decimals. Timelines drawn for {len(plotted)} of {len(scored)} scored questions")
    else:
        parts.append(f"<h2>Queries, worst first</h2><p id='order-note'>{n_failed} failed (at the top), then by top-1 "
                     f"IoU from the lowest; IoU shown rounded down to 3 decimals, hit when IoU &gt;= 0.5. Timelines "
                     f"drawn for {len(plotted)} of {len(scored)} scored queries")
    parts.append(("" if len(plotted) >= len(scored) else
                  f" (the worst; <code>vidground report {esc(str(out))} --all-timelines</code> draws every one)")
                 + "</p>")
    if plotted:
        parts.append("<p class='legend'>Timelines:<i style='background:#2ca02c'></i>ground truth"
                     "<i style='background:#1f77b4'></i>prediction (top 1; top 2-5 faint)"
                     "<i style='background:#ff7f0e;height:2px'></i>reasoner score (scaled to its range)</p>")
    missing_videos = set(missing)
    for q in order:
        rec = results.get(q.qid)
        s = scored.get(q.qid)
        failed = s is not None and _is_failed(rec, s)
        answer = ""
        if s is None:
            status, verdict = ("video missing: not scored" if q.video in missing_videos else "not scored"), ""
        elif rec is None:
            status, verdict = "no result", "failed"
        elif rec.get("status") != "ok":
            err = rec.get("error") or {}
            status, verdict = f"failed: {err.get('type')}: {err.get('message')}", "failed"
        elif qa and s.iop is not None:
            status = f"IoP {fmt_iou(s.iop)} · IoU {fmt_iou(s.iou)}" + (f" ({s.failure}: {s.detail})" if s.failure else "")
            verdict = ("failed" if s.failure else "wrong answer" if s.correct is False
                       else "answer not scored" if s.correct is None else "hit: right answer, IoP >= 0.5"
                       if s.iop >= 0.5 - TOLERANCE else "right answer, IoP < 0.5")
        else:
            hit = s.iou >= 0.5 - TOLERANCE
            status = f"IoU {fmt_iou(s.iou)}" + (f" ({s.failure}: {s.detail})" if s.failure else "")
            verdict = "failed" if s.failure else "hit" if hit else "miss"
        if q.is_question:
            answer = "<br>" + _answer_line(q, rec)
        cls = "q failed" if failed else "q" if verdict.startswith("hit") else "q miss"
        parts.append(f"<div class='{cls}' id='q-{esc(q.qid)}'><b>{esc(q.qid)}</b> "
                     f"<a href='#{_anchor(q.video)}'>{esc(q.video)}</a> · {esc(q.query)}{answer}<br>GT "
                     f"{_fmt_spans(q.windows)} · predicted {_fmt_spans((rec or {}).get('intervals') or [])} · "
                     f"{esc(status)}" + (f" · <span class='verdict'>{esc(verdict)}</span>" if verdict else ""))
        if q.qid in plotted:
            parts.append("<br>" + _timeline_svg(q, rec, status))
        parts.append("</div>")
    parts.append("<h2>Transcripts</h2>")
    for video in dict.fromkeys(q.video for q in order):
        rows = read_transcript(out, video)
        if rows is not None:
            text = "\n".join(f"[{r['t']:.1f}] {r['text']}" for r in rows)
            parts.append(f"<details id='{_anchor(video)}'><summary>{esc(video)} transcript</summary>"
                         f"<pre>{esc(text)}</pre></details>")
        else:
            parts.append(f"<p id='{_anchor(video)}'>{esc(video)}: no transcript</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


#: What a comparison of two runs compares: the backends and where their inputs came from.
_COMPARED = ("describer", "reasoner", "describer_options", "reasoner_options", "backends", "mode", "videos",
             "descriptions")
#: What may differ without making a comparison suspect: when and where it ran, paths, parallelism, the
#: selection (only common queries are compared), the baseline (not compared).
_INCIDENTAL = ("date", "command", "invocations", "annotation_paths", "platform", "cache", "concurrency",
               "query_concurrency", "data_root", "dataset_path", "allow_missing", "limit", "seed", "subset",
               "baseline_prior")


def run_differences(a: str | Path, b: str | Path) -> dict[str, Any]:
    """How two runs differ: ``compared`` (backends and their inputs), ``other`` (everything else that
    matters: dataset, split, annotations' SHA-256, sampling, versions, commit, packages, prompts), and
    ``warnings`` in words for the latter and for a run without provenance."""
    from .provenance import differences

    configs = [read_run_json(Path(run) / "config.json") for run in (a, b)]
    records, warnings = [], []
    for label, run, config in (("A", a, configs[0]), ("B", b, configs[1])):
        provenance = load_provenance(run)
        if provenance is None:
            warnings.append(f"run {label} ({run}) has no provenance.json (made before vidground recorded provenance): "
                            "its versions, commit and annotations cannot be checked")
        records.append(config | (provenance or {}))
    if warnings:  # compare only what both recorded
        records = [{k: v for k, v in r.items() if k in configs[0].keys() & configs[1].keys()} for r in records]
    diff = differences(records[0], records[1])
    incidental = set(_INCIDENTAL)
    if all(r.get("mode") == "descriptions" for r in records):  # stage 2 only: frame sampling played no part
        incidental |= {"fps", "num_frames", "max_frames", "max_side"}
    top = lambda key: key.split(".", 1)[0]  # noqa: E731
    compared = {k: v for k, v in diff.items() if top(k) in _COMPARED}
    other = {k: v for k, v in diff.items() if top(k) not in _COMPARED and top(k) not in incidental}
    if other:
        shown = "; ".join(f"{k}: {_short(va)} vs {_short(vb)}" for k, (va, vb) in list(other.items())[:8])
        warnings.append(f"the runs differ in more than what is compared: {shown}"
                        + (f" (and {len(other) - 8} more)" if len(other) > 8 else ""))
    return {"compared": compared, "other": other, "warnings": warnings}


def _short(value: Any, limit: int = 50) -> str:
    text = _compact(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_spend(folder: str | Path) -> dict[str, Any]:
    """What a run spent: ``describe_calls`` (describer calls made), ``describe_saved`` (frames from the description
    cache) and ``cost`` (in words, :func:`format_cost`), summed over the folder's records (:func:`run_totals`), so an
    eval stopped by a Ctrl-C, which writes no metrics.json, counts what it paid; where the records carry no usage
    (a folder from before vidground counted it) as its metrics.json recorded them, each ``None`` where not recorded
    (no metrics.json, or one damaged: the comparison does not need it)."""
    try:
        m = read_run_json(Path(folder) / "metrics.json", {})
    except InputError:
        m = {}
    try:
        totals = run_totals(folder)
    except (InputError, OSError):
        totals = {}
    if totals.get("requests") or totals.get("describe_calls") or totals.get("describe_saved"):
        m = {**m, **{k: totals[k] for k in ("describe_calls", "describe_saved", "cost_usd", "requests",
                                            "unpriced_requests")}}

    def count(key: str) -> int | None:
        v = m.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    cost = m.get("cost_usd")
    requests, unpriced = count("requests"), count("unpriced_requests")
    known = isinstance(cost, (int, float)) and not isinstance(cost, bool) and requests is not None
    return {"describe_calls": count("describe_calls"), "describe_saved": count("describe_saved"),
            "cost": format_cost(float(cost), requests, unpriced or 0) if known else None}  # type: ignore[arg-type]


_SPEND_ROWS = (("describe_calls", "describer calls made"), ("describe_saved", "frames from the cache"), ("cost", "cost"))


def compare_runs(a: str | Path, b: str | Path, *, top: int = 20) -> dict[str, Any]:
    """Two runs side by side on their common queries: metrics, per-query IoU differences, and how the
    runs differ besides (see :func:`run_differences`)."""
    check_count("top", top)
    events = [is_events_run(Path(run)) for run in (a, b)]
    if all(events):
        return compare_events(a, b)
    if any(events):
        kinds = ["an `eval activitynet-events` run" if e else "a grounding or QA run" for e in events]
        raise InputError(f"run A ({a}) is {kinds[0]} and run B ({b}) {kinds[1]}: they share no metric to compare")
    ca, qa, ra = load_run(a)
    cb, qb, rb = load_run(b)
    missing_a, missing_b = missing_videos(Path(a)), missing_videos(Path(b))  # each missing.json read once, not per query
    qa, qb = [q for q in qa if q.video not in missing_a], [q for q in qb if q.video not in missing_b]
    qids_b = {x.qid for x in qb}
    common = [q for q in qa if q.qid in qids_b]
    if not common:
        raise InputError(f"runs {a} and {b} share no queries")

    def pred(r: dict[str, Any] | None) -> Any:
        return None if r is None else (r if r.get("status") == "ok" else {"error": True})

    def metrics(results: dict[str, dict[str, Any]], mean_ap: bool | None = None) -> Metrics:
        predictions = {q.qid: pred(results.get(q.qid)) for q in common}
        if all(q.is_question for q in common):  # grounded-QA runs: their own metrics
            return compute_qa_metrics(predictions, common, bootstrap=0, baselines=False)
        return compute_metrics(predictions, common, bootstrap=0, clip_gt=ca.get("clip_gt", False), mean_ap=mean_ap)

    ma, mb = metrics(ra), metrics(rb)
    if ("mAP" in ma.values) != ("mAP" in mb.values):  # one run ranks several intervals: mAP for both
        ma, mb = metrics(ra, True), metrics(rb, True)
    rows, fixed, broken = [], 0, 0
    for q in common:
        ia = score_query(q, pred(ra.get(q.qid))).iou
        ib = score_query(q, pred(rb.get(q.qid))).iou
        fixed += reaches(ib, 0.5) and not reaches(ia, 0.5)  # on the unrounded IoUs, as the metrics count hits
        broken += reaches(ia, 0.5) and not reaches(ib, 0.5)
        rows.append({"qid": q.qid, "video": q.video, "query": q.query, "iou_a": round(ia, 4), "iou_b": round(ib, 4),
                     "delta": round(ib - ia, 4)})
    rows.sort(key=lambda r: -abs(r["delta"]))
    differences = run_differences(a, b)
    for label, run, results in (("A", a, ra), ("B", b, rb)):  # a run killed early, or not yet resumed (U21: an empty
        if unrun := sum(q.qid not in results for q in common):  # results.jsonl compared as 0.00, said nowhere)
            differences.setdefault("warnings", []).append(
                f"run {label} ({run}) has no result for {unrun} of the {len(common)} common queries (not run yet: "
                "resume it with its eval command): they count as misses here")
    return {"a": str(a), "b": str(b), "common": len(common), "only_a": len(qa) - len(common),
            "only_b": len(qb) - len(common), "metrics_a": ma.values, "metrics_b": mb.values,
            "b_better": sum(r["delta"] > 1e-9 for r in rows), "a_better": sum(r["delta"] < -1e-9 for r in rows),
            "fixed_at_0.5": fixed, "broken_at_0.5": broken,
            "largest_changes": [r for r in rows if abs(r["delta"]) > 1e-9][:top],
            "config_a": {k: ca.get(k) for k in ("describer", "reasoner", "fps", "mode")},
            "config_b": {k: cb.get(k) for k in ("describer", "reasoner", "fps", "mode")},
            "spend_a": run_spend(a), "spend_b": run_spend(b), "differences": differences}


def format_compare(c: dict[str, Any]) -> str:
    if c.get("kind") == "events":
        return format_events_compare(c)
    keys = _keys(c["metrics_a"] | c["metrics_b"])
    diff = c.get("differences") or {}
    lines = [f"A: {c['a']}  {c['config_a']}", f"B: {c['b']}  {c['config_b']}"]
    if compared := diff.get("compared"):
        lines.append("compared: " + "; ".join(f"{k}: {_short(va)} vs {_short(vb)}" for k, (va, vb) in
                                              list(compared.items())[:4])
                     + (f" (and {len(compared) - 4} more)" if len(compared) > 4 else ""))
    lines += [f"warning: {w}" for w in diff.get("warnings", [])]
    lines += [f"{c['common']} common queries (only in A: {c['only_a']}, only in B: {c['only_b']})", "",
             f"{'metric':<8} {'A':>8} {'B':>8} {'B-A':>8}"]
    for k in keys:
        va, vb = c["metrics_a"].get(k, float("nan")), c["metrics_b"].get(k, float("nan"))
        lines.append(f"{k:<8} {va:>8.2f} {vb:>8.2f} {vb - va:>+8.2f}")
    if "spend_a" in c:  # what each run spent, over all its queries (not only the common ones)
        lines += ["", f"{'spent (each run, all its queries)':<34} {'A':>10} {'B':>10} {'B-A':>8}"]
        for key, label in _SPEND_ROWS:
            sa, sb = c["spend_a"].get(key), c["spend_b"].get(key)
            delta = f"{sb - sa:>+8d}" if isinstance(sa, int) and isinstance(sb, int) else ""
            lines.append(f"{label:<34} {'unknown' if sa is None else sa:>10} {'unknown' if sb is None else sb:>10} "
                         f"{delta}".rstrip())
    lines += ["", f"B better on {c['b_better']} queries, A better on {c['a_better']}; at IoU 0.5 B fixes "
                  f"{c['fixed_at_0.5']} and breaks {c['broken_at_0.5']}.", ""]
    if c["largest_changes"]:
        lines.append("largest per-query changes (IoU A -> B):")
        for r in c["largest_changes"]:
            lines.append(f"  {r['qid']:>10}  {r['iou_a']:.2f} -> {r['iou_b']:.2f}  {r['video']}: {r['query'][:60]}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ dense-captioning (events) runs

def is_events_run(folder: str | Path) -> bool:
    """Whether ``folder`` holds an ``eval activitynet-events`` run (:mod:`pipelines.events_eval`): its
    ``config.json`` and ``events.jsonl`` (or a ``metrics.json`` of that dataset), and no ``queries.jsonl``."""
    from .events_eval import NAME

    folder = Path(folder)
    if not (folder / "config.json").is_file() or (folder / "queries.jsonl").exists():
        return False
    if (folder / "events.jsonl").is_file():
        return True
    return (read_run_json(folder / "metrics.json", {}) or {}).get("dataset") == NAME


def _events_metrics(folder: Path) -> dict[str, Any]:
    """An events run's ``metrics.json``; an :class:`InputError` when the run has not been scored yet."""
    metrics = read_run_json(folder / "metrics.json")
    if not metrics or not isinstance(metrics.get("localisation"), dict):
        raise InputError("an `eval activitynet-events` run with no scores yet (no metrics.json): run the same eval "
                         "command again to finish and score it (videos already done are not run again)", path=folder)
    return metrics


def events_report(folder: str | Path) -> str | None:
    """What ``vidground report`` prints for an ``eval activitynet-events`` run folder (``None`` for any other
    folder): such a run has no pages to rebuild, so its recorded scores (``metrics.json``, as the eval printed
    them) and where they come from."""
    from .events_eval import format_metrics

    folder = Path(folder)
    if not is_events_run(folder):
        return None
    metrics = _events_metrics(folder)
    return (f"{folder} is an `eval activitynet-events` run: it has no report pages (report.md, index.html); its "
            f"scores, as {folder / 'metrics.json'} records them:\n\n{format_metrics(metrics)}\n\nTo score it again "
            "(other references, a new video), run the same `vidground eval activitynet-events ... --out "
            f"{folder}` command: videos already done are not run again. `vidground compare` compares two such runs.")


def _events_values(metrics: dict[str, Any]) -> dict[str, float]:
    """An events run's scores as one flat mapping: localisation precision, recall and F1 at each tIoU and their
    means, the captions' metrics where they were scored, and the events per video."""
    loc = metrics["localisation"]
    values = {k: float(v) for k, v in loc.items() if k != "videos" and isinstance(v, (int, float))}
    values |= {k: float(v) for k, v in (metrics.get("captions") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(metrics.get("events_per_video"), (int, float)):
        values["events/video"] = float(metrics["events_per_video"])
    return values


def compare_events(a: str | Path, b: str | Path) -> dict[str, Any]:
    """Two ``eval activitynet-events`` runs side by side: their recorded scores (each over its own videos), the
    videos they share, and how their settings and references differ (warnings when the scores are over other
    videos or other references, which makes the difference in scores not the settings' alone)."""
    from .provenance import differences

    runs = [Path(a), Path(b)]
    metrics = [_events_metrics(r) for r in runs]
    videos = [{str(rec["video"]) for rec in read_jsonl(r / "events.jsonl", "video")} for r in runs]
    configs = [read_run_json(r / "config.json", {}) for r in runs]
    compared = differences(configs[0], configs[1])
    warnings = []
    if videos[0] != videos[1]:
        warnings.append(f"the runs scored other videos ({len(videos[0] & videos[1])} in both, "
                        f"{len(videos[0] - videos[1])} only in A, {len(videos[1] - videos[0])} only in B): each "
                        "score is over its own run's videos")
    refs = [{p: r.get("sha256") for p, r in (m.get("references") or {}).items()} for m in metrics]
    if sorted(refs[0].values()) != sorted(refs[1].values()):
        warnings.append("the runs were scored against other reference files (sha256): "
                        + "; ".join(f"{label}: {', '.join(Path(p).name for p in r) or 'none'}"
                                    for label, r in zip("AB", refs)))
    values = [_events_values(m) for m in metrics]
    return {"kind": "events", "a": str(a), "b": str(b), "videos_a": len(videos[0]), "videos_b": len(videos[1]),
            "common_videos": len(videos[0] & videos[1]), "metrics_a": values[0], "metrics_b": values[1],
            "differences": {"compared": compared, "other": {}, "warnings": warnings}}


def format_events_compare(c: dict[str, Any]) -> str:
    """:func:`compare_events` as ``vidground compare`` prints it."""
    diff = c["differences"]
    videos = lambda n: f"{n} video" + ("" if n == 1 else "s")  # noqa: E731
    lines = [f"A: {c['a']}  (eval activitynet-events, {videos(c['videos_a'])})",
             f"B: {c['b']}  (eval activitynet-events, {videos(c['videos_b'])})"]
    if diff["compared"]:
        lines.append("settings: " + "; ".join(f"{k}: {_short(va)} vs {_short(vb)}" for k, (va, vb) in
                                              list(diff["compared"].items())[:6])
                     + (f" (and {len(diff['compared']) - 6} more)" if len(diff["compared"]) > 6 else ""))
    else:
        lines.append("settings: the same")
    lines += [f"warning: {w}" for w in diff["warnings"]]
    lines += ["", f"{'metric':<14} {'A':>8} {'B':>8} {'B-A':>8}"]
    for k in dict.fromkeys([*c["metrics_a"], *c["metrics_b"]]):
        va, vb = c["metrics_a"].get(k, float("nan")), c["metrics_b"].get(k, float("nan"))
        lines.append(f"{k:<14} {va:>8.2f} {vb:>8.2f} {vb - va:>+8.2f}")
    return "\n".join(lines)
