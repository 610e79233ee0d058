"""Reports (metrics.json, report.md, summary plots, inline SVG timelines, index.html in a real headless Chromium),
``vidground compare`` and ``vidground score``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vidground.errors import ConfigurationError, InputError
from pipelines.datasets import load_dataset
from pipelines.report import (CURVE_THRESHOLDS, DEFAULT_TIMELINES, SUMMARY_PLOTS, compare_runs, fmt_iou,
                              gt_length_buckets, write_report)
from pipelines.runs import RunConfig, run_eval

from _helpers_eval import cli, register_fakes, write_toy_dataset

register_fakes()


@pytest.fixture()
def run_dir(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data")
    lines = ds.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["query"] += " FAIL"
    ds.write_text("\n".join([lines[0], json.dumps(bad)] + lines[2:]) + "\n")
    out = tmp_path / "run"
    run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner"), out)
    return out


@pytest.mark.slow
def test_report_files(run_dir):
    summary = write_report(run_dir, bootstrap=200)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m == json.loads(json.dumps(summary))
    assert m["metrics"]["n"] == 12 and m["metrics"]["failures"] == {"error": 1}
    assert m["failures_by_type"] == {"ProviderError": 1} and len(m["per_query"]) == 12
    md = (run_dir / "report.md").read_text()
    for needle in ("| **this run** |", "| whole video |", "| prior span [", "Convention: IoU over seconds",
                   "GT used as annotated", "reasoner: `fake-reasoner`", "describer calls made: 0",
                   "- ProviderError: 1", "Scored as IoU 0: error 1"):
        assert needle in md, needle
    assert re.search(r"\| \*\*this run\*\* \| [\d.]+ \[[\d.]+, [\d.]+\]", md)  # value with its CI
    assert not list((run_dir / "plots").glob("*.png"))  # timelines are inline SVG, not image files
    page = (run_dir / "index.html").read_text()
    assert page.count("<svg class='timeline'") == 12 and "transcript" in page and "failed: ProviderError" in page
    write_report(run_dir, max_plots=3, bootstrap=0)
    assert (run_dir / "index.html").read_text().count("<svg class='timeline'") == 3


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        write_report(tmp_path)


@pytest.mark.slow
def test_compare_runs(tmp_path, run_dir, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data2")
    other = tmp_path / "other"
    run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner"), other)
    c = compare_runs(run_dir, other)
    assert c["common"] == 12 and c["b_better"] == 1 and c["a_better"] == 0 and c["fixed_at_0.5"] == 1
    assert c["largest_changes"][0]["iou_a"] == 0.0 and c["largest_changes"][0]["iou_b"] == 1.0
    assert cli("compare", run_dir, other) == 0
    text = capsys.readouterr().out
    assert "12 common queries" in text and "B fixes 1 and breaks 0" in text
    assert cli("report", run_dir, "--bootstrap", "0") == 0 and "wrote" in capsys.readouterr().out


def _synthetic_run(out: Path, n_videos: int, per_video: int, missing: list[str], shift: float) -> Path:
    """A run folder written directly: ``n_videos * per_video`` queries, a result for each query whose video
    is not ``missing``, each prediction the GT window moved by ``shift`` seconds."""
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({
        "dataset": "jsonl", "mode": "descriptions", "reasoner": "fake-reasoner", "clip_gt": False, "top_k": 1,
        "baseline_prior": {"start": 0.25, "end": 0.75, "source": "fixed"}}))
    queries, results = [], []
    for v in range(n_videos):
        for k in range(per_video):
            qid, video, s = f"q{v}-{k}", f"vid{v}", float(k)
            queries.append({"qid": qid, "video": video, "query": f"event {k}", "duration": 10.0, "windows": [[s, s + 2]]})
            if video not in missing:
                results.append({"qid": qid, "video": video, "status": "ok", "duration": 10.0,
                                "intervals": [[s + shift, s + shift + 2, 1.0]]})
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    (out / "missing.json").write_text(json.dumps({"missing_videos": missing}))
    return out


@pytest.mark.slow
def test_compare_and_report_over_many_queries_read_each_list_once(tmp_path, monkeypatch):
    from pipelines import report

    calls = []
    real_missing = report.missing_videos
    monkeypatch.setattr(report, "missing_videos", lambda out: calls.append(out) or real_missing(out))
    a = _synthetic_run(tmp_path / "a", 1000, 5, [f"vid{v}" for v in range(100)], shift=0.0)
    b = _synthetic_run(tmp_path / "b", 1000, 5, [f"vid{v}" for v in range(900, 1000)], shift=1.0)
    c = compare_runs(a, b)
    assert len(calls) == 2  # missing.json read once per run, not once per query (5000 each)
    assert (c["common"], c["only_a"], c["only_b"]) == (4000, 500, 500)
    assert c["a_better"] == 4000 and c["metrics_a"]["R1@0.5"] == 100.0 and c["metrics_b"]["R1@0.5"] == 0.0

    write_report(a, bootstrap=0, plots=False)
    assert "5000 queries selected" in (a / "report.md").read_text()
    assert "4500 scored, 500 skipped for 100 missing video(s)" in (a / "report.md").read_text()

    class CountingList(list):
        iterations = 0

        def __iter__(self):
            CountingList.iterations += 1
            return super().__iter__()

    config, queries, results = report.load_run(a)
    totals = report.run_totals(a)
    text = report._markdown(a, config, queries, results, None, totals, CountingList(f"vid{v}" for v in range(100)))
    assert "0 scored, 500 skipped for 100 missing video(s)" in text
    assert CountingList.iterations <= 2  # the missing list is made a set once, not once per query



def test_a_negative_count_is_refused_not_read_from_the_end(tmp_path):
    a = _synthetic_run(tmp_path / "a", 3, 2, [], shift=0.0)
    b = _synthetic_run(tmp_path / "b", 3, 2, [], shift=1.0)
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"video": "v", "query": "q", "intervals": [[0, 1]]}) + "\n")
    for action, name in ((lambda: write_report(a, max_plots=-1, plots=False), "max_plots"),  # [:-1]: all but one
                         (lambda: write_report(a, bootstrap=-5, plots=False), "bootstrap"),  # CIs silently left out
                         (lambda: compare_runs(a, b, top=-2), "top"),
                         (lambda: cli("score", preds, "--dataset", "qvhighlights", "--bootstrap", "-1"), "--bootstrap")):
        with pytest.raises(ConfigurationError, match=rf"^{name} must be a whole number >= 0, got -\d"):
            action()
    assert write_report(a, max_plots=0, bootstrap=0, plots=False)["selected"] == 6

# ------------------------------------------------------------------ report contents and scaling

class _PageParser(HTMLParser):
    """The page's structure: every start tag with its attributes, the text of each query block, and
    whether the tags balance (the void elements aside)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.blocks: list[dict[str, str]] = []  # query blocks in page order: id, class, text
        self._block_depth: int | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "div" and (attrs.get("id") or "").startswith("q-"):
            self.blocks.append({"id": attrs["id"][2:], "class": attrs.get("class", ""), "text": ""})
            self._block_depth = len(self.stack)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        if self._block_depth == len(self.stack):
            self._block_depth = None
        self.stack.pop()

    def handle_data(self, data):
        if self._block_depth is not None:
            self.blocks[-1]["text"] += data

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _parse_page(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert not parser.errors and parser.stack == [], (parser.errors, parser.stack)
    return parser


@pytest.mark.slow
def test_index_html_structure_cis_summary_plots_worst_first(run_dir):
    write_report(run_dir, bootstrap=200)
    page = _parse_page(run_dir / "index.html")
    text = (run_dir / "index.html").read_text()
    # metrics with their CIs, the same numbers as metrics.json
    m = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert page.find("table", id="metrics") and text.count("class='ci'") == len(m["values"])
    lo, hi = m["ci"]["R1@0.5"]
    assert f"{m['values']['R1@0.5']:.2f} <small class='ci'>[{lo:.1f}, {hi:.1f}]</small>" in text
    # three summary plots, real PNGs, referenced by the page
    srcs = [a["src"] for a in page.find("img") if a.get("class") == "summary-plot"]
    assert srcs == [f"plots/summary/{name}" for name in SUMMARY_PLOTS]
    assert all((run_dir / s).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for s in srcs)
    assert "GT length buckets: terciles" in text
    # the failed query first, then by IoU from the lowest
    ious = {s["qid"]: s["iou"] for s in json.loads((run_dir / "metrics.json").read_text())["per_query"]}
    blocks = page.blocks
    assert len(blocks) == 12 and "failed" in blocks[0]["class"].split() and "ProviderError" in blocks[0]["text"]
    rest = [ious[b["id"]] for b in blocks[1:]]
    assert rest == sorted(rest)
    # one inline SVG timeline per query block, naming its query, with its GT bar; transcripts linked
    assert [a["data-qid"] for a in page.find("svg", **{"class": "timeline"})] == [b["id"] for b in blocks]
    assert len(page.find("rect", **{"class": "gt"})) == 12 and not page.find("img", **{"class": "timeline"})
    assert page.find("details", id="v-vid0")
    # no leftover self-test line or script
    assert "id='status'" not in text and "timelines rendered" not in text and "<script" not in text


def test_iou_is_rounded_the_way_hits_are_decided(tmp_path):
    assert fmt_iou(0.4968) == "0.496" and fmt_iou(0.5) == "0.500" and fmt_iou(0.5 - 1e-12) == "0.499"  # a miss at 0.5, as compared
    assert fmt_iou(0.69999) == "0.699" and fmt_iou(1.0) == "1.000" and fmt_iou(0.0) == "0.000"
    out = _synthetic_run(tmp_path / "r", 1, 2, [], shift=0.0)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    d = 2 * (1 - 0.4968) / (1 + 0.4968)  # GT [0, 2] and a prediction moved by d: IoU 0.4968
    rows[0]["intervals"] = [[d, 2 + d, 1.0]]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(out, bootstrap=0, plots=False)
    block = _parse_page(out / "index.html").blocks[0]
    assert block["id"] == "q0-0" and "IoU 0.496" in block["text"] and "miss" in block["text"]
    assert "0.50" not in block["text"] and block["class"] == "q miss"


def test_gt_length_buckets_are_terciles():
    from pipelines.datasets import Query
    from pipelines.metrics import QueryScore

    qs = [Query(qid=f"q{i}", video="v", query="x", duration=100.0, windows=[(0.0, float(i + 1))]) for i in range(9)]
    scored = {q.qid: QueryScore(qid=q.qid, iou=1.0 if i % 3 == 0 else 0.2, best5=0.0) for i, q in enumerate(qs)}
    b = gt_length_buckets(qs, scored)
    assert [x["bucket"] for x in b] == ["short", "medium", "long"] and [x["n"] for x in b] == [3, 3, 3]
    assert [x["R1"] for x in b] == [33.33, 33.33, 33.33] and b[0]["bounds"] == "< 3.7 s"


def test_failed_queries_are_listed_in_report_md(run_dir):
    write_report(run_dir, bootstrap=0, plots=False)
    md = (run_dir / "report.md").read_text()
    section = md.split("## Failed queries", 1)[1].split("\n## ", 1)[0]
    assert "| id | video | query | error |" in section
    assert "| vid0-1 | vid0 | the person drink coffee FAIL | ProviderError: fake outage |" in section


@pytest.mark.slow
def test_a_500_query_report_draws_the_summary_and_the_worst_50_by_default(tmp_path, monkeypatch):
    from pipelines import report

    out = _synthetic_run(tmp_path / "big", 100, 5, [], shift=0.0)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for i, r in enumerate(rows):  # IoU spread over [0, 1]; every 50th query failed
        r["intervals"] = [[r["intervals"][0][0] + (i % 7) * 0.3, r["intervals"][0][1] + (i % 7) * 0.3, 1.0]]
        if i % 50 == 7:
            r.update(status="error", error={"type": "ProviderError", "message": "outage"}, intervals=None)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "plots").mkdir()
    (out / "plots" / "q0-0.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a timeline PNG from an older report
    drawn = []
    real_timeline = report._timeline_svg
    monkeypatch.setattr(report, "_timeline_svg", lambda q, rec, status: drawn.append(q.qid) or real_timeline(q, rec, status))

    def timelines():
        return [a["data-qid"] for a in _parse_page(out / "index.html").find("svg", **{"class": "timeline"})]

    write_report(out, bootstrap=0)
    assert len(drawn) == DEFAULT_TIMELINES == 50
    assert sorted(p.relative_to(out / "plots").as_posix() for p in (out / "plots").rglob("*.png")) == \
        sorted(f"summary/{name}" for name in SUMMARY_PLOTS)  # the old timeline PNG is gone
    page = _parse_page(out / "index.html")
    assert len(page.blocks) == 500
    assert timelines() == [b["id"] for b in page.blocks[:50]] == drawn  # the worst 50, in page order
    assert all("failed" in b["class"] for b in page.blocks[:10]) and "failed" not in page.blocks[10]["class"]
    assert "--all-timelines</code> draws every one" in (out / "index.html").read_text()

    drawn.clear()
    assert cli("report", out, "--bootstrap", "0", "--all-timelines") == 0
    assert len(drawn) == 500 and len(timelines()) == 500

    drawn.clear()  # back to the default
    assert cli("report", out, "--bootstrap", "0") == 0
    assert len(drawn) == 50 and len(timelines()) == 50
    summary = json.loads((out / "metrics.json").read_text())
    assert list(summary["r1_curve"]) == ["this run", "whole video", "prior span"]
    assert list(summary["r1_curve"]["this run"]) == [f"R1@{m:g}" for m in CURVE_THRESHOLDS]
    assert [b["n"] for b in summary["r1_by_gt_length"]] == [0, 0, 500]  # every GT lasts 2 s: one bucket


class _SvgText(HTMLParser):
    """The text inside each ``<title>`` and every tag seen."""

    def __init__(self):
        super().__init__()
        self.titles: list[str] = []
        self.tags: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "title":
            self._in_title, self.titles = True, self.titles + [""]

    def handle_endtag(self, tag):
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data


def test_timeline_svg_escapes_the_query_and_the_status(tmp_path):
    hostile = """</title></svg><script>alert("x")</script> it's "quoted" & <b>bold</b>"""
    out = _synthetic_run(tmp_path / "r", 1, 2, [], shift=0.0)
    lines = (out / "queries.jsonl").read_text().splitlines()
    first = json.loads(lines[0]) | {"query": hostile, "qid": "q'0\"<x>"}
    (out / "queries.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    rows[0] |= {"qid": first["qid"], "status": "error", "intervals": None,
                "error": {"type": "ProviderError", "message": "<script>bad()</script>"}}
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(out, bootstrap=0)
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in text and "<b>bold" not in text
    page = _parse_page(out / "index.html")  # balanced: nothing the query holds closed a tag
    assert [a["data-qid"] for a in page.find("svg", **{"class": "timeline"})] == [first["qid"], "q0-1"]
    parser = _SvgText()
    parser.feed(text)
    assert parser.titles[1] == f"{first['qid']} · {hostile} · failed: ProviderError: <script>bad()</script>"
    assert "script" not in parser.tags and parser.tags.count("b") == 2  # each query's id, nothing from the query


def test_timeline_svg_geometry_and_a_long_curve():
    from pipelines.datasets import Query
    from pipelines.report import _SVG_CURVE_POINTS, _SVG_LEFT, _SVG_PLOT, _timeline_svg

    q = Query(qid="q", video="v", query="x", duration=7200.0, windows=[(3600.0, 5400.0)])
    curve = [[t, 1.0 if t == 4321 else 0.0] for t in range(7200)]
    rec = {"status": "ok", "duration": 7200.0, "curve": curve,
           "intervals": [[0, 720, 0.9], ["bad"], [7000, 9000, 0.5], None, [1, 2, 0.1], [3, 4, 0.1], [5, 6, 0.1]]}
    svg = _timeline_svg(q, rec, "IoU 0.000")
    gt = re.search(r"<rect class='gt' x='([\d.]+)' y='\d+' width='([\d.]+)'", svg)
    assert float(gt.group(1)) == pytest.approx(_SVG_LEFT + _SVG_PLOT / 2, abs=0.1)
    assert float(gt.group(2)) == pytest.approx(_SVG_PLOT / 4, abs=0.1)
    preds = re.findall(r"<rect class='(pred(?: alt)?)' x='([\d.]+)' y='\d+' width='([\d.]+)'", svg)
    assert len(preds) == 5 and [c for c, _, _ in preds].count("pred") == 1  # top 5 of the valid ones, top 1 solid
    top = next((float(x), float(w)) for c, x, w in preds if c == "pred")
    assert top == pytest.approx((_SVG_LEFT, _SVG_PLOT / 10), abs=0.1)
    clipped = [(float(x), float(w)) for c, x, w in preds if float(x) > _SVG_LEFT + _SVG_PLOT * 0.9]
    assert clipped and clipped[0][0] + clipped[0][1] == pytest.approx(_SVG_LEFT + _SVG_PLOT, abs=0.1)  # 7000-9000 ends at the edge
    points = re.search(r"points='([^']+)'", svg).group(1).split()
    assert 2 <= len(points) <= _SVG_CURVE_POINTS
    peak = min(points, key=lambda p: float(p.split(",")[1]))  # the highest score is drawn highest
    assert float(peak.split(",")[0]) == pytest.approx(_SVG_LEFT + _SVG_PLOT * 4321 / 7200, abs=0.1)
    assert len(svg) < 8000


def test_eval_all_timelines_reaches_the_report(tmp_path, monkeypatch):
    from pipelines import report

    calls = []
    monkeypatch.setattr(report, "write_report", lambda out, **kw: calls.append(kw))
    ds, desc = write_toy_dataset(tmp_path / "data")
    for n, extra in enumerate(([], ["--all-timelines"])):
        assert cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "fake-reasoner",
                   "--out", tmp_path / f"run{n}", "--quiet", *extra) == 0
    assert calls == [{"all_timelines": False}, {"all_timelines": True}]

