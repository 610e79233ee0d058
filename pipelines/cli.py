"""The ``vidground`` command line.

    vidground ground VIDEO "QUERY" [--json]
    vidground ground --descriptions FILE "QUERY"
    vidground describe VIDEO -o FILE
    vidground import-captions CAPTIONS... -o DIR
    vidground demo

Exit codes: 0 success; 1 a vidground error (one line on stderr, a traceback only with --debug);
2 bad command-line usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from frame_describer.errors import ConfigurationError, VidgroundError

log = logging.getLogger("vidground")


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


def _backend_options(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """Options for a stage's backend: --describer-opt / --reasoner-opt KEY=VALUE, plus --base-url and
    --api-key for openai: backends."""
    spec = getattr(args, stage, None) or ""
    opts: dict[str, Any] = dict(getattr(args, f"{stage}_opt", None) or [])
    if spec.split(":", 1)[0].lower() == "openai":
        if getattr(args, "base_url", None):
            opts["base_url"] = args.base_url
        if getattr(args, "api_key", None):
            opts["api_key"] = args.api_key
    return opts


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame sampling and description (stage 1)")
    g.add_argument("--describer", default=None, metavar="SPEC",
                   help="describer backend: cv (offline classical vision, default), openai:MODEL, hf:MODEL_OR_PATH")
    g.add_argument("--fps", type=float, default=None, help="frames sampled per second of video (default 1)")
    g.add_argument("--num-frames", type=int, default=None, metavar="N",
                   help="sample N evenly spaced frames instead of a fixed rate")
    g.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="cap on frames per video; the rate is lowered to fit (default: no cap)")
    g.add_argument("--max-side", type=int, default=512, metavar="PX",
                   help="frames are resized so their longest side is at most PX pixels (default 512)")
    g.add_argument("--describer-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option for the describer backend, repeatable (e.g. batch_size=8, device=cuda, detail=low)")
    g.add_argument("--cache", default=None, metavar="FILE",
                   help="SQLite description cache: frames described before are not described again "
                        "(default: $VIDGROUND_CACHE when set, else no cache)")


def _add_remote(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("remote backends (openai:MODEL)")
    g.add_argument("--base-url", default=None, metavar="URL",
                   help="an OpenAI-compatible server (vLLM, Ollama, llama.cpp...); default $OPENAI_BASE_URL or OpenAI")
    g.add_argument("--api-key", default=None, metavar="KEY", help="API key; default $OPENAI_API_KEY")


def add_caption_format_args(p: Any, flag: str = "--descriptions-format") -> None:
    """``FLAG`` (the format of a descriptions file) and ``--clip-seconds``, on a parser or an argument group."""
    from frame_describer.caption_formats import FORMAT_CHOICES

    p.add_argument(flag, dest="descriptions_format", default="auto", choices=FORMAT_CHOICES,
                   help="the file's format: vidground JSONL or another tool's captions (default auto: detected "
                        "from each file's content)")
    p.add_argument("--clip-seconds", type=float, default=None, metavar="L",
                   help="clip length of vtggpt captions (default 2) or interval of seconds-json captions (default 1)")


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
                             "       vidground ground [options] --descriptions FILE QUERY",
                       description="Find when QUERY happens. Give VIDEO QUERY to run both stages, or "
                                   "--descriptions FILE QUERY to run stage 2 alone on your own descriptions.")
    g.add_argument("inputs", nargs="+", metavar="VIDEO QUERY", help="the video file (omit it with --descriptions), then the query")
    g.add_argument("--descriptions", default=None, metavar="FILE",
                   help='a JSONL descriptions file, one frame a line: {"t": seconds, "text": "..."}; '
                        "other tools' captions (vtggpt, seconds-json, csv) are detected")
    add_caption_format_args(g)
    g.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="the video's duration; with --descriptions it is otherwise read from the file or inferred")
    g.add_argument("--reasoner", default=None, metavar="SPEC",
                   help="reasoner backend: embedding (offline, default), openai:MODEL, hf:MODEL_OR_PATH, llamacpp:PATH.gguf")
    g.add_argument("--reasoner-opt", type=parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option for the reasoner backend, repeatable (e.g. n_ctx=8192, fallback=embedding)")
    g.add_argument("--top-k", type=int, default=None, metavar="K", help="return at most K intervals")
    g.add_argument("--json", action="store_true", help="print the GroundingResult as JSON instead of a table")
    _add_sampling(g)
    _add_remote(g)
    g.set_defaults(func=cmd_ground)

    d = sub.add_parser("describe", help="stage 1 only: describe a video's frames into a JSONL file",
                       description="Describe sampled frames of VIDEO; writes JSONL, one frame a line, to -o or stdout.")
    d.add_argument("video", metavar="VIDEO")
    d.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="where to write the descriptions (written atomically); default: stdout")
    d.add_argument("--query", default=None, help="the query, for query-aware describers")
    _add_sampling(d)
    _add_remote(d)
    d.set_defaults(func=cmd_describe)

    ic = sub.add_parser("import-captions", help="convert other tools' caption files into vidground descriptions files",
                        description="Read caption files (VTG-GPT clip captions, per-second JSON, CSV, or vidground "
                                    "JSONL) and write one vidground JSONL descriptions file per input, named by the "
                                    "video id (the input's name without its extension and a trailing _cap), with "
                                    "the video id, duration and step on every line.")
    ic.add_argument("inputs", nargs="+", metavar="CAPTIONS", help="caption files")
    ic.add_argument("-o", "--output", required=True, metavar="DIR_OR_FILE",
                    help="a folder (OUT/VIDEO_ID.jsonl for each input), or a .jsonl file for a single input")
    add_caption_format_args(ic, "--format")
    ic.set_defaults(func=cmd_import_captions)

    m = sub.add_parser("demo", help="render a synthetic video with known events and ground queries about them (offline)",
                       description="Renders a short video with known events, grounds a query about each on the offline "
                                   "backends, and prints predictions beside the true intervals with their IoU.")
    m.add_argument("--keep", default=None, metavar="DIR", help="keep the rendered video and descriptions in DIR")
    m.add_argument("--json", action="store_true", help="print the results as JSON")
    m.set_defaults(func=cmd_demo)

    try:  # evaluation commands (eval, score, report, compare)
        from pipelines.eval_cli import register
    except ImportError as exc:  # pragma: no cover - only while a module is missing
        log.debug("evaluation commands unavailable: %s", exc)
    else:
        register(sub)
    for command in sub.choices.values():  # `vidground ground --verbose ...` works as well as before the command
        _add_global_options(command, default=argparse.SUPPRESS)
    return parser


def _add_global_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--verbose and --debug; a command's copy defaults to SUPPRESS so it never resets what was given before it."""
    g = p.add_argument_group("global options") if default is argparse.SUPPRESS else p
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log what happens (INFO level) on stderr")
    g.add_argument("--debug", action="store_true", default=default,
                   help="log everything and show tracebacks on errors")


