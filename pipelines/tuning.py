"""Teacher -> student tuning data: cached descriptions from a strong describer as a training set.

The method's paper tuned a small describer on descriptions written by a large one. Once a strong
describer (``openai:gpt-4o``, a large ``hf:`` model) has described videos - into the description cache,
or into descriptions JSONL files (``vidground describe -o``) - :func:`export_tuning_data` turns those
descriptions into supervised pairs for a small vision-language model: the frame (a JPEG), the prompt
vidground's describers use, and the teacher's description as the answer.

Output, in ``out/``:

* ``train.jsonl``, one record a frame, in one of two chat formats:

  - ``messages`` (default): ``{"messages": [{"role": "user", "content": [{"type": "image"}, {"type":
    "text", "text": PROMPT}]}, {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}],
    "images": ["frames/....jpg"]}``, the conversational form ``transformers`` chat templates and TRL's
    ``SFTTrainer`` read for vision-language models;
  - ``llava``: ``{"id", "image": "frames/....jpg", "conversations": [{"from": "human", "value": "<image>\\n"
    PROMPT}, {"from": "gpt", "value": ANSWER}]}``, LLaVA's fine-tuning format.

  Both also carry ``video``, ``t`` (seconds), ``describer`` and ``prompt`` (the template's name and hash).
  Image paths are relative to ``out/``. The file is written all or nothing.
* ``frames/``: each frame once, as ``<video fingerprint>-<size>-<milliseconds>.jpg`` (``size`` the longest
  side it was scaled to, ``s512``, or ``full``: a frame described by two describers, or exported twice at one
  size, is one file, reused, not rewritten; another ``max_side`` writes its own). New files get the umask's
  permissions, like any file the user writes.

Descriptions that are empty, shorter than ``min_chars``, marked with an ``error``, or that refuse
("I'm sorry, I can't ...") are left out and counted by reason. Frames are decoded from the videos at the
descriptions' own times, streaming, one video at a time.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError, InputError
from vidground.files import output_file, video_fingerprint
from vidground.types import DEFAULT_MAX_SIDE, FrameDescription

FORMATS = ("messages", "llava")
#: The prompt a student describer is trained with: the one vidground's query-agnostic describers send.
PROMPT = "describe_agnostic"
_REFUSAL = re.compile(r"^\s*(?:i'?m sorry|i am sorry|sorry|i can(?:no|')t|i cannot|i am unable|i'?m unable|as an ai)\b",
                      re.I)


@dataclass
class TuningExport:
    """What an export wrote: records, frames (written now and reused), and what was left out, by reason."""

    path: str
    records: int = 0
    videos: int = 0
    frames_written: int = 0
    frames_reused: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    describers: dict[str, int] = field(default_factory=dict)


@dataclass
class _Item:
    video: Path
    fingerprint: str
    description: FrameDescription
    describer: str
    max_side: int | None

    @property
    def t(self) -> float:
        return self.description.t


def problem(d: FrameDescription, min_chars: int = 1) -> str | None:
    """Why a description is no training answer (``"empty"``, ``"failed"``, ``"refusal"``, ``"too short"``), or None."""
    extra = d.model_extra or {}
    if extra.get("error"):
        return "failed"
    if not d.text:
        return "empty"
    if _REFUSAL.match(d.text):
        return "refusal"
    if len(d.text) < min_chars:
        return "too short"
    return None


def _videos(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Video files, folders expanded (by extension); a missing path is an :class:`InputError`."""
    from .datasets import VIDEO_EXTENSIONS

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError("no such video or folder", path=p)
    return out


def _matches(describer: str | None, name: str) -> bool:
    return describer is None or name == describer or name.split(":", 1)[0] == describer


def _from_cache(cache: Any, videos: Sequence[Path], describer: str | None, seen: Counter[str]) -> list[_Item]:
    """The cached descriptions of ``videos``, one per frame (video and time), describer (name and settings) and
    frame size: a frame a describer has under several sampling keys (a ``cv`` run at the default rate and one at
    ``--fps 1``, a cache from before they keyed alike) is one training pair, not one per key; the first key's (in
    key order) is kept. A video given twice (a file and its folder) is read once."""
    items = []
    kept: set[tuple[str, float, str, str, int | None]] = set()
    for video in videos:
        fp = video_fingerprint(video)
        for _, payload, d in cache.entries(fp):
            name = (payload or {}).get("describer") or "unknown"
            settings = (payload or {}).get("settings") or {}
            side = ((payload or {}).get("extra") or {}).get("max_side", DEFAULT_MAX_SIDE)
            frame = (fp, d.t, name, json.dumps(settings, sort_keys=True, default=str), side)
            if frame in kept:
                continue
            kept.add(frame)
            seen[name] += 1
            if not _matches(describer, name) or settings.get("mode", "agnostic") != "agnostic":
                continue
            items.append(_Item(video, fp, d, name, side))
    return items