# ----------------------------------------------------------------------------------- the browser

def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:  # install Debian's Chromium where it is missing (CI images)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                       capture_output=True, timeout=900)
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("Chromium is not installed and could not be installed with apt-get")
    return exe


def _open_in_chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    profile = tmp_path / f"chromium-{uuid.uuid4().hex[:8]}"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--allow-file-access-from-files", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


#: Injected by the test into a copy of the page (the report itself carries no self-test): counts the
#: images that loaded, the SVG timelines laid out at a visible size with their GT bar drawn, and the
#: script errors, into data attributes of a status element.
_CHECK = """<p id="status"></p><script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||e.target&&e.target.src));},true);
window.addEventListener('load',function(){var ok=0,bad=0,sum=0;document.querySelectorAll('img').forEach(function(i){
(i.complete&&i.naturalWidth>0)?ok++:bad++;if(i.className==='summary-plot'&&i.naturalWidth>0)sum++;});
var s=document.getElementById('status');s.setAttribute('data-images-ok',ok);s.setAttribute('data-images-broken',bad);
s.setAttribute('data-summary-ok',sum);var tl=0;document.querySelectorAll('svg.timeline').forEach(function(g){
var r=g.getBoundingClientRect(),b=g.querySelector('rect.gt');if(r.width>300&&r.height>30&&b&&b.getBBox().width>0)tl++;});
s.setAttribute('data-timelines-ok',tl);s.setAttribute('data-errors',window.__errors.length);});</script>"""


