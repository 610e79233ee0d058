"""Batch evaluation runs: resumable, cached, concurrent.

A run lives in one folder (``runs/NAME``)::

    config.json      what was run (checked on resume: a different model or sampling is refused), and the
                     prior-span baseline (learned on the train split, see pipelines.baselines)
    provenance.json  where, when and with what it ran: versions, commit, platform, packages, prompt hashes,
                     the annotation files' SHA-256, the command line, each backend's full settings, and
                     one line per invocation (a resumed run has several); secrets are never written
    queries.jsonl    the selected queries with their ground truth (the report needs nothing else)
    results.jsonl    one line per finished query, appended and fsync'd as each one finishes, with short hashes
                     of the inputs it was made from (``inputs``): a resume runs again a query whose inputs changed
    inputs.json      each input file's SHA-256 by path, size and modification time (a resume stats, not reads)
    videos.jsonl     one line per described video: describer calls made / saved, usage, errors; and one
                     ``unfinished`` line per describe or query a Ctrl-C stopped, with what it had paid
    transcripts/     each video's descriptions (for the HTML report)

A run killed at any moment and started again skips the queries already in ``results.jsonl``
(the last line for a query wins; a line torn by the kill is cut off), so no result is lost or
duplicated. ``retry_failed=True`` re-runs only the queries whose last result is a failure.
"""

from __future__ import annotations

import json
import logging
import contextlib
import errno
import hashlib
import inspect
import io
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None  # type: ignore[assignment]

from frame_describer.cache import default_cache_path  # noqa: F401  (imported from here by callers and tests)
from frame_describer.caption_formats import check_clip_seconds, check_format, summarise_notes, video_id_from_path
from frame_describer.descriptions_io import write_descriptions
from vidground import interrupts
from vidground.errors import ConfigurationError, EvaluationError, InputError, VidgroundError
from vidground.files import bounded_name, output_file
from vidground.registry import split_spec
from vidground.types import Sampling, jsonable

from .baselines import SpanPrior, dataset_prior
from .executors import paid_requests
from .datasets import (DATASETS, VIDEO_EXTENSIONS, Dataset, Query, find_videos, load_dataset, one_file_per_video,
                       read_subset_file)
from .metrics import Metrics, compute_metrics, compute_qa_metrics
from .provenance import FileHashes, collect, command_line, redact
from .topk import DEFAULT_TOP_K, TOP_K_NOT_GIVEN, _NotGiven, check_top_k  # noqa: F401  (imported from here too)
from .backends import check_backends

log = logging.getLogger("vidground")

#: Settings that must match for a run folder to be resumed.
_MUST_MATCH = ("dataset", "split", "dataset_path", "mode", "describer", "reasoner", "fps", "num_frames",
               "max_frames", "max_side", "top_k", "descriptions_format", "clip_seconds", "reasoner_options",
               "describer_options", "motion", "search", "skip_unchanged")
#: Backend options that change how a backend reaches its server, never what it answers: a resume may change them
#: (the timeout error's own hint is to resend with timeout_retries=N), and the run records each invocation's values.
#: ``base_url`` is not one of them: another address may serve another model.
CONNECTION_OPTIONS = frozenset({"timeout", "timeout_retries", "max_retries", "retry_base_delay", "rpm", "tpm",
                                "concurrency", "api_key"})
#: What a setting added later means in a run folder written before it existed.
_OLD_DEFAULTS: dict[str, Any] = {"descriptions_format": "auto", "clip_seconds": None, "reasoner_options": {},
                                 "describer_options": {}, "motion": False, "search": None, "skip_unchanged": None}
#: The generation of defaults a run is written with (``defaults`` in config.json; a folder without it is 1).
DEFAULTS_VERSION = 2
#: Defaults that changed after run folders existed: (generation it changed in, which setting, applies to the run,
#: value before, value since, the flag that gives the value before). A folder started before them ran with the
#: old value wherever the setting was left out, so a resume resolves both sides first and refuses a run that
#: would mix the two behaviours.
_CHANGED_DEFAULTS: tuple[tuple[int, str, Callable[[dict[str, Any]], bool], Any, Any, str], ...] = (
    (2, "search.keyframe_tolerance", lambda c: bool(c.get("search")), 0.0, 0.25, "--keyframe-tolerance 0"),
    (2, "reasoner_options.polarity", lambda c: _reasoner_family(c) == "embedding", 0.0, 0.15,
     "--reasoner-opt polarity=0"),
    (2, "reasoner_options.context_tokens", lambda c: _reasoner_family(c) == "openai", None, 100_000,
     "--reasoner-opt context_tokens=null"),
)


def _reasoner_family(config: dict[str, Any]) -> str:
    name = split_spec(config.get("reasoner") or "embedding")[0]
    return "embedding" if name in ("offline", "similarity") else name


def _resolved(config: dict[str, Any], version: int) -> dict[str, Any]:
    """``config`` with each changed default it left out filled in as it was in generation ``version``."""
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    for since, key, applies, before, after, _ in _CHANGED_DEFAULTS:
        section, name = key.split(".")
        if applies(config) and isinstance(config.get(section), dict) and name not in config[section]:
            config[section][name] = before if version < since else after
    return config


@dataclass
class RunConfig:
    """Everything that defines a run. ``videos`` or ``descriptions`` (a folder) must be given."""

    dataset: str
    split: str | None = None
    dataset_path: str | None = None
    data_root: str | None = None
    videos: str | None = None
    descriptions: str | None = None
    descriptions_format: str = "auto"
    clip_seconds: float | None = None
    describer: str | None = None
    reasoner: str | None = None
    fps: float | None = None  # 1 frame a second unless num_frames samples by count (resolved at construction)
    num_frames: int | None = None
    max_frames: int | None = None
    max_side: int | None = 512
    #: intervals kept of each answer; ``None``: all of them; not given (:data:`TOP_K_NOT_GIVEN`): :func:`run_eval`
    #: resolves it on its own copy (:func:`resolve_top_k`): the K the run folder was started with, else
    #: :data:`DEFAULT_TOP_K` (as many as mAP ranks)
    top_k: int | None | _NotGiven = TOP_K_NOT_GIVEN
    limit: int | None = None
    seed: int = 0
    subset: str | None = None
    clip_gt: bool = False
    cache: str | None = None
    concurrency: int = 2
    query_concurrency: int = 1
    reasoner_options: dict[str, Any] = field(default_factory=dict)
    describer_options: dict[str, Any] = field(default_factory=dict)
    #: run on the inputs found even when more than half of the selected videos have none
    allow_missing: bool = False
    #: append what moved since the previous sample to each description (frame_describer.motion)
    motion: bool = False
    #: which frames are described: ``None`` for all (uniform), else :class:`pipelines.search.Search` settings
    search: dict[str, Any] | None = None
    #: don't send a frame this close to the last one sent (frame_describer.skip); ``None``: off
    skip_unchanged: float | None = None

    def __post_init__(self) -> None:
        if self.fps is None and self.num_frames is None:  # neither: 1 frame a second (fps=None asks for it too)
            self.fps = 1.0

    @property
    def mode(self) -> str:
        return "descriptions" if self.descriptions else "videos"

    @property
    def sampling(self) -> Sampling:
        """The frame sampling settings, checked (a :class:`ConfigurationError` names a bad one)."""
        return Sampling.of(fps=self.fps, num_frames=self.num_frames, max_frames=self.max_frames,
                           max_side=self.max_side)

    def check(self) -> None:
        if (self.videos is None) == (self.descriptions is None):
            raise ConfigurationError("give exactly one of --videos DIR (both stages) or --descriptions DIR (stage 2 only)")
        if self.descriptions and self.describer:
            raise ConfigurationError("--describer has no effect with --descriptions (stage 2 only); drop one")
        if self.descriptions and (self.search or self.skip_unchanged is not None):
            raise ConfigurationError("--strategy coarse-to-fine and --skip-unchanged choose which frames of a video are "
                                     "described: they need --videos, not --descriptions")
        if self.search:
            from .search import Search

            if Search.of(self.search).refines and self.motion:
                raise ConfigurationError("--motion and --strategy coarse-to-fine cannot be combined: the motion "
                                         "stream compares each frame with the one sampled just before it")
        if self.skip_unchanged is not None:
            from .search import check_skip_unchanged

            check_skip_unchanged(self.skip_unchanged)
        if self.descriptions and self.motion:
            raise ConfigurationError("--motion measures the videos' frames: it needs --videos, not --descriptions")
        sampled = [flag for flag, given in (("--fps", self.fps not in (1.0, None)), ("--num-frames", self.num_frames),
                                            ("--max-frames", self.max_frames), ("--max-side", self.max_side != 512))
                   if given]
        if self.descriptions and sampled:  # ignored, yet recorded in config.json as if the run had used them
            raise ConfigurationError(f"{', '.join(sampled)}: frame sampling has no effect with --descriptions (stage 2 "
                                     "only); drop them")
        if not self.descriptions and (self.descriptions_format != "auto" or self.clip_seconds is not None):
            raise ConfigurationError("--descriptions-format and --clip-seconds apply to --descriptions DIR only")
        check_clip_seconds(self.clip_seconds, check_format(self.descriptions_format))
        check_top_k(self.top_k)  # 2.5, True or "3" would fail every query, or the run, later
        for name in ("concurrency", "query_concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {value}")
        if self.mode == "videos":
            self.sampling  # noqa: B018  (checks fps, num_frames, max_frames, max_side before any video is opened)

    def to_json(self) -> dict[str, Any]:
        """The settings as written to ``config.json``: secrets (an ``api_key`` option) redacted."""
        given = {} if self.top_k is not TOP_K_NOT_GIVEN else {"top_k": "not given"}  # run_eval records the K used
        return redact(asdict(self) | given | {"mode": self.mode, "defaults": DEFAULTS_VERSION})


@dataclass
class VideoTask:
    """One unit of work: a video (or its descriptions file) and its pending queries."""

    video: str
    source: str
    queries: list[Query]


# --------------------------------------------------------------------------------------- the sink

