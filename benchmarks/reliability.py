"""Reliability figures (issue #18): evals killed at random moments, a fault storm, two evals on one cache.

Every part runs real ``vidground eval`` processes against a local OpenAI-compatible server (the test
suite's fake, in this process) that answers each query with an interval derived from the query alone,
so a run's results can be compared with an uninterrupted reference run:

- ``kill``: an eval of Q queries (chat reasoner, concurrency 2, each answer after a short delay) is
  SIGKILLed at a random moment, started again with the same command, killed again... until a run ends
  by itself. Then: queries *lost* (selected, no result), *duplicated* (more than one result line:
  a resumed run ran a finished query again) and *changed* (a result unlike the reference run's).
- ``faults``: the same eval while the server answers a seeded share of requests with 429 (with
  Retry-After), 500/503, a stall past the client's timeout, a dropped connection or a malformed body.
  The fake server stands in for a flaky *remote* one, so its stalls are resent as a remote server's are
  (``--reasoner-opt timeout_retries=N``, ``--storm-timeout-retries``, default ``--storm-retries``): a server
  on 127.0.0.1 that times out is otherwise taken to be still working and not sent the request again.
  Every query must end ``ok`` or ``failed`` with its cause; ``--retry-failed`` against a healthy server
  must then finish them all, with the reference's answers.
- ``shared-cache``: ``benchmarks/shared_cache.py`` (two evals at once on one description cache): the
  share of describer calls beyond one per frame.

Run: python benchmarks/reliability.py [--kills 30] [--queries 40] [--seed 0] [--parts kill faults shared-cache]
[--storm-retries 1] [--storm-timeout-retries N]
It writes benchmarks/results/reliability.json (``python benchmarks/make_page.py`` puts it on
docs/benchmarks.md) and exits 1 when anything was lost, duplicated or changed, a failure has no cause,
or the shared cache duplicated 5% of the describer calls or more.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _results import Recorder, add_arguments  # noqa: E402

DURATION = 60.0


def answer_for(body: Any) -> str:
    """The server's answer to a grounding request: an interval that depends only on the query."""
    text = json.dumps(body.get("messages", [])[-1:] if isinstance(body, dict) else body)
    h = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    start = h % 40
    return json.dumps({"intervals": [{"start": start, "end": start + 5 + h % 13, "score": 0.9}]})


def write_dataset(folder: Path, n: int) -> tuple[Path, Path]:
    desc = folder / "descriptions"
    desc.mkdir(parents=True)
    rows = []
    for v in range(max(1, n // 4)):
        lines = [json.dumps({"t": float(t), "text": f"video {v}: a person does thing {t % 7}"}) for t in range(int(DURATION))]
        (desc / f"v{v}.jsonl").write_text("\n".join(lines) + "\n")
    for i in range(n):
        rows.append({"qid": f"q{i}", "video": f"v{i % max(1, n // 4)}", "query": f"the person does thing {i}",
                     "duration": DURATION, "windows": [[float(i % 40), float(i % 40 + 8)]]})
    dataset = folder / "queries.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dataset, desc


def eval_command(dataset: Path, desc: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "eval", "jsonl", "--dataset-file", str(dataset),
            "--descriptions", str(desc), "--reasoner", "openai:test-model", "--reasoner-opt", f"base_url={base_url}",
            "--reasoner-opt", "timeout=1.5", "--reasoner-opt", "retry_base_delay=0.05", "--reasoner-opt",
            "response_formats=text", "--out", str(out), "--no-report", "--quiet", "--concurrency", "2",
            "--query-concurrency", "2", *extra]


def results_of(out: Path) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    lines = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines() if ln.strip()]
    return {r["qid"]: r for r in lines}, Counter(r["qid"] for r in lines)


def done_lines(out: Path) -> int:
    path = out / "results.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def prediction(rec: dict[str, Any]) -> Any:
    return [iv[:2] for iv in rec.get("intervals") or rec.get("prediction") or []]


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-reliability-test"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def kill_at(proc: subprocess.Popen[str], out: Path, before: int, rng: random.Random, window: float, *,
            after_progress: bool) -> bool:
    """SIGKILL ``proc`` at a random moment: within ``window`` s of its start, or (``after_progress``) within
    1.5 s of its first new result line, so kills land while queries are being answered too (starting
    a process can take longer than the whole eval on a loaded machine). False when it ended first."""
    deadline = time.monotonic() + (900 if after_progress else rng.uniform(0.5, window))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if after_progress and done_lines(out) > before:
            deadline = min(deadline, time.monotonic() + rng.uniform(0.0, 1.5))
            after_progress = False
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return True