def _with_check(page: Path, extra: str = "") -> Path:
    checked = page.with_name(f"checked-{uuid.uuid4().hex[:6]}.html")
    body = page.read_text(encoding="utf-8")
    assert body.count("<body>") == 1
    checked.write_text(body.replace("<body>", "<body>" + _CHECK + extra), encoding="utf-8")
    return checked


def _status(dom: str) -> dict[str, int]:
    tag = re.search(r'<p id="status"([^>]*)>', dom)
    assert tag, "the status element is missing from the rendered page"
    return {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(\d+)"', tag.group(1))}


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "rror" in line)]


@pytest.mark.slow
@pytest.mark.integration
def test_index_html_renders_in_headless_chromium(run_dir, tmp_path):
    write_report(run_dir, bootstrap=200)
    dom, stderr = _open_in_chromium(_with_check(run_dir / "index.html"), tmp_path)
    # 3 summary plots loaded, 12 inline timelines laid out, no script error
    assert _status(dom) == {"images-ok": 3, "images-broken": 0, "summary-ok": 3, "timelines-ok": 12, "errors": 0}
    assert not _console_errors(stderr)
    assert "the person" in dom and "transcript" in dom and "class=\"ci\"" in dom
    assert dom.index("failed: ProviderError") < dom.index("IoU 1.000")  # the failure is listed first
    # the checks can fail: a missing plot and a script error are both caught
    (run_dir / "plots" / "summary" / next(iter(SUMMARY_PLOTS))).unlink()
    dom, stderr = _open_in_chromium(_with_check(run_dir / "index.html", "<script>undefinedFn();</script>"), tmp_path)
    status = _status(dom)
    assert status["images-broken"] == 1 and status["errors"] >= 1
    assert _console_errors(stderr)