def _json_default(value: Any) -> Any:
    """What a record holds that JSON cannot write, as JSON: numpy values as numbers and lists, a set as a list, any
    other object by its text. A plug-in's ``raw`` holding an array stopped the whole eval (TypeError, 0 lines)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    plain = jsonable(value)
    return str(value) if plain is value else plain


class ResultSink:
    """Append-only JSONL, one whole line plus ``fsync`` per record; thread safe. A write the disk refuses (full, a
    quota, a file-size limit, an I/O error) is cut back to the last whole line and raised as an :class:`InputError`
    saying what was kept and how to resume: a torn line is never left behind by a writer that is still alive."""

    def __init__(self, path: str | Path, unit: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path, unit)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._lines = self.path.read_bytes().count(b"\n")  # the whole records in it, for a refused write's error

    def append(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default) + "\n").encode()
        with self._lock:
            start = os.fstat(self._fd).st_size  # the end of the last whole line (the only writer: the run's lock)
            try:
                view = memoryview(data)
                while view:  # a short write (a file-size limit reached, a signal) is continued, then refused
                    view = view[os.write(self._fd, view):]
                os.fsync(self._fd)
            except OSError as exc:
                raise self._refused(exc, start) from None
            self._lines += 1

    def _refused(self, exc: OSError, start: int) -> InputError:
        """The error for a write the disk refused, once the part of the record written is cut off."""
        try:
            os.ftruncate(self._fd, start)
            os.fsync(self._fd)
        except OSError as cut:
            return InputError(f"cannot write ({exc.strerror or exc}), nor cut the partial record off again "
                              f"({cut.strerror or cut}); the next run cuts it (a torn last line), then resumes",
                              path=self.path)
        return InputError(f"cannot write ({exc.strerror or exc}); kept the {self._lines} whole line(s) written before "
                          "(the record being written was cut off, and runs again): free space or raise the file-size "
                          "limit (ulimit -f), then run the same command again to resume", path=self.path)

    def size(self) -> int:
        """The file's length in bytes (a record being appended when a Ctrl-C came was written if it grew)."""
        with self._lock:
            return os.fstat(self._fd).st_size

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "ResultSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def repair_tail(path: Path, unit: str | None = None) -> None:
    """A last line without its newline: a whole JSON object (its newline lost to a kill or an edit) keeps its place
    and gets the newline, anything else (a record a killed writer had not finished) is cut, with a warning naming
    its size; ``unit`` (``"query"``, ``"video"``) names what runs again."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        if _record(data[cut:].decode("utf-8", errors="replace"), None) is not None:
            fh.write(b"\n")  # the file's end: read() left the position there
        else:
            fh.truncate(cut)
            log.warning("%s: cut a torn last line (%d bytes) left by an interrupted run; %s", path.name,
                        len(data) - cut, f"its {unit} runs again" if unit else "what it held is made again")
        fh.flush()
        os.fsync(fh.fileno())


def _record(line: str, key: str | None) -> dict[str, Any] | None:
    """The JSON object on ``line`` (holding ``key`` when one is needed), or ``None`` when it is not one."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and (key is None or key in rec) else None


def read_jsonl(path: Path, key: str | None = None) -> list[dict[str, Any]]:
    """Records of a sink file; a torn last line is ignored, a bad line elsewhere (not a JSON object, or
    without ``key``) is an error that says how to repair it."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        rec = _record(line, key)
        if rec is None:
            if i == len(lines) - 1:
                break  # torn by a kill
            raise InputError("corrupt result line; run the same eval command again to move the corrupt lines "
                             "aside and run their queries again", path=path, line=i + 1)
        out.append(rec)
    return out


def repair_lines(path: Path, key: str) -> int:
    """Move the lines of a sink file that are not whole records (damaged by a disk fault or an edit) to
    ``PATH.corrupt`` (appended, so nothing is lost) and rewrite the file without them; how many moved.
    Their queries are not done, so a resumed run runs them again."""
    if not path.exists():
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    torn = lines[-1] if lines[-1].strip() else ""  # a last line without its newline: repair_tail's job
    body = lines[:-1]
    bad = [(i, ln) for i, ln in enumerate(body) if ln.strip() and _record(ln, key) is None]
    if not bad:
        return 0
    with open(f"{path}.corrupt", "a", encoding="utf-8") as side:
        side.writelines(f"{ln}\n" for _, ln in bad)
        side.flush()
        os.fsync(side.fileno())
    drop = {i for i, _ in bad}
    with output_file(path) as fh:
        fh.writelines(f"{ln}\n" for i, ln in enumerate(body) if i not in drop and ln.strip())
        fh.write(torn)
    log.warning("%s: moved %d corrupt line(s) (line %s) to %s.corrupt; their queries run again", path, len(bad),
                ", ".join(str(i + 1) for i, _ in bad[:5]) + (", ..." if len(bad) > 5 else ""), path.name)
    return len(bad)


def read_run_json(path: Path, default: Any = None) -> Any:
    """A run folder's JSON object file (``config.json``, ``provenance.json``, ``missing.json``), ``default``
    when it is absent; one damaged by an edit or a disk fault is an :class:`InputError` naming it."""
    if not path.exists():
        return default
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise InputError(f"damaged run file: not valid JSON ({exc}); restore it, or give another --out",
                         path=path) from None
    except OSError as exc:  # a folder in its place, no permission to read it
        raise InputError(f"run file cannot be read ({exc.strerror or exc}); restore it, or give another --out",
                         path=path) from None
    if not isinstance(value, dict):
        raise InputError(f"damaged run file: a JSON {type(value).__name__}, not an object; restore it, or give "
                         "another --out", path=path)
    return value


def missing_videos(out: Path) -> set[str]:
    """The videos a run found no input for (``missing.json``)."""
    path = out / "missing.json"
    videos = read_run_json(path, {"missing_videos": []}).get("missing_videos")
    if not isinstance(videos, list):
        raise InputError("damaged run file: 'missing_videos' is not a list; run the same eval command again to "
                         "rewrite it", path=path)
    return {str(v) for v in videos}


def latest_results(path: Path) -> dict[str, dict[str, Any]]:
    """The last record of each query id."""
    return {str(r["qid"]): r for r in read_jsonl(path, "qid")}


# ------------------------------------------------------------------------------ selecting queries

def select_queries(config: RunConfig) -> Dataset:
    ds = load_dataset(config.dataset, config.split, config.data_root, path=config.dataset_path)
    qids = read_subset_file(config.subset) if config.subset else None
    return ds.subset(limit=config.limit, seed=config.seed, qids=qids)


#: The extensions of descriptions and caption files.
_DESCRIPTION_EXTENSIONS = (".jsonl", ".json", ".csv", ".srt", ".vtt")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an eval run (its ``config.json`` and ``results.jsonl``)."""
    return (folder / "config.json").is_file() and (folder / "results.jsonl").is_file()


def _input_files(folder: Path, exts: Iterable[str], skip: Path | None = None) -> list[Path]:
    """The files under ``folder`` (recursively, sorted) with one of ``exts``, leaving out ``skip`` (the run's own
    --out) and every run folder below ``folder``: a run keeps its descriptions in ``transcripts/ID.jsonl``, which
    would otherwise be a second file of each video, and a run folder placed under the descriptions folder could
    not be resumed."""
    skipped = {os.path.normcase(os.path.abspath(skip))} if skip is not None else set()
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        dirs[:] = [d for d in dirs if os.path.normcase(os.path.abspath(here / d)) not in skipped
                   and not is_run_folder(here / d)]
        found += [here / n for n in names if Path(n).suffix.lower() in exts and (here / n).is_file()]
    return sorted(found)


