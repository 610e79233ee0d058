"""Temporal-grounding datasets: loaders, reproducible subsets, and video-file lookup.

Every loader returns a :class:`Dataset` of :class:`Query` records with the ground-truth
``windows`` in seconds, exactly as annotated (no clipping here: clipping to the video's
duration is a metric option, see :mod:`pipelines.metrics`).

The annotation files live in a data folder found, in order, from the ``root=`` argument,
the ``VIDGROUND_DATA`` environment variable, or ``../shared/data`` next to the repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidground.files import check_readable, iter_json_lines
from vidground.errors import ConfigurationError, InputError, did_you_mean

#: Dataset names ``load_dataset`` understands, with their splits (first is the default).
DATASETS: dict[str, tuple[str, ...]] = {
    "charades-sta": ("test", "train"),
    "activitynet-captions": ("val_2",),
    "qvhighlights": ("val",),
    "nextgqa": ("val", "test"),
    "jsonl": ("file",),
}

#: File extensions ``find_videos`` recognises (lower case, with the dot).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
)


def normalize_query(text: str) -> str:
    """The matching form of a query: lower case, whitespace collapsed, outer spaces stripped."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Query:
    """One grounding query: find ``query`` in ``video``; ``windows`` are the GT spans in seconds.

    A question of a grounded-QA dataset (NExT-GQA) also has ``choices`` and ``answer``, the index of the
    correct one; its ``windows`` are the spans that support the answer."""

    qid: str
    video: str
    query: str
    duration: float | None
    windows: tuple[tuple[float, float], ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    choices: tuple[str, ...] = ()
    answer: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "qid", str(self.qid))
        object.__setattr__(self, "windows", tuple((float(s), float(e)) for s, e in self.windows))
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.duration is not None:
            object.__setattr__(self, "duration", float(self.duration))

    @property
    def is_question(self) -> bool:
        """Whether this is a multiple-choice question (scored by the grounded-QA metrics)."""
        return bool(self.choices)

    @property
    def offered(self) -> tuple[str, ...]:
        """The options a reasoner is offered: :attr:`choices` with an option written twice (case and spacing aside)
        offered once, at its first place (NExT-GQA repeats one in 4 rows). :attr:`choices` keeps the dataset's own
        indices, which results and scores use: :meth:`official` maps an answer back."""
        first: dict[str, str] = {}
        for c in self.choices:
            first.setdefault(normalize_query(c), c)
        return tuple(first.values())

    def official(self, choice: int | None, scores: list[float] | None = None) -> tuple[int | None, list[float] | None]:
        """An answer to :attr:`offered` (its index, and its score per offered option) in :attr:`choices`' indices:
        the first option with the chosen text (as NExT-GQA's loader, ``choices.index(answer)``), and each option
        its text's score. A ``choice`` that is no offered option's index maps to ``None`` (scored as no answer)."""
        offered = [normalize_query(c) for c in self.offered]
        at = [offered.index(normalize_query(c)) for c in self.choices]
        if choice is not None:
            choice = at.index(choice) if choice in at else None
        if scores is not None and len(scores) == len(offered):
            scores = [scores[i] for i in at]
        return choice, scores

    @property
    def key(self) -> tuple[str, str]:
        """``(video, normalised query)``: how prediction files are matched to queries."""
        return (self.video, normalize_query(self.query))

    def to_json(self) -> dict[str, Any]:
        out = {"qid": self.qid, "video": self.video, "query": self.query,
               "duration": self.duration, "windows": [list(w) for w in self.windows]}
        if self.choices:
            out |= {"choices": list(self.choices), "answer": self.answer}
        return out

    @classmethod
    def from_json(cls, r: dict[str, Any]) -> "Query":
        """The query :meth:`to_json` wrote."""
        return cls(r["qid"], r["video"], r["query"], r["duration"], [tuple(w) for w in r["windows"]],
                   choices=tuple(r.get("choices") or ()), answer=r.get("answer"))