# ------------------------------------------------------------------------------------- score CLI

needs_data = pytest.mark.skipif(not (Path(__file__).resolve().parents[1].parent / "shared" / "data").is_dir()
                                and "VIDGROUND_DATA" not in __import__("os").environ,
                                reason="shared annotation folder not found")


@pytest.mark.slow
@needs_data
def test_score_charades_whole_video_file(tmp_path, capsys):
    ds = load_dataset("charades-sta")
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"video": q.video, "query": q.query.upper(), "intervals": [[0, q.duration, 1.0]]}) + "\n"
                            for q in ds) + json.dumps({"video": "NOPE1", "query": "x", "intervals": [[0, 1]]}) + "\n")
    assert cli("score", "--dataset", "charades-sta", pred, "--json", "--bootstrap", "0") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scored"] == 3720 and out["predicted"] == 3720 and len(out["unmatched"]) == 1
    assert 26.5 < out["metrics"]["values"]["mIoU"] < 27.5 and 33.5 < out["metrics"]["values"]["R1@0.3"] < 35
    # a partial file is scored on every query by default (the unpredicted ones as misses, said on stderr), on its
    # own queries with --predicted-only (labelled so)
    pred.write_text("".join(json.dumps({"video": q.video, "query": q.query, "intervals": [list(q.windows[0])]}) + "\n"
                            for q in ds.queries[:100]))
    assert cli("score", "--dataset", "charades-sta", pred, "--bootstrap", "0") == 0
    printed = capsys.readouterr()
    assert "100 of 3720 charades-sta/test queries predicted; scored on 3720" in printed.out
    assert "| **pred.jsonl** | 2.69 | 2.69 | 2.69 | 2.69 |" in printed.out
    assert "3620 of the 3720 queries of charades-sta/test have no prediction" in printed.err
    assert cli("score", "--dataset", "charades-sta", pred, "--predicted-only", "--bootstrap", "0") == 0
    text = capsys.readouterr().out
    assert "100 of 3720 charades-sta/test queries predicted" in text
    assert "| **pred.jsonl (predicted only: 100 of 3720)** | 100.00" in text
    assert cli("score", "--dataset", "charades-sta", pred, "--all-queries", "--json", "--bootstrap", "0") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scored"] == 3720 and out["metrics"]["failures"] == {"missing": 3620}
    assert out["metrics"]["values"]["R1@0.7"] == pytest.approx(100 * 100 / 3720, abs=0.01)