def find_descriptions(video_ids: Iterable[str], folder: str | Path,
                      out: str | Path | None = None, *, v_prefix: bool = False) -> tuple[dict[str, Path], list[str]]:
    """Map video ids to descriptions or caption files under ``FOLDER`` (searched recursively): ``ID.jsonl``,
    ``ID.json``, ``ID.csv``, ``ID.srt`` or ``ID.vtt``, also named ``ID.descriptions.jsonl`` (what ``vidground
    describe`` suggests) or ``ID_cap.json`` (NExT-GQA caption sets). With ``v_prefix`` ActivityNet's ``v_`` may be
    present or absent on either side (video ``v_X`` finds ``v_X.jsonl`` or ``X.jsonl``, as
    :func:`~pipelines.datasets.find_videos` does). A selected id that two files could be (``ID.csv`` beside ``ID_cap.json``, ``ID.jsonl`` beside a copy in a
    subfolder, ``v_X.jsonl`` beside ``X.jsonl``) is an :class:`InputError` naming them all: no file is chosen
    silently over another. The run folder ``out`` and any other run folder below ``FOLDER`` are not searched."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a folder: give the folder holding the descriptions, one file a video "
                         "named by its id (ID.jsonl)" if folder.exists() else "descriptions folder not found",
                         path=folder)
    files: dict[str, list[Path]] = {}
    for p in _input_files(folder, _DESCRIPTION_EXTENSIONS, None if out is None else Path(out)):
        for vid in dict.fromkeys((p.stem, video_id_from_path(p))):
            files.setdefault(vid, []).append(p)

    def names(vid: str) -> list[str]:
        return [vid, *([vid[2:] if vid.startswith("v_") else f"v_{vid}"] if v_prefix else [])]

    return one_file_per_video({v: sorted(set(p for n in names(v) for p in files.get(n, [])))
                               for v in dict.fromkeys(video_ids)}, folder, "descriptions file")


def check_descriptions(sources: dict[str, Path], clip_seconds: float | None, descriptions_format: str = "auto") -> None:
    """Before a descriptions run starts (a grounding eval's, an events eval's): each file found for a video names that
    video or none (its ``video`` field, as a replay checks it), and ``--clip-seconds`` with ``--descriptions-format
    auto`` meets one clip format only.

    Two caption files swapped by name ran each video's queries on the other's captions, and reported no problem;
    a clip length given to a folder of mixed formats failed the vidground files query by query and squeezed the
    clips of another length. Both are a :class:`ConfigurationError` naming the files now, and nothing is run."""
    from frame_describer.caption_formats import DEFAULT_CLIP_SECONDS, detect_format
    from frame_describer.descriptions_io import named_video
    from frame_describer.video_names import same_video

    wrong = [f"{path} names video {named!r}" for vid, path in sources.items()
             if (named := named_video(path)) is not None and not same_video(named, vid)]
    if wrong:
        more = "; ..." if len(wrong) > 3 else ""
        raise ConfigurationError(f"{len(wrong)} descriptions file(s) are of another video than the one they were "
                                 f"found for by their name: {'; '.join(wrong[:3])}{more}. Rename them after the video "
                                 "their 'video' field names (or fix that field)")
    if clip_seconds is None or descriptions_format != "auto":
        return
    formats: dict[str, list[Path]] = {}
    for path in sources.values():
        try:
            formats.setdefault(detect_format(path), []).append(path)
        except (InputError, OSError):  # a binary or unreadable file: its video's queries fail, naming it
            continue
    found = ", ".join(f"{len(ps)} {fmt} (e.g. {ps[0].name})" for fmt, ps in sorted(formats.items()))
    takes = " or ".join(DEFAULT_CLIP_SECONDS)
    if formats and not set(formats) & set(DEFAULT_CLIP_SECONDS):  # no file has clips of a length to give
        raise ConfigurationError(f"--clip-seconds {clip_seconds:g} applies to {takes} captions only; the selected "
                                 f"videos' files are {found}, which carry their own times: drop --clip-seconds")
    if len(formats) > 1 or not set(formats) <= set(DEFAULT_CLIP_SECONDS):
        raise ConfigurationError(f"--clip-seconds {clip_seconds:g} applies to {takes} captions, of one format "
                                 f"in a run; the selected videos' files are {found}: give --descriptions-format, or "
                                 "keep each format in a folder of its own")


def _folder_ids(folder: Path, mode: str) -> set[str]:
    """The video ids the files in ``folder`` would be found under."""
    exts = VIDEO_EXTENSIONS if mode == "videos" else _DESCRIPTION_EXTENSIONS
    ids: set[str] = set()
    for p in _input_files(folder, exts):
        ids |= {p.stem, video_id_from_path(p)}
    return ids


def _likely_cause(ds: Dataset, config: RunConfig, found: int, missing: list[str]) -> str:
    """Why the inputs of ``missing`` videos are not in the folder: another split, another id format, an
    empty or wrong folder."""
    folder = Path(config.videos or config.descriptions or ".")
    what = "video files" if config.mode == "videos" else f"descriptions files ({', '.join(_DESCRIPTION_EXTENSIONS)})"
    have = _folder_ids(folder, config.mode)
    if not have:
        return f"{folder} holds no {what}; check the folder"
    for other in DATASETS.get(ds.name, ()):
        if other == ds.split or ds.name == "jsonl":
            continue
        try:
            overlap = len(have & set(load_dataset(ds.name, other, config.data_root).videos))
        except VidgroundError:
            continue
        if overlap > found:
            return f"{overlap} of the folder's files are {ds.name}/{other} videos: pass --split {other}"
    lower = {h.lower().removeprefix("v_"): h for h in have}
    for vid in missing:
        near = lower.get(vid.lower().removeprefix("v_")) or next(
            (h for h in sorted(have) if vid in h and len(h) > len(vid)), None)
        if near:
            return (f"files are named unlike the dataset's ids (file {near!r} for video {vid!r}); name them "
                    f"VIDEO_ID.ext as the dataset spells the id")
    return (f"the folder's files (e.g. {', '.join(sorted(have)[:3])}) are not named after these videos "
            f"(e.g. {', '.join(missing[:3])}); check the folder, --dataset and --split")


def check_inputs(ds: Dataset, config: RunConfig, found: dict[str, Path], missing: list[str]) -> None:
    """An :class:`EvaluationError` naming the likely cause when the selection is empty, no selected
    video has an input, or (unless ``allow_missing``) most of them have none."""
    if not ds.queries:
        raise EvaluationError(f"the selection from {ds.name}/{ds.split} is empty; check --subset and --limit")
    folder = config.videos or config.descriptions
    if not missing or (found and (config.allow_missing or len(missing) <= len(found))):
        return
    total = len(found) + len(missing)
    kind = "video file" if config.mode == "videos" else "descriptions file"
    head = f"{len(missing)} of the {total} selected {ds.name}/{ds.split} videos have no {kind} in {folder}"
    hint = "" if not found else f" (or pass --allow-missing to run on the {len(found)} found)"
    raise EvaluationError(f"{head}: {_likely_cause(ds, config, len(found), missing)}{hint}",
                          counts={"missing": len(missing), "found": len(found)})


# ---------------------------------------------------------------------------------------- the run

@dataclass
class RunSummary:
    out: Path
    selected: int
    already_done: int
    ran: int
    failed: int
    missing_videos: list[str]
    describe_calls: int
    describe_saved: int
    cost_usd: float
    seconds: float
    metrics: Metrics | None
    #: answered model requests over every attempt in the run folder (a request that got no answer after its retries
    #: is not counted); ``unpriced_requests`` of them had no price (not in ``cost_usd``), ``failed_requests`` were for
    #: attempts that ended in an error (a query's, or a video's describing), earlier ones that --retry-failed redid
    #: included
    requests: int = 0
    unpriced_requests: int = 0
    failed_requests: int = 0
    #: annotations the dataset's loader skipped ("file:line: why"), also in provenance.json: the whole file's,
    #: whatever --limit or --subset chose among its ``loaded`` queries (None: not known)
    dropped: list[str] = field(default_factory=list)
    loaded: int | None = None
    #: describer calls made / saved by the cache by this invocation alone (``describe_calls`` and ``describe_saved``
    #: are the run folder's totals over every invocation)
    describe_calls_now: int = 0
    describe_saved_now: int = 0
    #: ``{"type", "message"}`` when the run has no result for one cause (:func:`no_result_cause`: every query this
    #: invocation ran failed with that one error, no ok result in the folder, and two or more ran or the error is
    #: run-wide): ``vidground eval`` then exits 1; else ``None``
    same_error: dict[str, Any] | None = None
    #: the settings the run used: the caller's config with its defaults resolved (describer, reasoner, cache, top_k),
    #: a copy (:func:`run_eval` leaves the caller's config as given)
    config: RunConfig | None = None

    @property
    def cost_text(self) -> str:
        """``cost_usd`` as the command prints it, ``unknown`` where no price was known."""
        return format_cost(self.cost_usd, self.requests, self.unpriced_requests)


def check_out_folder(out: Path) -> None:
    """``out`` must be a run folder or a place to make one: a file, a FIFO or a device there (or a file on
    the way to it) is a :class:`ConfigurationError`, before any work."""
    for p in (out, *out.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is a file" if p.is_file() else "is not a folder"
                raise ConfigurationError(f"--out {out}: {p} {what}; give a folder for the run (it is created)")
            break


#: What an eval writes in its run folder (and ``vidground report`` beside it).
RUN_FOLDER_NAMES = ("config.json", "queries.jsonl", "results.jsonl", "missing.json", "provenance.json", "inputs.json",
                    "videos.jsonl", "metrics.json", "report.md", "index.html", "plots", "transcripts")


#: The file an eval keeps locked (``fcntl.flock``) in its run folder for as long as it writes there; its text says
#: who holds it (pid, host, start, command). Left in place when the run ends: only the lock says a run is live.
LOCK_NAME = ".vidground.lock"

#: The run folders this process holds locked (resolved paths): its own reads of them are not another's run.
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()  # guards _HELD: its check and its claim are one step


class RunFolderBusyError(ConfigurationError):
    """Another eval (another process, or another thread of this one) is writing the run folder: two at once would
    run the same queries twice, each rewriting the other's config.json and queries.jsonl. ``path`` is the folder,
    ``holder`` what the other wrote in its lock file (``pid``, ``host``, ``started``, ``command``; empty when it
    had not written it yet)."""

    def __init__(self, path: str | Path, holder: dict[str, Any]):
        self.path = str(path)
        self.holder = dict(holder)
        super().__init__(f"{self.path} is being written by another eval ({holder_text(holder)}): two evals on one "
                         "run folder would run its queries twice and mix their results; wait for that one to end and "
                         "run this command again to resume the run, or give another --out")


def holder_text(holder: dict[str, Any]) -> str:
    """``pid 123 on host, started 2026-01-02T03:04:05Z: vidground eval ...`` from a lock file's record."""
    if not holder.get("pid"):
        return "it has just started"
    text = f"pid {holder['pid']} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
    return text + (f": {holder['command']}" if holder.get("command") else "")


def _holder(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        value = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(value, dict):
            return value
    return {}


class RunFolderLock:
    """An exclusive lock on a run folder for one eval (a lock file in it, ``flock``-ed): taken by :meth:`acquire`,
    given back by :meth:`release` or when the process ends however it ends (the kernel drops it with the file)."""

    #: how many times, ``PAUSE`` seconds apart, a busy lock is tried before the folder is another eval's
    TRIES, PAUSE = 20, 0.05

    def __init__(self, out: Path):
        self.out = Path(out)
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self, argv: Sequence[str] | None = None) -> None:
        """Lock the run folder (it must exist); a :class:`RunFolderBusyError` at once when another eval holds it, a
        :class:`ConfigurationError` when the folder cannot be written."""
        if self.held or fcntl is None:
            return
        path = self.out / LOCK_NAME
        key = str(self.out.resolve())
        with _HELD_LOCK:  # claimed before flock: two evals of this process at once cannot both pass the check
            if key in _HELD:  # another eval of this process: on NFS, whose flock is emulated by POSIX locks that
                # never conflict within one process, the kernel would let it in
                raise RunFolderBusyError(self.out, _holder(path))
            _HELD.add(key)
        fd = -1
        try:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConfigurationError(f"--out {self.out}: cannot write in the run folder ({exc.strerror or exc}); "
                                         "give a folder you can write") from None
            busy = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            for attempt in range(self.TRIES):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    # a reader (report, score, compare: run_in_progress) holds a shared lock for a moment: tried
                    # again for about a second before the folder is taken for another eval's
                    if exc.errno in busy and attempt + 1 < self.TRIES:
                        time.sleep(self.PAUSE)
                        continue
                    if exc.errno in busy:
                        raise RunFolderBusyError(self.out, _holder(path)) from None
                    # a file system without locks (some network mounts): the run goes on, unguarded, and says so
                    log.warning("%s: cannot lock the run folder (%s): another eval on it at the same time would mix "
                                "its results with this one's", self.out, exc.strerror or exc)
                    os.close(fd)
                    fd = -1
                    with _HELD_LOCK:
                        _HELD.discard(key)
                    return
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "command": command_line(argv)}  # secrets redacted, as provenance.json's: the file is world-readable
            with contextlib.suppress(OSError):  # who holds it is told to the next comer only; the lock is what counts
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except BaseException:  # refused, or a Ctrl-C in the retries' pause: nothing held, no descriptor left open
            if fd >= 0:
                os.close(fd)
            with _HELD_LOCK:
                _HELD.discard(key)
            raise
        self._fd = fd
        self._key = key  # released by the key it was held under: a chdir meanwhile must not leave it claimed

    def make_folder(self, recheck: Callable[[], None], argv: Sequence[str] | None = None) -> None:
        """Make the run folder (a :class:`ConfigurationError` where it cannot be) and lock it if it was not yet
        (a new folder); ``recheck`` then checks the resume again: another run may have begun there meanwhile."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"--out {self.out}: cannot make the run folder ({exc.strerror or exc}); give a "
                                     "folder you can write") from None
        if not self.held:
            self.acquire(argv)
            recheck()

    def release(self) -> None:
        if self.held:
            with _HELD_LOCK:
                _HELD.discard(getattr(self, "_key", None) or str(self.out.resolve()))
            os.close(self._fd)  # drops the lock
            self._fd = -1

    def __enter__(self) -> RunFolderLock:
        """A hold over more than :func:`run_eval` (``vidground eval`` writes the report under it): taken where
        run_eval takes it (``lock=``), given back when the block ends, however it ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_in_progress(out: str | Path) -> dict[str, Any] | None:
    """What the eval writing ``out`` now (in another process) wrote in its lock file (``{}`` when it
    had not yet), ``None`` when none is: a reader (report, score, compare) may say it read a run still under way."""
    out = Path(out)
    if fcntl is None or str(out.resolve()) in _HELD:
        return None
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return _holder(out / LOCK_NAME) if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    finally:
        os.close(fd)
    return None