def _from_files(files: Sequence[Path], videos: Sequence[Path], describer: str | None, seen: Counter[str]) -> list[_Item]:
    from frame_describer.descriptions_io import description_metadata, read_descriptions

    items = []
    for f in files:
        descs = read_descriptions(f)
        named = description_metadata(descs, "video")
        video = _video_of(f, named, videos)
        if video is None:
            raise InputError(f"no video for these descriptions (looked for {named or f.stem!r}); give it with --videos",
                             path=f)
        _check_duration(f, video, description_metadata(descs, "duration"),
                        inferred=description_metadata(descs, "duration_inferred") is True)
        name = description_metadata(descs, "describer") or "unknown"
        seen[name] += len(descs)
        if not _matches(describer, name):
            continue
        fp = video_fingerprint(video)
        for d in descs:
            items.append(_Item(video, fp, d, name, DEFAULT_MAX_SIDE))
    return items


def _video_of(f: Path, named: Any, videos: Sequence[Path]) -> Path | None:
    """The video a descriptions file ``f`` describes. Its ``video`` field's file where that exists (a relative one
    beside ``f`` first: it was written relative to the folder ``vidground describe`` ran in, often ``f``'s, and the
    folder moved with it; then from the current folder): the field names the very file, and another video of that
    name among ``videos`` (``a/clip.mp4`` described, ``--videos b/clip.mp4``) paired its texts with the wrong frames.
    Else the one among ``videos`` whose stem is the file's, with or without ``.descriptions``
    (``demo.descriptions.jsonl`` describes ``demo.mp4``), or the field's (two of them with that stem are an
    :class:`InputError`: which one is not a guess); else the field's bare name beside ``f``."""
    field = Path(named).expanduser() if isinstance(named, str) and named else None
    if field is not None:
        tries = [field] if field.is_absolute() else [f.parent / field, field]
        found = next((p for p in tries if p.is_file()), None)
        if found is not None and found is field and not field.is_absolute():
            # found from the current folder only: a --videos file of its name is as likely the one meant
            rivals = [v for v in videos if v.stem == field.stem and v.resolve() != found.resolve()]
            if rivals:
                raise InputError(f"the video field {named!r} names {found.resolve()} (from the current folder), and "
                                 f"--videos gives {rivals[0]} of that name: which one these descriptions are of is "
                                 "not a guess; give only that one with --videos, or write its absolute path in the "
                                 "file's video field", path=f)
        if found is not None:
            return found
    stems = [f.stem, f.stem.removesuffix(".descriptions")] + ([field.stem] if field is not None else [])
    for stem in dict.fromkeys(stems):
        same = list(dict.fromkeys(v.resolve() for v in videos if v.stem == stem))
        if len(same) > 1:
            raise InputError(f"{len(same)} of the videos given are named {stem!r} ({', '.join(map(str, same))}): "
                             f"which one these descriptions are of is not a guess; give only that one with --videos, "
                             f"or write its path in the file's video field", path=f)
        if same:
            return next(v for v in videos if v.resolve() == same[0])
    beside = f.parent / field.name if field is not None else None
    return beside if beside is not None and beside.is_file() else None


def _check_duration(f: Path, video: Path, duration: Any, *, inferred: bool = False) -> None:
    """Refuse ``video`` for the descriptions file ``f`` when the file says (its ``duration`` field) the video it
    described was clearly longer or shorter: they are another video's texts, and would be paired with its frames.
    An ``inferred`` duration (an import's last caption's end: subtitles often end before the video) only bounds the
    video from below, so only a video clearly shorter is refused."""
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
        return
    from frame_describer.sampling import probe_video

    length = probe_video(video).duration
    off = duration - length if inferred else abs(length - duration)
    if off > max(1.5, 0.1 * duration):
        raise InputError(f"these descriptions are of a {duration:g} s video, and {video} is {length:g} s long: not "
                         f"the video they describe; give that one with --videos", path=f)


def _record(item: _Item, image: str, prompt: str, prompt_id: str, fmt: str) -> dict[str, Any]:
    meta = {"video": str(item.video), "t": round(item.t, 3), "describer": item.describer, "prompt": prompt_id}
    if fmt == "llava":
        return {"id": Path(image).stem, "image": image,
                "conversations": [{"from": "human", "value": "<image>\n" + prompt},
                                  {"from": "gpt", "value": item.description.text}],
                **meta}
    return {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
                         {"role": "assistant", "content": [{"type": "text", "text": item.description.text}]}],
            "images": [image], **meta}


