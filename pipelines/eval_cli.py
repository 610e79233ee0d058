"""The evaluation subcommands: ``eval``, ``score``, ``report`` and ``compare``.

``pipelines.cli`` calls :func:`register` on its subparsers; each handler returns an exit code
and raises :class:`~vidground.errors.VidgroundError` subclasses for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError

from .datasets import DATASETS, check_dataset_name


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); the value is read as JSON when it parses (numbers, true/false, null,
    lists), else kept as text: ``batch_size=8``, ``device=cuda``, ``detail=low``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a Python identifier as KEY, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_frame_limits(group: Any) -> None:
    """--num-frames, --max-frames and --max-side, as every command that samples a video takes them."""
    group.add_argument("--num-frames", type=int, default=None, metavar="N",
                       help="sample N evenly spaced frames instead of a fixed rate")
    group.add_argument("--max-frames", type=int, default=None, metavar="N",
                       help="cap on frames per video; the rate is lowered to fit (default: no cap)")
    group.add_argument("--max-side", type=int, default=512, metavar="PX",
                       help="frames are resized so their longest side is at most PX pixels (default 512)")


def add_caption_format_args(p: Any, flag: str = "--descriptions-format") -> None:
    """``FLAG`` (the format of a descriptions file) and ``--clip-seconds``, on a parser or an argument group."""
    from frame_describer.caption_formats import FORMAT_CHOICES

    p.add_argument(flag, dest="descriptions_format", default="auto", choices=FORMAT_CHOICES,
                   help="the file's format: vidground JSONL or another tool's captions (default auto: detected "
                        "from each file's content)")
    p.add_argument("--clip-seconds", type=float, default=None, metavar="L",
                   help="clip length of vtggpt captions (default 2) or interval of seconds-json captions (default 1)")


def add_remote_args(p: argparse.ArgumentParser) -> None:
    """--base-url and --api-key, for the openai: backends of every command that runs models."""
    g = p.add_argument_group("remote backends (openai:MODEL)")
    g.add_argument("--base-url", default=None, metavar="URL",
                   help="an OpenAI-compatible server (vLLM, Ollama, llama.cpp...) for the openai: describer and "
                        "reasoner; a stage's own --describer-opt/--reasoner-opt base_url= wins over it (e.g. a vision "
                        "server for frames, this one for the reasoner); default $OPENAI_BASE_URL or OpenAI")
    g.add_argument("--api-key", default=None, metavar="KEY",
                   help="API key for the openai: backends (a stage's own api_key= option wins over it); default "
                        "$OPENAI_API_KEY; never written to results, run folders or logs")


def with_remote(opts: dict[str, Any], spec: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """A stage's backend options with --base-url and --api-key added for an openai: backend, where the stage's own
    options (--describer-opt/--reasoner-opt base_url=, api_key=) do not set them: the more specific setting wins (a
    vision server for the describer, a text server for the reasoner given by --base-url)."""
    if (spec or "").split(":", 1)[0].strip().lower() != "openai":
        return opts
    given = {key: getattr(args, key, None) for key in ("base_url", "api_key")}
    return {**{key: value for key, value in given.items() if value}, **opts}


def _dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="dataset split (charades-sta: test|train; default: the first listed)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="annotation folder (default $VIDGROUND_DATA, else ../shared/data next to the repository)")
    p.add_argument("--dataset-file", default=None, metavar="FILE",
                   help="the queries file for the 'jsonl' dataset: one JSON object a line, with \"video\" (the video "
                        "id: its file name without the extension), \"query\" (the text), \"windows\" ([[start, end], "
                        "...] in seconds; or \"timestamp\": [start, end] for one), and optionally \"qid\" (default: "
                        "its place among the queries, from 0) and \"duration\" (seconds). QVHighlights/Moment-DETR lines "
                        "(\"vid\", \"relevant_windows\") read too")
    p.add_argument("--clip-gt", action="store_true",
                   help="clip GT windows to the video duration (default: as annotated; the report states which)")


def register(subparsers: Any) -> None:
    """Add ``eval``, ``score``, ``report`` and ``compare`` to an argparse subparsers object."""

    names = ", ".join(DATASETS)
    e = subparsers.add_parser("eval", help="evaluate a describer/reasoner pair on a dataset (resumable)",
                              description="Run both stages on --videos DIR, or stage 2 on --descriptions DIR, for "
                                          "each selected query; results are appended to OUT/results.jsonl as they "
                                          "finish, so a killed run resumes where it stopped.")
    e.add_argument("dataset", metavar="DATASET", help=f"one of: {names}; or activitynet-events (dense events, "
                                                      "scored against --references)")
    _dataset_args(e)
    src = e.add_argument_group("inputs (give one)")
    src.add_argument("--videos", default=None, metavar="DIR", help="folder of videos named by video id (any common extension)")
    src.add_argument("--descriptions", default=None, metavar="DIR",
                     help="folder of VIDEO_ID.jsonl descriptions, or other tools' captions (VIDEO_ID.jsonl, "
                          "VIDEO_ID_cap.json, VIDEO_ID.csv, VIDEO_ID.srt, VIDEO_ID.vtt) (stage 2 only)")
    add_caption_format_args(src)
    sel = e.add_argument_group("selection")
    sel.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate N queries, chosen reproducibly by --seed")
    sel.add_argument("--seed", type=int, default=0, help="subset seed (default 0)")
    sel.add_argument("--subset", default=None, metavar="FILE", help="a file of query ids, one a line")
    m = e.add_argument_group("backends")
    m.add_argument("--describer", default=None, metavar="SPEC", help="cv (default), openai:MODEL, hf:MODEL, replay:CAPTIONS_FILE")
    m.add_argument("--reasoner", default=None, metavar="SPEC", help="embedding (default), vtggpt, naive, openai:MODEL, hf:MODEL, llamacpp:PATH")
    m.add_argument("--describer-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="a describer option (repeatable); part of the run's settings")
    m.add_argument("--reasoner-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="a reasoner option (repeatable), e.g. spans=peaks or rephrasings=FILE; part of the run's settings")
    m.add_argument("--time-style", default=None, metavar="STYLE",
                   help="a chat reasoner's time style: seconds (default), mmss, frames[:FPS] or tokens[:M] (relative "
                        "time tokens, M=300); the same as --reasoner-opt time_style=STYLE, part of the run's settings")
    m.add_argument("--motion", action="store_true",
                   help="append what moved since the previous sample (optical flow) to each description (--videos "
                        "only); part of the run's settings")
    from .search import add_search_arguments

    add_search_arguments(m, only="--videos only", run_setting=True)
    m.add_argument("--fps", type=float, default=None, help="frames sampled per second (default 1)")
    add_frame_limits(m)
    m.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="intervals kept of each answer (default 10: QVHighlights' mAP ranks up to 10, as moment_detr's "
                        "standalone_eval; R1 and mIoU use the first, R5 the first 5; a resumed run keeps the K it "
                        "started with); a K below 10 lowers mAP and is warned about")
    add_remote_args(e)
    r = e.add_argument_group("run")
    r.add_argument("--out", required=True, metavar="DIR", help="run folder, e.g. runs/NAME (resumed if it exists)")
    r.add_argument("--retry-failed", action="store_true", help="re-run only the queries whose last result failed")
    r.add_argument("--executor", default="local", choices=("local", "ray"), help="local threads (default) or a Ray cluster")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    r.add_argument("--concurrency", type=int, default=2, metavar="N", help="videos in parallel (local executor; default 2)")
    r.add_argument("--query-concurrency", type=int, default=1, metavar="N", help="queries of one video in parallel")
    c = r.add_mutually_exclusive_group()  # both given: an error, as for ground/describe (it used none)
    c.add_argument("--cache", default=None, metavar="FILE",
                   help="description cache (default $VIDGROUND_CACHE, else ~/.cache/vidground/descriptions.sqlite for "
                        "vidground's own describers; a plug-in describer is cached only in a cache you name), "
                        "keyed by video content, frame time and describer settings (for openai: base URL, model "
                        "name, prompt): a server swapped behind the same URL and model name needs --no-cache or "
                        "another FILE")
    c.add_argument("--no-cache", action="store_true",
                   help="do not read or write the description cache (e.g. after swapping the model a local server "
                        "serves under the same name, or editing a video in place)")
    r.add_argument("--no-report", action="store_true",
                   help="write metrics.json only: no report.md, plots or index.html, and those an earlier invocation "
                        "of this run left are removed (they would describe the run as it was then); `vidground "
                        "report OUT` builds them later")
    r.add_argument("--all-timelines", action="store_true",
                   help="draw a timeline plot for every query (default: the 50 worst, beside the summary plots)")
    r.add_argument("--allow-missing", action="store_true",
                   help="run on the inputs found even when more than half of the selected videos have none "
                        "(by default that is an error: it is usually the wrong --split or folder)")
    r.add_argument("--strict", action="store_true",
                   help="exit with an error (1) after the run when any query failed, has no result, was skipped for "
                        "a missing input, or gave an unparseable, reversed or out-of-range prediction")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    ev = e.add_argument_group("activitynet-events (dense events)")
    ev.add_argument("--references", action="append", default=[], metavar="FILE",
                    help="an ActivityNet-Captions reference file, repeatable (val_2 is read from the data folder; "
                         "val_1 is not bundled: pass its path)")
    ev.add_argument("--events-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the events path (e.g. window_seconds=8, max_events=10), repeatable")
    e.set_defaults(func=cmd_eval)

    s = subparsers.add_parser("score", help="score a predictions file against a dataset (no model needed)",
                              description='Score PRED.jsonl, whose lines are {"video", "query", "intervals": [[s, e, score?], ...]} '
                                          'or {"qid", "pred_relevant_windows"}, against the dataset\'s queries; or '
                                          'NExT-GQA\'s results file, one JSON object keyed by VIDEO_QID whose values '
                                          'are the span [s, e] or {"location": [s, e], "prediction": i}.')
    s.add_argument("predictions", metavar="PRED.jsonl")
    s.add_argument("--dataset", required=True, help=f"one of: {names}")
    _dataset_args(s)
    cover = s.add_mutually_exclusive_group()
    cover.add_argument("--predicted-only", action="store_true",
                       help="score only the queries the file predicts (the table says so); by default every query "
                            "of the split is in the denominator and an unpredicted one is a miss (IoU 0, a wrong "
                            "answer), as published figures count them, with a warning saying how many")
    cover.add_argument("--all-queries", action="store_true",
                       help="every query of the split in the denominator: the default (kept for older commands)")
    s.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for the 95%% CI (0: none; default 1000)")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--strict", action="store_true",
                   help="exit with an error (1) when any query of the split has no prediction (with "
                        "--predicted-only too) or any row is unparseable, reversed, out of range, duplicated or "
                        "matches no query (by default they are reported and scored by the convention)")
    s.set_defaults(func=cmd_score)

    rp = subparsers.add_parser("report", help="rebuild a run's metrics.json, report.md, plots and index.html")
    rp.add_argument("run", metavar="RUN_DIR")
    rp.add_argument("--max-plots", type=int, default=50, metavar="N",
                    help="timeline plots for the N worst queries, failures first (default 50)")
    rp.add_argument("--all-timelines", action="store_true", help="draw a timeline plot for every query")
    rp.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                    help="bootstrap resamples for the 95%% CI (0: none; default 1000)")
    rp.set_defaults(func=cmd_report)

    c = subparsers.add_parser("compare", help="show two runs side by side with per-query differences")
    c.add_argument("run_a", metavar="RUN_A")
    c.add_argument("run_b", metavar="RUN_B")
    c.add_argument("--top", type=int, default=20, metavar="N", help="list the N largest per-query changes (default 20)")
    c.add_argument("--json", action="store_true", help="print machine-readable JSON")
    c.set_defaults(func=cmd_compare)


def _print_metrics_table(m: Any, label: str) -> None:
    from .metrics import baselines_text
    from .report import metrics_table

    print(metrics_table(m, label))
    print(f"\n{m.convention}")
    if m.baseline_notes:
        print(baselines_text(m))


def _strict(problems: dict[str, int], what: str, path: Any, rows: int) -> None:
    """--strict: any problem row is an :class:`EvaluationError` naming the counts; ``rows`` is how many rows have a
    problem (a row can have two kinds)."""
    from vidground.errors import EvaluationError

    problems = {k: v for k, v in problems.items() if v}
    if problems:
        counts = ", ".join(f"{k} {v}" for k, v in problems.items())
        raise EvaluationError(f"--strict: {rows} {what} with problems ({counts}); "
                              "the lines above show examples and the fix", path=path, counts=problems)


# the eval options that are query-grounding settings: activitynet-events has no queries, splits or report
_NOT_FOR_EVENTS: dict[str, Any] = {
    "--strategy": lambda a: a.strategy != "uniform", "--budget": lambda a: a.budget is not None,
    "--budget-seconds": lambda a: a.budget_seconds is not None,
    "--keyframe-tolerance": lambda a: a.keyframe_tolerance is not None,
    "--skip-unchanged": lambda a: a.skip_unchanged is not None, "--top-k": lambda a: a.top_k is not None,
    "--strict": lambda a: a.strict, "--subset": lambda a: a.subset is not None,
    "--executor": lambda a: a.executor != "local", "--address": lambda a: a.address is not None,
    "--split": lambda a: a.split is not None, "--dataset-file": lambda a: a.dataset_file is not None,
    "--clip-gt": lambda a: a.clip_gt, "--retry-failed": lambda a: a.retry_failed,
    "--concurrency": lambda a: a.concurrency != 2, "--query-concurrency": lambda a: a.query_concurrency != 1,
    "--no-report": lambda a: a.no_report, "--all-timelines": lambda a: a.all_timelines,
}


def _fps(args: argparse.Namespace) -> float | None:
    """--fps, else 1 frame a second unless --num-frames samples by count (both given: the sampling says which
    to drop)."""
    return args.fps if args.fps is not None else None if args.num_frames is not None else 1.0


def _eval_events(args: argparse.Namespace) -> int:
    """``eval activitynet-events``: dense events of each reference video, scored (:mod:`pipelines.events_eval`)."""
    from .events_eval import format_metrics, reference_paths, run_events_eval

    metrics = run_events_eval(
        args.out, references=reference_paths(args.data_root, args.references), videos=args.videos,
        descriptions=args.descriptions, descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds,
        describer=args.describer, reasoner=args.reasoner, describer_options=_describer_options(args) or None,
        reasoner_options=_reasoner_options(args) or None, events_options=dict(args.events_opt),
        sampling=dict(fps=_fps(args), num_frames=args.num_frames,
                      max_frames=args.max_frames, max_side=args.max_side),
        limit=args.limit, seed=args.seed, cache=False if args.no_cache else args.cache, progress=not args.quiet,
        allow_missing=args.allow_missing)
    print(format_metrics(metrics))
    print(f"{Path(args.out) / 'events.jsonl'}  ·  {Path(args.out) / 'metrics.json'}")
    if metrics["no_result"] is not None:  # as cmd_eval's: nothing came of the run, for one cause
        from .runs import no_result_error

        raise no_result_error(metrics["no_result"], ran=len(metrics["failed"]), what=("video", "videos"),
                              out=Path(args.out), advise_retry_failed=False)
    return 0


def with_time_style(opts: dict[str, Any], style: str | None, reasoner: str | None = None) -> dict[str, Any]:
    """Reasoner options with ``--time-style STYLE`` checked and added as ``time_style`` (given once); a
    ``reasoner`` (spec, default the default reasoner) that reads no times is a :class:`ConfigurationError` that
    says which reasoners the flag is for."""
    if style:
        from temporal_reasoner import DEFAULT_REASONER, reasoners
        from temporal_reasoner.timestyles import TimeFormat
        from vidground.registry import _accepted, split_spec

        parsed = TimeFormat.parse(style).spec  # a bad style is named first, whatever the reasoner
        if "time_style" in opts:
            raise ConfigurationError("give the time style once: --time-style or --reasoner-opt time_style=, not both")
        spec = reasoner or DEFAULT_REASONER
        accepted = _accepted(reasoners.target(split_spec(spec)[0], spec=spec))
        if accepted is not None and "time_style" not in accepted:
            raise ConfigurationError(f"--time-style applies to the chat reasoners (openai:, hf:, llamacpp:); reasoner "
                                     f"{split_spec(spec)[0]!r} reads no times in a prompt: drop --time-style or give "
                                     "--reasoner openai:MODEL, hf:MODEL or llamacpp:MODEL.gguf")
        opts = {**opts, "time_style": parsed}
    return opts


def _reasoner_options(args: argparse.Namespace) -> dict[str, Any]:
    """--reasoner-opt, with --time-style checked and added as ``time_style``, and --base-url/--api-key
    (:func:`with_remote`)."""
    return with_remote(with_time_style(dict(args.reasoner_opt), args.time_style, args.reasoner), args.reasoner, args)


def _describer_options(args: argparse.Namespace) -> dict[str, Any]:
    """--describer-opt, and --base-url/--api-key (:func:`with_remote`)."""
    return with_remote(dict(args.describer_opt), args.describer, args)


def warn_few_intervals(dataset: str, top_k: int, source: str) -> None:
    """Say on stderr that mAP ranks fewer intervals than the standard when ``top_k`` is below it (a grounded-QA
    dataset has no mAP)."""
    from .metrics import MAP_MAX_PREDICTIONS

    if top_k < MAP_MAX_PREDICTIONS and dataset != "nextgqa":
        print(f"warning: top_k {top_k} ({source}): mAP, where reported, is computed on at most {top_k} intervals per "
              f"query, fewer than the {MAP_MAX_PREDICTIONS} of the standard (moment_detr's standalone_eval), so it is "
              "lower than published mAP figures; "
              + ("R1, mIoU and R5 are unaffected" if top_k >= 5 else f"R1 and mIoU are unaffected, R5 looks at {top_k}")
              + f" (--top-k {MAP_MAX_PREDICTIONS} is the standard)", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from .executors import make_executor
    from .runs import TOP_K_NOT_GIVEN, RunConfig, RunFolderLock, resolve_top_k, run_eval
    from .search import search_options

    if args.top_k is not None and "top_k" in dict(args.reasoner_opt or []):  # as ground refuses it (RV-Q)
        raise ConfigurationError(f"--top-k {args.top_k} and --reasoner-opt top_k={dict(args.reasoner_opt)['top_k']} "
                                 "both say how many intervals to keep: give one (--top-k)")
    if args.dataset == "activitynet-events":
        if args.motion:
            raise ConfigurationError("--motion is not available for activitynet-events yet")
        ignored = [flag for flag, given in _NOT_FOR_EVENTS.items() if given(args)]
        if ignored:  # silently ignored, they would make a user believe the run used them
            raise ConfigurationError(f"{', '.join(ignored)}: not available for activitynet-events (it finds every "
                                     "event of each video, uniformly sampled, on this machine)")
        return _eval_events(args)
    check_dataset_name(args.dataset)
    events_only = [flag for flag, given in (("--references", args.references), ("--events-opt", args.events_opt)) if given]
    if events_only:  # silently ignored, they would make a user believe the run used them
        raise ConfigurationError(f"{', '.join(events_only)}: only for activitynet-events (dense events), not "
                                 f"{args.dataset}")
    config = RunConfig(dataset=args.dataset, split=args.split, dataset_path=args.dataset_file, data_root=args.data_root,
                       videos=args.videos, descriptions=args.descriptions,
                       descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds,
                       describer=args.describer,
                       reasoner=args.reasoner, fps=_fps(args), num_frames=args.num_frames, max_frames=args.max_frames,
                       max_side=args.max_side, top_k=TOP_K_NOT_GIVEN if args.top_k is None else args.top_k,
                       limit=args.limit, seed=args.seed, subset=args.subset,
                       clip_gt=args.clip_gt, cache="" if args.no_cache else args.cache, concurrency=args.concurrency,
                       query_concurrency=args.query_concurrency, reasoner_options=_reasoner_options(args),
                       describer_options=_describer_options(args), allow_missing=args.allow_missing,
                       motion=args.motion, search=search_options(args), skip_unchanged=args.skip_unchanged)
    config.check()
    top_k, top_k_source = resolve_top_k(config, args.out)  # run_eval does too: the warning comes before the run
    if top_k is not None:
        warn_few_intervals(args.dataset, top_k, top_k_source)
    executor = make_executor(args.executor, concurrency=args.concurrency, address=args.address)
    # one hold of the run folder for the run and its report: given back between the two, another eval could begin
    # there and rewrite results.jsonl and config.json while this one's report read them and wrote beside them
    with RunFolderLock(Path(args.out)) as lock:
        summary = run_eval(config, args.out, retry_failed=args.retry_failed, executor=executor,
                           progress=not args.quiet and sys.stderr.isatty(), argv=getattr(args, "argv", None),
                           lock=lock)
        return _eval_output(args, summary)


def _eval_output(args: argparse.Namespace, summary: Any) -> int:
    """What ``vidground eval`` says and writes after the run (its report), the run folder still locked; an
    :class:`~vidground.errors.EvaluationError` when nothing came of the run, or with ``--strict``."""
    from .report import remove_pages, write_report

    if summary.missing_videos:
        shown = ", ".join(summary.missing_videos[:10]) + (" ..." if len(summary.missing_videos) > 10 else "")
        print(f"missing {len(summary.missing_videos)} video(s), their queries skipped: {shown}", file=sys.stderr)
    skipped = f" ({len(summary.dropped)} skipped on load: see the warning)" if summary.dropped else ""
    if summary.dropped and summary.loaded is not None and summary.loaded != summary.selected:
        # the skipped annotations are the whole file's: --limit/--subset chose among the queries it gave
        skipped = f" of the file's {summary.loaded} (its {len(summary.dropped)} other annotation(s) skipped on load: " \
                  "see the warning)"
    print(f"{summary.out}: {summary.selected} queries selected{skipped}, {summary.already_done} already done, "
          f"{summary.ran} run now ({summary.failed} failed) in {summary.seconds:.1f} s")
    print(f"describer calls: {summary.describe_calls_now} made, {summary.describe_saved_now} saved by the cache "
          "(this invocation)" + ("" if (summary.describe_calls, summary.describe_saved) ==
                                 (summary.describe_calls_now, summary.describe_saved_now) else
                                 f"; run folder total, every invocation: {summary.describe_calls} made, "
                                 f"{summary.describe_saved} saved")
          + f"; cost {summary.cost_text} (the run folder's total)"
          + (f" ({summary.failed_requests} of the {summary.requests} answered requests were for query attempts that "
             "ended in an error)" if summary.failed_requests else ""))
    if summary.metrics is not None:
        from .report import EVAL_FIXES, problems_text
        from .runs import load_run

        _print_metrics_table(summary.metrics, "this run")
        _, queries, results = load_run(summary.out)
        print("\n" + problems_text(summary.metrics, results, queries, fixes=EVAL_FIXES))
    if not args.no_report:
        write_report(summary.out, all_timelines=args.all_timelines)
        print(f"report: {Path(summary.out) / 'report.md'}  ·  {Path(summary.out) / 'index.html'}")
    else:
        write_report(summary.out, pages=False)
        removed = remove_pages(summary.out)
        print(f"metrics: {Path(summary.out) / 'metrics.json'} (--no-report: no pages"
              + (f"; removed the {len(removed)} page and plot file(s) an earlier invocation left, which described "
                 "the run as it was then" if removed else "")
              + f"; `vidground report {summary.out}` builds them)")
    if summary.same_error is not None:  # nothing came of the run, for one cause: not a success, even without --strict
        from .runs import no_result_error

        raise no_result_error(summary.same_error, ran=summary.ran, what=("query", "queries"), out=summary.out,
                              advise_retry_failed=not args.retry_failed)
    if args.strict:
        m = summary.metrics
        _strict((m.problems if m is not None else {}) | {"videos without input": len(summary.missing_videos)},
                "queries or videos", summary.out, (m.problem_rows if m is not None else 0) + len(summary.missing_videos))
    return 0


def _latest_of_a_run(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run's own ``results.jsonl`` (a ``config.json`` beside it): the last record of each query, as the run, its
    report and compare read it (a resume that found a query's inputs changed ran it again and left the old record,
    superseded; score took the first: U21 scored 76.47 where the run said 70.59). Any other file as it is."""
    if path.name != "results.jsonl" or not (path.parent / "config.json").is_file():
        return records
    last: dict[Any, int] = {}
    for i, r in enumerate(records):
        if r.get("qid") is not None:
            last[str(r["qid"])] = i
    kept = [r for i, r in enumerate(records) if r.get("qid") is None or last[str(r["qid"])] == i]
    if len(kept) < len(records):
        print(f"note: {path} is a run's results: the last result of each query counts, as the run's report reads "
              f"it ({len(records) - len(kept)} superseded result(s) left out)", file=sys.stderr)
    return kept