def _split_inputs(args: argparse.Namespace) -> tuple[str | None, str]:
    inputs = args.inputs
    if args.descriptions:
        if len(inputs) != 1:
            raise ConfigurationError("with --descriptions give only the QUERY (no video)")
        return None, inputs[0]
    if len(inputs) != 2:
        raise ConfigurationError('give VIDEO and QUERY (quote the query: vidground ground video.mp4 "a person opens a door")')
    return inputs[0], inputs[1]


def format_result_table(result: Any) -> str:
    lines = [f"query:     {result.query}"]
    dur = f"{result.duration:.1f} s" + (" (inferred)" if result.duration_inferred else "")
    lines.append(f"video:     {result.video}  ({dur})")
    lines.append(f"backends:  describer={result.describer}  reasoner={result.reasoner}")
    usage = result.total_usage
    if usage.requests:
        cost = f", est. ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        lines.append(f"usage:     {usage.requests} requests, {usage.prompt_tokens} prompt + "
                     f"{usage.completion_tokens} completion tokens{cost}")
    for w in result.warnings:
        lines.append(f"warning:   {w}")
    if not result.intervals:
        lines.append("no interval found")
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'#':>3}  {'start':>8}  {'end':>8}  {'length':>7}  {'score':>7}")
    for i, iv in enumerate(result.intervals, 1):
        score = "-" if iv.score is None else f"{iv.score:.3f}"
        lines.append(f"{i:>3}  {iv.start:>8.2f}  {iv.end:>8.2f}  {iv.length:>7.2f}  {score:>7}")
    return "\n".join(lines)


