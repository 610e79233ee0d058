"""Provenance in run records and reports; secrets never written; compare's warnings."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import pytest

from pipelines import provenance
from pipelines.cli import main
from pipelines.report import compare_runs, format_compare, write_report
from pipelines.runs import RunConfig, run_eval

from _helpers_eval import FakeReasoner, cli, register_fakes, write_toy_dataset

register_fakes()
SECRET = "sk-test-0123456789abcdefghijKLMN"


class KeyedReasoner(FakeReasoner):
    """A fake remote reasoner whose settings carry its key and a URL with credentials."""

    name = "keyed"

    def __init__(self, arg: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 temperature: float = 0.0):
        super().__init__(None)
        self.api_key, self.base_url, self.temperature = api_key, base_url, temperature

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": "m", "api_key": self.api_key, "base_url": self.base_url,
                "temperature": self.temperature, "headers": {"Authorization": f"Bearer {self.api_key}"}}


@pytest.fixture()
def toy(tmp_path):
    from temporal_reasoner import reasoners

    reasoners.register("keyed", KeyedReasoner)
    return write_toy_dataset(tmp_path / "data")


def test_redaction_of_settings_and_command_lines():
    assert provenance.redact({"api_key": SECRET, "max_tokens": 5, "token": None, "openai_api_key": "x",
                              "base_url": "https://user:pw@host/v1", "note": f"key {SECRET}"}) == {
        "api_key": "<redacted>", "max_tokens": 5, "token": None, "openai_api_key": "<redacted>",
        "base_url": "https://<redacted>@host/v1", "note": "key <redacted>"}
    line = provenance.command_line(["eval", "x", "--api-key", SECRET, "--reasoner-opt", f"api_key={SECRET}",
                                    f"--api-key={SECRET}", "--reasoner-opt", "max_tokens=5"])
    assert SECRET not in line and line.count("<redacted>") == 3 and "max_tokens=5" in line
    assert line.startswith("vidground eval x --api-key")


def test_command_line_redacts_one_token_and_abbreviated_secret_flags():
    from pipelines.cli import build_parser

    # argparse takes all of these: the value of an abbreviated or one-token option is the key
    args = build_parser().parse_args(["ground", "--descriptions", "d.jsonl", "q", "--api-k", SECRET,
                                      f"--reasoner-opt=api_key={SECRET}", f"--describer-o=api_key={SECRET}"])
    assert args.api_key == SECRET and args.reasoner_opt == [("api_key", SECRET)] == args.describer_opt
    assert build_parser().parse_args(["ground", "q", "--a", SECRET]).api_key == SECRET
    for argv in (["--api-k", SECRET], ["--a", SECRET], [f"--api-key={SECRET}"], [f"--api-ke={SECRET}"],
                 [f"--reasoner-opt=api_key={SECRET}"], [f"--describer-opt=api_key={SECRET}"],
                 [f"--reasoner-o=api_key={SECRET}"], ["--reasoner-opt", f"apiKey={SECRET}"],
                 ["--reasoner-opt", f" api_key={SECRET}"], ["--base-url", f"https://proxy/v1?api_key={SECRET}"],
                 [f"--reasoner-opt=base_url=https://proxy/v1?key={SECRET}&x=1"]):
        line = provenance.command_line(["ground", "q", *argv])
        assert SECRET not in line and "<redacted>" in line, argv
    assert provenance.command_line([f"--reasoner-opt=api_key={SECRET}", "--api-k", SECRET, "--top-k", "5"]) == \
        "vidground '--reasoner-opt=api_key=<redacted>' --api-k '<redacted>' --top-k 5"
    assert provenance.command_line(["--reasoner-opt=max_tokens=5", "--out", "runs/sk-learn-experiments-charades"]) \
        == "vidground --reasoner-opt=max_tokens=5 --out runs/sk-learn-experiments-charades"


def test_redact_finds_secrets_in_urls_camel_case_keys_and_headers():
    r = provenance.redact
    assert r(f"https://proxy/v1?api_key={SECRET}&model=m") == "https://proxy/v1?api_key=<redacted>&model=m"
    assert r("https://proxy/v1?key=abc123&token=t0k#x") == "https://proxy/v1?key=<redacted>&token=<redacted>#x"
    assert r("https://u:pw@host/v1?sig=abc&v=2") == "https://<redacted>@host/v1?sig=<redacted>&v=2"
    assert r({"openaiApiKey": "x", "apiKey": "y", "accessToken": "z", "HTTPAuthorization": "w", "X-Api-Key": "v",
              "maxTokens": 5, "max_tokens": 6, "keyframes": 7}) == {
        "openaiApiKey": "<redacted>", "apiKey": "<redacted>", "accessToken": "<redacted>",
        "HTTPAuthorization": "<redacted>", "X-Api-Key": "<redacted>", "maxTokens": 5, "max_tokens": 6, "keyframes": 7}
    assert r("Authorization: Bearer abc.def-ghi") == "Authorization: <redacted>"
    assert r(["x-api-key:abc123", "token: t", "Bearer abcdefghijkl"]) == \
        ["x-api-key:<redacted>", "token: <redacted>", "Bearer <redacted>"]
    assert r('{"apiKey": "abc", "n": 1}') == '{"apiKey": "<redacted>", "n": 1}'
    assert SECRET not in r(f"headers={{'Authorization': 'Bearer {SECRET}'}}")


def test_redact_leaves_ordinary_paths_and_names_alone():
    for text in ("/data/sk-learn-experiments-charades/videos", "/data/sk-learn-experiments-2024-charades/videos",
                 "runs/sk-learn-experiments-charades", "sk-learn-experiments-charades", "/data/token=1/videos",
                 "https://host/v1", "12:30", "max_tokens=5", "/models/hf_abcdefghijklmnopqrstuvwxyz1/model.gguf"):
        assert provenance.redact(text) == text
    assert provenance.redact(SECRET) == provenance.redact(f" {SECRET}").strip() == "<redacted>"
    assert provenance.redact(f"key={SECRET},x") == "key=<redacted>,x"


@pytest.mark.slow
def test_one_token_options_and_key_like_paths_in_a_run(toy, tmp_path, capsys):
    from _helpers_eval import write_toy_dataset

    ds, desc = write_toy_dataset(tmp_path / "sk-learn-experiments-charades-2" / "data")
    out = tmp_path / "run"
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "keyed",
            f"--reasoner-opt=api_key={SECRET}", f"--reasoner-opt=base_url=https://proxy/v1?api_key={SECRET}",
            "--out", str(out)]
    assert main(argv) == 0
    assert cli("report", out, "--bootstrap", "0") == 0
    printed = capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    assert config["dataset_path"] == str(ds) and config["descriptions"] == str(desc)  # not "<redacted>"
    assert config["reasoner_options"] == {"api_key": "<redacted>", "base_url": "https://proxy/v1?api_key=<redacted>"}
    p = json.loads((out / "provenance.json").read_text())
    assert "--reasoner-opt=api_key=<redacted>" in p["command"] and str(ds) in p["command"]
    for f in [f for f in out.rglob("*") if f.is_file() and f.suffix in (".json", ".jsonl", ".md", ".html")]:
        assert SECRET not in f.read_text(), f
    assert SECRET not in printed.out + printed.err


def test_collect_works_outside_git(monkeypatch):
    def no_git(*a, **k):
        raise FileNotFoundError("git")

    provenance.git_state.cache_clear()
    monkeypatch.setattr(subprocess, "run", no_git)
    try:
        record = provenance.collect(argv=["score", "p.jsonl"])
        assert record["git"] is None and record["command"] == "vidground score p.jsonl"
    finally:
        provenance.git_state.cache_clear()
    assert record["vidground"] and record["python"].split()[1].count(".") == 2 and record["date"].endswith("+00:00")
    assert {"numpy", "pydantic"} <= set(record["packages"]) and "reason_system.v1" in record["prompts"]


@pytest.mark.slow
def test_every_run_records_its_provenance_and_no_secret(toy, tmp_path, capsys):
    ds, desc = toy
    out = tmp_path / "run"
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "keyed",
            "--reasoner-opt", f"api_key={SECRET}", "--reasoner-opt", "base_url=https://me:pw@example.org/v1",
            "--out", str(out), "--quiet", "--no-report"]
    assert main(argv) == 0
    p = json.loads((out / "provenance.json").read_text())
    assert p["annotations"] == {"toy.jsonl": hashlib.sha256(ds.read_bytes()).hexdigest()}
    assert p["command"].startswith("vidground eval jsonl --dataset-file") and "api_key=<redacted>" in p["command"]
    reasoner = p["backends"]["reasoner"]
    assert reasoner["spec"] == "keyed" and reasoner["options"]["api_key"] == "<redacted>"
    assert reasoner["settings"] == {"name": "keyed", "model": "m", "api_key": "<redacted>", "temperature": 0.0,
                                    "base_url": "https://<redacted>@example.org/v1",
                                    "headers": {"Authorization": "<redacted>"}}
    assert {"vidground", "git", "date", "platform", "python", "packages", "prompts"} <= set(p)
    assert len(p["invocations"]) == 1
    # resumed: one more invocation, the settings kept
    assert main(argv) == 0
    p = json.loads((out / "provenance.json").read_text())
    assert len(p["invocations"]) == 2 and p["backends"]["reasoner"]["settings"]["name"] == "keyed"
    capsys.readouterr()
    assert cli("report", out, "--bootstrap", "0") == 0
    printed = capsys.readouterr().out
    assert "provenance:" in printed and "- annotations: toy.jsonl sha256" in printed
    assert "run in 2 invocations (resumed), all with the same vidground version and commit" in printed
    md = (out / "report.md").read_text()
    assert "## Provenance" in md and "- reasoner: `keyed`" in md and f"- {p['python']} on" in md
    assert "provenance" in (out / "index.html").read_text()
    assert json.loads((out / "metrics.json").read_text())["provenance"]["backends"]["reasoner"]["spec"] == "keyed"
    written = [f for f in out.rglob("*") if f.is_file() and f.suffix in (".json", ".jsonl", ".md", ".html")]
    assert {"config.json", "provenance.json", "results.jsonl", "videos.jsonl", "report.md", "index.html"} <= \
        {f.name for f in written}
    for f in written:
        text = f.read_text()
        assert SECRET not in text and "me:pw" not in text, f


def test_a_run_written_before_redaction_resumes_and_its_old_key_is_never_shown(toy, tmp_path):
    from vidground.errors import ConfigurationError

    ds, desc = toy
    out = tmp_path / "run"
    config = lambda **o: RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),  # noqa: E731
                                   reasoner="keyed", reasoner_options={"api_key": SECRET, **o}, limit=4)
    run_eval(config(), out)
    old = json.loads((out / "config.json").read_text())
    old["reasoner_options"]["api_key"] = SECRET  # as vidground wrote it before it redacted secrets
    (out / "config.json").write_text(json.dumps(old))
    s = run_eval(config(), out)
    assert (s.already_done, s.ran) == (4, 0)
    assert SECRET not in (out / "config.json").read_text()
    (out / "config.json").write_text(json.dumps(old))
    with pytest.raises(ConfigurationError, match="reasoner_options") as err:
        run_eval(config(temperature=0.5), out)
    # the key is a connection option (pipelines.runs.CONNECTION_OPTIONS): left out of the comparison and its message
    assert SECRET not in str(err.value) and "{} -> {'temperature': 0.5}" in str(err.value)


def test_compare_warns_when_runs_differ_in_more_than_the_backends(toy, tmp_path):
    ds, desc = toy
    base = dict(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc))
    run_eval(RunConfig(**base, reasoner="fake-reasoner"), tmp_path / "a")
    run_eval(RunConfig(**base, reasoner="keyed", reasoner_options={"temperature": 0.5}), tmp_path / "b")
    run_eval(RunConfig(**base, reasoner="fake-reasoner", clip_gt=True, limit=5), tmp_path / "c")
    same_but_backend = compare_runs(tmp_path / "a", tmp_path / "b")["differences"]
    assert same_but_backend["warnings"] == [] and same_but_backend["other"] == {}
    assert same_but_backend["compared"]["reasoner"] == ("fake-reasoner", "keyed")
    text = format_compare(compare_runs(tmp_path / "a", tmp_path / "b"))
    assert 'compared: reasoner: "fake-reasoner" vs "keyed"' in text and "warning" not in text
    c = compare_runs(tmp_path / "a", tmp_path / "c")
    assert c["differences"]["other"] == {"clip_gt": (False, True)}  # limit only selects: not a warning
    assert "warning: the runs differ in more than what is compared: clip_gt: false vs true" in format_compare(c)
    # another annotation file's content is a warning; a run without provenance says it cannot be checked
    ds.write_text(ds.read_text().replace('"duration": 10.0', '"duration": 10.5'))
    run_eval(RunConfig(**base, reasoner="fake-reasoner"), tmp_path / "d")
    assert "annotations.toy.jsonl" in compare_runs(tmp_path / "a", tmp_path / "d")["differences"]["other"]
    (tmp_path / "d" / "provenance.json").unlink()
    warnings = compare_runs(tmp_path / "a", tmp_path / "d")["differences"]["warnings"]
    assert any("run B" in w and "has no provenance.json" in w for w in warnings)
    write_report(tmp_path / "d", bootstrap=0, plots=False)
    assert "made before vidground recorded provenance" in (tmp_path / "d" / "report.md").read_text()


def test_a_query_aware_video_run_records_the_describer_settings(tmp_path):
    from _helpers_eval import render_toy_videos

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    s = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                           describer_options={"mode": "aware"}, reasoner="fake-reasoner", cache=""), tmp_path / "run")
    # aware: described per query (3 frames each), counted on each query's result, not the video's (FX-M: it said 0)
    assert s.ran == 2 and s.failed == 0 and s.describe_calls == 6
    p = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert p["backends"]["describer"] == {"spec": "fake", "options": {"mode": "aware"},
                                          "settings": {"name": "fake", "mode": "aware", "version": "1"}}
    assert p["backends"]["reasoner"]["settings"] == {"name": "fake-reasoner"}