@pytest.mark.slow
@needs_data
def test_score_qvhighlights_moment_detr_form(tmp_path, capsys):
    ds = load_dataset("qvhighlights")
    pred = tmp_path / "hl_val_submission.jsonl"
    pred.write_text("".join(json.dumps({"qid": int(q.qid), "query": q.query, "vid": q.video,
                                        "pred_relevant_windows": [[*q.windows[-1], 0.9], [0, 2, 0.1]]}) + "\n"
                            for q in ds.queries[:50]))
    assert cli("score", "--dataset", "qvhighlights", pred, "--predicted-only", "--json", "--bootstrap", "0") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scored"] == 50 and out["metrics"]["values"]["R1@0.7"] == 100.0 and "R5@0.5" in out["metrics"]["values"]


def test_score_rejects_a_file_matching_nothing(tmp_path):
    ds, _ = write_toy_dataset(tmp_path / "data")
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"video": "zzz", "query": "q", "intervals": [[0, 1]]}) + "\n")
    with pytest.raises(ConfigurationError, match="none of the 1 predictions"):
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred)
    pred.write_text("[1, 2]\n")
    with pytest.raises(InputError, match=r"p.jsonl:1: each line needs"):
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred)


def test_score_tells_when_predictions_carry_the_qids_of_another_dataset(tmp_path, capsys):
    """moment_detr / lighthouse rows ({"qid", "query", "vid", ...}) were matched by qid alone: QVHighlights'
    predictions scored 533 unrelated Charades-STA queries (qids 0..3719 are line numbers there), with no warning."""
    ds, _ = write_toy_dataset(tmp_path / "data")
    queries = [json.loads(line) for line in ds.read_text().splitlines()]
    pred = tmp_path / "p.jsonl"
    foreign = [{"qid": x["qid"], "query": "A woman cooks on facetime.", "vid": "NUsG9BgSes0_210.0_360.0",
                "pred_relevant_windows": [[0, 70, 0.9]]} for x in queries]
    pred.write_text("".join(json.dumps(r) + "\n" for r in foreign))
    with pytest.raises(ConfigurationError, match=f"none of the {len(queries)} predictions matches a query of "
                                                 f"jsonl/.*; {len(queries)} of them carry a qid of it with another "
                                                 "video or query \\(a predictions file for another dataset\\?\\)"):
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred)
    no_video = [{"qid": x["qid"], "query": "another query", "pred_relevant_windows": [[0, 2]]} for x in queries]
    pred.write_text("".join(json.dumps(r) + "\n" for r in no_video))
    with pytest.raises(ConfigurationError, match="carry a qid of it with another video or query"):
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred)
    # some rows of this dataset (by video and query, by vid and query, by qid alone), some of another
    ours = [{"video": queries[0]["video"], "query": queries[0]["query"], "intervals": [[0, 2]]},
            {"qid": "9999", "vid": queries[1]["video"], "query": queries[1]["query"].upper(),
             "pred_relevant_windows": [[2, 4]]},
            {"qid": queries[2]["qid"], "pred_relevant_windows": [[4, 6]]}]
    pred.write_text("".join(json.dumps(r) + "\n" for r in ours + foreign[3:]))
    assert cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--predicted-only", "--bootstrap", "0") == 0
    printed = capsys.readouterr()
    warning = (f"warning: {len(queries) - 3} of {len(queries)} predictions match no query of jsonl/"
               f"{load_dataset('jsonl', path=ds).split}; {len(queries) - 3} of them carry a qid of it with another video "
               "or query (a predictions file for another dataset?); scored on the 3 that do\n")
    assert printed.err.startswith(warning) and "3 of 12 jsonl" in printed.out
    assert "9 of the 12 queries of jsonl/" in printed.err and "scores the 3 predicted ones alone" in printed.err
    assert cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--predicted-only", "--bootstrap", "0",
               "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["scored"], out["foreign"], len(out["unmatched"])) == (3, 9, 9)
    assert out["warnings"] == [warning[len("warning: "):-1]] and out["metrics"]["values"]["R1@0.5"] == 100.0


