"""Oracle descriptions from the Charades annotations: a stage-2 benchmark without videos.

The Charades train metadata (``Charades_v1_train.csv``) lists, for every video, which of the 157
action classes (``charades_classes.txt``) annotators saw and when (``actions``: ``c092 11.90 21.20;...``).
Sampled at 1 fps, that is a perfect but coarse describer: one :class:`FrameDescription` per second,
for example ``"The person is opening a door; holding a box."``. The Charades-STA *train* queries
(``charades_sta_train.txt``) then give the ground truth, so a reasoner can be measured on real human
queries alone.

Two styles of transcript are built from the same facts:

- ``"oracle"``: one terse line per second, the active actions joined by ``"; "``;
- ``"prose"``: varied free-form multi-sentence prose, as real describers write it: several phrasings
  per action, shuffled sentence order, two actions sometimes joined in one sentence, and distractor
  sentences (the room, visible objects, lighting). Deterministic for a given seed.

Queries are split into two seeded subsets on disjoint videos: *dev* (choose methods and parameters
there) and *check* (report only).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from frame_describer.descriptions_io import write_descriptions
from vidground.errors import InputError
from vidground.types import FrameDescription

from oracle_prose import ProseWriter, action_clause
from pipelines.datasets import Query, data_root, load_dataset

Style = Literal["oracle", "prose"]
STYLES: tuple[str, ...] = ("oracle", "prose")
IDLE_TEXT = "The person is not doing anything notable."


@dataclass(frozen=True)
class Action:
    cls: str
    start: float
    end: float


@dataclass(frozen=True)
class CharadesVideo:
    id: str
    length: float
    scene: str
    objects: tuple[str, ...]
    actions: tuple[Action, ...]


@dataclass
class OracleSplit:
    """Two subsets of queries on disjoint videos, plus the videos they need."""

    dev: list[Query]
    check: list[Query]
    videos: dict[str, CharadesVideo] = field(repr=False)
    classes: dict[str, str] = field(repr=False)
    seed: int = 0


def read_classes(path: str | Path) -> dict[str, str]:
    """``charades_classes.txt`` -> ``{"c000": "Holding some clothes", ...}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("Charades class list not found", path=path)
    classes: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        code, _, name = line.strip().partition(" ")
        if not (code.startswith("c") and code[1:].isdigit() and name):
            raise InputError(f"expected 'cNNN Class name', got {line.strip()!r}", path=path, line=lineno)
        classes[code] = name.strip()
    if not classes:
        raise InputError("no classes in the file", path=path)
    return classes


def _parse_actions(text: str, classes: dict[str, str], path: Path, lineno: int) -> tuple[Action, ...]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        parts = item.split()
        if len(parts) != 3 or parts[0] not in classes:
            raise InputError(f"bad action {item!r} (expected 'cNNN START END' with a known class)", path=path, line=lineno)
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise InputError(f"bad action times in {item!r}", path=path, line=lineno) from None
        if end > start:
            out.append(Action(parts[0], start, end))
    return tuple(out)