def cmd_score(args: argparse.Namespace) -> int:
    from .baselines import dataset_prior
    from .datasets import load_dataset
    from .metrics import (NO_ANSWER, compute_metrics, compute_qa_metrics, fractions_note, match_predictions,
                          read_predictions, unpredicted_text)
    from .provenance import collect, sha256_file
    from .report import check_count, problems_text, provenance_lines

    check_count("--bootstrap", args.bootstrap)
    ds = load_dataset(args.dataset, args.split, args.data_root, path=args.dataset_file)
    records = read_predictions(args.predictions)
    records = _latest_of_a_run(Path(args.predictions), records)
    fractions = fractions_note(records)
    if fractions:
        print(f"warning: {fractions}", file=sys.stderr)
    match = match_predictions(records, ds.queries)
    if not match.predictions:
        raise ConfigurationError(match.nothing_matched(f"{ds.name}/{ds.split}"))
    predicted_only = args.predicted_only
    queries = [q for q in ds.queries if q.qid in match.predictions] if predicted_only else ds.queries
    unpredicted = len(ds) - len(match.predictions)
    partly = match.partly_matched(f"{ds.name}/{ds.split}")
    if partly:
        print(f"warning: {partly}", file=sys.stderr)
    if unpredicted:
        print(f"warning: {unpredicted_text(unpredicted, len(ds), f'{ds.name}/{ds.split}', predicted_only)}",
              file=sys.stderr)
    video_of = {q.qid: q.video for q in queries}
    durations = {video_of[qid]: float(r["duration"]) for qid, r in match.predictions.items()  # what the rows say
                 if qid in video_of and isinstance(r.get("duration"), (int, float)) and r["duration"] > 0}
    if all(q.is_question for q in queries):  # grounded QA (nextgqa): rows carry "choice" or "answer" too
        m = compute_qa_metrics(match.predictions, queries, bootstrap=args.bootstrap, durations=durations)
    else:
        m = compute_metrics(match.predictions, queries, clip_gt=args.clip_gt, bootstrap=args.bootstrap,
                            prior=dataset_prior(ds.name, ds.split, args.data_root), durations=durations)
    if predicted_only and unpredicted:  # the convention line under the table says the denominator too
        m.convention += (f" Here --predicted-only: the {unpredicted} queries without a prediction are left out of the "
                         "denominator, so the figures are not comparable with published ones.")
    coverage = f"{len(match.predictions)} of {len(ds)} {ds.name}/{ds.split} queries predicted"
    record = collect(argv=getattr(args, "argv", None), files=ds.source)
    record["predictions"] = {Path(args.predictions).name: sha256_file(args.predictions)}
    if args.json:
        line = lambda qid: (match.predictions.get(qid) or {}).get("_line")  # noqa: E731
        problems = [{"qid": x.qid, "line": line(x.qid), "kind": x.failure or x.warning, "detail": x.detail}
                    for x in m.per_query if x.failure or x.warning]
        problems += [{"qid": x.qid, "line": line(x.qid), "kind": NO_ANSWER, "detail": x.answer_problem}
                     for x in m.per_query if x.answer_problem]
        print(json.dumps({"dataset": ds.name, "split": ds.split, "scored": len(queries), "dataset_queries": len(ds),
                          "predicted": len(match.predictions), "unmatched": [
                              {k: v for k, v in r.items() if k != "intervals"} for r in match.unmatched],
                          "duplicates": match.duplicates, "foreign": match.foreign, "loose": match.loose, "warnings": [w for w in (partly, fractions) if w],
                          "predicted_only": predicted_only, "all_queries": not predicted_only,
                          "unpredicted": unpredicted,
                          "metrics": m.summary(), "problems": problems, "provenance": record}, indent=2))
    else:
        print(f"{coverage}; scored on {len(queries)} "
              + ("(--predicted-only: the predicted ones alone, not comparable with published figures)"
                 if predicted_only else "(every query; " + (f"the {unpredicted} unpredicted ones as misses)"
                                                            if unpredicted else "all predicted)")))
        _print_metrics_table(m, Path(args.predictions).name + (
            f" (predicted only: {len(queries)} of {len(ds)})" if predicted_only and unpredicted else ""))
        print("\n" + problems_text(m, match.predictions, queries))
        if match.unmatched:
            print(f"\n{len(match.unmatched)} prediction(s) match no query:")
            for r in match.unmatched[:20]:
                print(f"  key {r['_key']!r}: no annotated question has it" if "_key" in r else
                      f"  line {r.get('_line')}: video={r.get('video')!r} query={r.get('query')!r} qid={r.get('qid')!r}")
        if match.duplicates:
            print(f"{match.duplicates} duplicate prediction(s) ignored (the first one for a query counts)")
        print("\nprovenance:\n" + "\n".join(provenance_lines(record)))
    if args.strict:  # an unpredicted query is a problem even when --predicted-only left it out of the table
        missing = {"missing": unpredicted} if predicted_only else {}
        _strict(missing | m.problems | {"unmatched": len(match.unmatched), "duplicate": match.duplicates},
                "prediction rows" + (" or unpredicted queries" if unpredicted else ""), args.predictions,
                m.problem_rows + (unpredicted if predicted_only else 0) + len(match.unmatched) + match.duplicates)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import events_report, metrics_table, provenance_lines, write_report

    events = events_report(args.run)  # an events run has no pages: its recorded scores
    if events is not None:
        print(events)
        return 0
    summary = write_report(args.run, bootstrap=args.bootstrap, max_plots=args.max_plots, all_timelines=args.all_timelines)
    run = Path(args.run)
    if summary["metrics"]:
        from .metrics import Metrics, baselines_text

        m = Metrics.model_validate(summary["metrics"])
        print(metrics_table(m, run.name))
        print(baselines_text(m))
    print("\nprovenance:\n" + "\n".join(provenance_lines(summary["provenance"])))
    print(f"\nwrote {run / 'metrics.json'}, {run / 'report.md'}, {run / 'index.html'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .report import compare_runs, format_compare

    c = compare_runs(args.run_a, args.run_b, top=args.top)
    print(json.dumps(c, indent=2) if args.json else format_compare(c))
    return 0