def _check_resume(out: Path, config: RunConfig) -> None:
    check_out_folder(out)
    path = out / "config.json"
    if not path.exists():
        # not a run folder: an eval would overwrite (and --no-report remove) what it names as its own
        clashes = [name for name in RUN_FOLDER_NAMES if (out / name).exists() or (out / name).is_symlink()]
        if clashes:
            raise ConfigurationError(f"--out {out} is not a run folder (no config.json) but holds "
                                     f"{', '.join(clashes)}, names an eval writes: they would be overwritten; give a "
                                     "new or empty folder (or move them)")
        return
    # a run folder written before redaction existed may hold a plaintext api_key: both sides are compared,
    # and shown, redacted (config.json is then rewritten without it)
    old = redact(read_run_json(path))
    version = old.get("defaults", 1)
    if config.limit is not None and "seed" in old and old["seed"] != config.seed:  # U21: said nowhere before
        log.warning("%s: this run was started with --seed %s; --seed %s selects other queries: the results of "
                    "queries outside the new selection stay in results.jsonl but are not scored (the same --seed "
                    "resumes the run as it was)", out, old["seed"], config.seed)
    new = _resolved(config.to_json(), DEFAULTS_VERSION)
    old = _resolved({k: old.get(k, _OLD_DEFAULTS.get(k)) for k in _MUST_MATCH}, version)
    unused = ("fps", "num_frames", "max_frames", "max_side") if new.get("mode") == "descriptions" else ()
    if new.get("dataset") != "jsonl":  # a bundled dataset: a --dataset-file an older run recorded was never read
        unused += ("dataset_path",)
    for side in (old, new):
        for k in ("reasoner_options", "describer_options"):
            if isinstance(side.get(k), dict):
                side[k] = {name: v for name, v in side[k].items() if name not in CONNECTION_OPTIONS}
    if old.get("dataset_path") and new.get("dataset_path"):  # one file named from two working folders is the same
        then = _recorded_cwd(out) or os.getcwd()
        if _same_path(Path(then) / old["dataset_path"], Path(new["dataset_path"])):
            old["dataset_path"] = new["dataset_path"]
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in _MUST_MATCH if old.get(k) != new.get(k) and k not in unused]
    if diff:
        changed = [(key, flag) for since, key, _, _, _, flag in _CHANGED_DEFAULTS
                   if version < since and _dig(old, key) != _dig(new, key)]
        hint = (f" (the default of {', '.join(k for k, _ in changed)} changed since this run started: give the "
                f"value it ran with, {' '.join(f for _, f in changed)}, to resume it)") if changed else ""
        raise ConfigurationError(f"{out} holds a run with other settings ({'; '.join(diff)}){hint}; "
                                 "use another --out or the same settings to resume")