def part_kill(tmp: Path, server: Any, reference: dict[str, Any], args: argparse.Namespace, dataset: Path,
              desc: Path) -> dict[str, Any]:
    """Rounds of: start the eval in a new folder, SIGKILL it at a random moment, start it again with the
    same command... until it ends by itself; then compare that folder's results with the reference."""
    from _helpers_openai_server import Reply

    rng = random.Random(args.seed)
    server.responder = lambda req: Reply.chat(answer_for(req.json), delay=args.answer_delay)
    env = {**os.environ, "OPENAI_API_KEY": "sk-reliability-test"}
    kills = starts = rounds = lost = duplicated = changed = failed = mid_run = 0
    while kills < args.kills:
        rounds += 1
        out = tmp / f"killed-{rounds}"
        while True:
            starts += 1
            proc = subprocess.Popen(eval_command(dataset, desc, out, server.base_url), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env=env)
            before = done_lines(out)
            if kills < args.kills and kill_at(proc, out, before, rng, args.kill_window, after_progress=kills % 2 == 1):
                kills += 1
                mid_run += before < done_lines(out) < len(reference)  # killed while it was answering queries
                continue
            err = proc.communicate(timeout=900)[1]
            if proc.returncode != 0:
                raise SystemExit(f"a resumed eval failed (exit {proc.returncode}): {err[-800:]}")
            break
        got, lines = results_of(out)
        lost += sum(q not in got for q in reference)
        duplicated += sum(n > 1 for n in lines.values())
        changed += sum(q in got and prediction(got[q]) != prediction(reference[q]) for q in reference)
        failed += sum(r.get("status") != "ok" for r in got.values())
    return {"kills": kills, "kills_mid_run": mid_run, "starts": starts, "rounds": rounds, "queries": len(reference) * rounds,
            "lost": lost, "duplicated": duplicated, "changed": changed, "failed": failed}


def part_faults(tmp: Path, server: Any, reference: dict[str, Any], args: argparse.Namespace, dataset: Path,
                desc: Path) -> dict[str, Any]:
    from _helpers_openai_server import Reply

    rng = random.Random(args.seed + 1)
    kinds = Counter()

    def stormy(req: Any) -> Reply:
        roll = rng.random()
        if roll < args.fault_rate:
            kind = rng.choice(["429", "500", "503", "stall", "drop", "malformed"])
            kinds[kind] += 1
            return {"429": Reply.error(429, "slow down", headers={"retry-after": "0.1"}),
                    "500": Reply.error(500, "oops"), "503": Reply.error(503, "busy"),
                    "stall": Reply.chat(answer_for(req.json), delay=2.5), "drop": Reply(drop=True),
                    "malformed": Reply(body="{not json", status=200)}[kind]
        return Reply.chat(answer_for(req.json), delay=0.02)

    server.responder = stormy
    out = tmp / "storm"
    storm = ["--reasoner-opt", f"max_retries={args.storm_retries}",
             "--reasoner-opt", f"timeout_retries={args.storm_timeout_retries}"]  # stalls resent as a remote's
    first = run(eval_command(dataset, desc, out, server.base_url, *storm))
    got, _ = results_of(out)
    failed = {q: r for q, r in got.items() if r.get("status") != "ok"}
    no_cause = sum(not str((r.get("error") or {}).get("message") or "").strip() for r in failed.values())
    server.responder = lambda req: Reply.chat(answer_for(req.json))
    again = run(eval_command(dataset, desc, out, server.base_url, *storm, "--retry-failed"))  # the same command
    final, _ = results_of(out)
    causes = Counter(str((r.get("error") or {}).get("message") or "")[:60] for r in failed.values())
    return {"requests_faulted": dict(sorted(kinds.items())), "faults": sum(kinds.values()),
            "max_retries": args.storm_retries, "timeout_retries": args.storm_timeout_retries,
            "causes": "; ".join(f"{n}x {c}" for c, n in causes.most_common(3)),
            "exit_first": first.returncode, "ok_first": len(got) - len(failed), "failed_first": len(failed),
            "failed_without_cause": no_cause,
            "exit_retry": again.returncode, "ok_after_retry": sum(r.get("status") == "ok" for r in final.values()),
            "lost": sum(q not in final for q in reference),
            "changed": sum(q in final and final[q].get("status") == "ok" and prediction(final[q]) != prediction(reference[q])
                           for q in reference)}


def part_shared_cache(tmp: Path) -> dict[str, Any]:
    path = tmp / "shared_cache.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "shared_cache.py"), "--json", str(path)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"shared_cache.py failed: {done.stderr[-500:]}")
    return json.loads(path.read_text())


