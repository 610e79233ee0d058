"""The ``vidground`` command line.

    vidground ground VIDEO "QUERY" [--json]
    vidground ground --descriptions FILE "QUERY"
    vidground ground VIDEO -q "QUERY 1" -q "QUERY 2" [--queries FILE]   (describes once, loads models once)
    vidground ask (VIDEO | --descriptions FILE) "QUESTION" [--choice A --choice B ...]
    vidground events (VIDEO | --descriptions FILE) [--events-opt KEY=VALUE]
    vidground describe VIDEO -o FILE
    vidground import-captions CAPTIONS... -o DIR
    vidground export-tuning-data --videos DIR --cache FILE --describer NAME --out DIR
    vidground demo

Exit codes: 0 success; 1 a vidground error (one line on stderr, a traceback only with --debug);
2 bad command-line usage; 130 interrupted (Ctrl-C), 143 stopped by SIGTERM (as a first Ctrl-C stops).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vidground import interrupts  # the Ctrl-C state: imported here, not in the handler (the import lock)
from vidground.errors import ConfigurationError, InputError, NoCacheFolderError, VideoDecodeError, VidgroundError
from vidground.files import check_readable, printable

from .eval_cli import (add_caption_format_args, add_frame_limits, add_remote_args, parse_option, register,
                       with_remote, with_time_style)

log = logging.getLogger("vidground")


def _backend_options(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """Options for a stage's backend: --describer-opt / --reasoner-opt KEY=VALUE, plus --base-url and
    --api-key for openai: backends where those options do not set base_url= / api_key= (they win)."""
    spec = getattr(args, stage, None) or ""
    opts: dict[str, Any] = dict(getattr(args, f"{stage}_opt", None) or [])
    if stage == "reasoner":
        opts = with_time_style(opts, getattr(args, "time_style", None), spec or None)
    return with_remote(opts, spec, args)


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame sampling and description (stage 1)")
    g.add_argument("--describer", default=None, metavar="SPEC",
                   help="describer backend: cv (offline classical vision, default), openai:MODEL, hf:MODEL_OR_PATH, "
                        "replay:CAPTIONS_FILE (answers each time from captions you have, at no cost)")
    g.add_argument("--fps", type=float, default=None, help="frames sampled per second of video (default 1)")
    add_frame_limits(g)
    g.add_argument("--describer-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option for the describer backend, repeatable (e.g. batch_size=8, device=cuda, detail=low)")
    c = g.add_mutually_exclusive_group()
    c.add_argument("--cache", default=None, metavar="FILE",
                   help="SQLite description cache: frames described before are not described again "
                        "(default $VIDGROUND_CACHE, else ~/.cache/vidground/descriptions.sqlite for vidground's "
                        "own describers); a description is keyed by the video's content, the frame time and the "
                        "describer's settings (for openai: base URL, model name, prompt): a server swapped behind "
                        "the same URL and model name needs --no-cache or another --cache FILE")
    c.add_argument("--no-cache", action="store_true",
                   help="do not read or write the description cache (e.g. after swapping the model a local server "
                        "serves under the same name, or editing a video in place)")
    g.add_argument("--motion", action="store_true",
                   help="append to each description what moved since the previous sample (optical flow: camera "
                        "and object motion, where and which way); measured outside the cache")


def _add_time_style(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-style", default=None, metavar="STYLE",
                   help="how a chat reasoner's transcript writes times, and how it answers: seconds (default), "
                        "mmss, frames[:FPS] (frame numbers) or tokens[:M] (relative time tokens <0>..<M>, M=300)")


def _add_stage2_inputs(p: argparse.ArgumentParser, offline: str) -> None:
    """--descriptions (with its format), --duration, --reasoner and --reasoner-opt, as ask and events take them."""
    p.add_argument("--descriptions", default=None, metavar="FILE",
                   help="a descriptions file (vidground JSONL or another tool's captions) instead of a video")
    add_caption_format_args(p)
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="with --descriptions: the video's duration (else read from the file or inferred)")
    p.add_argument("--reasoner", default=None, metavar="SPEC",
                   help=f"{offline}, openai:MODEL, hf:MODEL_OR_PATH, llamacpp:PATH.gguf")
    p.add_argument("--reasoner-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option for the reasoner backend, repeatable (e.g. n_ctx=16384)")


def _add_skip_unchanged(p: argparse.ArgumentParser, only: str | None) -> None:
    from pipelines.search import add_skip_unchanged_argument

    add_skip_unchanged_argument(p, only=only)


def _add_search(p: argparse.ArgumentParser) -> None:
    from pipelines.search import add_search_arguments

    add_search_arguments(p.add_argument_group("which frames are described (long videos)"),
                         only="a video, not --descriptions")


def build_parser() -> argparse.ArgumentParser:
    from pipelines import __version__

    parser = argparse.ArgumentParser(
        prog="vidground",
        description="Find when things happen in a video: describe frames with an image model, then ground a query in the transcript.",
    )
    parser.add_argument("--version", action="version", version=f"vidground {__version__}")
    _add_global_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    g = sub.add_parser("ground", help="find when a query happens in a video (or in a descriptions file)",
                       usage="vidground ground [options] VIDEO QUERY\n"
                             "       vidground ground [options] --descriptions FILE QUERY\n"
                             "       vidground ground [options] (VIDEO | --descriptions FILE) "
                             "(-q QUERY)... [--queries FILE]",
                       description="Find when QUERY happens. Give VIDEO QUERY to run both stages, or "
                                   "--descriptions FILE QUERY to run stage 2 alone on your own descriptions. "
                                   "With -q (repeatable) and/or --queries FILE, several queries are asked of one "
                                   "video: it is described once and the reasoner is built once, and each query's "
                                   "result is printed in turn (with --json: a JSON list, one result per query). "
                                   "A query that fails (a model's error) is named where its result would be and "
                                   "the others go on; the command then exits 1 naming each failed query and what "
                                   "was paid. An error every query would meet (a server that cannot be reached or "
                                   "refuses the key, a video not described) stops the queries after it.")
    g.add_argument("inputs", nargs="*", metavar="VIDEO QUERY",
                   help="the video file (omit it with --descriptions), then the query (omit it with -q/--queries)")
    g.add_argument("-q", "--query", dest="query_list", action="append", default=[], metavar="QUERY",
                   help="a query, repeatable: several queries of one video in one call")
    g.add_argument("--queries", dest="queries_file", default=None, metavar="FILE",
                   help="a UTF-8 text file of queries, one a line (blank lines and lines starting with # are "
                        "skipped; - reads stdin); asked after any -q")
    g.add_argument("--descriptions", default=None, metavar="FILE",
                   help='a JSONL descriptions file, one frame a line: {"t": seconds, "text": "..."}; '
                        "other tools' captions (vtggpt, seconds-json, csv, srt, vtt) are detected")
    add_caption_format_args(g)
    g.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="with --descriptions: the video's duration (else read from the file or inferred)")
    g.add_argument("--reasoner", default=None, metavar="SPEC",
                   help="reasoner backend: embedding (offline, default), vtggpt and naive (offline baselines), openai:MODEL, "
                        "hf:MODEL_OR_PATH, llamacpp:PATH.gguf")
    g.add_argument("--reasoner-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option for the reasoner backend, repeatable (e.g. n_ctx=8192, fallback=embedding)")
    g.add_argument("--top-k", type=int, default=None, metavar="K", help="return at most K intervals")
    g.add_argument("--json", action="store_true",
                   help="print the GroundingResult as JSON instead of a table (with -q/--queries: a JSON list of "
                        "them, in query order, printed at the end; after a Ctrl-C or a failed query, the list of those "
                        "finished)")
    _add_time_style(g)
    _add_sampling(g)
    _add_search(g)
    add_remote_args(g)
    g.set_defaults(func=cmd_ground, ground_parser=g)

    a = sub.add_parser("ask", help="answer a question about a video, with the intervals that support the answer",
                       usage='vidground ask [options] VIDEO "QUESTION" [--choice A --choice B ...]\n'
                             '       vidground ask [options] --descriptions FILE "QUESTION" [--choice A ...]',
                       description="Answer QUESTION about the video (one of the --choice options when given, else "
                                   "free text) and say when the answer is seen. A chat reasoner (openai:MODEL, "
                                   "hf:MODEL, llamacpp:PATH) answers through its model; the default, offline "
                                   "'embedding' reasoner answers with the evidence baseline: it grounds the question "
                                   "and picks the choice best matched by the descriptions in and around that span.")
    a.add_argument("inputs", nargs="*", metavar="VIDEO QUESTION",
                   help="the video file (omit it with --descriptions), then the question")
    a.add_argument("--choice", dest="choices", action="append", default=None, metavar="TEXT",
                   help="an answer option, repeatable (at least two, each different); without: a free-text answer")
    _add_stage2_inputs(a, "embedding (offline evidence baseline, default)")
    a.add_argument("--json", action="store_true", help="print the Answer as JSON instead of a table")
    _add_time_style(a)
    _add_sampling(a)
    _add_skip_unchanged(a, "a video, not --descriptions")
    add_remote_args(a)
    a.set_defaults(func=cmd_ask, ground_parser=a)

    ev = sub.add_parser("events", help="the video's events (dense captioning): scored start, end and caption",
                        usage="vidground events [options] (VIDEO | --descriptions FILE)",
                        description="List the events of the video, each a scored (start, end, caption). A chat "
                                    "reasoner (openai:MODEL, hf:MODEL, llamacpp:PATH) writes them (a long transcript "
                                    "goes in overlapping chunks); the default, offline 'embedding' reasoner finds "
                                    "change points in the descriptions and picks a representative description as "
                                    "each caption.")
    ev.add_argument("inputs", nargs="*", metavar="VIDEO", help="the video file (omit it with --descriptions)")
    _add_stage2_inputs(ev, "embedding (offline change points, default)")
    ev.add_argument("--events-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the events path, repeatable: offline window_seconds, min_event_seconds, "
                         "threshold, max_events, nested=true (overlapping events at two scales); chat max_events, "
                         "chunk_entries")
    ev.add_argument("--json", action="store_true", help="print the Events as JSON instead of a table")
    _add_time_style(ev)
    _add_sampling(ev)
    _add_skip_unchanged(ev, "a video, not --descriptions")
    add_remote_args(ev)
    ev.set_defaults(func=cmd_events, ground_parser=ev)

    d = sub.add_parser("describe", help="stage 1 only: describe a video's frames into a JSONL file",
                       description="Describe sampled frames of VIDEO; writes JSONL, one frame a line, to -o or stdout.")
    d.add_argument("video", metavar="VIDEO")
    d.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="where to write the descriptions (written atomically); default (or -): stdout")
    d.add_argument("--query", default=None, help="the query, for query-aware describers")
    _add_sampling(d)
    _add_skip_unchanged(d, None)
    add_remote_args(d)
    d.set_defaults(func=cmd_describe)

    tx = sub.add_parser("export-tuning-data", help="turn a strong describer's cached descriptions into a training set",
                        description="Write a teacher -> student tuning set: for each description by the teacher "
                                    "describer (from the description cache, with the videos it describes, or from "
                                    "descriptions JSONL files), the frame as a JPEG (written once), the describe "
                                    "prompt and the description as the answer, in the chat format transformers/TRL "
                                    "(messages) or LLaVA (llava) trainers read. Empty, failed and refused "
                                    "descriptions are left out.")
    tx.add_argument("--out", required=True, metavar="DIR", help="where train.jsonl and frames/ go")
    tx.add_argument("--videos", nargs="+", default=[], metavar="VIDEO_OR_DIR", help="the videos (files or folders)")
    tx.add_argument("--cache", default=None, metavar="FILE",
                    help="the description cache to read (default: the one the describing commands keep, "
                         "$VIDGROUND_CACHE or ~/.cache/vidground/descriptions.sqlite; none with --descriptions)")
    tx.add_argument("--descriptions", nargs="+", default=[], metavar="FILE_OR_DIR",
                    help="descriptions JSONL files (or folders of them), matched to videos by name or their video field")
    tx.add_argument("--describer", default=None, metavar="NAME",
                    help="keep only this teacher's descriptions (e.g. openai:gpt-4o, or a backend: openai)")
    tx.add_argument("--format", default="messages", choices=("messages", "llava"),
                    help="record format (default messages: transformers/TRL chat with images)")
    tx.add_argument("--min-chars", type=int, default=1, metavar="N", help="leave out descriptions shorter than N characters")
    tx.add_argument("--max-side", type=int, default=None, metavar="PX",
                    help="frame size (default: the size the teacher saw, from the cache; 512 for files)")
    tx.set_defaults(func=cmd_export_tuning_data)

    ic = sub.add_parser("import-captions", help="convert other tools' caption files into vidground descriptions files",
                        description="Read caption files (VTG-GPT clip captions, per-second JSON, CSV, SRT or WebVTT "
                                    "subtitles, or vidground JSONL) and write one vidground JSONL descriptions file "
                                    "per input, named by the video id (the input's name without its extension and a "
                                    "trailing _cap), with the video id, duration and step on every line. A single "
                                    "input written to -o FILE.jsonl names its video when the input's and FILE's ids "
                                    "agree (kitchen.csv -o kitchen.jsonl), else no video (a replay then answers any "
                                    "video; --video ID names one). All inputs are read and checked "
                                    "first: when any cannot be read, nothing is written and every bad file is "
                                    "listed (exit 1).")
    ic.add_argument("inputs", nargs="+", metavar="CAPTIONS", help="caption files")
    ic.add_argument("-o", "--output", required=True, metavar="DIR_OR_FILE",
                    help="a folder (OUT/VIDEO_ID.jsonl for each input), or a .jsonl file for a single input")
    ic.add_argument("--video", default=None, metavar="ID",
                    help="the video the captions are of, written on every line (one input only; with a folder for "
                         "-o, the file is OUT/ID.jsonl); a replay of them refuses another video")
    add_caption_format_args(ic, "--format")
    ic.set_defaults(func=cmd_import_captions)

    m = sub.add_parser("demo", help="render a synthetic video with known events and ground queries about them (offline)",
                       description="Renders a short video with known events, grounds a query about each on the offline "
                                   "backends, and prints predictions beside the true intervals with their IoU.")
    m.add_argument("--keep", default=None, metavar="DIR", help="keep the rendered video and descriptions in DIR")
    m.add_argument("--json", action="store_true", help="print the results as JSON")
    m.set_defaults(func=cmd_demo)

    register(sub)  # evaluation commands (eval, score, report, compare)
    for command in sub.choices.values():  # `vidground ground --verbose ...` works as well as before the command
        _add_global_options(command, default=argparse.SUPPRESS)
        command.set_defaults(command_parser=command)  # what main() reports a stray argument against
    return parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _is_option(arg: str) -> bool:
    if not arg.startswith("-") or arg == "-":
        return False
    try:
        float(arg)  # a negative number is a value
    except ValueError:
        return True
    return False


def _place_extras(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]) -> None:
    """What argparse left over (``parse_known_args``), reported against the command it was given to, with that
    command's usage (argparse itself reported it with the top-level usage, as "unrecognized arguments"):

    * an option of another command says which command it belongs to (``events --strategy ...``: an option of
      ground);
    * a positional argument after an option (``ground VIDEO --descriptions FILE "QUERY"``, ``ground VIDEO --top-k 3
      "QUERY"``) joins the command's positional ``inputs``, as if the options came last, so the command's own
      check says what is wrong (``give VIDEO or --descriptions, not both``) or runs it."""
    command = getattr(args, "command_parser", None) or parser
    options = [a for a in extras if _is_option(a)]
    if not options and isinstance(getattr(args, "inputs", None), list):
        args.inputs.extend(extras)
        return
    notes = []
    for opt in dict.fromkeys(a.split("=", 1)[0] for a in options):
        if opt in command._option_string_actions:  # given before the command (`vidground --json ground ...`)
            notes.append(f"{opt} is an option of vidground {args.command}: put it after the command "
                         f"(vidground {args.command} {opt} ...)")
            continue
        owners = [f"vidground {name}" for name, p in _commands(parser).items()
                  if name != args.command and opt in p._option_string_actions]
        if owners:
            notes.append(f"{opt} is an option of {' and '.join(owners)}, not of vidground {args.command}")
    command.error("unrecognized arguments: " + " ".join(extras) + "".join(f"; {n}" for n in notes))


def _options_before_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """A command's option given before the command (``vidground --fps 2 describe V``) is said to be one, with that
    command's usage (argparse took its value for the command: "argument COMMAND: invalid choice: '2'"); a flag's
    case (``vidground --json ground ...``) is :func:`_place_extras`'s, said the same way."""
    commands = _commands(parser)
    at = next((i for i, a in enumerate(argv) if a in commands), None)
    if at is None:
        return
    command = commands[argv[at]]
    for a in argv[:at]:
        opt = a.split("=", 1)[0]
        if _is_option(a) and opt not in parser._option_string_actions and opt in command._option_string_actions:
            command.error(f"{opt} is an option of vidground {argv[at]}: put it after the command "
                          f"(vidground {argv[at]} {opt} ...)")


