"""Prompt study for the chat-model reasoners on the Charades oracle benchmark (stage 2 only).

    python benchmarks/llm_prompts.py                                   # Gemma 3 270M, 40 dev queries, every choice
    python benchmarks/llm_prompts.py --choices baseline mmss -n 60 --json out.json
    python benchmarks/llm_prompts.py --llm llamacpp:/models/qwen2.5-7b-instruct-q4_k_m.gguf

Each *prompt choice* changes one thing from the library's prompt (``baseline``, byte for byte the
messages :func:`temporal_reasoner.structured.build_messages` sends):

- ``mmss``: transcript times as ``mm:ss.s`` instead of seconds (the answer stays in seconds);
- ``query_first``: the query before the transcript (and repeated after it) instead of only after;
- ``evidence``: the model first quotes the time spans of the lines that show the query
  (``{"evidence": [...], "intervals": [...]}``), then answers;
- ``one_interval``: at most one interval instead of three.

Every choice is asked once per query with greedy decoding (a llama.cpp model's output is held to
the choice's JSON schema by a grammar; other chat reasoners get JSON mode), without re-asking: an
unusable reply scores IoU 0. Beside each choice the same LLM answers are refined by the hybrid
reasoner (``benchmarks/hybrid_reasoner.py``), and the trivial baselines and the embedding reasoner
are shown on the same queries. The subset is a seeded sample of the benchmark's *dev* subset.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # the repo, benchmarks/

import prompts  # noqa: E402
from vidground.errors import ConfigurationError, VidgroundError  # noqa: E402
from pipelines.metrics import compute_metrics, mean_prior  # noqa: E402
from hybrid_reasoner import HybridReasoner  # noqa: E402
from oracle import STYLES, load_split, oracle_descriptions  # noqa: E402
from temporal_reasoner import GroundingResult, Transcript, get_reasoner  # noqa: E402
from temporal_reasoner.parsing import INTERVALS_SCHEMA, ReplyError, extract_json, parse_reply_detailed  # noqa: E402
from temporal_reasoner.structured import _TIME_NOTES, build_messages  # noqa: E402

COLUMNS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


@dataclass(frozen=True)
class PromptChoice:
    name: str
    time_style: str = "seconds"
    query_first: bool = False
    evidence: bool = False
    max_intervals: int = 3


CHOICES: dict[str, PromptChoice] = {c.name: c for c in (
    PromptChoice("baseline"),
    PromptChoice("mmss", time_style="mmss"),
    PromptChoice("query_first", query_first=True),
    PromptChoice("evidence", evidence=True),
    PromptChoice("one_interval", max_intervals=1),
)}

#: Hybrid refinements applied to every choice's answers: name -> HybridReasoner options.
HYBRIDS: dict[str, dict[str, Any]] = {
    "hybrid pick": {"mode": "pick", "no_overlap": "curve"},
    "hybrid pick/keep": {"mode": "pick", "no_overlap": "llm"},
    "hybrid snap": {"mode": "snap"},
    "hybrid snap 5s": {"mode": "snap", "window": 5.0},
}


def study_messages(choice: PromptChoice, query: str, transcript: Transcript) -> list[dict[str, str]]:
    """The messages for one prompt choice (``baseline`` = the library's own messages)."""
    if not (choice.query_first or choice.evidence):
        return build_messages(query, transcript, time_style=choice.time_style, max_intervals=choice.max_intervals)
    values = dict(duration=f"{transcript.duration:.1f}", time_note=_TIME_NOTES[choice.time_style],
                  transcript=transcript.render(choice.time_style), query=query, max_intervals=choice.max_intervals)
    user = prompts.load("reason_query_first_user" if choice.query_first else "reason_user", 1).render(**values)
    system = prompts.load("reason_evidence_system" if choice.evidence else "reason_system", 1).render()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def reply_schema(choice: PromptChoice) -> dict[str, Any]:
    """The JSON schema a choice's reply must follow (evidence first, so it is written before the answer)."""
    schema = json.loads(json.dumps(INTERVALS_SCHEMA))
    schema["properties"]["intervals"].update(minItems=1, maxItems=choice.max_intervals)
    if choice.evidence:
        schema["properties"] = {"evidence": {"type": "array", "items": {"type": "string", "maxLength": 24},
                                             "minItems": 1, "maxItems": 3}, **schema["properties"]}
        schema["required"] = ["evidence", "intervals"]
    return schema


def ask(llm: Any, choice: PromptChoice, query: str, transcript: Transcript,
        grammars: dict[tuple[str, int], Any]) -> tuple[GroundingResult | None, str, str | None]:
    """One greedy request; returns ``(result or None, raw text, error or None)``."""
    messages = study_messages(choice, query, transcript)
    if hasattr(llm, "grammar"):  # llama.cpp: a grammar for this choice's schema and the video's digits
        from llama_cpp import LlamaGrammar

        from temporal_reasoner.llamacpp_reasoner import grammar_text

        digits = len(str(int(max(transcript.duration, 1.0))))
        key = (choice.name, digits)
        if key not in grammars:
            grammars[key] = LlamaGrammar.from_string(grammar_text(reply_schema(choice), int_digits=digits),
                                                     verbose=False)
        reply = llm.chat(messages, {"type": "json_object"}, grammar=grammars[key])
    elif hasattr(llm, "chat"):
        reply = llm.chat(messages, {"type": "json_object"})
    else:
        raise ConfigurationError(f"reasoner {getattr(llm, 'name', llm)!r} has no chat(messages, response_format)")
    try:
        data = extract_json(reply.text)
        if isinstance(data, dict) and "intervals" in data:
            data = {"intervals": data["intervals"]}
        parsed = parse_reply_detailed(json.dumps(data), duration=transcript.duration, step=transcript.step,
                                      max_intervals=choice.max_intervals)
    except (ReplyError, TypeError, ValueError) as exc:
        return None, reply.text, str(exc)
    result = GroundingResult(query=query, duration=transcript.duration, intervals=parsed.intervals,
                             reasoner=choice.name, usage={"reason": reply.usage}, warnings=parsed.warnings)
    return result, reply.text, None


def run(llm_spec: str, *, choices: list[str], n: int = 40, seed: int = 0, style: str = "oracle",
        root: str | None = None, llm_options: dict[str, Any] | None = None,
        log: Any = sys.stderr) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the table, and per-query records (query, GT, raw reply, predictions)."""
    unknown = [c for c in choices if c not in CHOICES]
    if unknown:
        raise ConfigurationError(f"unknown prompt choice(s) {', '.join(unknown)}; choose from: {', '.join(CHOICES)}")
    split = load_split(root, n_dev=1000, n_check=1000, seed=0)
    prior = mean_prior(split.dev)
    queries = random.Random(seed).sample(split.dev, min(n, len(split.dev)))
    transcripts = {}
    for q in queries:
        v = split.videos[q.video]
        transcripts[q.video] = Transcript.from_descriptions(oracle_descriptions(v, split.classes, style=style, seed=0),
                                                            duration=v.length, step=1.0)
    llm = get_reasoner(llm_spec, **(llm_options or {}))
    hybrids = {name: HybridReasoner(llm, **opts) for name, opts in HYBRIDS.items()}
    embedding = get_reasoner("embedding")
    curve_source = next(iter(hybrids.values())).embedding  # the same candidate settings for every hybrid
    emb_preds, curves = {}, {}
    for q in queries:
        tr = transcripts[q.video]
        emb_preds[q.qid] = [iv.as_list() for iv in embedding.ground(q.query, tr).intervals]
        curves[q.qid] = curve_source.ground(q.query, tr)
    m = compute_metrics(emb_preds, queries, bootstrap=0, prior=prior, baselines=True)
    rows = [{"method": name, "prompt": "-", **vals, "failures": 0, "s/query": 0.0} for name, vals in m.baselines.items()]
    rows.append({"method": "embedding", "prompt": "-", **m.values, "failures": 0, "s/query": 0.0})
    records: list[dict[str, Any]] = []
    grammars: dict[tuple[str, int], Any] = {}
    for cname in choices:
        choice = CHOICES[cname]
        preds: dict[str, Any] = {}
        hyb: dict[str, dict[str, Any]] = {h: {} for h in hybrids}
        started = time.perf_counter()
        for k, q in enumerate(queries):
            tr = transcripts[q.video]
            try:
                result, raw, error = ask(llm, choice, q.query, tr, grammars)
            except VidgroundError as exc:
                result, raw, error = None, "", str(exc)
            preds[q.qid] = [iv.as_list() for iv in result.intervals] if result else None
            for h, reasoner in hybrids.items():
                out = reasoner.combine(q.query, tr, result, curves[q.qid])
                hyb[h][q.qid] = [iv.as_list() for iv in out.intervals]
            records.append({"prompt": cname, "qid": q.qid, "query": q.query, "windows": q.windows,
                            "duration": tr.duration, "raw": raw, "error": error, "llm": preds[q.qid],
                            **{h: hyb[h][q.qid] for h in hybrids}})
            print(f"  {cname} {k + 1}/{len(queries)} {time.perf_counter() - started:.0f}s", file=log, flush=True)
        per_query = (time.perf_counter() - started) / max(len(queries), 1)
        m = compute_metrics(preds, queries, bootstrap=0, baselines=False)
        rows.append({"method": llm_spec, "prompt": cname, **m.values, "failures": m.n_failures,
                     "s/query": round(per_query, 1)})
        for h in hybrids:
            m = compute_metrics(hyb[h], queries, bootstrap=0, baselines=False)
            rows.append({"method": h, "prompt": cname, **m.values, "failures": m.n_failures, "s/query": 0.0})
        print(format_table(rows[-1 - len(hybrids):]), file=log, flush=True)
    return rows, records


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"| method | prompt | {' | '.join(COLUMNS)} | failed | s/query |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        vals = " | ".join(f"{r.get(c, math.nan):.1f}" for c in COLUMNS)
        lines.append(f"| {r['method']} | {r['prompt']} | {vals} | {r.get('failures', 0)} | {r.get('s/query', 0):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="llamacpp:gemma3-270m", help="chat reasoner spec (default llamacpp:gemma3-270m)")
    ap.add_argument("--choices", nargs="+", default=list(CHOICES), help=f"prompt choices (default: all of {', '.join(CHOICES)})")
    ap.add_argument("-n", type=int, default=40, help="queries, a seeded sample of the dev subset (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    ap.add_argument("--style", choices=STYLES, default="oracle", help="transcript style (default oracle)")
    ap.add_argument("--data-root", default=None, help="folder holding charades-sta/ (default: $VIDGROUND_DATA or ../shared/data)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch and llama.cpp (default 1)")
    ap.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the rows and per-query records as JSON")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    llm_options: dict[str, Any] = {}
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
        if args.llm.startswith("llamacpp"):
            llm_options["n_threads"] = args.threads
    try:
        rows, records = run(args.llm, choices=args.choices, n=args.n, seed=args.seed, style=args.style,
                            root=args.data_root, llm_options=llm_options)
    except VidgroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    print(f"\n{args.n} Charades-STA train queries sampled (seed {args.seed}) from the oracle benchmark's dev subset, "
          f"{args.style} transcripts; one greedy request per query, no re-ask; IoU >= m, top-1, GT as annotated; "
          f"total {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "records": records}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