def read_videos(path: str | Path, classes: dict[str, str]) -> dict[str, CharadesVideo]:
    """``Charades_v1_train.csv`` -> ``{id: CharadesVideo}`` (videos with a bad length are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("Charades metadata CSV not found", path=path)
    videos: dict[str, CharadesVideo] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        needed = {"id", "actions", "length", "scene", "objects"}
        if not needed <= set(reader.fieldnames or ()):
            raise InputError(f"missing column(s): {', '.join(sorted(needed - set(reader.fieldnames or ())))}", path=path)
        for lineno, row in enumerate(reader, 2):
            try:
                length = float(row["length"])
            except ValueError:
                continue
            if length <= 0:
                continue
            objects = tuple(o.strip() for o in (row["objects"] or "").split(";") if o.strip())
            videos[row["id"]] = CharadesVideo(row["id"], length, (row["scene"] or "").strip(), objects,
                                              _parse_actions(row["actions"] or "", classes, path, lineno))
    return videos


def oracle_descriptions(video: CharadesVideo, classes: dict[str, str], *, style: Style = "oracle",
                        seed: int = 0, step: float = 1.0) -> list[FrameDescription]:
    """One description per sampled second (``t = 0, step, 2*step, ... < length``).

    The description at ``t`` names the actions whose annotated span contains ``t`` (as a describer
    looking at the frame at ``t`` would).
    """
    if style not in STYLES:
        raise InputError(f"unknown oracle style {style!r}; choose one of: {', '.join(STYLES)}")
    writer = ProseWriter(random.Random(f"{seed}:{video.id}"), scene=video.scene, objects=video.objects) \
        if style == "prose" else None
    out = []
    n = max(1, int(video.length // step) + (1 if video.length % step > 1e-9 else 0))
    for i in range(n):
        t = round(i * step, 3)
        active = [a.cls for a in sorted(video.actions, key=lambda a: (a.start, a.cls)) if a.start <= t < a.end]
        active = list(dict.fromkeys(active))
        if writer is not None:
            text = writer.frame([classes[c] for c in active])
        elif active:
            text = "The person is " + "; ".join(action_clause(classes[c]) for c in active) + "."
        else:
            text = IDLE_TEXT
        out.append(FrameDescription(t=t, text=text))
    return out


def select_subsets(queries: Sequence[Query], videos: dict[str, CharadesVideo], *, n_dev: int = 1000,
                   n_check: int = 1000, seed: int = 0) -> tuple[list[Query], list[Query]]:
    """Two seeded query subsets on disjoint videos.

    Videos are shuffled with ``seed``; their queries fill *dev* first, then *check* (a video whose
    queries straddle the two goes to dev only). Queries on videos without Charades metadata are left out.
    """
    by_video: dict[str, list[Query]] = {}
    for q in queries:
        if q.video in videos:
            by_video.setdefault(q.video, []).append(q)
    order = sorted(by_video)
    random.Random(seed).shuffle(order)
    dev: list[Query] = []
    check: list[Query] = []
    for vid in order:
        if len(dev) < n_dev:
            dev.extend(by_video[vid][: n_dev - len(dev)])
        elif len(check) < n_check:
            check.extend(by_video[vid][: n_check - len(check)])
        else:
            break
    if len(dev) < n_dev or len(check) < n_check:
        raise InputError(f"not enough queries for subsets of {n_dev} + {n_check} "
                         f"(have {sum(map(len, by_video.values()))} on known videos)")
    return dev, check


def load_split(root: str | Path | None = None, *, n_dev: int = 1000, n_check: int = 1000,
               seed: int = 0) -> OracleSplit:
    """Read the shared Charades files under ``root`` (the data folder holding ``charades-sta/``; see
    :func:`pipelines.datasets.data_root`) and select the dev and check subsets of the STA train queries."""
    folder = data_root(root) / "charades-sta"
    classes = read_classes(folder / "charades_classes.txt")
    videos = read_videos(folder / "Charades_v1_train.csv", classes)
    queries = load_dataset("charades-sta", "train", root).queries
    dev, check = select_subsets(queries, videos, n_dev=n_dev, n_check=n_check, seed=seed)
    used = {q.video for q in dev} | {q.video for q in check}
    return OracleSplit(dev, check, {v: videos[v] for v in sorted(used)}, classes, seed)


def write_oracle_folder(out_dir: str | Path, videos: Iterable[CharadesVideo], classes: dict[str, str], *,
                        style: Style = "oracle", seed: int = 0) -> dict[str, Path]:
    """Write ``<out_dir>/<video>.descriptions.jsonl`` for each video; returns ``{video: path}``."""
    out_dir = Path(out_dir)
    paths = {}
    for v in videos:
        path = out_dir / f"{v.id}.descriptions.jsonl"
        write_descriptions(path, oracle_descriptions(v, classes, style=style, seed=seed), video=v.id,
                           duration=round(v.length, 3), step=1.0, describer=f"charades-{style}")
        paths[v.id] = path
    return paths