def _add_global_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--verbose and --debug; a command's copy defaults to SUPPRESS so it never resets what was given before it."""
    g = p.add_argument_group("global options") if default is argparse.SUPPRESS else p
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log what happens (INFO level) on stderr")
    g.add_argument("--debug", action="store_true", default=default,
                   help="log everything and show tracebacks on errors")


def _split_inputs(args: argparse.Namespace) -> tuple[str | None, str]:
    inputs = args.inputs
    if not inputs:  # what argparse said (exit 2) when the positionals were required
        args.ground_parser.error("the following arguments are required: "
                                 + ("QUERY" if args.descriptions else "VIDEO QUERY"))
    if args.descriptions:
        if len(inputs) != 1:  # a malformed command line: the usage and exit 2, as argparse's own errors
            args.ground_parser.error("give VIDEO or --descriptions, not both (with --descriptions give only the "
                                     "QUERY)")
        return None, inputs[0]
    if len(inputs) != 2:
        args.ground_parser.error('give VIDEO and QUERY (quote the query: vidground ground video.mp4 "a person opens a door")')
    return inputs[0], inputs[1]


def format_result_table(result: Any, described: Any = None) -> str:
    """``result`` as ``ground`` prints it; ``described``, the :class:`~pipelines.session.DescribedVideo` a plain run
    grounded in (``Session.remembered``), adds how many frames were sampled and how many the description cache gave
    (what ``describe`` says of them) where no search or skip-unchanged line says what was described."""
    lines = [f"query:     {printable(result.query)}"]
    dur = f"{_duration_text(result.duration)} s" + (" (inferred)" if result.duration_inferred else "")
    lines.append(f"video:     {printable(result.video)}  ({dur})")
    lines.append(f"backends:  describer={printable(result.describer)}  reasoner={printable(result.reasoner)}")
    spent = _spent(result)
    if spent:
        lines.append(f"usage:     {spent}")
    frames = _frames_line(getattr(result, "settings", None) or {})
    if not frames and described is not None:
        n, cached = len(described.descriptions), described.usage.cached
        frames = f"{n} sampled, {cached} from the description cache ({n - cached} described now)"
    if frames:
        lines.append(f"frames:    {frames}")
    for w in result.warnings:
        lines.append(f"warning:   {printable(w)}")
    if not result.intervals:
        lines.append("no interval found")
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'#':>3}  {'start':>8}  {'end':>8}  {'length':>7}  {'score':>7}")
    for i, iv in enumerate(result.intervals, 1):
        score = "-" if iv.score is None else f"{iv.score:.3f}"
        lines.append(f"{i:>3}  {iv.start:>8.2f}  {iv.end:>8.2f}  {iv.length:>7.2f}  {score:>7}")
    return "\n".join(lines)