def cmd_ground(args: argparse.Namespace) -> int:
    from pipelines.api import ground

    video, query = _split_inputs(args)
    result = ground(
        video, query, descriptions=args.descriptions, duration=args.duration,
        descriptions_format=args.descriptions_format, clip_seconds=args.clip_seconds,
        describer=args.describer if video else None, reasoner=args.reasoner,
        fps=args.fps, num_frames=args.num_frames, max_frames=args.max_frames, max_side=args.max_side,
        top_k=args.top_k, cache=args.cache, progress=True, describer_options=_backend_options(args, "describer") or None,
        reasoner_options=_backend_options(args, "reasoner") or None,
    )
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(format_result_table(result))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from pipelines.api import describe

    described = describe(args.video, describer=args.describer, fps=args.fps, num_frames=args.num_frames,
                         max_frames=args.max_frames, max_side=args.max_side, query=args.query, cache=args.cache,
                         progress=True,
                         describer_options=_backend_options(args, "describer") or None)
    if args.output:
        n = described.write(args.output)
        print(f"wrote {n} descriptions to {args.output} ({described.duration:.1f} s of video, {described.seconds:.1f} s)",
              file=sys.stderr)
    else:
        meta = {"video": described.video, "duration": round(described.duration, 3), "step": described.step,
                "describer": described.describer}
        for d in described.descriptions:
            print(json.dumps({**meta, **d.model_dump(mode="json")}, ensure_ascii=False))
    return 0


def cmd_import_captions(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frame_describer.caption_formats import video_id_from_path
    from frame_describer.descriptions_io import write_descriptions
    from frame_describer.errors import InputError
    from pipelines.api import load_descriptions

    out = Path(args.output)
    to_file = out.suffix.lower() == ".jsonl" and not out.is_dir()
    if to_file and len(args.inputs) > 1:
        raise ConfigurationError(f"{len(args.inputs)} inputs need a folder for -o, not the file {out}")
    targets: dict[Path, Path] = {}
    for name in args.inputs:
        src = Path(name)
        dest = out if to_file else out / f"{video_id_from_path(src)}.jsonl"
        if dest in targets:
            raise ConfigurationError(f"{targets[dest]} and {src} would both be written to {dest} (same video id)")
        if src.exists() and dest.exists() and dest.resolve() == src.resolve():
            raise ConfigurationError(f"{src} would be overwritten by its own conversion; choose another -o")
        targets[dest] = src
    for dest, src in targets.items():
        described = load_descriptions(src, format=args.descriptions_format, clip_seconds=args.clip_seconds)
        video = video_id_from_path(src)
        meta = {"video": video, "duration": round(described.duration, 6), "step": described.step}
        if described.duration_inferred:
            meta["duration_inferred"] = True
        try:
            n = write_descriptions(dest, described.descriptions, **meta)
        except OSError as exc:
            raise InputError(f"cannot write ({exc.strerror or exc})", path=dest) from None
        dur = f"{described.duration:g} s" + (" (inferred)" if described.duration_inferred else "")
        print(f"{src} -> {dest}: {n} descriptions, step {described.step:g} s, {dur}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import format_demo, run_demo

    report = run_demo(keep=args.keep)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_demo(report))
    return 0


_OUR_LOGGERS = ("vidground", "frame_describer", "temporal_reasoner", "pipelines", "prompts")


def _setup_logging(level: int, *, everything: bool = False) -> None:
    """Log to stderr: our packages at ``level``, other libraries at WARNING (everything with --debug).

    Records propagate to the root handler as usual, so embedding programs and test harnesses that
    capture logging still see them.
    """
    logging.basicConfig(level=logging.DEBUG if everything else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in _OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for run records
    _setup_logging(logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
                   everything=args.debug)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vidground: interrupted", file=sys.stderr)
        return 130
    except VidgroundError as exc:
        if args.debug:
            raise
        print(f"vidground: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except Exception as exc:  # an unexpected failure: one line unless --debug
        if args.debug:
            raise
        print(f"vidground: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