def _problem_file(tmp_path):
    ds, _ = write_toy_dataset(tmp_path / "data")
    queries = [json.loads(line) for line in ds.read_text().splitlines()]
    rows = [{"video": x["video"], "query": x["query"], "intervals": [x["windows"][0]]} for x in queries[:6]]
    rows[1]["intervals"] = [2.0, 4.0]                       # flat: one interval written without its brackets
    rows[2] = {"video": rows[2]["video"], "query": rows[2]["query"], "timestamp": [0, 2]}  # another tool's key
    rows[3]["intervals"] = [[4.0, 2.0]]                     # reversed
    rows[4]["intervals"] = [[2000.0, 4000.0]]               # milliseconds
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ds, pred


def test_score_prints_a_failures_line_with_examples_and_the_fix(tmp_path, capsys):
    ds, pred = _problem_file(tmp_path)
    assert cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--predicted-only", "--bootstrap", "0") == 0
    out = capsys.readouterr().out
    assert ("prediction problems: 4 of 6: 3 scored as IoU 0 (unparseable 2, reversed 1); "
            "1 scored as given (out of range 1)") in out
    assert "line 2 (vid0: 'the person drink coffee'): unparseable: 'intervals' is a flat list [2.0, 4.0]" in out
    assert "line 3 (vid0: 'the person read book'): unparseable: no 'intervals'" in out and "'timestamp'" in out
    assert "line 4 (vid1: 'the person drink coffee'): reversed: interval [4.0, 2.0] ends before it starts" in out
    assert "line 5 (vid1: 'the person read book'): out of range: interval [2000, 4000] lies outside the video [0, 10] s" in out
    for kind in ("unparseable", "reversed", "out of range"):
        assert f"fix ({kind}):" in out
    assert "Baselines: whole video: [0, duration] for every query; prior span: [0.25, 0.75] x duration" in out
    assert cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--predicted-only", "--bootstrap", "0",
               "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(p["line"], p["kind"]) for p in data["problems"]] == [
        (2, "unparseable"), (3, "unparseable"), (4, "reversed"), (5, "out of range")]
    assert data["metrics"]["warnings"] == {"out of range": 1}
    import hashlib
    assert data["provenance"]["annotations"] == {"toy.jsonl": hashlib.sha256(ds.read_bytes()).hexdigest()}
    assert data["provenance"]["predictions"] == {"pred.jsonl": hashlib.sha256(pred.read_bytes()).hexdigest()}
    assert "provenance:\n- vidground " in out and "- predictions: pred.jsonl sha256" in out