def _duration_text(seconds: float) -> str:
    """A duration as the result table's header gives it: to 0.1 s, or to 0.01 s as the interval columns are where
    0.1 s would round it off (a single-frame video of 0.04 s was "(0.0 s)" above an interval 0.00-0.04)."""
    short = f"{seconds:.1f}"
    return short if abs(float(short) - seconds) < 0.005 else f"{seconds:.2f}"


_STOPS = {"budget": "the budget was spent", "converged": "its best candidates were described densely",
          "rounds": "after its rounds", "no-candidate": "the reasoner named no candidate"}


def _frames_line(settings: dict[str, Any]) -> str:
    """What a coarse-to-fine search or skip-unchanged described, for the result table (empty for a plain run):
    its calls are the describer requests of this query; frames from the description cache, an earlier query of the
    session or skip-unchanged's reuse cost nothing. A calls budget counts every frame used but the reuses."""
    search = settings.get("search")
    if isinstance(search, dict) and "calls" in search:
        used = search.get("used", sum(int(search.get(k) or 0) for k in ("calls", "cached", "known")))  # per time asked
        budget = [f"budget {search['budget']} frame(s), {used} used" if search.get("budget") else "",
                  f"budget {search['budget_seconds']:g} s" if search.get("budget_seconds") else ""]
        free = [f"{search[k]} frame(s) {what}" for k, what in (("cached", "from the cache"), ("known", "known from "
                "earlier queries"), ("skipped", "unchanged, reused")) if search.get(k)]
        stop = _STOPS.get(search.get("stop", ""), search.get("stop") or "")
        return (f"coarse-to-fine: {search['calls']} describer call(s)" + (f", {', '.join(free)}" if free else "")
                + (f" ({'; '.join(b for b in budget if b)})" if any(budget) else "")
                + f"; {search.get('rounds_done', 0)} refinement round(s)" + (f", stopped: {stop}" if stop else ""))
    skip = settings.get("skip_unchanged")
    if isinstance(skip, dict) and "sent" in skip:  # sent to the describer; the cache's answers cost nothing
        cached = f", {skip['cached']} from the description cache" if skip.get("cached") else ""
        return (f"skip-unchanged {skip.get('threshold', 0):g}: {skip['sent']} sent{cached}, "
                f"{skip.get('reused', 0)} reused")
    return ""


def _cost(usage: Any) -> str:
    """``usage``'s estimated cost as eval's report states it: requests without a price or token counts named, not free."""
    from .runs import format_cost

    return format_cost(usage.cost_usd or 0.0, usage.requests, usage.unpriced_requests)


def _spent(result: Any, *, split: bool = True, tokens: bool = True, noun: str = "requests") -> str:
    """What ``result`` (a result with its ``usage`` per stage, or a :class:`~pipelines.session.DescribedVideo` with
    one) asked of models, as ground's ``usage:`` line, events' last line and ``describe -o``'s say it: ``2
    requests, 120 prompt + 30 completion tokens, est. $0.0001``; the tokens left out where not ``tokens``. A
    ``replay:`` describer reads captions, sends nothing and pays nothing, so its answers are said as such, after
    the other stages' requests: ``36 frames answered from captions, nothing paid`` (it was ``36 requests, 0 prompt +
    0 completion tokens, est. $0.0000``). Empty when nothing was asked."""
    from vidground.types import Usage

    from .runs import format_tokens

    stages = getattr(result, "usage", None)  # per stage; a DescribedVideo's one Usage; else only a total
    stages = (dict(stages) if isinstance(stages, dict) else {"describe": stages} if isinstance(stages, Usage)
              else {"total": getattr(result, "total_usage", Usage())})
    replay = str(getattr(result, "describer", None) or "").split("+")[0] == "replay"
    answered = stages.pop("describe", Usage()).requests if replay else 0
    usage = sum(stages.values(), Usage())
    said = []
    if usage.requests:
        retried = f" (+{usage.retried} sent again after faults)" if usage.retried else ""
        counted = f", {format_tokens(stages.values(), split=split)}" if tokens else ""
        said.append(f"{usage.requests} {noun}{retried}{counted}, est. {_cost(usage)}")
    if answered:
        said.append(f"{answered} frames answered from captions, nothing paid")
    return "; ".join(said)


def _paid_note(exc: BaseException) -> str:
    """What was paid on the way to ``exc`` (its ``usage``), for its error line, as one clause: ``(paid so far: 2
    request(s), est. $0.0002)``; the requests without a price or token counts named in it, not as a second count in
    parentheses; empty when nothing was paid."""
    usage = getattr(exc, "usage", None)
    if not getattr(usage, "requests", 0):
        return ""
    n, unpriced, cost = usage.requests, usage.unpriced_requests, usage.cost_usd or 0.0
    if not unpriced:
        return f" (paid so far: {n} request(s), est. ${cost:.4f})"
    if unpriced >= n and not cost:
        return f" (paid so far: {n} request(s) without a price or token counts, cost unknown: see vidground.pricing)"
    return f" (paid so far: {n} request(s), est. ${cost:.4f} + unknown for {unpriced} without a price or token counts)"