def rows_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scenario: what was done and what came of it (the page renders them as a table)."""
    rows = []
    if "kill" in data:
        k = data["kill"]
        rows.append({"scenario": "kill and resume",
                     "done": f"{k['kills']} SIGKILLs at random moments ({k['kills_mid_run']} while queries were being answered) of {k['rounds']} evals ({k['queries']} queries in "
                             f"all; chat reasoner on a local server), {k['starts']} starts of the same command",
                     "outcome": f"{k['lost']} lost, {k['duplicated']} duplicated, {k['changed']} changed "
                                f"against an uninterrupted run; {k['failed']} failed"})
    if "faults" in data:
        f = data["faults"]
        storm = ", ".join(f"{n} {kind}" for kind, n in f["requests_faulted"].items())
        rows.append({"scenario": "fault storm",
                     "done": f"{f['faults']} of the server's answers faulted ({storm}; max_retries "
                             f"{f.get('max_retries')}, timeout_retries {f.get('timeout_retries')}: stalls resent as a "
                             "remote server's), then --retry-failed against a healthy server",
                     "outcome": f"first run {f['ok_first']} ok, {f['failed_first']} failed "
                                f"({f['failed_without_cause']} without a cause: {f['causes']}); after the retry {f['ok_after_retry']} "
                                f"ok, {f['lost']} lost, {f['changed']} changed"})
    if "shared_cache" in data:
        c = data["shared_cache"]
        rows.append({"scenario": "two evals, one cache",
                     "done": f"two evals started at once on {c['videos']} videos with one --cache (cv describer)",
                     "outcome": f"{c['describer_calls']} describer calls for {c['frames']} frames: "
                                f"{c['duplicate_calls']} duplicated ({100 * (c['duplicate_share'] or 0):.1f}%); "
                                f"{c['queries_done']}/{c['queries']} queries done"})
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, ``--storm-timeout-retries`` resolved and checked against ``--storm-retries`` as the reasoner
    checks the pair: one above the other made every storm query fail with a ConfigurationError, and the script then
    reported a row of nonsense ("0 of the server's answers faulted (; ...")."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--kill-window", type=float, default=8.0, help="kill within this many seconds of a start")
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--answer-delay", type=float, default=0.4, help="the server's delay per answer in the kill part")
    ap.add_argument("--fault-rate", type=float, default=0.5, help="share of the server's answers that fault")
    ap.add_argument("--storm-retries", type=int, default=1, help="the reasoner's max_retries during the storm")
    ap.add_argument("--storm-timeout-retries", type=int, default=None, metavar="N",
                    help="the reasoner's timeout_retries during the storm (default --storm-retries: the stalls of "
                         "the local fake server are resent as a remote server's are)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", nargs="+", default=["kill", "faults", "shared-cache"],
                    choices=["kill", "faults", "shared-cache"])
    add_arguments(ap, "reliability")
    args = ap.parse_args(argv)
    if args.storm_timeout_retries is None:
        args.storm_timeout_retries = args.storm_retries
    from vidground.chat import check_retry_options
    from vidground.errors import ConfigurationError

    try:
        check_retry_options(args.storm_retries, timeout_retries=args.storm_timeout_retries)
    except ConfigurationError as exc:  # exit 2 with the usage line, before any server or eval is started
        ap.error(f"--storm-retries {args.storm_retries} --storm-timeout-retries {args.storm_timeout_retries}: {exc}")
    return args


def main() -> int:
    from _helpers_openai_server import FakeOpenAIServer, Reply

    args = parse_args()
    recorder = Recorder("reliability", args, {k: v for k, v in vars(args).items() if k not in ("json_out", "load_note")})
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name, FakeOpenAIServer() as server:
        tmp = Path(tmp_name)
        dataset, desc = write_dataset(tmp / "data", args.queries)
        server.responder = lambda req: Reply.chat(answer_for(req.json))
        ref = run(eval_command(dataset, desc, tmp / "reference", server.base_url))
        if ref.returncode != 0:
            raise SystemExit(f"the reference eval failed: {ref.stderr[-800:]}")
        reference, _ = results_of(tmp / "reference")
        if "kill" in args.parts:
            data["kill"] = part_kill(tmp, server, reference, args, dataset, desc)
            print("kill:", data["kill"], flush=True)
        if "faults" in args.parts:
            data["faults"] = part_faults(tmp, server, reference, args, dataset, desc)
            print("faults:", data["faults"], flush=True)
        if "shared-cache" in args.parts:
            data["shared_cache"] = part_shared_cache(tmp)
            print("shared cache:", data["shared_cache"], flush=True)
    recorder.write(rows_of(data), details=data)
    bad = []
    if "kill" in data and any(data["kill"][k] for k in ("lost", "duplicated", "changed")):
        bad.append("kill")
    if "faults" in data and (data["faults"]["failed_without_cause"] or data["faults"]["lost"] or data["faults"]["changed"]
                             or data["faults"]["ok_after_retry"] != args.queries):
        bad.append("faults")
    if "shared_cache" in data and not data["shared_cache"].get("duplicate_share", 1) < 0.05:
        bad.append("shared cache")
    if bad:
        print("FAILED:", ", ".join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