def _same_path(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same file when both exist (through ``..``, a link), else the same
    normalised absolute path."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return a.samefile(b)
    return os.path.normpath(a.absolute()) == os.path.normpath(b.absolute())


def resolve_top_k(config: RunConfig, out: str | Path) -> tuple[int | None, str]:
    """The K a run of ``config`` into ``out`` keeps, and where it came from (for a warning): ``config.top_k`` when
    given (``None``: every interval), else the K the run in ``out`` was started with (a resume keeps it, an older
    run's 5 too; a run recorded with ``null`` kept every interval and still does), else :data:`DEFAULT_TOP_K`.
    ``config`` is left as it is: one config may serve several folders."""
    if config.top_k is not TOP_K_NOT_GIVEN:
        return config.top_k, "--top-k"  # type: ignore[return-value]
    old = read_run_json(Path(out) / "config.json", {})
    if isinstance(old, dict) and "top_k" in old:
        recorded = old["top_k"]
        if recorded is None or isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 1:
            return recorded, f"the run in {out} was started with it"
    return DEFAULT_TOP_K, "default"


def _dig(config: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return (config.get(section) or {}).get(name)


def _atomic_write(path: Path, text: str) -> None:
    with output_file(path) as fh:
        fh.write(text)


#: The flags whose paths a run reads, and the settings that hold them.
_PATH_FLAGS = (("--descriptions", "descriptions"), ("--videos", "videos"), ("--data-root", "data_root"),
               ("--dataset-file", "dataset_path"))


def _where(config: RunConfig) -> dict[str, Any]:
    """Where an invocation ran: its working folder and each input path made absolute (config.json keeps them as
    given)."""
    paths = {key: str(Path(getattr(config, key)).absolute()) for _, key in _PATH_FLAGS if getattr(config, key)}
    return {"cwd": os.getcwd(), "paths": paths}


def _recorded_cwd(out: Path) -> str | None:
    """The working folder the run's last invocation ran in (``None`` for a run folder written before it was
    recorded)."""
    invocations = read_run_json(out / "provenance.json", {}).get("invocations") or []
    cwd = invocations[-1].get("cwd") if isinstance(invocations, list) and invocations and isinstance(
        invocations[-1], dict) else None
    return cwd if isinstance(cwd, str) else None


def _check_paths_here(out: Path, config: RunConfig) -> None:
    """A resume from another working folder whose relative input path is not found here, but is from the folder
    the run's last invocation ran in: a :class:`ConfigurationError` giving the path to pass (it said only
    "descriptions folder not found")."""
    cwd = _recorded_cwd(out)
    if cwd is None or Path(cwd) == Path.cwd():
        return
    for flag, key in _PATH_FLAGS:
        value = getattr(config, key)
        if value and not Path(value).is_absolute() and not Path(value).exists() and (Path(cwd) / value).exists():
            raise ConfigurationError(f"{flag} {value} is not found from {Path.cwd()}: this run was started in {cwd}, "
                                     f"where it is {Path(cwd) / value}; give that path (or run from {cwd}) to "
                                     f"resume {out}")


class _RunInputs:
    """What each result was made from, so that a resume notices a changed input: every result records
    (``inputs``) a short hash of its video's descriptions file (descriptions runs; a videos run: the video file's
    content fingerprint, which the description cache uses too), of its query (video, text,
    duration, choices: what the reasoner sees, not the ground truth) and of a ``rephrasings=`` file. A result
    whose recorded hashes differ from the inputs now is stale: its query runs again. Files are hashed once and
    then known by size and modification time (``inputs.json``, :class:`~pipelines.provenance.FileHashes`)."""

    def __init__(self, out: Path, config: RunConfig, sources: dict[str, Path]):
        self.hashes = FileHashes(out / "inputs.json")
        self.sources = sources
        #: what a video's input is: its descriptions file, or the video itself
        self.kind = "descriptions" if config.mode == "descriptions" else "video"
        self.files = {vid: self.hashes.sha(path, video=self.kind == "video") for vid, path in sources.items()}
        rephrasings = (config.reasoner_options or {}).get("rephrasings")
        self.rephrasings = rephrasings if isinstance(rephrasings, str) else None
        self.rephrasings_sha = self.hashes.sha(self.rephrasings) if self.rephrasings else None
        self.changed: dict[str, set[str]] = {}  # what changed -> the videos (or qids) it changed for

    def of(self, q: Query) -> dict[str, str]:
        """The short hashes a result of ``q`` records."""
        query = json.dumps([q.video, q.query, q.duration, list(q.choices)], ensure_ascii=False)
        out = {"query": hashlib.sha256(query.encode()).hexdigest()[:16]}
        if self.files.get(q.video):
            out[self.kind] = str(self.files[q.video])[:16]
        if self.rephrasings_sha:
            out["rephrasings"] = self.rephrasings_sha[:16]
        return out

    def stale(self, rec: dict[str, Any], q: Query) -> bool:
        """Whether ``rec`` (a result of ``q``) was made from other inputs than ``q``'s now; what changed is noted for
        :meth:`note`. Only an input hashed on both sides is compared: a result written before results recorded an
        input (or before they recorded any) is taken as current for it, and so is one whose file cannot be hashed
        now (unreadable): neither is evidence of a change, and taking it as one ran every query again."""
        then = rec.get("inputs")
        if not isinstance(then, dict):
            return False
        now = self.of(q)
        parts = [k for k in now if then.get(k) is not None and then[k] != now[k]]
        for part in parts:
            self.changed.setdefault(part, set()).add(q.qid if part == "query" else q.video)
        return bool(parts)

    def note(self, stale: int) -> str | None:
        """The warning for ``stale`` results made from inputs that changed since, naming what changed."""
        if not stale:
            return None
        said = []
        for kind in ("descriptions", "video"):
            if kind not in self.changed:
                continue
            vids = sorted(self.changed[kind])
            said.append(f"the {kind} file of {len(vids)} video(s) ("
                        + ", ".join(f"{v}: {self.sources[v]}" for v in vids[:3] if v in self.sources)
                        + (", ..." if len(vids) > 3 else "") + ")")
        if "query" in self.changed:
            qids = sorted(self.changed["query"])
            said.append(f"the annotated query (text, duration or choices) of {len(qids)} query(ies) "
                        f"({', '.join(qids[:3])}{', ...' if len(qids) > 3 else ''})")
        if "rephrasings" in self.changed:
            said.append(f"the rephrasings file {self.rephrasings}")
        these = "its query runs" if stale == 1 else f"those {stale} queries run"
        return (f"inputs changed since {stale} result(s) in this run were made: {'; '.join(said)}; {these} again "
                "(the old results stay in results.jsonl, superseded)")

    def summary(self) -> dict[str, Any]:
        """What provenance.json records of this invocation's inputs: the descriptions files' (or videos') count and
        one hash over their hashes (by video id), and the rephrasings file's hash."""
        out: dict[str, Any] = {}
        if self.files:
            joined = "".join(f"{vid}\t{sha}\n" for vid, sha in sorted(self.files.items()))
            out["descriptions" if self.kind == "descriptions" else "videos"] = {
                "files": len(self.files), "sha256": hashlib.sha256(joined.encode()).hexdigest()}
        if self.rephrasings:
            out["rephrasings"] = {"path": str(Path(self.rephrasings).absolute()), "sha256": self.rephrasings_sha}
        return out


def _ground_truth_note(old: list[dict[str, Any]], ds: Dataset, before: dict[str, Any],
                       now: dict[str, Any]) -> str | None:
    """The warning for a resume whose annotations give other ground truth (windows, answer) for queries the run
    holds: the report scores every result against the new one."""
    then = {str(r.get("qid")): (r.get("windows"), r.get("answer")) for r in old}
    changed = [q.qid for q in ds if q.qid in then
               and then[q.qid] != ([list(w) for w in q.windows], q.answer if q.choices else None)]
    if not changed:
        return None
    files = ", ".join(f"{name} {str(before.get(name))[:12]} -> {str(sha)[:12]}" for name, sha in now.items()
                      if before.get(name) != sha) or ", ".join(now)
    return (f"the ground truth of {len(changed)} query(ies) in this run changed since its last invocation "
            f"({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}; annotations {files}): the run is now "
            "scored against the new ground truth (each invocation's annotation hashes are in provenance.json)")


class _Provenance:
    """``provenance.json`` of a run: written when the run starts, completed with the backends' full
    settings when the first video reports them, and keeping one line per invocation."""

    def __init__(self, out: Path, config: RunConfig, ds: Dataset, argv: Sequence[str] | None,
                 inputs: dict[str, Any] | None = None):
        self.path = out / "provenance.json"
        old = read_run_json(self.path, {})
        self.record = collect(argv=argv, files=ds.source)
        #: the annotation hashes the previous invocation recorded (each invocation's stay in ``invocations``)
        self.previous_annotations: dict[str, Any] = old.get("annotations") or {}
        backends: dict[str, Any] = {}
        for stage, spec, opts in (("describer", config.describer, config.describer_options),
                                  ("reasoner", config.reasoner, config.reasoner_options)):
            if spec:
                backends[stage] = {"spec": spec, "options": redact(opts)}
                known = (old.get("backends") or {}).get(stage, {}).get("settings")
                if known:  # a resume must use the same backends: what an earlier invocation learned holds
                    backends[stage]["settings"] = known
        self.record["backends"] = backends
        if ds.dropped:  # annotations the loader skipped: never selected, never scored
            self.record["dropped_annotations"] = {"count": len(ds.dropped), "first": ds.dropped[:20]}
        # each invocation's backend options: a resume may change the connection ones (CONNECTION_OPTIONS)
        self.record["invocations"] = [*old.get("invocations", []),
                                      {k: self.record[k] for k in ("date", "vidground", "git", "command")}
                                      | {"options": {stage: b["options"] for stage, b in backends.items()}}
                                      | _where(config) | {"annotations": self.record["annotations"]}
                                      | ({"inputs": inputs} if inputs else {})]
        self._settled = False
        self.write()

    def write(self) -> None:
        _atomic_write(self.path, json.dumps(self.record, indent=2) + "\n")

    def settle(self, settings: dict[str, Any] | None) -> None:
        """Record the backends' full settings, once per invocation."""
        if self._settled or not settings:
            return
        for stage, values in settings.items():
            self.record["backends"].setdefault(stage, {})["settings"] = values
        self._settled = True
        self.write()


def run_eval(config: RunConfig, out: str | Path, *, retry_failed: bool = False, executor: Any = None,
             progress: bool = False, on_result: Callable[[dict[str, Any]], None] | None = None,
             argv: Sequence[str] | None = None, lock: RunFolderLock | None = None) -> RunSummary:
    """Run (or resume) an evaluation into ``out``; returns what happened and the metrics so far.

    ``executor`` is a :class:`pipelines.executors.LocalExecutor` (default) or ``RayExecutor``;
    ``argv`` is the vidground command line recorded in ``provenance.json`` and the lock file (default: the process's
    own, :func:`~pipelines.provenance.command_line`: a program's ``python exp.py --seed 3``).
    The run folder is locked for the run (:class:`RunFolderLock`): another eval on it meanwhile, in this process or
    another, is a :class:`RunFolderBusyError` before it writes anything. With ``lock`` (a ``RunFolderLock(out)``
    the caller holds in a ``with`` block) the run takes that one and leaves it held: what the caller writes next
    (``vidground eval``'s report) is written before another eval may begin, not while it rewrites the folder.
    """
    own = lock is None
    if lock is None:
        lock = RunFolderLock(Path(out))
    elif lock.out.resolve() != Path(out).resolve():  # a caller's slip: the folder written would go unguarded
        raise ConfigurationError(f"run_eval: lock= holds {lock.out}, not the run folder {out}")
    try:
        return _run_eval(config, out, lock, retry_failed=retry_failed, executor=executor, progress=progress,
                         on_result=on_result, argv=argv)
    finally:
        if own:
            lock.release()


def _run_eval(config: RunConfig, out: str | Path, lock: RunFolderLock, *, retry_failed: bool, executor: Any,
              progress: bool, on_result: Callable[[dict[str, Any]], None] | None,
              argv: Sequence[str] | None) -> RunSummary:
    from .executors import LocalExecutor, RunProgress

    config.check()
    from frame_describer import DEFAULT_DESCRIBER
    from temporal_reasoner import DEFAULT_REASONER

    # the defaults are resolved into a copy: the caller's config stays as given, so one config reused for another
    # dataset or folder (or given another reasoner) resolves afresh rather than keeping this run's backends and cache
    # (``RunSummary.config`` is the copy the run used)
    config = replace(config, **{name: dict(value) for name in ("describer_options", "reasoner_options")
                                if isinstance(value := getattr(config, name), dict)})
    if config.mode == "videos" and config.describer is None:
        config.describer = DEFAULT_DESCRIBER
    if config.reasoner is None:
        config.reasoner = DEFAULT_REASONER
    # a misspelt backend or option, or a bad option value, is one error before the run starts (no video decoded, no
    # request sent), not a failure recorded per query
    # backends built on other machines (Ray's workers) are checked with their values only: their key and files are
    # the workers'
    check_backends(config.describer if config.mode == "videos" else None, config.describer_options,
                   config.reasoner, config.reasoner_options,
                   local=executor is None or isinstance(executor, LocalExecutor))
    if config.cache is None and config.mode == "videos":
        # the default cache as a session's (pipelines.session.implied_cache): $VIDGROUND_CACHE for any describer, else
        # the default file for the project's own describers only; a plug-in's (keyed by its name and settings() alone,
        # which another can share) or hf: given a loaded hf_model gets none ("": Ray's workers are told the same)
        from .session import eval_cache

        implied = eval_cache(config.describer, config.describer_options)
        config.cache = str(implied) if implied else ""
    elif config.mode == "videos" and config.cache:
        from frame_describer.cache import DescriptionCache

        DescriptionCache(config.cache).close()  # a folder or unwritable path: one error before the run starts
    out = Path(out)
    check_out_folder(out)
    if (out / "config.json").is_file():  # a run to resume: locked before its files are read
        lock.acquire(argv)
    config = replace(config, top_k=resolve_top_k(config, out)[0])  # the caller's config keeps "not given"
    _check_resume(out, config)
    _check_paths_here(out, config)
    started = time.perf_counter()
    ds = select_queries(config)
    if config.videos:
        sources, missing = find_videos(ds.videos, config.videos)
    else:
        sources, missing = find_descriptions(ds.videos, config.descriptions, out)  # type: ignore[arg-type]
    check_inputs(ds, config, sources, missing)  # before anything is written: a wrong split leaves no run behind
    if config.mode == "descriptions":
        check_descriptions(sources, config.clip_seconds, config.descriptions_format)
    if ds.dropped:
        log.warning("%s", dropped_note(ds))
    lock.make_folder(lambda: _check_resume(out, config), argv)
    prior = dataset_prior(config.dataset, ds.split, config.data_root)
    _atomic_write(out / "config.json",
                  json.dumps(config.to_json() | {"baseline_prior": prior.model_dump()}, indent=2) + "\n")
    inputs = _RunInputs(out, config, sources)
    try:
        old_queries = read_jsonl(out / "queries.jsonl")
    except InputError:  # damaged: rewritten below, as it always was; nothing to compare
        old_queries = []
    provenance = _Provenance(out, config, ds, argv, inputs.summary())
    gt_note = _ground_truth_note(old_queries, ds, provenance.previous_annotations, provenance.record["annotations"])
    if gt_note:
        log.warning("%s", gt_note)
    _atomic_write(out / "queries.jsonl", "".join(json.dumps(q.to_json()) + "\n" for q in ds))
    _atomic_write(out / "missing.json", json.dumps({"missing_videos": missing}, indent=2) + "\n")
    repair_tail(out / "results.jsonl", "query")  # before the done are counted: a whole last line counts, a torn one not
    repair_tail(out / "videos.jsonl", "video")
    repair_lines(out / "results.jsonl", "qid")  # a damaged line would stop every resume
    done = latest_results(out / "results.jsonl")
    pending: dict[str, list[Query]] = {}
    already = stale = 0
    for q in ds:
        if q.video not in sources:
            continue
        rec = done.get(q.qid)
        if rec is not None and inputs.stale(rec, q):
            stale += 1
        elif rec is not None and (rec.get("status") == "ok" or not retry_failed):
            already += 1
            continue
        pending.setdefault(q.video, []).append(q)
    if stale:
        log.warning("%s", inputs.note(stale))
    inputs.hashes.save()
    tasks = [VideoTask(v, str(sources[v]), qs) for v, qs in pending.items()]
    n_pending = sum(len(t.queries) for t in tasks)
    executor = executor or LocalExecutor(config.concurrency)
    tracker = RunProgress(n_pending, enabled=progress)
    ran = failed = 0
    described = {"calls": 0, "saved": 0}  # this invocation's describer calls, made and saved by the cache
    errors: set[tuple[str, str]] = set()  # the errors of the queries this invocation ran that failed
    index = ds.by_qid()
    durations = {q.video: q.duration for q in ds if q.duration}
    coverage = _Coverage(config.clip_seconds)
    (out / "transcripts").mkdir(exist_ok=True)
    with ResultSink(out / "results.jsonl", "query") as sink, ResultSink(out / "videos.jsonl", "video") as vsink:

        def take(kind: str, record: dict[str, Any]) -> None:
            """Write one record the executor finished (``record`` is left as it is: it may be written again)."""
            nonlocal ran, failed
            if kind == "video":
                provenance.settle(record.get("settings"))
                if config.mode == "descriptions":
                    coverage.check(record, durations.get(record["video"]))
                descs = record.get("descriptions")
                kept = {k: v for k, v in record.items() if k != "descriptions"}
                if descs:  # for the HTML report only: a file that cannot be written costs its page, not the run
                    try:
                        # the describer too: each line stands alone, a blank text in it a describer's empty reply
                        said = {"describer": record["describer"]} if record.get("describer") else {}
                        write_descriptions(transcript_path(out, record["video"]), descs, video=record["video"], **said)
                    except InputError as exc:
                        log.warning("video %s: its transcript was not written (%s); the run goes on, its results "
                                    "are kept, the report shows no transcript for it", record["video"], exc)
                        kept["transcript_error"] = str(exc)
                vsink.append(kept)
                described["calls"] += record.get("describe_calls") or 0
                described["saved"] += record.get("describe_saved") or 0
                return
            sink.append(record | {"inputs": inputs.of(index[record["qid"]])})
            described["calls"] += record.get("describe_calls") or 0  # a search's, described per query
            described["saved"] += record.get("describe_saved") or 0
            ran += 1
            failed += record["status"] != "ok"
            if record["status"] != "ok":
                error = record.get("error") or {}
                errors.add((str(error.get("type", "Error")), str(error.get("message", ""))))
            tracker.update(record, index[record["qid"]])
            if on_result is not None:
                on_result(record)

        ctrl_c = _ctrl_c_for(executor, describing=config.mode == "videos")
        end_notes = summarise_notes()  # one 'read as timed captions' warning for the run, not one a file
        try:
            stream = executor.run(tasks, config, stop=ctrl_c.event) if ctrl_c.installed else executor.run(tasks, config)
        except BaseException:
            end_notes()
            ctrl_c.restore()
            raise
        writing: tuple[str, dict[str, Any]] | None = None  # the record being written
        sizes: dict[str, int] | None = None  # the sinks' sizes before it
        try:
            try:
                for kind, record in stream:
                    sizes = None
                    writing = (kind, record)
                    sizes, counted = {"result": sink.size(), "video": vsink.size()}, ran
                    take(kind, record)
                    writing = None
            except KeyboardInterrupt as exc:
                # a Ctrl-C in the executor's stream: it wrote what had finished and what was under way before it
                # raised; one while a record was written: that record is written (once); one here (while a record
                # was written, or between two: only without our handler, or a second Ctrl-C): what the executor has
                # finished and finishes is written too (a second Ctrl-C thrown in stops it at once)
                if writing is not None:
                    kind, record = writing
                    if sizes is None or (vsink if kind == "video" else sink).size() == sizes[kind]:  # not written
                        take(kind, record)
                    elif kind == "result" and ran == counted:  # its line was written, not counted
                        ran += 1
                        failed += record["status"] != "ok"
                # after one Ctrl-C (our handler's: it raised nothing, so this came from the caller's code, e.g. a
                # run_eval nested in on_result that the same Ctrl-C stopped) the stream was told by ``stop``: it is
                # read on, not told again (that would stop it at once, as a second Ctrl-C does)
                _drain(stream, take, told=ctrl_c.installed and ctrl_c.count == 1)
                raise RunInterrupted(out, saved=ran, done=already + ran, total=sum(q.video in sources for q in ds),
                                     abandoned=ctrl_c.count > 1,
                                     signum=ctrl_c.signum if ctrl_c.count else getattr(exc, "signum", signal.SIGINT)
                                     ) from exc
        finally:
            try:
                try:
                    tracker.close()
                    close = getattr(stream, "close", None)
                    if close is not None:  # the executor's workers begin nothing more, and its session closes
                        close()
                finally:  # again, once: a second Ctrl-C inside the executor's own end may have come before it
                    close_sessions = getattr(executor, "close_sessions", None)
                    if close_sessions is not None:
                        close_sessions()
            finally:
                end_notes()
                ctrl_c.restore()
    summary = summarize(out, selected=len(ds), already=already, ran=ran, failed=failed, missing=missing,
                        seconds=time.perf_counter() - started, clip_gt=config.clip_gt)
    summary.dropped, summary.loaded = list(ds.dropped), ds.loaded
    summary.config = config
    summary.describe_calls_now, summary.describe_saved_now = described["calls"], described["saved"]
    any_ok = any(r.get("status") == "ok" for r in latest_results(out / "results.jsonl").values())
    summary.same_error = no_result_cause(errors, ran=ran, failed=failed, any_ok=any_ok)
    note = coverage.note()
    if note:
        log.warning("%s", note)
        if summary.same_error is not None:
            summary.same_error["message"] += f" ({coverage.hint})"
    return summary


class _Coverage:
    """Descriptions whose times do not span their video's annotated duration: a wrong ``--clip-seconds`` (1 for
    2-s clips squeezes the captions into the first half of each video; 3 runs them past its end, and every query
    fails). A video's descriptions spanning under 80% or over 120% of the annotated duration is noted."""

    LOW, HIGH = 0.8, 1.2

    def __init__(self, clip_seconds: float | None):
        self.clip_seconds = clip_seconds
        self.checked = 0
        self.off: list[tuple[str, float, float]] = []  # (video, the descriptions' span, the annotated duration)

    def check(self, record: dict[str, Any], annotated: float | None) -> None:
        span = record.get("duration")
        if not annotated or not isinstance(span, (int, float)) or span <= 0:
            return
        self.checked += 1
        if not self.LOW <= span / annotated <= self.HIGH:
            self.off.append((str(record["video"]), float(span), float(annotated)))

    @property
    def hint(self) -> str:
        given = f"--clip-seconds {self.clip_seconds:g} was given" if self.clip_seconds else \
            "--clip-seconds was left to the format's default"
        return (f"{given}: check --clip-seconds, the seconds one caption covers, and --descriptions-format")

    def note(self) -> str | None:
        if not self.off:
            return None
        # the videos in their names' order, not in the order their workers finished (which varies run to run)
        off = sorted(self.off)
        shown = "; ".join(f"{v}: {span:g} s of {dur:g} s" for v, span, dur in off[:3])
        return (f"the descriptions of {len(off)} of the {self.checked} videos described span much "
                f"{'less' if off[0][1] < off[0][2] else 'more'} than their annotated duration ({shown}"
                f"{'; ...' if len(off) > 3 else ''}): their times do not fit the videos, so the spans "
                f"found are squeezed or fail; {self.hint}")


#: error types that are the run's, not a query's: every query would fail with them. A plug-in that broke its protocol
#: (PluginError) is a bug in the plug-in, not a hard query: retrying the query cannot mend it. In an eval this decides
#: only a run of one query (:func:`no_result_cause`): a plug-in failing on some videos' inputs while other queries
#: have results leaves those queries failed, each on its own, as before.
RUN_WIDE_ERRORS = frozenset({"ConfigurationError", "MissingDependencyError", "PluginError"})
# a ProviderError's message (vidground.chat.map_error) for a server that cannot be reached or refuses the key or the
# model: "openai:m: connection failed (ConnectError)", "openai:m: HTTP 401: ..."
_RUN_WIDE_MESSAGE = re.compile(r"connection (?:failed|refused)|\bHTTP 40[134]\b", re.IGNORECASE)


def is_run_wide(kind: str, message: str) -> bool:
    """Whether an error (its type's name and message, as a failed record holds them) is clearly the run's and not
    one input's: a configuration error, a missing dependency, a plug-in that broke its protocol, a server that cannot
    be reached or answers HTTP 401, 403 or 404."""
    return kind in RUN_WIDE_ERRORS or bool(_RUN_WIDE_MESSAGE.search(message))


def no_result_cause(errors: Iterable[tuple[str, str]], *, ran: int, failed: int,
                    any_ok: bool) -> dict[str, Any] | None:
    """``{"type", "message"}`` when a run is to exit 1 after it was written: every one of the ``ran`` inputs this
    invocation ran failed with one error (``errors``: the distinct ``(type, message)`` of its failures), the run
    folder holds no ok result (``any_ok`` false, earlier invocations' included), and either two or more ran or the
    error is clearly run-wide (:func:`is_run_wide`): one hard query failing on its own is not the run's failure;
    else ``None``. Messages that differ only in their numbers (:func:`error_pattern`: each video's own duration)
    are one error."""
    errors = sorted(set(errors))
    patterns = {(kind, error_pattern(message)) for kind, message in errors}
    if not ran or failed != ran or len(patterns) != 1 or any_ok:
        return None
    kind, message = errors[0]
    if ran < 2 and not is_run_wide(kind, message):
        return None
    alike = f" (and {len(errors) - 1} more alike but for their numbers)" if len(errors) > 1 else ""
    return {"type": kind, "message": message + alike}


def error_pattern(message: str) -> str:
    """An error message with its numbers left out: ``duration 150s is shorter than ... 223.5s`` and
    ``duration 148s ... 210s`` are one cause for :func:`no_result_cause`."""
    return re.sub(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", message)


def no_result_error(cause: dict[str, Any], *, ran: int, what: tuple[str, str], out: Path,
                    advise_retry_failed: bool) -> EvaluationError:
    """The error a command raises, after writing and reporting its run, for :func:`no_result_cause`'s ``cause``:
    ``what`` names the inputs, one and many (``("query", "queries")``); ``advise_retry_failed``: whether to advise
    ``--retry-failed`` (not when the command was given it, nor for a command without it)."""
    ran_text = f"every one of the {ran} {what[1]} run" if ran > 1 else f"the one {what[0]} run"
    advice = "fix the cause and run the same command with --retry-failed" if advise_retry_failed else \
        "fix the cause and run the same command again"
    return EvaluationError(f"{ran_text} failed with the same error, so this run has no result: {cause['type']}: "
                           f"{cause['message']}; {advice}", path=out, counts={"failed": ran})


def dropped_note(ds: Dataset, shown: int = 3) -> str:
    """One line on the annotations ``ds``'s loader skipped (never selected or scored): how many, and the first
    ``shown`` with their reasons (a question without options, an answer that is not an option, a reversed span)."""
    n = len(ds.dropped)
    chosen = (f" (of the whole file; --limit/--subset then chose {len(ds)} of its {ds.loaded} queries)"
              if ds.loaded is not None and ds.loaded != len(ds) else "")
    return (f"{n} {ds.name}/{ds.split} annotation(s) skipped on load, not selected or scored{chosen}: "
            + "; ".join(ds.dropped[:shown]) + ("; ..." if n > shown else ""))


class RunInterrupted(KeyboardInterrupt):
    """A Ctrl-C stopped :func:`run_eval` once every result finished by then was written: ``saved`` results by this
    invocation, ``done`` of the ``total`` queries that have an input in all; the same call resumes in ``out``.
    ``abandoned``: a second Ctrl-C stopped it at once, the queries under way not waited for (their calls lost)."""

    def __init__(self, out: Path, *, saved: int, done: int, total: int, abandoned: bool = False,
                 signum: int = signal.SIGINT):
        lost = "; stopped at once: the queries under way were not waited for" if abandoned else ""
        by = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        super().__init__(f"interrupted{by}: {saved} result(s) saved by this run, {done} of {total} queries done in "
                         f"{out}" + lost)
        self.out, self.saved, self.done, self.total, self.abandoned = out, saved, done, total, abandoned
        self.signum = signum  # the signal that stopped the run: SIGTERM (Slurm, Kubernetes, timeout) or Ctrl-C


class _CtrlC:
    """While :func:`run_eval` runs in the main thread, a Ctrl-C (SIGINT) raises nothing: it sets ``event``, which the
    executor polls (it begins nothing more, and yields what finishes), stops the frame streams (the video being
    described stops at its next frame, no describe request not begun is sent; the command line's handler, run from
    this one, does it there), and says so at once; a
    ``KeyboardInterrupt`` could otherwise land anywhere, e.g. between a record taken from the executor's queue and
    its write, and drop it. The second Ctrl-C raises ``KeyboardInterrupt``: the run stops at once. SIGTERM (Slurm,
    Kubernetes, ``timeout``) is taken the same way, its line naming it (``signum``: the first signal's).

    Installed only in place of Python's own handler (SIGTERM's: the default, which killed the process), or of one
    that raises ``KeyboardInterrupt`` too and says so by ``raises_keyboard_interrupt = True`` (the command line's,
    which also stops the frame streams; it is still run), or in place of another run's (a run_eval nested in it: both
    stop, their line said once), and only for an executor whose ``run`` takes ``stop``: otherwise a Ctrl-C is what it
    was."""

    def __init__(self, executor: Any, *, describing: bool = False):
        #: whether the run describes frames (``--videos``): the line a Ctrl-C writes speaks of them only then
        self.describing = describing
        # the run's stop: a Flag, which the handler sets without a lock; the streams its workers open honour it
        # (vidground.interrupts.scope) even once the process's INTERRUPTED is cleared, e.g. a worker still getting
        # ready when a second Ctrl-C ended the run
        self.event, self.count, self.installed, self.nested = interrupts.Flag(), 0, False, False
        self.streams_stopped = False  # by this handler (called from Python): cleared when the run ends
        self.over = False  # restore() began: a Ctrl-C is the previous handler's
        self.previous: Any = None  # SIGINT's handler before this one
        self.previous_by: dict[int, Any] = {}  # each signal this handler took: the handler before it
        self.signum: int = signal.SIGINT  # the signal that stopped the run (its first)
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            takes_stop = "stop" in inspect.signature(executor.run).parameters
        except (TypeError, ValueError):
            takes_stop = False
        if not takes_stop:
            return
        for signum in interrupts.STOP_SIGNALS:
            previous = _live_handler(signal.getsignal(signum), signum)
            # a run_eval nested in another's (its on_result, or a script under it) takes the Ctrl-C too, and passes
            # it on: both stop, each writing what finished, and the outer one's line is not said again
            nested = isinstance(getattr(previous, "__self__", None), _CtrlC)
            own = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            if previous is own or nested or getattr(previous, "raises_keyboard_interrupt", False):
                self.previous_by[signum] = previous
                signal.signal(signum, self._handle)
                if signum == signal.SIGINT:
                    self.previous, self.nested = previous, nested
        self.installed = bool(self.previous_by)

    def _pass_on(self, signum: int, frame: Any) -> None:
        """The handler this one replaced for ``signum``, run (Python's own for SIGTERM, the process's death, is not:
        a ``KeyboardInterrupt`` naming the signal is raised instead)."""
        previous = self.previous_by[signum]
        if callable(previous):
            previous(signum, frame)
        exc = KeyboardInterrupt()
        exc.signum = signum  # type: ignore[attr-defined]
        raise exc

    def _handle(self, signum: int, frame: Any) -> None:
        if self.over:  # the run is ending (a second Ctrl-C inside restore): the process's state is not left set
            self._clear_streams()
            self._pass_on(signum, frame)
        self.count += 1
        if self.count > 1:
            self._pass_on(signum, frame)  # the second: KeyboardInterrupt, here
        self.signum = signum
        self.event.set()
        previous = self.previous_by[signum]
        if isinstance(getattr(previous, "__self__", None), _CtrlC):  # the outer run stops too, and its handler says so
            previous(signum, frame)
            return
        said = io.StringIO()
        if callable(previous) and previous is not signal.default_int_handler:
            try:
                with contextlib.redirect_stderr(said):  # one line: what it says goes first in ours
                    previous(signum, frame)  # e.g. the command line's: the workers' frame streams stop
            except KeyboardInterrupt:
                if self.count > 1:  # a second Ctrl-C came while that handler ran: it stops at once, as any second
                    raise
        else:  # called from Python: the workers' frame streams stop as the command line's handler stops them
            self.streams_stopped = True  # first: a second Ctrl-C inside the call below still has restore() clear it
            interrupts.interrupt()
        head = interrupts.naming("vidground: stopping: ", signum)
        said_lines = said.getvalue().strip()
        # the previous handler's own "stopping" line (the command line's, on the frames being described) is said
        # by this one, fitted to the run: one sentence, its second Ctrl-C once; anything else it wrote goes first
        # (either of its forms: "stopping: the frames being described ...", "stopping (nothing is being described)")
        replaced = said_lines.startswith("vidground: stopping") and "\n" not in said_lines
        line = (("" if replaced or not said_lines else said_lines + "\n") + head
                + interrupts.naming(self.stopping_text(), signum) + "\n")
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except RuntimeError:  # the main thread was inside a write to stderr (a progress bar): not re-entered
            os.write(2, line.encode())

    def stopping_text(self) -> str:
        """What a first Ctrl-C does to this run, in one sentence."""
        if self.describing:  # a frame stream stops at its next frame: what was describing is dropped, not finished
            return ("no query or frame is begun: the frames being described finish and are kept (in the "
                    "description cache, if any), a video or query still describing its frames is left for the "
                    "resumed run (what it paid is counted in the run folder), and the other queries under way finish "
                    "and are written before the run stops (a second Ctrl-C stops at once: the calls under way are "
                    "lost, though paid)")
        return ("no query is begun, and the queries under way finish and are written before the run stops (a second "
                "Ctrl-C stops at once: the calls under way are lost)")

    def _clear_streams(self) -> None:
        """The process's streams run again (this run's stay stopped: its stop stays set, and they opened before
        the Ctrl-C)."""
        if self.streams_stopped:
            interrupts.INTERRUPTED.clear()
            self.streams_stopped = False

    def restore(self) -> None:
        """The run's end: the process's Ctrl-C state is cleared first, then the previous handler put back; a Ctrl-C
        at any point in here (the user's second, as the run winds down) leaves neither set."""
        try:
            self.over = True
        finally:
            try:
                self._clear_streams()
            finally:
                for signum, previous in self.previous_by.items():
                    if self.installed and signal.getsignal(signum) == self._handle:
                        signal.signal(signum, previous)
                self.installed = False


class _RayCtrlC(_CtrlC):
    """The same for ``--executor ray``: a Ctrl-C cancels the videos under way (:meth:`RayExecutor.run
    <pipelines.executors.RayExecutor.run>`), their queries finished or not, so its line says that instead."""

    def stopping_text(self) -> str:
        return ("no video is begun, and the videos under way are cancelled: the queries they had finished are lost "
                "(the resumed run asks them again, and pays again for what they had asked"
                + (", the frames they had described included" if self.describing else "")
                + "); the videos that had ended are written before the run stops (a second Ctrl-C stops at once)")


def _ctrl_c_for(executor: Any, *, describing: bool) -> _CtrlC:
    """The Ctrl-C handler for ``executor``: what a Ctrl-C stops depends on it (:class:`_RayCtrlC` for Ray's)."""
    from .executors import RayExecutor

    return (_RayCtrlC if isinstance(executor, RayExecutor) else _CtrlC)(executor, describing=describing)


def _live_handler(handler: Any, signum: int = signal.SIGINT) -> Any:
    """``handler`` (of ``signum``), or, where it is the handler of a run that ended (a Ctrl-C inside its restore()
    left it installed), the one that run replaced, put back now: a dead run's handler is not taken for an outer
    run's."""
    found = handler
    while isinstance(getattr(found, "__self__", None), _CtrlC) and found.__self__.over:
        found = found.__self__.previous_by[signum]
    if found is not handler:
        signal.signal(signum, found)
    return found


def _drain(stream: Any, take: Callable[..., None], *, told: bool = False) -> None:
    """After a Ctrl-C that came while the caller wrote a record: the records ``stream`` (an executor's run) has
    finished, and finishes, each given to ``take``. The Ctrl-C is thrown into the stream (unless ``told``: its
    ``stop`` is set already), which stops its workers and yields what they finish, then raises it; a second Ctrl-C
    is thrown in too, and ends it at once."""
    throw = getattr(stream, "throw", None)
    if throw is None:  # an iterator that cannot be told: what it holds is left for the resumed run
        return
    try:
        item = next(stream) if told else throw(KeyboardInterrupt())
        while True:
            take(*item)
            item = next(stream)
    except StopIteration:
        return
    except KeyboardInterrupt:  # the stream's own, once it gave everything; or a second Ctrl-C
        try:
            throw(KeyboardInterrupt())  # the executor stops without waiting (a finished stream raises it back)
        except (KeyboardInterrupt, StopIteration):
            pass


def _safe(video: str) -> str:
    """The name ``transcripts/`` had for ``video`` before :func:`transcript_name`: many ids to one (``my video`` and
    ``my_video``), read only in run folders written then."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in video)


#: the longest transcript file name, ``.jsonl`` included (bytes): most file systems take 255, and the file is
#: written through a temporary whose name is longer
_TRANSCRIPT_NAME_BYTES = 160


def transcript_name(video: str) -> str:
    """``transcripts/``'s file name for ``video``, one per id: the id itself where it is a safe file name (letters,
    digits, ``-_.``) of at most :data:`_TRANSCRIPT_NAME_BYTES` bytes with ``.jsonl``, else a readable prefix of it
    (each other character ``_``) with ``~`` and a hash of the exact id; a safe id has no ``~``, so the two never
    meet."""
    safe = _safe(video)
    limit = _TRANSCRIPT_NAME_BYTES - len(".jsonl")
    changed = safe != video or safe in ("", ".", "..")
    return bounded_name(safe, limit, of=video if changed else None) + ".jsonl"


def transcript_path(out: Path, video: str) -> Path:
    """Where a run folder keeps ``video``'s descriptions (:func:`transcript_name`)."""
    return out / "transcripts" / transcript_name(video)


def read_transcript(out: Path, video: str) -> list[dict[str, Any]] | None:
    """``video``'s descriptions in the run folder ``out``, or ``None``: its :func:`transcript_path`, else (a folder
    written before that name) the old many-to-one name; either only when its lines name this video (or, the oldest,
    no video): in an old folder ``my_video.jsonl`` may be ``my video``'s."""
    for path in dict.fromkeys((transcript_path(out, video), out / "transcripts" / f"{_safe(video)}.jsonl")):
        if path.exists():
            rows = read_jsonl(path)
            if all(r.get("video", video) == video for r in rows):
                return rows
    return None


def load_run(out: str | Path) -> tuple[dict[str, Any], list[Query], dict[str, dict[str, Any]]]:
    """``(config, queries, latest result per qid)`` of a run folder."""
    out = Path(out)
    if not (out / "config.json").exists() or not (out / "queries.jsonl").exists():
        raise InputError("not a run folder (no config.json / queries.jsonl); run `vidground eval` first", path=out)
    holder = run_in_progress(out)
    config = read_run_json(out / "config.json")
    queries = [Query.from_json(r) for r in read_jsonl(out / "queries.jsonl")]
    results = latest_results(out / "results.jsonl")
    if holder is not None:
        log.warning("%s: an eval is writing this run now (%s): read as it stands, %d of its %d queries recorded so far",
                    out, holder_text(holder), sum(q.qid in results for q in queries), len(queries))
    return config, queries, results


def run_prior(config: dict[str, Any]) -> SpanPrior:
    """The prior-span baseline a run recorded; for a run folder written before runs recorded it, the
    dataset's prior (see :func:`~pipelines.baselines.dataset_prior`)."""
    if config.get("baseline_prior"):
        return SpanPrior.model_validate(config["baseline_prior"])
    return dataset_prior(config.get("dataset", ""), config.get("split"), config.get("data_root"))


def run_durations(out: str | Path, results: dict[str, dict[str, Any]] | None = None) -> dict[str, float]:
    """Each video's duration as the run learned it (from its descriptions or the decoded video)."""
    out = Path(out)
    known: dict[str, float] = {}
    for r in [*read_jsonl(out / "videos.jsonl"), *(results or latest_results(out / "results.jsonl")).values()]:
        if r.get("video") is not None and isinstance(r.get("duration"), (int, float)) and r["duration"] > 0:
            known.setdefault(str(r["video"]), float(r["duration"]))
    return known


def run_predictions(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A run's results as predictions: a failed query is its error."""
    return {qid: (r if r.get("status") == "ok" else {"error": r.get("error") or "failed"}) for qid, r in results.items()}


def run_metrics(out: str | Path, *, clip_gt: bool | None = None, bootstrap: int = 1000,
                run: tuple[dict[str, Any], list[Query], dict[str, dict[str, Any]]] | None = None,
                **options: Any) -> Metrics | None:
    """Metrics over the run's queries that have a video (missing videos are reported, not scored), with
    the recorded prior-span baseline and the durations the run learned; ``run`` is :func:`load_run`'s
    answer when the caller has it (a report scores twice and need not read the folder again);
    ``options`` go to :func:`~pipelines.metrics.compute_metrics` (e.g. ``thresholds``, ``mean_ap``)."""
    out = Path(out)
    config, queries, results = run or load_run(out)
    missing = missing_videos(out)
    scored = [q for q in queries if q.video not in missing]
    if not scored:
        return None
    if all(q.is_question for q in scored):  # a grounded-QA run (nextgqa): its own metrics
        return compute_qa_metrics(run_predictions(results), scored, bootstrap=bootstrap,
                                  durations=run_durations(out, results))
    return compute_metrics(run_predictions(results), scored,
                           clip_gt=config.get("clip_gt", False) if clip_gt is None else clip_gt,
                           bootstrap=bootstrap, prior=run_prior(config), durations=run_durations(out, results),
                           **options)


def run_totals(out: str | Path) -> dict[str, Any]:
    """Describer calls made/saved, requests and cost, and failures by type, over every attempt in the folder:
    a failed attempt's paid requests (its ``usage``) count too, and so do those of a describe or query a Ctrl-C
    stopped (an ``unfinished`` record in videos.jsonl); a coarse-to-fine search's calls are on its results.
    ``unpriced_requests`` of the ``requests`` had no price, so ``cost_usd`` leaves them out (:func:`format_cost`
    says so)."""
    out = Path(out)
    videos = read_jsonl(out / "videos.jsonl")
    attempts = read_jsonl(out / "results.jsonl", "qid")  # every attempt pays; the latest per query counts
    results = {str(r["qid"]): r for r in attempts}
    cost = sum(v.get("cost_usd") or 0.0 for v in videos) + sum(r.get("cost_usd") or 0.0 for r in attempts)
    # a video described once for all its queries is paid in videos.jsonl; its results repeat that usage as their
    # "describe" stage (a query-aware describer's, or a search's, is paid per query, on the result)
    described_once = {v.get("video") for v in videos if not v.get("unfinished") and (
        v.get("describe_calls") or v.get("describe_saved") or "usage" in v)}
    # a video record written before videos.jsonl held usage: its describe requests are those its results repeat
    repeated: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in attempts:
        if isinstance(r.get("usage"), dict) and isinstance(r["usage"].get("describe"), dict):
            repeated.setdefault((r.get("video"), r["usage"]["describe"].get("cached", 0)), r["usage"]["describe"])
    old = [_old_describe(v, repeated) for v in videos
           if "usage" not in v and (v.get("describe_calls") or v.get("describe_saved"))]
    paid = [*(paid_requests(v) for v in videos), *(paid_requests(v) for v in old),
            *(paid_requests(r, ("describe",) if r.get("video") in described_once else ()) for r in attempts)]
    errors: dict[str, int] = {}
    for r in results.values():
        if r.get("status") != "ok":
            kind = (r.get("error") or {}).get("type", "Error")
            errors[kind] = errors.get(kind, 0) + 1
    # a coarse-to-fine search's calls are on each attempt's result (per request made), its video's record has none
    return {"describe_calls": sum(r.get("describe_calls") or 0 for r in [*videos, *attempts]),
            "describe_saved": sum(r.get("describe_saved") or 0 for r in [*videos, *attempts]),
            "cost_usd": round(cost, 6), "requests": sum(p[0] for p in paid),
            "unpriced_requests": sum(p[1] for p in paid), "failed_requests": sum(p[2] for p in paid),
            "failures_by_type": errors, "results": len(results)}


def _old_describe(video: dict[str, Any], repeated: dict[tuple[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """A video record written before videos.jsonl held usage, with the usage of its describe: a video resumed was
    described again (from the cache, as a rule), one record per describe, and each counts its own requests once. Its
    results repeat it, told apart from another describe's by the frames the cache gave (``cached``); where none does
    (its queries were answered after another describe), one request per frame described, priced as its cost says."""
    calls, saved = video.get("describe_calls") or 0, video.get("describe_saved") or 0
    found = repeated.get((video.get("video"), saved))
    if found is not None:
        return {"usage": found}
    if not calls:  # every frame from the cache: nothing paid
        return {}
    return {"usage": {"requests": calls, "cost_usd": video.get("cost_usd") or None}}


def format_cost(cost_usd: float, requests: int, unpriced: int) -> str:
    """The cost as a run states it, and as the cost lines of ``vidground ground``, ``ask``, ``events`` and
    ``describe -o`` do: ``$0.0123``; ``unknown (N request(s) without a price or token counts ...)`` when nothing was
    priced, else the priced part and how many requests it leaves out (a cost with every counted request unpriced
    was paid for requests not counted: a run folder written before they were)."""
    if not unpriced:
        return f"${cost_usd:.4f}"
    if unpriced >= requests and not cost_usd:
        return f"unknown ({unpriced} request(s) without a price or token counts; see vidground.pricing)"
    if unpriced >= requests:
        return f"${cost_usd:.4f} + unknown ({unpriced} request(s) without a price or token counts)"
    return f"${cost_usd:.4f} + unknown ({unpriced} of {requests} requests without a price or token counts)"


def format_tokens(usages: Iterable[Any], *, split: bool = True) -> str:
    """The tokens of ``usages`` (a result's per stage, or one sum) as the usage lines of ``vidground ground``, ``ask``,
    ``events`` and the events eval state them: ``120 prompt + 30 completion tokens`` (``150 tokens`` when not
    ``split``). A server that sends no token counts leaves a request's counted as 0 and its cost unknown
    (:func:`vidground.pricing.with_cost`); a usage with requests, no token and unpriced requests is such a one, so
    its tokens are said unknown, not 0: ``tokens unknown (36 request(s) sent no token counts)``, or the counted part
    and how many requests it leaves out. A usage whose zero is known (``replay:``, priced at $0) stays 0."""
    from vidground.types import Usage

    counted, requests, unknown = Usage(), 0, 0
    for u in usages:
        requests += u.requests
        if u.requests and not u.prompt_tokens and not u.completion_tokens and u.unpriced_requests:
            unknown += u.unpriced_requests
        else:
            counted = counted + u
    if unknown and unknown >= requests:
        return f"tokens unknown ({unknown} request(s) sent no token counts)"
    tokens = (f"{counted.prompt_tokens} prompt + {counted.completion_tokens} completion tokens" if split
              else f"{counted.total_tokens} tokens")
    return tokens + (f" + unknown ({unknown} of {requests} requests sent no token counts)" if unknown else "")


def summarize(out: Path, *, selected: int, already: int, ran: int, failed: int, missing: list[str],
              seconds: float, clip_gt: bool) -> RunSummary:
    totals = run_totals(out)
    return RunSummary(out=out, selected=selected, already_done=already, ran=ran, failed=failed,
                      missing_videos=missing, describe_calls=totals["describe_calls"],
                      describe_saved=totals["describe_saved"], cost_usd=totals["cost_usd"],
                      requests=totals["requests"], unpriced_requests=totals["unpriced_requests"],
                      failed_requests=totals["failed_requests"],
                      seconds=round(seconds, 2), metrics=run_metrics(out, clip_gt=clip_gt))