def read_queries(path: str | Path) -> list[tuple[int, str]]:
    """(line number, query) for each query in a UTF-8 text file, one a line; blank lines and lines
    starting with ``#`` are skipped, surrounding spaces stripped. ``-`` reads stdin. A missing,
    unreadable, non-UTF-8 or query-less file is an :class:`InputError` naming it."""
    name = "<stdin>" if str(path) == "-" else str(path)
    if name != "<stdin>":
        check_readable(Path(path), "queries file")  # a FIFO or /dev/zero would block or never end
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("queries file not found", path=name) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a queries file", path=name) from None
    except OSError as exc:
        raise InputError(f"cannot read the queries file ({exc.strerror or exc})", path=name) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the queries file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                         path=name, line=data[:exc.start].count(b"\n") + 1) from None
    queries = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#")]
    if not queries:
        raise InputError("the queries file holds no query (one a line; blank lines and # comments are skipped)",
                         path=name)
    return queries


def _many_queries(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """(video or None, the queries checked) for the -q/--queries form."""
    from temporal_reasoner import check_query

    if args.descriptions and args.inputs:  # a malformed command line: the usage and exit 2
        args.ground_parser.error("with --descriptions and -q/--queries give no VIDEO or QUERY argument")
    if not args.descriptions and len(args.inputs) != 1:
        args.ground_parser.error("with -q/--queries give the VIDEO alone (the queries come from -q/--queries): "
                                 'vidground ground video.mp4 -q "a person opens a door" -q "..."')
    queries = []  # every query checked before anything is described
    for i, query in enumerate(args.query_list, 1):
        try:
            queries.append(check_query(query))
        except InputError as exc:  # which of several -q: "the query is empty" alone does not say
            raise InputError(f"-q number {i} of {len(args.query_list)}: {exc}") from None
    if args.queries_file is not None:
        for line, query in read_queries(args.queries_file):
            try:
                queries.append(check_query(query))
            except InputError as exc:
                name = "<stdin>" if args.queries_file == "-" else args.queries_file
                raise InputError(str(exc), path=name, line=line) from None
    return (None if args.descriptions else args.inputs[0]), queries


def _ground_many(args: argparse.Namespace) -> int:
    """Several queries of one video: described once (per query only for a query-aware describer, whose
    descriptions depend on the query), the reasoner built once; results printed as they come."""
    video, queries = _many_queries(args)
    if video is not None and (args.descriptions_format != "auto" or args.clip_seconds is not None):
        raise ConfigurationError("--descriptions-format and --clip-seconds apply to --descriptions, not to a video")
    with _session(args, video) as session:
        source: dict[str, Any] = dict(video=video)
        if video is None:  # read and checked once
            source = dict(descriptions=session.load(args.descriptions, format=args.descriptions_format,
                                                    clip_seconds=args.clip_seconds))
        _print_many(args, queries, lambda query: session.ground(query=query, duration=args.duration,
                                                                top_k=args.top_k, **source),
                    (lambda: session.remembered(video)) if video is not None else None,
                    stops=lambda exc: _stops_the_rest(exc, session, video))
    return 0


def _stops_the_rest(exc: VidgroundError, session: Any, video: str | None) -> str | None:
    """Why a query's failure stops the queries after it, or ``None`` when they go on: only a model's failure on that
    query (a server error once its retries are spent, a reply that never validated) lets the others go on. A
    configuration error, a missing package, a server that cannot be reached or refuses the key or the model (as
    eval's run-wide failures), a video that cannot be read, would fail every query; and a video described once for
    all queries that was not described would be described (and paid for) again by each."""
    from vidground.errors import OutputValidationError, ProviderError

    from .runs import is_run_wide

    if not isinstance(exc, (ProviderError, OutputValidationError)) or is_run_wide(type(exc).__name__, str(exc)):
        return "every query would fail with it"
    if video is not None and not session.search.refines \
            and getattr(session.describer, "mode", "agnostic") != "aware" and not session.has_remembered(video):
        return "the video was not described, and each query would describe it again"
    return None


def _session(args: argparse.Namespace, video: str | None) -> Any:
    """The session a ground command runs in: its backends, sampling and cache from the options."""
    from pipelines.session import Session

    if args.motion and video is None:
        raise ConfigurationError("--motion measures the video's frames: give a video, not --descriptions")
    unused = [flag for flag, given in (
        ("--describer", args.describer), ("--describer-opt", args.describer_opt), ("--fps", args.fps is not None),
        ("--num-frames", args.num_frames is not None), ("--max-frames", args.max_frames is not None),
        ("--max-side", args.max_side != 512), ("--cache", args.cache), ("--no-cache", args.no_cache)) if given]
    if video is not None and getattr(args, "duration", None) is not None:  # it replaced the decoded one, silently
        raise ConfigurationError("--duration applies to --descriptions: a video's duration is read from the video")
    if video is None and unused:  # silently ignored, they would make a user believe stage 1 used them
        raise ConfigurationError(f"{', '.join(unused)}: stage 1 options have no effect with --descriptions (stage 2 "
                                 "only); drop them, or give the video")
    from pipelines.search import search_options

    if video is None and (search_options(args) or getattr(args, "skip_unchanged", None) is not None):
        raise ConfigurationError("--strategy coarse-to-fine and --skip-unchanged choose which frames of a video are "
                                 "described: give a video, not --descriptions")
    return Session(describer=args.describer if video is not None else None, reasoner=args.reasoner,
                   sampling=dict(fps=args.fps, num_frames=args.num_frames, max_frames=args.max_frames,
                                 max_side=args.max_side),
                   cache=False if args.no_cache else args.cache, progress=True,
                   describer_options=_backend_options(args, "describer") or None,
                   reasoner_options=_backend_options(args, "reasoner") or None, motion=args.motion,
                   search=search_options(args), skip_unchanged=getattr(args, "skip_unchanged", None))


def _print_many(args: argparse.Namespace, queries: list[str], answer: Any, described: Any = None,
                stops: Any = None) -> None:
    """Each query's result as it comes (tables), or all of them as one JSON list at the end. ``described()``, the
    video as the session remembers it (or None), gives the first table its ``frames:`` line, where its usage is.

    A Ctrl-C keeps what finished: with --json the list of the results finished so far is printed (still one valid
    JSON list, in query order, shorter than the queries), and the KeyboardInterrupt carries ``finished`` and
    ``total`` for the interrupted line (the tables of the finished queries are printed already). Any other exception
    that is no :class:`VidgroundError` (a bug in query k) likewise prints the finished --json list, then is raised.

    A query that fails is said where its table would be (with --json: on stderr as it happens) and the others go on,
    unless ``stops(error)`` gives a reason to stop there (:func:`_stops_the_rest`); the finished results are printed
    as they would be (--json: the list of them), then a :class:`VidgroundError` names each failed query, the
    queries not asked, and carries what the whole command paid (its ``usage``): exit 1."""
    results: list[Any] = []
    failures: list[tuple[int, str, VidgroundError]] = []
    stopped = None
    try:
        for i, query in enumerate(queries):
            try:
                result = answer(query)  # a video is described (and paid for) once: its usage and time go with the first
            except VidgroundError as exc:
                failures.append((i, query, exc))
                stopped = stops(exc) if stops is not None else "it stops the others"
                if stopped is None:
                    line = f"query {i + 1} of {len(queries)} failed: {exc}{_paid_note(exc)}"
                    if args.json:
                        print(f"warning: {printable(line)}; the other queries go on", file=sys.stderr, flush=True)
                    else:
                        print(f"{chr(10) if i else ''}== query {i + 1} of {len(queries)}: {printable(query)}")
                        print(f"failed: {printable(f'{exc}{_paid_note(exc)}')}", flush=True)
                    continue
                break
            if args.json:
                results.append(result)
            else:
                if i:
                    print()
                print(f"== query {i + 1} of {len(queries)}: {printable(query)}")
                print(format_result_table(result, described() if described is not None and not i else None),
                      flush=True)
                results.append(result)
    except BaseException as exc:  # Ctrl-C, or a fault no query's error covers (a bug, MemoryError): raised on
        if isinstance(exc, KeyboardInterrupt):
            exc.finished, exc.total = len(results), len(queries)  # type: ignore[attr-defined]
            exc.failed = len(failures)  # type: ignore[attr-defined]  # said above each; neither finished nor not run
        if args.json:  # the answers finished (and, with an openai: reasoner, paid for) are not thrown away
            print(json.dumps([r.model_dump(mode="json") for r in results], indent=2, ensure_ascii=False), flush=True)
        raise
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2, ensure_ascii=False), flush=True)
    if failures:
        raise _failed_queries(args, queries, results, failures, stopped) from failures[-1][2]