def _write_jpeg(path: Path, image: Any) -> None:
    """Write the frame all or nothing: a temporary file beside ``path``, given the umask's mode (mkstemp's
    0600 would keep a shared training set from its readers), renamed into place; removed if anything fails."""
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise InputError("could not encode the frame as JPEG", path=path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.tobytes())
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fh.fileno(), 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_tuning_data(
    out: str | os.PathLike[str],
    *,
    videos: Iterable[str | os.PathLike[str]] = (),
    cache: Any = None,
    descriptions: Iterable[str | os.PathLike[str]] = (),
    describer: str | None = None,
    format: str = "messages",
    min_chars: int = 1,
    max_side: int | None = None,
) -> TuningExport:
    """Write the tuning set for ``videos``' cached descriptions (``cache``: a
    :class:`~frame_describer.cache.DescriptionCache` or its path) and/or ``descriptions`` (JSONL files or
    folders of them, each of the video its ``video`` field names where that file exists, relative to the file's
    folder first, else matched among ``videos`` by the file's stem, less ``.descriptions``: see :func:`_video_of`)
    into the folder ``out`` (see the module). ``describer`` keeps one teacher (``"openai:gpt-4o"``, or a
    backend name like ``"openai"``); ``max_side`` overrides the frame size the teacher saw."""
    from frame_describer.sampling import sample_frames
    import prompts

    if format not in FORMATS:
        raise ConfigurationError(f"unknown tuning-data format {format!r}; choose one of: {', '.join(FORMATS)}")
    if min_chars < 1:
        raise ConfigurationError(f"min_chars must be at least 1, got {min_chars}")
    from .runs import check_out_folder

    check_out_folder(Path(out))
    video_list = _videos(videos)
    files: list[Path] = []
    for p in map(Path, descriptions):
        files += sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if cache is None and not files:
        raise ConfigurationError("nothing to export: give the description cache (and the videos it describes) "
                                 "or descriptions files")
    if cache is not None and not video_list:
        raise ConfigurationError("the cache is keyed by the videos' content: give the videos (--videos) to export")
    seen: Counter[str] = Counter()
    items: list[_Item] = []
    if cache is not None:
        from frame_describer.cache import DescriptionCache

        if not isinstance(cache, DescriptionCache) and not Path(cache).expanduser().is_file():
            # opening would create an empty cache: a wrong path is named, and nothing is made by reading
            raise InputError("description cache not found", path=cache)
        store = cache if isinstance(cache, DescriptionCache) else DescriptionCache(cache)
        try:
            items += _from_cache(store, video_list, describer, seen)
        finally:
            if store is not cache:
                store.close()
    items += _from_files(files, video_list, describer, seen)
    if not items:
        found = ", ".join(f"{n} ({c})" for n, c in seen.most_common()) or "none"
        raise InputError(f"no descriptions to export{f' by {describer!r}' if describer else ''}; descriptions found: "
                         f"{found}")
    left_out: Counter[str] = Counter()
    kept = []
    for item in items:
        why = problem(item.description, min_chars)
        if why:
            left_out[why] += 1
        else:
            kept.append(item)
    if not kept:
        raise InputError(f"every one of the {len(items)} descriptions was left out ({dict(left_out)})")

    out = Path(out)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    prompt = prompts.load(PROMPT)
    prompt_text, prompt_id = prompt.render(), f"{prompt.name}.v{prompt.version}:{prompt.hash}"
    result = TuningExport(path=str(out / "train.jsonl"), left_out=dict(left_out))
    records: list[dict[str, Any]] = []
    by_video: dict[tuple[Path, int | None], list[_Item]] = {}
    for item in kept:
        by_video.setdefault((item.video, max_side or item.max_side), []).append(item)
    for (video, side), group in by_video.items():
        fingerprint = group[0].fingerprint
        missing = sorted({i.t for i in group if not (frames_dir / _frame_name(fingerprint, side, i.t)).exists()})
        if missing:
            result.frames_written += _write_frames(sample_frames(video, times=missing, max_side=side), missing,
                                                   frames_dir, fingerprint, side)
        for i in group:
            name = _frame_name(fingerprint, side, i.t)
            if not (frames_dir / name).exists():
                raise InputError(f"no frame could be decoded near {i.t:g} s", path=video)
            records.append(_record(i, f"frames/{name}", prompt_text, prompt_id, format))
        result.videos += 1
    result.frames_reused = len({_frame_name(i.fingerprint, side, i.t) for (_, side), group in by_video.items()
                                for i in group}) - result.frames_written
    result.describers = dict(Counter(i.describer for i in kept))
    with output_file(out / "train.jsonl") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    result.records = len(records)
    return result


def _frame_name(fingerprint: str, side: int | None, t: float) -> str:
    """The frame's file: the size is in the name, so a frame exported at another ``max_side`` is not
    mistaken for one already written."""
    return f"{fingerprint[:16]}-{f's{side}' if side else 'full'}-{round(t * 1000):09d}.jpg"


def _write_frames(stream: Any, wanted: list[float], frames_dir: Path, fingerprint: str, side: int | None) -> int:
    """Write, for each wanted time (sorted), the decoded frame nearest to it; frames stream in time order
    and only the previous one is held. Returns how many files were written."""
    written, k, prev = 0, 0, None

    def write(t: float, image: Any) -> None:
        nonlocal written
        path = frames_dir / _frame_name(fingerprint, side, t)
        if not path.exists():
            _write_jpeg(path, image)
            written += 1

    with stream:
        for f in stream:
            while k < len(wanted) and wanted[k] <= f.t:
                near = prev if prev is not None and wanted[k] - prev.t < f.t - wanted[k] else f
                write(wanted[k], near.image)
                k += 1
            prev = f
    for t in wanted[k:]:  # past the last frame: the last one is the nearest
        if prev is not None:
            write(t, prev.image)
    return written


__all__ = ["FORMATS", "PROMPT", "TuningExport", "export_tuning_data", "problem"]