def test_score_strict_makes_any_problem_row_an_error(tmp_path, capsys):
    from vidground.errors import EvaluationError
    from pipelines.cli import main

    ds, pred = _problem_file(tmp_path)
    # the file predicts 6 of the 12 queries: the 6 others are problems too, with --predicted-only as without
    for only in ([], ["--predicted-only"]):
        with pytest.raises(EvaluationError, match=r"--strict: 10 prediction rows or unpredicted queries with problems "
                                                  r"\(missing 6, unparseable 2, reversed 1, out of range 1\)") as err:
            cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--bootstrap", "0", "--strict", *only)
        assert err.value.counts == {"missing": 6, "unparseable": 2, "reversed": 1, "out of range": 1}
        assert str(pred) in str(err.value)
    capsys.readouterr()
    assert main(["score", "--dataset", "jsonl", "--dataset-file", str(ds), str(pred), "--strict"]) == 1
    assert "vidground: error:" in capsys.readouterr().err
    # a clean file passes; a row that matches no query or a duplicate fails it
    rows = [json.loads(x) for x in ds.read_text().splitlines()]
    pred.write_text("".join(json.dumps({"qid": r["qid"], "intervals": r["windows"]}) + "\n" for r in rows))
    assert cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--bootstrap", "0", "--strict") == 0
    assert "prediction problems: none" in capsys.readouterr().out
    with pred.open("a") as fh:
        fh.write(json.dumps({"qid": "nope", "intervals": [[0, 1]]}) + "\n")
    with pytest.raises(EvaluationError, match="unmatched 1"):
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred, "--bootstrap", "0", "--strict")