def _failed_queries(args: argparse.Namespace, queries: list[str], results: list[Any],
                    failures: list[tuple[int, str, VidgroundError]], stopped: str | None) -> VidgroundError:
    """The error of a multi-query ground in which ``failures`` (index, query, error) failed: each named (the first
    three in full), the queries left unasked after the one that ``stopped`` them, where the finished results are,
    and, as its ``usage``, everything the command paid: the finished results' and the failed queries' requests."""
    from vidground.types import Usage

    def named(i: int, query: str, exc: VidgroundError) -> str:
        return f"query {i + 1} ({printable(query)!r}): {exc}"

    n = len(queries)
    said = "; ".join(named(*f) for f in failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
    text = f"{len(failures)} of the {n} queries failed: {said}"
    left = n - failures[-1][0] - 1
    if stopped is not None and left:
        text += f"; the {left} after query {failures[-1][0] + 1} were not asked ({stopped})"
    if results:
        where = "printed as a JSON list" if args.json else "printed above"
        text += f"; the {len(results)} finished result(s) are {where}"
    error = VidgroundError(text)
    paid = Usage()
    for usage in [u for r in results for u in r.usage.values()] + [e.usage for _, _, e in failures]:
        if isinstance(usage, Usage):
            paid = paid + usage
    error.usage = paid if paid.requests else None
    return error


def _finished_note(args: argparse.Namespace, exc: BaseException) -> str:
    """How many of several queries (-q/--queries) finished before a Ctrl-C, and where their results are; after a
    failed query (said where it failed), how many failed and how many were not run as well."""
    finished, total = getattr(exc, "finished", None), getattr(exc, "total", None)
    if finished is None or total is None:
        return ""
    failed = getattr(exc, "failed", 0) or 0
    where = "printed as a JSON list" if getattr(args, "json", False) else "printed above"
    if failed:
        left = total - finished - failed
        said = (f"{failed} failed (said above) and {left} {'was' if left == 1 else 'were'} not run")
        if not finished:
            return f" before any of the {total} queries finished: {said}"
        return f" after {finished} of {total} queries finished, {said} (the finished results are {where})"
    if not finished:
        return f" before any of the {total} queries finished"
    return f" after {finished} of {total} queries finished (their results are {where})"


def cmd_ground(args: argparse.Namespace) -> int:
    if args.top_k is not None and "top_k" in dict(args.reasoner_opt):  # one of them was silently dropped
        raise ConfigurationError(f"--top-k {args.top_k} and --reasoner-opt top_k={dict(args.reasoner_opt)['top_k']} "
                                 "both say how many intervals to return: give one (--top-k)")
    if args.query_list or args.queries_file is not None:
        return _ground_many(args)
    video, query = _split_inputs(args)
    with _session(args, video) as session:
        result = session.ground(video, query, descriptions=args.descriptions, duration=args.duration,
                                descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds,
                                top_k=args.top_k)
        described = session.remembered(video) if video is not None and not args.json else None
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(format_result_table(result, described))
    return 0


def format_answer_table(answer: Any, described: Any = None) -> str:
    """An :class:`~vidground.types.Answer` as the ask command prints it: the answer, the choices with their
    scores, then the supporting intervals as ``ground`` prints them (``described`` as there)."""
    lines = [f"question:  {printable(answer.question)}", f"answer:    {printable(answer.answer)}"
             + (f"  (choice {answer.choice})" if answer.choice is not None else "")]
    for i, c in enumerate(answer.choices or []):
        score = f"  {answer.choice_scores[i]:.3f}" if answer.choice_scores else ""
        lines.append(f"  {'*' if i == answer.choice else ' '} {i}. {printable(c)}{score}")
    grounded = format_result_table(argparse.Namespace(**{k: getattr(answer, k) for k in (
        "duration", "duration_inferred", "video", "describer", "reasoner", "usage", "total_usage", "warnings",
        "intervals")},
        query=answer.question), described)
    return "\n".join(lines + grounded.splitlines()[1:])


def cmd_ask(args: argparse.Namespace) -> int:
    from temporal_reasoner.qa import check_choices, check_question

    inputs = args.inputs
    if not inputs:
        args.ground_parser.error("the following arguments are required: "
                                 + ("QUESTION" if args.descriptions else "VIDEO QUESTION"))
    if len(inputs) != (1 if args.descriptions else 2):  # a malformed command line: the usage and exit 2
        args.ground_parser.error("give VIDEO or --descriptions, not both (with --descriptions give only the "
                                 "QUESTION)" if args.descriptions else
                                 'give VIDEO and QUESTION (quote the question: vidground ask video.mp4 "why did the '
                                 'boy pick up the ball?" --choice "to throw it" --choice "to hide it")')
    video, question = (None, inputs[0]) if args.descriptions else (inputs[0], inputs[1])
    question, choices = check_question(question), check_choices(args.choices)  # before anything is loaded
    with _session(args, video) as session:
        result = session.answer(video, question, choices, descriptions=args.descriptions, duration=args.duration,
                                descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds)
        described = session.remembered(video) if video is not None and not args.json else None
    print(result.model_dump_json(indent=2) if args.json else format_answer_table(result, described))
    return 0


def format_events_table(result: Any) -> str:
    """:class:`~vidground.types.Events` as the events command prints them: one line per event, then the backends."""
    lines = [f"{'start':>8} {'end':>8} {'score':>6}  caption"]
    for e in result.events:
        score = "" if e.score is None else f"{e.score:.3f}"
        lines.append(f"{e.start:8.2f} {e.end:8.2f} {score:>6}  {printable(e.caption)}")
    spent = _spent(result, split=False, noun="request(s)")
    lines.append(f"{len(result.events)} event(s) in {result.duration:.2f} s"
                 + (" (duration inferred)" if result.duration_inferred else "")
                 + f"; describer {printable(result.describer or '-')}, reasoner {printable(result.reasoner or '-')}"
                 + (f"; {spent}" if spent else ""))
    lines += [f"warning: {printable(w)}" for w in result.warnings]
    return "\n".join(lines)


def cmd_events(args: argparse.Namespace) -> int:
    inputs = args.inputs
    if not inputs and not args.descriptions:
        args.ground_parser.error("the following arguments are required: VIDEO (or --descriptions FILE)")
    if len(inputs) != (0 if args.descriptions else 1):  # a malformed command line: the usage and exit 2
        args.ground_parser.error("give VIDEO or --descriptions, not both (with --descriptions give no video)"
                                 if args.descriptions else "give one VIDEO")
    video = None if args.descriptions else inputs[0]
    with _session(args, video) as session:
        result = session.events(video, descriptions=args.descriptions, duration=args.duration,
                                descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds,
                                **dict(args.events_opt))
    print(result.model_dump_json(indent=2) if args.json else format_events_table(result))
    return 0


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (through symbolic links and hard links), or would be once made (a
    ``--cache FILE`` not made yet, which the command makes before writing ``-o``)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):  # a name the OS refuses: said where it is opened
        return False


def _refuse_overwriting(option: str, output: str | Path, inputs: list[tuple[str, Any]]) -> None:
    """A :class:`ConfigurationError` before anything is read or paid for when ``output`` (what ``option`` names) is
    one of the command's ``inputs`` (what it is, its path): writing it would replace that input (``describe VIDEO -o
    VIDEO`` wrote JSONL over the video, exit 0)."""
    for what, path in inputs:
        if path and _same_file(Path(output), Path(path)):
            raise ConfigurationError(f"{option} {printable(output)} is the {what} {printable(path)}, which would be "
                                     f"overwritten by its own output; choose another {option}")


