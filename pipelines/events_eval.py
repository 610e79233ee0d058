"""``vidground eval activitynet-events``: dense events on ActivityNet-Captions, for users with its videos or
their descriptions, scored by the field's localisation metrics (:func:`pipelines.event_metrics.densevid_localisation`:
precision / recall / F1 at tIoU 0.3 / 0.5 / 0.7 / 0.9, best over the reference sets).

References: ``val_2`` is read from the data folder (``activitynet-captions/val_2.json``). ``val_1`` is not
bundled: no package registry reachable here ships it (it comes with the dataset's own download, e.g.
ranjaykrishna/densevid_eval's ``data/val_1.json``), so users pass it with ``--references PATH``; every
reference file's sha256 is recorded in the run's ``metrics.json`` so two runs can be told apart.

Videos are scored when they have an input (a video or a descriptions file); those without one are counted
in ``missing_inputs`` and left out of the averages (the official script would count them as 0 on both).

The run folder holds ``config.json`` (the settings that change a video's events: a resume with other settings
is refused, as ``vidground eval`` does), ``events.jsonl`` (one line per video, appended as each finishes, so a
killed run resumes where it stopped: a torn last line is ignored, a damaged line moved to ``events.jsonl.corrupt``
and its video run again) and ``metrics.json`` (those settings included), with the captions' METEOR, CIDEr and BLEU-4 when the optional
``captions`` extra and a Java runtime are installed (else ``metrics.json`` says why they were not scored).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError, EvaluationError, InputError, VidgroundError
from vidground.files import output_file
from vidground.types import Usage

from .event_metrics import CAPTION_METRICS, TIOUS, densevid_localisation

NAME = "activitynet-events"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_references(path: str | Path) -> dict[str, dict[str, Any]]:
    """An ActivityNet-Captions annotation file, ``{video: {"duration", "timestamps": [[s, e], ...],
    "sentences": [...]}}``, checked: an :class:`InputError` names the file and the video that is malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("reference file not found", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a JSON file: {exc}", path=path) from None
    if not isinstance(data, dict) or not data:
        raise InputError("expected a JSON object of videos, {video: {duration, timestamps, sentences}}", path=path)
    out: dict[str, dict[str, Any]] = {}
    for video, rec in data.items():
        stamps = rec.get("timestamps") if isinstance(rec, dict) else None
        if not isinstance(stamps, list) or not all(isinstance(s, list) and len(s) == 2 and
                                                   all(isinstance(x, (int, float)) for x in s) for s in stamps):
            raise InputError(f"video {video}: 'timestamps' must be a list of [start, end] pairs", path=path)
        sentences = rec.get("sentences", [])
        if len(sentences) != len(stamps):
            raise InputError(f"video {video}: {len(stamps)} timestamps but {len(sentences)} sentences", path=path)
        out[video] = {"duration": rec.get("duration"), "timestamps": [[float(a), float(b)] for a, b in stamps],
                      "sentences": [str(s).strip() for s in sentences]}
    return out


def reference_paths(data_root: str | Path | None, extra: Sequence[str | Path]) -> list[Path]:
    """``val_2`` from the data folder (when it is there) and every ``--references`` file, each once."""
    from .datasets import data_root as find_root

    paths: list[Path] = []
    try:
        default = find_root(data_root) / "activitynet-captions" / "val_2.json"
        if default.is_file():
            paths.append(default)
    except ConfigurationError:
        if not extra:
            raise
    for p in extra:
        if Path(p).resolve() not in {q.resolve() for q in paths}:
            paths.append(Path(p))
    if not paths:
        raise ConfigurationError("no reference file: put activitynet-captions/val_2.json in the data folder or pass "
                                 "--references PATH (val_1.json, val_2.json)")
    return paths


def _done(out: Path) -> dict[str, dict[str, Any]]:
    """The videos already in ``events.jsonl``: a line torn by a kill is ignored (and cut before the next
    append), a damaged one moved aside to ``events.jsonl.corrupt`` so its video runs again."""
    from .runs import read_jsonl, repair_lines

    path = out / "events.jsonl"
    repair_lines(path, "video")
    return {row["video"]: row for row in read_jsonl(path, "video")}


# what changes a video's events: a resume must match on each (limit, seed and the references only choose
# and score videos, so they may change between runs)
_MUST_MATCH = ("mode", "describer", "reasoner", "describer_options", "reasoner_options", "sampling",
               "events_options", "descriptions_format", "clip_seconds")


def _run_config(videos: Any, describer: Any, reasoner: Any, describer_options: dict[str, Any] | None,
                reasoner_options: dict[str, Any] | None, sampling: dict[str, Any] | None,
                events_options: dict[str, Any] | None, descriptions_format: str,
                clip_seconds: float | None) -> dict[str, Any]:
    """The run's settings as ``config.json`` and ``metrics.json`` record them: the default backends named,
    secrets redacted, the sampling only where frames are sampled (videos)."""
    from frame_describer import DEFAULT_DESCRIBER
    from temporal_reasoner import DEFAULT_REASONER

    from .provenance import redact

    def name(spec: Any, default: str) -> str:
        return spec if isinstance(spec, str) else default if spec is None else type(spec).__name__

    on_videos = videos is not None
    reasoner_options = _canonical_time_style(reasoner_options)
    return redact({"mode": "videos" if on_videos else "descriptions",
                   "describer": name(describer, DEFAULT_DESCRIBER) if on_videos else None,
                   "reasoner": name(reasoner, DEFAULT_REASONER),
                   "describer_options": dict(describer_options or {}) if on_videos else {},
                   "reasoner_options": dict(reasoner_options or {}),
                   "sampling": dict(sampling or {}) if on_videos else None,
                   "events_options": dict(events_options or {}),
                   "descriptions_format": None if on_videos else descriptions_format,
                   "clip_seconds": None if on_videos else clip_seconds})


def _canonical_time_style(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` with a ``time_style`` written as its one canonical spec (``tokens`` -> ``tokens:300``, what
    ``--time-style tokens`` records), so the flag and ``--reasoner-opt time_style=`` resume each other's runs;
    one that is not a valid style is left as given (the reasoner names it)."""
    from temporal_reasoner.timestyles import TimeFormat

    options = dict(options or {})
    if isinstance(options.get("time_style"), str):
        try:
            options["time_style"] = TimeFormat.parse(options["time_style"]).spec
        except ConfigurationError:
            pass
    return options


def _check_resume(out: Path, config: dict[str, Any]) -> None:
    """A run folder holding events found with other settings is a :class:`ConfigurationError` naming each
    difference: mixing them would score two methods as one."""
    from .runs import read_run_json

    old = read_run_json(out / "config.json")  # a damaged one (not JSON, not an object) is an InputError naming it
    if old is None:
        return
    new = json.loads(json.dumps(config))  # compared as written (tuples as lists)
    if isinstance(old.get("reasoner_options"), dict):  # a run recorded before the style was written canonically
        old = {**old, "reasoner_options": _canonical_time_style(old["reasoner_options"])}
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in _MUST_MATCH if old.get(k) != new.get(k)]
    if diff:
        raise ConfigurationError(f"{out} holds an events run with other settings ({'; '.join(diff)}); "
                                 "use another --out or the same settings to resume")


def run_events_eval(out: str | Path, *, references: Sequence[str | Path], videos: str | Path | None = None,
                    descriptions: str | Path | None = None, descriptions_format: str = "auto",
                    clip_seconds: float | None = None, describer: Any = None, reasoner: Any = None,
                    describer_options: dict[str, Any] | None = None, reasoner_options: dict[str, Any] | None = None,
                    sampling: dict[str, Any] | None = None, events_options: dict[str, Any] | None = None,
                    limit: int | None = None, seed: int = 0, cache: Any = None, progress: bool = False,
                    allow_missing: bool = False) -> dict[str, Any]:
    """Find the events of every reference video that has an input (a video in ``videos`` or a descriptions
    file in ``descriptions``), appending each to ``OUT/events.jsonl`` (a video already there is not run
    again), then score all of them; returns and writes ``OUT/metrics.json``.
    The run folder is locked for the run, as an eval's (:class:`pipelines.runs.RunFolderLock`): another run on it
    meanwhile is a :class:`pipelines.runs.RunFolderBusyError` before it writes anything."""
    options = dict(locals())  # the arguments, as given
    from .runs import RunFolderLock

    lock = RunFolderLock(Path(out))
    try:
        return _run_events_eval(lock, **options)
    finally:
        lock.release()


def _run_events_eval(lock: Any, out: str | Path, *, references: Sequence[str | Path], videos: str | Path | None,
                     descriptions: str | Path | None, descriptions_format: str, clip_seconds: float | None,
                     describer: Any, reasoner: Any, describer_options: dict[str, Any] | None,
                     reasoner_options: dict[str, Any] | None, sampling: dict[str, Any] | None,
                     events_options: dict[str, Any] | None, limit: int | None, seed: int, cache: Any, progress: bool,
                     allow_missing: bool) -> dict[str, Any]:
    from .backends import check_backends
    from .datasets import find_videos
    from .runs import ResultSink, check_descriptions, check_out_folder, find_descriptions, no_result_cause
    from .session import Session

    check_out_folder(Path(out))
    config = _run_config(videos, describer, reasoner, describer_options, reasoner_options, sampling,
                         events_options, descriptions_format, clip_seconds)
    if (Path(out) / "config.json").is_file():  # a run to resume: locked before its files are read
        lock.acquire()
    _check_resume(Path(out), config)
    # a bad option value is one error now, not a failure of each video (after its frames were paid for)
    from frame_describer import DEFAULT_DESCRIBER

    check_backends((describer or DEFAULT_DESCRIBER) if videos is not None else None, describer_options,
                   reasoner, reasoner_options)
    if cache is None and videos is not None:
        # as a grounding eval's (pipelines.runs): a default cache that cannot be used is an error before the run
        # starts, not a warning (a session's), since an eval's reruns and resumes count on it
        from .session import eval_cache

        cache = eval_cache(describer, describer_options) or False  # a plug-in describer: none, as a session's

    if (videos is None) == (descriptions is None):
        raise ConfigurationError("give one input: --videos DIR or --descriptions DIR")
    if descriptions is not None and (describer is not None or describer_options):
        raise ConfigurationError("--describer has no effect with --descriptions (the events are found in the "
                                 "descriptions given); drop one")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(f"--limit must be a whole number >= 1, got {limit!r}")
    refs = {str(p): load_references(p) for p in references}
    ids = sorted(set().union(*refs.values()))
    every = len(ids)
    if limit is not None and limit < every:
        ids = sorted(random.Random(seed).sample(ids, limit))
    if videos is not None:
        found, missing = find_videos(ids, videos)
    else:  # v_X.jsonl or X.jsonl; both for one video are refused, naming both (one_file_per_video)
        found, missing = find_descriptions(ids, descriptions, out, v_prefix=True)
        # before anything is written: two files swapped by name, --clip-seconds over files that carry their times
        check_descriptions(found, clip_seconds, descriptions_format)
    where = videos if videos is not None else descriptions
    if not found:  # --allow-missing cannot help: say what was looked for, and that --limit chose before looking
        chosen = (f"; --limit {limit} chose them among all {every} reference videos before inputs were looked for: "
                  "drop --limit to run on every video that has one") if len(ids) < every else ""
        raise InputError(f"none of the {len(ids)} selected videos has an input in {where} (files named by the video "
                         f"id, e.g. {ids[0]}{'.mp4' if videos is not None else '.jsonl'}){chosen}")
    if len(missing) > len(ids) / 2 and not allow_missing:
        raise InputError(f"{len(missing)} of {len(ids)} selected videos have no input in "
                         f"{videos if videos is not None else descriptions} (use --allow-missing to run on the "
                         f"{len(found)} found)")
    out = Path(out)
    lock.make_folder(lambda: _check_resume(out, config))
    with output_file(out / "config.json") as fh:
        fh.write(json.dumps(config, indent=1) + "\n")
    done = _done(out)
    todo = [v for v in found if v not in done]
    failed: dict[str, str] = {}
    errors: set[tuple[str, str]] = set()  # the errors of the videos this invocation ran that failed
    failed_usage = Usage()
    started = time.perf_counter()
    with Session(describer=describer if videos is not None else None, reasoner=reasoner, sampling=sampling,
                 cache=cache, progress=progress, describer_options=describer_options,
                 reasoner_options=reasoner_options) as session, ResultSink(out / "events.jsonl", "video") as sink:
        if todo and videos is not None:  # a wrong events option fails before a video is described
            from temporal_reasoner.events import events_path

            events_path(session.reasoner, events_options)
        for i, vid in enumerate(todo):
            duration = next((r[vid]["duration"] for r in refs.values() if vid in r and r[vid]["duration"]), None)
            described = None
            try:
                if videos is not None:  # described first, so a failed video's describing is counted too
                    described = session.describe(found[vid])
                    result = session.events(described, **(events_options or {}))
                else:
                    result = session.events(descriptions=found[vid], descriptions_format=descriptions_format,
                                            clip_seconds=clip_seconds, duration=duration, **(events_options or {}))
            except ConfigurationError:
                raise  # a wrong option is wrong for every video
            except VidgroundError as exc:
                failed[vid] = str(exc)
                errors.add((type(exc).__name__, str(exc)))
                if isinstance(getattr(exc, "usage", None), Usage):  # paid for, though no events came of it
                    failed_usage = failed_usage + exc.usage
                if described is not None:  # the frames described for it were paid for too
                    failed_usage = failed_usage + described.usage
                print(f"{vid}: {exc}", file=sys.stderr)
                continue
            row = {"video": vid, "events": [e.model_dump() for e in result.events], "reasoner": result.reasoner,
                   "describer": result.describer, "duration": result.duration,
                   "usage": {k: u.model_dump() for k, u in _with_describe(result.usage, described).items()},
                   "warnings": result.warnings}
            sink.append(row)
            done[vid] = row
            if progress:
                print(f"[{i + 1}/{len(todo)}] {vid}: {len(result.events)} events", file=sys.stderr)
    predictions = {v: [[e["start"], e["end"]] for e in sorted(row["events"], key=lambda e: -(e.get("score") or 0))]
                   for v, row in done.items() if v in found}
    # a reference set holding none of the scored videos (val_2 in the data folder, --references over
    # other videos) has nothing to score: it is left out, and named in metrics.json
    scored = {p: s for p, s in ((p, {v: r[v]["timestamps"] for v in found if v in r}) for p, r in refs.items()) if s}
    if not scored:
        raise EvaluationError("no scored video has a reference")
    metrics = {"dataset": NAME, "videos": len(found), "missing_inputs": len(missing), "failed": failed,
               "config": config,
               "references": {p: {"sha256": sha256(Path(p)), "videos": len(r), "scored_videos": len(scored.get(p, {}))}
                              for p, r in refs.items()},
               "references_without_scored_videos": [p for p in refs if p not in scored],
               "tious": list(TIOUS), "localisation": densevid_localisation(predictions, list(scored.values())),
               "per_reference": {Path(p).name: densevid_localisation(predictions, [r]) for p, r in scored.items()},
               "events_per_video": round(sum(len(r["events"]) for v, r in done.items() if v in found)
                                         / max(1, len(predictions)), 3),
               "usage": _usage(done, found),
               "failed_usage_this_run": failed_usage.model_dump(),
               "captions": _captions(done, found, refs),
               "seconds": round(time.perf_counter() - started, 2),
               # every video this invocation ran failed with one error, and none has events (vidground eval's rule)
               "no_result": no_result_cause(errors, ran=len(todo), failed=len(failed), any_ok=bool(predictions))}
    metrics["comparability"] = comparability(list(scored), reference_videos=every, scored_videos=len(found),
                                             missing=len(missing), limit=limit if len(ids) < every else None)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return metrics


def _with_describe(usage: dict[str, Usage], described: Any) -> dict[str, Usage]:
    """A video's row usage: its events' and, when this run described the video, that describe's (the events of
    describe()'s output do not repeat what describing it cost)."""
    if described is None or described.usage.is_empty():
        return dict(usage)
    return {"describe": described.usage, **usage}


def _usage(done: dict[str, dict[str, Any]], found: dict[str, Any]) -> dict[str, Any]:
    """What the scored videos' events cost, per stage (``describe``, ``reason``) and in total, from their rows
    (a resumed run counts the rows of earlier runs too)."""
    stages: dict[str, Usage] = {}
    for vid, row in done.items():
        if vid in found:
            for stage, u in (row.get("usage") or {}).items():
                stages[stage] = stages.get(stage, Usage()) + Usage.model_validate(u)
    return {**{k: u.model_dump() for k, u in stages.items()}, "total": sum(stages.values(), Usage()).model_dump()}


def _captions(done: dict[str, dict[str, Any]], found: dict[str, Any], refs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """METEOR, CIDEr and BLEU-4 of the events' captions (:func:`~pipelines.event_metrics.densevid_captions`),
    or why they were not scored (the optional ``captions`` extra or Java missing)."""
    from . import event_metrics

    try:
        scorers = event_metrics.caption_scorers()
    except ConfigurationError as exc:  # the extra or Java missing
        return {"not_scored": str(exc)}
    predictions = {v: [(e["start"], e["end"], e["caption"]) for e in sorted(row["events"], key=lambda e: -(e.get("score") or 0))]
                   for v, row in done.items() if v in found}
    references = [ref for ref in ({v: r[v] for v in found if v in r} for r in refs.values()) if ref]
    try:
        return event_metrics.densevid_captions(predictions, references, scorers=scorers)
    finally:  # a Ctrl-C while scoring must not leave METEOR's process and lock for its __del__ to hang on
        event_metrics.close_scorers(scorers)


#: The reference files published ActivityNet-Captions dense-captioning figures take the best of (densevid_eval's
#: default ``-r data/val_1.json data/val_2.json``).
PUBLISHED_REFERENCES = ("val_1", "val_2")


def comparability(scored_references: Sequence[str], *, reference_videos: int, scored_videos: int, missing: int,
                  limit: int | None) -> dict[str, Any]:
    """Whether a run's figures compare with published ones, and why not: those are densevid_eval's over every video
    of val_1 and val_2 (the best of the two per video; a video without a prediction scores 0 there), so a run that
    scored other references (val_2 alone: val_1 is not bundled) or fewer videos (no input, ``--limit``) is not.
    ``scored_references`` are the reference files that held a scored video; ``reference_videos`` how many videos
    all the references given hold."""
    names = [Path(p).stem for p in scored_references]
    reasons = []
    lacking = [n for n in PUBLISHED_REFERENCES if n not in names]
    if lacking or len(names) != len(PUBLISHED_REFERENCES):
        reasons.append(f"scored against {' and '.join(names)}, not the best of val_1 and val_2"
                       + (" (val_1 is not bundled: --references PATH/val_1.json)" if "val_1" in lacking else ""))
    if scored_videos < reference_videos:
        why = [f"--limit {limit} chose {limit}" if limit is not None else "",
               f"{missing} without input left out (densevid_eval scores them 0)" if missing else ""]
        reasons.append(f"{scored_videos} of the {reference_videos} reference videos scored"
                       + (f" ({'; '.join(w for w in why if w)})" if any(why) else ""))
    return {"references": names, "scored_videos": scored_videos, "reference_videos": reference_videos,
            "comparable": not reasons, "reasons": reasons}


def comparability_text(comp: dict[str, Any]) -> str:
    """The line the command and ``vidground report`` print on :func:`comparability`'s verdict."""
    if comp["comparable"]:
        return (f"comparable with published figures: all {comp['reference_videos']} reference videos scored, the best "
                "of val_1 and val_2 per video (densevid_eval's setting)")
    return ("NOT comparable with published figures (densevid_eval: every video of val_1 and val_2, the best of the two, "
            "0 without a prediction): " + "; ".join(comp["reasons"]))


def format_metrics(metrics: dict[str, Any]) -> str:
    """The localisation table as the command prints it."""
    from .runs import format_cost, format_tokens

    loc = metrics["localisation"]
    lines = [f"{NAME}: {metrics['videos']} videos ({metrics['missing_inputs']} without input, "
             f"{len(metrics['failed'])} failed), {metrics['events_per_video']} events per video",
             f"{'tIoU':>6} {'precision':>10} {'recall':>8} {'F1':>8}"]
    for t in metrics["tious"]:
        lines.append(f"{t:>6g} {loc[f'precision@{t:g}']:>10.2f} {loc[f'recall@{t:g}']:>8.2f} {loc[f'f1@{t:g}']:>8.2f}")
    lines.append(f"{'mean':>6} {loc['precision']:>10.2f} {loc['recall']:>8.2f} {loc['f1']:>8.2f}")
    caps = metrics.get("captions") or {}
    if "not_scored" in caps:
        lines.append(f"captions not scored: {caps['not_scored']}")
    elif caps:
        lines.append("captions (mean over tIoUs): " + ", ".join(f"{k} {caps[k]:.2f}" for k in CAPTION_METRICS if k in caps))
    stages = {k: u for k, u in (metrics.get("usage") or {}).items() if k != "total"}  # a server's no counts: per stage
    for what, u, parts in (("usage", (metrics.get("usage") or {}).get("total"), list(stages.values())),
                           ("paid for failed videos (this run)", metrics.get("failed_usage_this_run"), [])):
        if u and u.get("requests"):
            usage = Usage.model_validate(u)
            cost = f", est. {format_cost(usage.cost_usd or 0.0, usage.requests, usage.unpriced_requests)}"
            tokens = format_tokens([Usage.model_validate(p) for p in parts] or [usage])
            lines.append(f"{what}: {u['requests']} requests, {tokens}{cost}")
    if metrics.get("comparability"):  # an older run's metrics.json has none
        lines.append(comparability_text(metrics["comparability"]))
    lines += [f"reference {p}: sha256 {r['sha256']}" for p, r in metrics["references"].items()]
    lines += [f"reference {p}: none of the scored videos, left out" for p in metrics.get("references_without_scored_videos", [])]
    return "\n".join(lines)


__all__ = ["NAME", "PUBLISHED_REFERENCES", "comparability", "comparability_text", "format_metrics", "load_references",
           "reference_paths", "run_events_eval", "sha256"]