def _qid_hint(unknown: list[str], index: dict[str, Any]) -> str:
    """How the dataset writes its ids, when the unknown ones are written otherwise: NExT-GQA's are ``VIDEO_QID``
    (``10597533885_4``), and a bare question number ``4`` is in none."""
    if not index:
        return ""
    example = next(iter(index))
    ends: dict[str, str] = {}
    for qid in index:
        ends.setdefault(qid.rsplit("_", 1)[-1], qid)
    near = next((ends[q] for q in unknown if "_" not in q and q in ends and ends[q] != q), None)
    if near is not None:
        video, qid = near.rsplit("_", 1)
        return f"; this dataset's ids are written VIDEO_QID (e.g. {near} for question {qid} of video {video})"
    return f"; this dataset's ids look like {example}"


@dataclass
class Dataset:
    """A list of queries plus what was loaded to get them."""

    name: str
    split: str
    queries: list[Query]
    source: list[str] = field(default_factory=list)
    #: annotations skipped on load, as ``"file:line: reason"`` (e.g. a reversed GT span): the whole file's, also
    #: after :meth:`subset` (they were never queries to choose among)
    dropped: list[str] = field(default_factory=list)
    #: how many queries the file gave before :meth:`subset` chose these among them (``None``: not a subset)
    loaded: int | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.queries)

    @property
    def videos(self) -> list[str]:
        """Video ids in first-appearance order."""
        return list(dict.fromkeys(q.video for q in self.queries))

    def by_qid(self) -> dict[str, Query]:
        return {q.qid: q for q in self.queries}

    def by_key(self) -> dict[tuple[str, str], Query]:
        return {q.key: q for q in self.queries}

    def match(self, video: str, query: str) -> Query | None:
        """The query with this video id and (normalised) text, or ``None``."""
        return self.by_key().get((str(video), normalize_query(query)))

    def subset(self, limit: int | None = None, seed: int = 0, qids: Iterable[str] | None = None) -> "Dataset":
        """A reproducible subset; see :func:`select_subset`. Queries keep dataset order."""
        queries = self.queries
        if qids is not None:
            wanted = [str(q) for q in qids]
            index = self.by_qid()
            unknown = [q for q in wanted if q not in index]
            if unknown:
                raise InputError(f"{len(unknown)} subset id(s) are not in {self.name}/{self.split}, "
                                 f"e.g. {', '.join(unknown[:5])}{_qid_hint(unknown, index)}")
            keep = set(wanted)
            queries = [q for q in queries if q.qid in keep]
        if limit is not None:
            queries = select_subset(queries, limit, seed)
        return Dataset(self.name, self.split, list(queries), list(self.source), list(self.dropped),
                       loaded=len(self.queries) if self.loaded is None else self.loaded)