def _describe_inputs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The files ``describe`` reads: the video, the description cache (named, or the default one), a replay's
    captions file."""
    from frame_describer.cache import default_cache_path
    from vidground.registry import split_spec

    inputs: list[tuple[str, Any]] = [("video", args.video)]
    if not args.no_cache:
        try:
            inputs.append(("description cache", args.cache or default_cache_path()))
        except NoCacheFolderError:
            pass
    try:
        backend, arg = split_spec(args.describer) if args.describer else ("", None)
    except VidgroundError:  # said by the describer's own check
        backend, arg = "", None
    if backend == "replay" and arg:
        inputs.append(("replayed captions file", arg))
    return inputs


def cmd_describe(args: argparse.Namespace) -> int:
    from pipelines.api import describe

    if args.output and args.output != "-":
        _refuse_overwriting("-o", args.output, _describe_inputs(args))
    described = describe(args.video, describer=args.describer, fps=args.fps, num_frames=args.num_frames,
                         max_frames=args.max_frames, max_side=args.max_side, query=args.query,
                         cache=False if args.no_cache else args.cache,
                         progress=True, motion=args.motion, skip_unchanged=args.skip_unchanged,
                         describer_options=_backend_options(args, "describer") or None)
    for w in described.warnings:  # a damaged or truncated file: said here once (the sampler only keeps it)
        print(f"warning: {printable(w)}", file=sys.stderr)
    if args.output and args.output != "-":  # -o - is stdout, as without -o
        n = described.write(args.output)
        usage = described.usage  # what a resumed run took from the cache is said, not only what it made
        paid = _spent(described, tokens=False)
        paid = f"; {paid}" if paid else ""
        skip = described.sampling.get("skip_unchanged")  # how many frames were sent, how many reused
        skipped = f"; skip-unchanged: {skip['sent']} sent, {skip['reused']} reused" if isinstance(skip, dict) else ""
        print(f"wrote {n} descriptions to {printable(args.output)} ({described.duration:.1f} s of video, described in {described.seconds:.1f} s"
              f"{f'; {usage.cached} from the description cache' if usage.cached else ''}{paid}{skipped})", file=sys.stderr)
    else:
        meta = {"video": described.video, "duration": round(described.duration, 3), "step": described.step,
                "describer": described.describer}
        for d in described.descriptions:
            print(json.dumps({**meta, **d.model_dump(mode="json")}, ensure_ascii=False))
    return 0


def cmd_export_tuning_data(args: argparse.Namespace) -> int:
    from pipelines.tuning import export_tuning_data

    from frame_describer.cache import default_cache_path

    # the cache the describing commands keep descriptions in ($VIDGROUND_CACHE, else the default file) for the videos
    # given; with descriptions files given, a cache is read only when asked for
    cache = args.cache or (default_cache_path() if args.videos and not args.descriptions else None)
    read = [("description cache", cache)] + [("descriptions file", f) for d in map(Path, args.descriptions)
                                             for f in (sorted(d.glob("*.jsonl")) if d.is_dir() else [d])]
    _refuse_overwriting("--out", Path(args.out) / "train.jsonl", read)  # a folder of descriptions given as --out too
    r = export_tuning_data(args.out, videos=args.videos, cache=cache, descriptions=args.descriptions,
                           describer=args.describer, format=args.format, min_chars=args.min_chars,
                           max_side=args.max_side)
    left = ", ".join(f"{n} {why}" for why, n in sorted(r.left_out.items())) or "none"
    teachers = ", ".join(f"{name} ({n})" for name, n in r.describers.items())
    print(f"wrote {r.records} records from {r.videos} video(s) to {printable(r.path)} ({r.frames_written} frames written, "
          f"{r.frames_reused} reused); describers: {teachers}; left out: {left}")
    return 0


def cmd_import_captions(args: argparse.Namespace) -> int:
    from pathlib import Path

    import contextlib

    from frame_describer.caption_formats import video_id_from_path
    from vidground.errors import InputError, VidgroundError
    from vidground.files import output_file
    from pipelines.api import load_descriptions

    out = Path(args.output)
    to_file = out.suffix.lower() == ".jsonl" and not out.is_dir()
    video = getattr(args, "video", None)
    if video is not None and (len(args.inputs) > 1 or not video.strip() or video != video.strip()):
        raise ConfigurationError(f"--video names the video of one input, got {video!r} for {len(args.inputs)} inputs"
                                 if len(args.inputs) > 1 else f"--video needs a video id, got {video!r}")
    if video is not None and (any(sep in video for sep in ("/", "\\", "\0")) or video in (".", "..")):
        # with a folder for -o the file is OUT/ID.jsonl: "../x" wrote outside the folder
        raise ConfigurationError(f"--video needs a video id, not a path: got {video!r}")
    if to_file and len(args.inputs) > 1:
        raise ConfigurationError(f"{len(args.inputs)} inputs need a folder for -o, not the file {out}")
    if not to_file and out.exists() and not out.is_dir():  # it said "out/ID.jsonl: cannot write here (Not a directory)"
        raise ConfigurationError(f"-o {out} is a file: give a folder for the converted files (or, for one input, "
                                 "a file name ending in .jsonl)")
    targets: dict[Path, Path] = {}
    for name in args.inputs:
        src = Path(name)
        dest = out if to_file else out / f"{video or video_id_from_path(src)}.jsonl"
        if dest in targets:
            raise ConfigurationError(f"{targets[dest]} and {src} would both be written to {dest} (same video id)")
        if src.exists() and _same_file(dest, src):  # a link or a hard link to it too
            raise ConfigurationError(f"{src} would be overwritten by its own conversion; choose another -o")
        targets[dest] = src
    # every input is read before any is written: a bad one among many converts none, and every bad one is named
    loaded, bad = {}, []
    for dest, src in targets.items():
        try:
            loaded[dest] = load_descriptions(src, format=args.descriptions_format, clip_seconds=args.clip_seconds)
        except VidgroundError as exc:
            bad.append(exc)
    if bad and len(targets) == 1:
        raise bad[0]
    if bad:
        raise InputError(f"{len(bad)} of the {len(targets)} caption files cannot be converted, so none was written: "
                         + "; ".join(map(str, bad)))
    # so is every destination checked before any is written, and written all or none: each goes to a temporary file
    # beside it, renamed into place only once every one is complete
    unwritable = [f"{dest}: {why}" for dest in targets if (why := _unwritable(dest))]
    if unwritable:
        raise InputError(f"{len(unwritable)} of the {len(targets)} destinations cannot be written, so none was "
                         "written: " + "; ".join(unwritable))
    def stamp(p: Path) -> tuple[int, int] | None:
        return (p.stat().st_mtime_ns, p.stat().st_ino) if p.is_file() else None

    before, lines = {dest: stamp(dest) for dest in targets}, []
    try:
        with contextlib.ExitStack() as stack:
            for dest, src in targets.items():
                described = loaded[dest]
                # the video the captions are of (a replay checks the field against the video it describes): --video's,
                # else the input's id, unless one input goes to -o FILE of another id (kitchen.csv -o captions.jsonl,
                # my_captions.csv -o kitchen.jsonl): neither id is surely the video's, so none is written
                named = video or video_id_from_path(src)
                if to_file and video is None and video_id_from_path(dest) != named:
                    named = None
                meta = ({} if named is None else {"video": named}) | {"duration": round(described.duration, 6),
                                                                       "step": described.step}
                if named is None:
                    if not any("video" in (d.model_extra or {}) for d in described.descriptions):
                        print(f"{dest}: these captions name no video ({src.name} and {dest.name} name different "
                              "ones), so a replay of them answers any video; --video ID names one", file=sys.stderr)
                if described.duration_inferred:
                    meta["duration_inferred"] = True
                fh = stack.enter_context(output_file(dest))
                forced = {} if video is None else {"video": video}  # --video wins over a line's own field too
                rows = [json.dumps({**meta, **d.model_dump(mode="json"), **forced}, ensure_ascii=False) + "\n"
                        for d in described.descriptions]
                fh.writelines(rows)
                dur = f"{described.duration:g} s" + (" (inferred)" if described.duration_inferred else "")
                lines.append(f"{printable(src)} -> {printable(dest)}: {len(rows)} descriptions, step {described.step:g} s, {dur}")
    except (VidgroundError, OSError) as exc:
        written = [str(d) for d in targets if stamp(d) != before[d]]  # only a rename that failed half-way leaves any
        raise InputError(f"{exc}; " + (f"written only: {', '.join(written)}" if written else
                                       f"none of the {len(targets)} files was written")) from None
    print("\n".join(lines))
    return 0


def _unwritable(dest: Path) -> str | None:
    """Why ``dest`` cannot be written as a file (a folder there, a file on the way to it), else ``None``."""
    for p in (dest, *dest.parents):
        if p.exists() or p.is_symlink():
            if p == dest:
                return "is a folder; give a file name" if p.is_dir() else None
            return None if p.is_dir() else f"{p} is not a folder"
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import format_demo, run_demo

    if args.keep:  # made here, so that a file or an unwritable place is named (it was an internal error)
        try:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ConfigurationError(f"--keep {args.keep}: is a file; give a folder for the demo's video and "
                                     "descriptions (it is created)") from None
        except OSError as exc:
            raise ConfigurationError(f"--keep {args.keep}: cannot make the folder ({exc.strerror or exc})") from None
    report = run_demo(keep=args.keep)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_demo(report))
    return 0


_OUR_LOGGERS = ("vidground", "frame_describer", "temporal_reasoner", "pipelines", "prompts")
#: loggers whose INFO record "loading ..." announces a model load of seconds (the embedding encoder's
#: ``_load_model``); the CLI turns it into a one-line note on stderr even without --verbose
_SLOW_LOAD_LOGGERS = ("temporal_reasoner.embedding",)


class _LoadingNote(logging.Filter):
    """On a slow-load logger set to INFO: a "loading ..." record becomes ``vidground: loading ... …`` on
    stderr (so the first query of a process is not 20 s of silence), and every other record below
    ``level`` is dropped, as the logger's level would have dropped it."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith("loading "):
            print(f"vidground: {record.getMessage()} …", file=sys.stderr, flush=True)
            return False
        return record.levelno >= self.level


class _Redacting(logging.Filter):
    """On the log handlers: each record's text with the known secrets (the API keys given on the command
    line or in the environment) and anything that looks like a credential (``Authorization: Bearer ...``,
    ``api_key=...``, ``sk-...``, URL credentials) replaced, and line breaks escaped so a value cannot
    forge a log line. Third-party loggers (httpx, openai) print headers and URLs with --debug."""

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        from .provenance import redact

        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        text = redact(text).replace("\r", "\\r").replace("\n", "\\n")
        record.msg, record.args = text, None
        return True


def _secrets(args: argparse.Namespace) -> set[str]:
    """The secrets this command was given: --api-key, api_key backend options, $OPENAI_API_KEY."""
    from .provenance import is_secret_key

    found = {getattr(args, "api_key", None) or "", os.environ.get("OPENAI_API_KEY", "")}
    for name in ("describer_opt", "reasoner_opt"):
        found.update(str(v) for k, v in (getattr(args, name, None) or []) if is_secret_key(k))
    return {s for s in found if s}


class _SaidInResult(logging.Filter):
    """On the log handlers of a command that prints its result's warnings: a record whose text the result's
    ``warnings`` carry too (marked :data:`~frame_describer.rates.IN_RESULT`: a rate above the video's) is left to the
    ``warning:`` line (``describe --fps 25`` of a 10-fps video said it twice: a WARNING log line, then that line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from frame_describer.rates import IN_RESULT

        return not getattr(record, IN_RESULT, False)


def _prints_warnings(args: argparse.Namespace) -> bool:
    """Whether the command prints its result's warnings: ``describe``; ``ground``, ``ask`` and ``events`` unless
    --json (the JSON carries them, for a program; stderr keeps the log line for a person)."""
    return args.command == "describe" or (args.command in ("ground", "ask", "events")
                                          and not getattr(args, "json", False))


def _setup_logging(level: int, *, everything: bool = False, loading_notes: bool = True,
                   secrets: set[str] = frozenset(), said_in_result: bool = False) -> None:
    """Log to stderr: our packages at ``level``, other libraries at WARNING (everything with --debug).

    Records propagate to the root handler as usual, so embedding programs and test harnesses that
    capture logging still see them. Below INFO (no --verbose) a slow model load still gets a one-line
    note on stderr (stdout stays the result, --json included), unless ``loading_notes`` is false (--quiet).
    ``said_in_result``: the command prints its result's warnings, so a record they carry is not logged to stderr
    as well.
    """
    logging.basicConfig(level=logging.DEBUG if everything else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # main() may run many times in one process: replace, not add
        for f in [f for f in handler.filters if isinstance(f, _Redacting)]:
            handler.removeFilter(f)
        handler.addFilter(_Redacting(set(secrets)))
        for f in [f for f in handler.filters if isinstance(f, _SaidInResult)]:
            handler.removeFilter(f)
        if said_in_result and getattr(handler, "stream", None) in (sys.stderr, sys.__stderr__):
            handler.addFilter(_SaidInResult())  # the terminal's: a program or test capturing records still gets them
    for name in _OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in _SLOW_LOAD_LOGGERS:  # main() may run many times in one process: undo the last call's setup
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, _LoadingNote)]:
            logger.removeFilter(f)
        logger.setLevel(logging.NOTSET)
        if loading_notes and level > logging.INFO:  # with --verbose the INFO record itself says it
            logger.setLevel(logging.INFO)
            logger.addFilter(_LoadingNote(level))


#: how each command takes a descriptions file, for a descriptions file given as its VIDEO
_GIVE_DESCRIPTIONS = {"ground": "give it as --descriptions (vidground ground --descriptions PATH QUERY)",
                      "ask": "give it as --descriptions (vidground ask --descriptions PATH QUESTION ...)",
                      "events": "give it as --descriptions (vidground events --descriptions PATH)",
                      "describe": "it needs no describing (vidground ground --descriptions PATH QUERY uses it)"}


def _as_command_line(args: argparse.Namespace, exc: VidgroundError) -> str:
    """``exc``'s text, where it is a descriptions file given as the VIDEO (``descriptions_file``: the session's
    hint names its Python call, ``events(descriptions=PATH)``), with the command's own option instead."""
    reason = getattr(exc, "descriptions_file", None)
    if not isinstance(exc, VideoDecodeError) or reason is None or args.command not in _GIVE_DESCRIPTIONS:
        return str(exc)
    return (f"{exc.path}: {reason}; a {Path(exc.path).suffix} file looks like descriptions, not a video: "
            f"{_GIVE_DESCRIPTIONS[args.command]}")


def _doing_note(exc: BaseException) -> str:
    """What a Ctrl-C stopped, when it stopped the reasoner (the interrupt's ``doing``, :func:`_on_interrupt`): its
    request under way was abandoned, its reply lost though a remote model may bill it (said only of one)."""
    if getattr(exc, "doing", None) != "reasoning":
        return ""
    if not _REASONER["remote"]:
        return " while the reasoner was answering: its answer under way was abandoned (the same command asks again)"
    return (" while the reasoner was answering: its request under way was abandoned (its reply is lost, though a "
            "remote model may still bill it; the same command asks again)")


#: reasoner backends that answer in this process: nothing they were doing is billed
_LOCAL_REASONERS = frozenset({"embedding", "naive", "vtggpt", "hf", "llamacpp"})


def _remote_reasoner(args: argparse.Namespace) -> bool:
    """Whether the command's reasoner (or its fallback) may be a remote, billed model: any but
    :data:`_LOCAL_REASONERS` (the default is ``embedding``), a plug-in's included."""
    from vidground.registry import split_spec

    specs = [getattr(args, "reasoner", None) or "embedding"]
    specs += [str(v) for k, v in getattr(args, "reasoner_opt", None) or [] if k == "fallback" and v]
    from temporal_reasoner import reasoners

    try:  # an alias (offline, similarity: the embedding reasoner) is the backend it names
        return any(reasoners._aliases.get(name, name) not in _LOCAL_REASONERS
                   for name in (split_spec(spec)[0] for spec in specs))
    except VidgroundError:  # a bad spec fails before anything is asked
        return True


def _kept_note(args: argparse.Namespace, exc: BaseException | None = None) -> str:
    """What an interrupted command kept (``exc``: the interrupt, which may say how much), and how to go on from it."""
    if args.command == "eval":
        kept = "events.jsonl" if getattr(args, "dataset", None) == "activitynet-events" else "results.jsonl"
        saved = (f" ({exc.saved} result(s) saved by this run, {exc.done} of {exc.total} queries done"
                 + ("; stopped at once: the queries under way were lost, the resumed run asks them again)"
                    if getattr(exc, "abandoned", False) else ")") if getattr(exc, "saved", None) is not None else "")
        return f"; every finished item is kept in {Path(args.out) / kept}: the same command resumes there{saved}"
    if args.command not in ("ground", "ask", "events", "describe") or getattr(args, "descriptions", None):
        return ""
    if args.no_cache:
        return " (--no-cache: nothing described was kept; without it the description cache keeps it for the next run)"
    if dict(getattr(args, "describer_opt", None) or []).get("mode") == "aware":  # CachedDescriber passes these through
        return " (a query-aware describer's descriptions depend on the query and are not cached: nothing was kept)"
    if getattr(args, "strategy", "uniform") == "coarse-to-fine" and _compares_frames(args.describer):
        return (" (a coarse-to-fine search of a describer that compares each frame with the one before uses no "
                "description cache: nothing described was kept)")
    from frame_describer.cache import default_cache_unusable
    from pipelines.session import implied_cache

    try:
        cache, default = (args.cache, False) if args.cache else implied_cache(args.describer)
    except NoCacheFolderError:  # no home directory: no default cache
        cache, default = None, True
    if cache is None and not default:  # a plug-in describer: cached only where the user names a cache
        return (f" (describer {args.describer!r} is not one of vidground's own, so nothing described was kept: "
                "--cache FILE keeps it for the next run)")
    if default and (cache is None or default_cache_unusable(cache)):
        return (f" (the default description cache{f' {cache}' if cache else ''} could not be used, so nothing "
                "described was kept: --cache FILE keeps it for the next run)")
    new = _stored_descriptions() - getattr(args, "stored_before", 0)
    return (f"; the frames described so far are kept in the description cache {cache} ({new} new "
            "description(s) stored by this command): the same command does not describe them again")