def select_subset(queries: Sequence[Query], limit: int, seed: int = 0) -> list[Query]:
    """Pick ``limit`` queries reproducibly: rank by ``sha256(f"{seed}:{qid}")``, keep the first.

    The choice depends only on the seed and the query ids (not on Python's RNG or the order of
    the file), and a larger limit with the same seed is a superset of a smaller one.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
    ranked = sorted(queries, key=lambda q: hashlib.sha256(f"{seed}:{q.qid}".encode()).hexdigest())
    keep = {q.qid for q in ranked[:limit]}
    return [q for q in queries if q.qid in keep]


def read_subset_file(path: str | Path) -> list[str]:
    """Query ids from a subset file: one id a line (``#`` comments), or JSON lines with ``qid``."""
    path = Path(path)
    check_readable(path, "subset file")
    ids: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", path=path, line=lineno) from None
            if "qid" not in obj:
                raise InputError("a JSON subset line needs a 'qid' key", path=path, line=lineno)
            ids.append(str(obj["qid"]))
        else:
            ids.append(line)
    if not ids:
        raise InputError("subset file lists no query ids", path=path)
    return ids


# ---------------------------------------------------------------------------------------- data root

def data_root(root: str | Path | None = None) -> Path:
    """The annotation folder: ``root``, else ``$VIDGROUND_DATA``, else ``<repo>/../shared/data``."""
    if root is not None:
        candidate, how = Path(root), "the root argument"
    elif os.environ.get("VIDGROUND_DATA"):
        candidate, how = Path(os.environ["VIDGROUND_DATA"]), "VIDGROUND_DATA"
    else:
        candidate, how = Path(__file__).resolve().parents[1].parent / "shared" / "data", "the default"
    if not candidate.is_dir():
        raise ConfigurationError(
            f"data folder {candidate} (from {how}) does not exist; pass root= / --data-root "
            "or set VIDGROUND_DATA to the folder holding charades-sta/, activitynet-captions/, qvhighlights/, "
            "nextgqa/")
    return candidate


def _need(path: Path) -> Path:
    check_readable(path, "annotation file")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None


class _Reversed(Exception):
    """A GT window whose end is before its start: the query is dropped and reported."""


def _window(s: Any, e: Any, path: Path, line: int | None) -> tuple[float, float]:
    try:
        s, e = float(s), float(e)
    except (TypeError, ValueError):
        raise InputError(f"window [{s!r}, {e!r}] is not two numbers", path=path, line=line) from None
    if not (math.isfinite(s) and math.isfinite(e)):
        raise InputError(f"window [{s}, {e}] is not finite", path=path, line=line)
    if e < s:
        raise _Reversed(f"{path.name}:{line}: GT window [{s:g}, {e:g}] ends before it starts")
    return (s, e)


# ------------------------------------------------------------------------------------------ loaders

def load_durations(path: str | Path) -> dict[str, float]:
    """A Charades ``id,length`` CSV (or the full metadata CSV, which has both columns)."""
    path = _need(Path(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "id" not in reader.fieldnames or "length" not in reader.fieldnames:
            raise InputError("durations CSV needs 'id' and 'length' columns", path=path)
        return {row["id"]: float(row["length"]) for row in reader}


def load_charades_sta(root: Path, split: str) -> Dataset:
    folder = root / "charades-sta"
    ann = _need(folder / f"charades_sta_{split}.txt")
    durations = load_durations(folder / f"charades_{split}_durations.csv")
    queries: list[Query] = []
    dropped: list[str] = []
    index = 0  # the usual query id: the index among the file's non-empty lines
    with ann.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            head, sep, sentence = line.rstrip("\n").partition("##")
            parts = head.split()
            if not sep or len(parts) != 3 or not sentence.strip():
                raise InputError("expected 'VIDEO START END##sentence'", path=ann, line=lineno)
            video = parts[0]
            try:
                queries.append(Query(str(index), video, sentence.strip(), durations.get(video),
                                     (_window(parts[1], parts[2], ann, lineno),)))
            except _Reversed as exc:
                dropped.append(str(exc))
            index += 1
    return Dataset("charades-sta", split, queries, [str(ann), str(folder / f"charades_{split}_durations.csv")],
                   dropped)


def load_activitynet_captions(root: Path, split: str) -> Dataset:
    path = _need(root / "activitynet-captions" / f"{split}.json")
    data = _read_json(path)
    queries: list[Query] = []
    dropped: list[str] = []
    for video, rec in data.items():
        stamps, sentences = rec.get("timestamps", []), rec.get("sentences", [])
        if len(stamps) != len(sentences):
            raise InputError(f"video {video}: {len(stamps)} timestamps but {len(sentences)} sentences", path=path)
        for i, ((s, e), sentence) in enumerate(zip(stamps, sentences)):
            try:
                queries.append(Query(f"{video}#{i}", video, sentence.strip(), rec.get("duration"),
                                     (_window(s, e, path, None),)))
            except _Reversed as exc:
                dropped.append(f"{exc} (video {video}, sentence {i})")
    return Dataset("activitynet-captions", split, queries, [str(path)], dropped)


def load_jsonl(path: str | Path, *, name: str = "jsonl", split: str = "file") -> Dataset:
    """Generic JSONL, one query a line.

    Keys: ``video`` (or ``vid``), ``query``, ``windows`` (or ``relevant_windows``, or
    ``timestamp``/``window`` for a single ``[start, end]``), optional ``qid`` (default: the
    line index) and ``duration``. This also reads QVHighlights / moment_detr files.
    """
    path = _need(Path(path))
    queries: list[Query] = []
    dropped: list[str] = []
    index = 0
    for lineno, obj in iter_json_lines(path):
        index += 1
        video = obj.get("video", obj.get("vid"))
        text = obj.get("query")
        windows = obj.get("windows", obj.get("relevant_windows"))
        if windows is None:
            single = obj.get("timestamp", obj.get("window"))
            windows = [single] if single is not None else None
        if video is None or not isinstance(text, str) or not text.strip() or not windows:
            raise InputError("a query line needs 'video', a non-empty 'query' and 'windows' "
                             "([[start, end], ...])", path=path, line=lineno)
        try:
            wins = tuple(_window(w[0], w[1], path, lineno) for w in windows)
        except (TypeError, IndexError, KeyError):
            raise InputError("'windows' must be a list of [start, end] pairs", path=path, line=lineno) from None
        except _Reversed as exc:
            dropped.append(str(exc))
            continue
        duration = obj.get("duration")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                     or not math.isfinite(duration) or duration <= 0):
            raise InputError(f"'duration' must be a positive number of seconds, got {duration!r}", path=path,
                             line=lineno)
        extra = {k: v for k, v in obj.items()
                 if k not in {"qid", "video", "vid", "query", "duration", "windows", "relevant_windows"}}
        queries.append(Query(str(obj.get("qid", index - 1)), str(video), text.strip(), duration, wins, extra))
    if not queries:
        raise InputError("no queries in the file", path=path)
    return Dataset(name, split, queries, [str(path)], dropped)


def load_nextgqa(root: Path, split: str) -> Dataset:
    """NExT-GQA (``nextgqa/{split}.csv`` and ``gsub_{split}.json``): one multiple-choice question a row, with
    its five options, the correct one, and the spans that support it (``location``), in seconds. The query
    id is the official ``VIDEO_QID`` key. Questions without spans are skipped (listed in ``dropped``); so are
    zero-length spans (a question keeps its other spans). The options keep the file's indices (``a0`` is 0), an option
    written twice included, and the answer is the first option with its text, as the official loader
    (``choices.index(answer)``) and ``eval_ground.py`` (index equality) decide it."""
    folder = root / "nextgqa"
    table, spans_path = _need(folder / f"{split}.csv"), _need(folder / f"gsub_{split}.json")
    spans = _read_json(spans_path)
    queries: list[Query] = []
    dropped: list[str] = []
    with table.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"video_id", "qid", "question", "answer", "a0", "a1"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise InputError(f"needs the columns {', '.join(sorted(need))} (and a2..a4)", path=table)
        options = [c for c in reader.fieldnames if c[:1] == "a" and c[1:].isdigit()]
        for lineno, row in enumerate(reader, 2):
            video, qid = row["video_id"], row["qid"]
            rec = spans.get(video) or {}
            windows = (rec.get("location") or {}).get(qid)
            if not windows:
                dropped.append(f"{table.name}:{lineno}: question {video}_{qid} has no span in {spans_path.name}")
                continue
            try:
                wins = [_window(w[0], w[1], spans_path, None) for w in windows]
            except _Reversed as exc:
                dropped.append(f"{exc} (question {video}_{qid})")
                continue
            wins = [w for w in wins if w[1] > w[0]]
            # the options keep their official indices (a0..a4): one written twice (4 rows of val and test: 'scarf'
            # as a0 and a4) stays twice, as the official loader offers it, so index i is the file's a{i}
            texts = [" ".join(row[c].split()) for c in options]
            while texts and not texts[-1]:  # a table with fewer options leaves the last columns empty
                texts.pop()
            choices = tuple(texts)
            answer = " ".join(row["answer"].split())
            if not wins or not choices or "" in choices or answer not in choices:
                why = ("no span of positive length" if not wins else "no options" if not choices
                       else f"an empty option (a{choices.index('')})" if "" in choices
                       else f"an answer ({answer!r}) that is not one of its options")
                dropped.append(f"{table.name}:{lineno}: question {video}_{qid} has {why}")
                continue
            queries.append(Query(f"{video}_{qid}", video, row["question"].strip(), rec.get("duration"), wins,
                                 # the first option with the answer's text, as the official loader's
                                 # choices.index(ans): a prediction of the other copy's index is wrong there too
                                 {"type": row.get("type")}, choices=choices, answer=choices.index(answer)))
    return Dataset("nextgqa", split, queries, [str(table), str(spans_path)], dropped)


def check_dataset_name(name: str) -> None:
    """A :class:`ConfigurationError` naming the choices (and the likely one) unless ``name`` is a dataset."""
    if name in DATASETS:
        return
    hint = did_you_mean(name, DATASETS, lambda n: n.lower().replace("_", "-").replace(" ", "-"))
    raise ConfigurationError(f"unknown dataset {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                             + f"; choose one of {', '.join(DATASETS)}")


def load_dataset(name: str, split: str | None = None, root: str | Path | None = None,
                 *, path: str | Path | None = None) -> Dataset:
    """Load a dataset by name: ``charades-sta`` (test|train), ``activitynet-captions`` (val_2),
    ``qvhighlights`` (val), ``nextgqa`` (val|test; grounded QA) or ``jsonl`` (give ``path=``; ``split`` is then just a label).

    ``root`` overrides the data folder (see :func:`data_root`).
    """
    check_dataset_name(name)
    if name == "jsonl":
        if path is None:
            raise ConfigurationError("the 'jsonl' dataset needs its queries file: path= / --dataset-file FILE "
                                     "(a JSONL file, one query a line)")
        ds = load_jsonl(path, split=split or "file")
        _check_unique(ds)
        return ds
    if path is not None:  # a file given here would otherwise be ignored, the bundled annotations scored instead
        raise ConfigurationError(f"path= / --dataset-file {path} is for the 'jsonl' dataset; {name} reads its "
                                 "annotations from the data folder (root= / --data-root)")
    split = split or DATASETS[name][0]
    if split not in DATASETS[name]:
        raise ConfigurationError(f"unknown split {split!r} for {name}; choose one of {', '.join(DATASETS[name])}")
    base = data_root(root)
    if name == "charades-sta":
        ds = load_charades_sta(base, split)
    elif name == "activitynet-captions":
        ds = load_activitynet_captions(base, split)
    elif name == "nextgqa":
        ds = load_nextgqa(base, split)
    else:
        ds = load_jsonl(base / "qvhighlights" / f"highlight_{split}_release.jsonl", name=name, split=split)
    _check_unique(ds)
    return ds


def _check_unique(ds: Dataset) -> None:
    """Results are kept by query id: two queries with one id would share one result."""
    seen: set[str] = set()
    for q in ds.queries:
        if q.qid in seen:
            raise InputError(f"{ds.name}/{ds.split}: query id {q.qid!r} is used by more than one query "
                             f"({', '.join(ds.source)}); give each query its own 'qid'")
        seen.add(q.qid)


# ----------------------------------------------------------------------------------- video lookup

def find_videos(video_ids: Iterable[str], folder: str | Path) -> tuple[dict[str, Path], list[str]]:
    """Map video ids to files in ``folder`` (searched recursively, any extension in
    :data:`VIDEO_EXTENSIONS`, case-insensitive). ActivityNet's ``v_`` prefix may be present or
    absent on either side. Returns ``(found, missing)``; missing ids are not an error here. A selected id that
    two files could be (``X.mp4`` and ``X.mkv``, ``X.mp4`` and ``sub/X.mp4``, ``v_X.mp4`` and ``X.mp4``) is an
    :class:`InputError` naming them all (:func:`one_file_per_video`): no copy is chosen silently.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a folder: give the folder holding the videos, named by video id"
                         if folder.exists() else "videos folder not found", path=folder)
    files: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            files.setdefault(p.stem, []).append(p)
    candidates: dict[str, list[Path]] = {}
    for vid in dict.fromkeys(video_ids):
        alternatives = dict.fromkeys([vid, vid[2:] if vid.startswith("v_") else f"v_{vid}"])
        candidates[vid] = [p for a in alternatives for p in files.get(a, [])]
    return one_file_per_video(candidates, folder, "video file")


def one_file_per_video(candidates: dict[str, list[Path]], folder: Path,
                       kind: str) -> tuple[dict[str, Path], list[str]]:
    """``(found, missing)`` from each selected video id's candidate files; an id with two or more is an
    :class:`InputError` listing every such id and its files (a stale copy in a subfolder, or a second format of
    the same captions, was taken silently before, whichever sorted first)."""
    clashes = {vid: paths for vid, paths in candidates.items() if len(paths) > 1}
    if clashes:
        shown = "; ".join(f"{vid}: {', '.join(str(p.relative_to(folder)) for p in paths)}"
                          for vid, paths in list(clashes.items())[:5])
        more = f"; and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        raise InputError(f"{len(clashes)} video(s) have more than one {kind} ({shown}{more}): which one is meant "
                         f"is not guessed; keep one {kind} per video in the folder and its subfolders (move the "
                         "others elsewhere)", path=folder)
    found = {vid: paths[0] for vid, paths in candidates.items() if paths}
    return found, [vid for vid, paths in candidates.items() if not paths]