def _compares_frames(spec: str | None) -> bool:
    """Whether the describer ``spec`` names compares each frame with the one before (``cv``): a coarse-to-fine search
    of it uses no description cache (:meth:`pipelines.session.Session._cached`)."""
    from frame_describer import DEFAULT_DESCRIBER, describers
    from vidground.registry import split_spec

    spec = spec or DEFAULT_DESCRIBER
    try:
        return bool(getattr(describers.target(split_spec(spec)[0], spec=spec), "uses_previous_frame", False))
    except VidgroundError:  # an unknown spec failed before anything was described
        return False


def _stored_descriptions() -> int:
    """Descriptions the description caches of this process have stored so far (none before one is loaded)."""
    cache = sys.modules.get("frame_describer.cache")
    return cache.stored_in_process() if cache is not None else 0


def _stop_streams(interrupted: bool) -> None:
    """Tell every frame stream of the process, in any thread, to stop (or, at a command's start and end, that
    none need to): vidground.interrupts, which the sampler reads once it is imported (a Ctrl-C while a model loads,
    before it was, stopped nothing)."""
    (interrupts.interrupt if interrupted else interrupts.INTERRUPTED.clear)()


#: what the first Ctrl-C says, by what the main thread is doing (:func:`vidground.interrupts.under_way`)
_STOPPING = {
    "describing": "vidground: stopping: the frames being described finish first and are kept (a second Ctrl-C stops "
                  "at once: the answers still in flight are then lost, though paid)",
    "reasoning": "vidground: stopping: the reasoner's request under way is abandoned (its reply is lost, though a "
                 "remote model may still bill it); nothing is being described",
    "reasoning locally": "vidground: stopping: the reasoner's answer under way is abandoned; nothing is being "
                         "described",
}

#: whether this command's reasoner may be a remote, billed model (:func:`_remote_reasoner`): set by :func:`main`
_REASONER = {"remote": True}

#: whether this command describes frames (a video given): set by :func:`main`; without, a Ctrl-C outside the
#: reasoner's calls (a model loading, descriptions being read) says no frame is being described
_DESCRIBES = {"frames": True}


def _on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: the main thread gets its KeyboardInterrupt as before, and the other threads' frame streams
    (an eval's video workers, which it does not reach) stop at their next frame. The first one says what is under
    way (:data:`_STOPPING`): frames being described are finished first (paid: kept), so that a silent wait for them
    is not taken for a hang; a reasoner's request is abandoned, its reply lost. The interrupt carries ``doing``
    (what it stopped) for the closing line, and ``signum``: SIGTERM is taken the same way, said by name, exit 143."""
    doing = interrupts.under_way()
    if not interrupts.INTERRUPTED.is_set():
        said = "reasoning locally" if doing == "reasoning" and not _REASONER["remote"] else doing or ""
        note = _STOPPING.get(said) or (_STOPPING["describing"] if _DESCRIBES["frames"] else
                                              "vidground: stopping (nothing is being described)")
        print(interrupts.naming(note, signum), file=sys.stderr)
    _stop_streams(True)
    exc = KeyboardInterrupt()
    exc.doing = doing  # type: ignore[attr-defined]
    exc.signum = signum  # type: ignore[attr-defined]  # SIGTERM: said, and exit 143
    raise exc


_on_interrupt.raises_keyboard_interrupt = True  # type: ignore[attr-defined]  # an eval may run it from its own


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _options_before_command(parser, list(sys.argv[1:] if argv is None else argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        _place_extras(parser, args, extras)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for run records
    _setup_logging(logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
                   everything=args.debug, loading_notes=not getattr(args, "quiet", False), secrets=_secrets(args),
                   said_in_result=_prints_warnings(args))
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {n: signal.getsignal(n) for n in interrupts.STOP_SIGNALS} if main_thread else {}
    # only in place of Python's own handling (SIGINT's KeyboardInterrupt, SIGTERM's default: the process killed
    # silently): a program that set its own keeps it
    python_own = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    ours = [n for n, h in previous.items() if h is python_own[n]]
    for n in ours:
        signal.signal(n, _on_interrupt)
    _stop_streams(False)
    args.stored_before = _stored_descriptions()  # an interrupted command says how many it kept
    _DESCRIBES["frames"] = args.command in ("ground", "ask", "events", "describe", "eval", "demo") \
        and not getattr(args, "descriptions", None)
    _REASONER["remote"] = _remote_reasoner(args)
    try:
        return _run(args)
    finally:
        for n in ours:
            signal.signal(n, previous[n])
        _stop_streams(False)  # the next command's streams run; those opened before the Ctrl-C stay stopped


def _interrupted(args: argparse.Namespace, exc: KeyboardInterrupt) -> int:
    signum = getattr(exc, "signum", None) or signal.SIGINT
    print(interrupts.naming(f"vidground: interrupted{_doing_note(exc)}{_finished_note(args, exc)}"
                            f"{_kept_note(args, exc)}", signum), file=sys.stderr)
    return interrupts.exit_status(signum)


class OutputError(VidgroundError):
    """The command's output cannot be written to stdout (closed, a full disk, ``/dev/full``): the user's stdout,
    not a fault of vidground's (it was ``internal error: OSError: [Errno 28] ...``)."""


class _Stdout:
    """``sys.stdout`` while a command runs: a write or flush that fails is an :class:`OutputError`, except a closed
    pipe (``| head``), which ends the command quietly as before."""

    def __init__(self, stream: Any):
        self._stream = stream

    def _failed(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write the output: {exc.strerror or exc}")

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _needs_stdout(args: argparse.Namespace) -> bool:
    """Whether the command's result is what it prints on stdout (not a file or a run folder it writes, with a
    summary line beside it)."""
    if args.command == "describe":
        return not args.output or args.output == "-"
    return args.command not in ("eval", "report", "import-captions", "export-tuning-data")


def _run(args: argparse.Namespace) -> int:
    stdout = sys.stdout
    try:
        if stdout is None and _needs_stdout(args):  # closed (`>&-`): print() would drop the result, exit 0
            raise OutputError("cannot write the output: stdout is closed")
        if stdout is not None:
            sys.stdout = _Stdout(stdout)
        try:
            status = int(args.func(args) or 0)
            if sys.stdout is not None:
                sys.stdout.flush()  # a full disk is said here, not at exit
            return status
        finally:
            if isinstance(sys.stdout, _Stdout):
                sys.stdout = stdout
    except KeyboardInterrupt as exc:
        return _interrupted(args, exc)
    except OutputError as exc:  # never worth a traceback, --debug or not
        print(f"vidground: error: {exc}", file=sys.stderr)
        return 1
    except VidgroundError as exc:
        if args.debug:
            raise
        print(_said(f"vidground: error: {_as_command_line(args, exc)}{_paid_note(exc)}"), file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except Exception as exc:  # an unexpected failure: one line unless --debug
        if (interrupt := interrupts.behind(exc)) is not None:  # a Ctrl-C, which a lock turned into its error
            return _interrupted(args, interrupt)
        if args.debug:
            raise
        print(_said(f"vidground: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"),
              file=sys.stderr)
        return 1


def _said(line: str) -> str:
    """An error as printed on the terminal: a path or a model's text in it cannot recolour or move the cursor (a
    file named with an ESC sequence), each of its lines with its control characters escaped."""
    return "\n".join(printable(part) for part in line.split("\n"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
