"""Metrics of dense events: localisation precision/recall/F1 as ActivityNet-Captions' dense-captioning
evaluation defines them, and boundary F1 and event recall for transcripts whose true boundaries are known.

Localisation (:func:`densevid_localisation`), after ``densevid_eval``'s ``evaluate.py`` (Krishna et al.
2017, as modified by Zhou 2018), which every dense-captioning paper reports:

- a prediction *matches* a reference event when their tIoU is **above** the threshold (strictly);
- per video and reference set (``val_1``, ``val_2``): precision = matched predictions / predictions (the
  first ``max_proposals``), recall = matched references / references; the video takes the **best** over
  the reference sets of each, separately;
- each is averaged over the reference videos (a video without predictions scores 0 on both), per
  threshold (0.3, 0.5, 0.7, 0.9), then over the thresholds; F1 is the harmonic mean of the averaged
  precision and recall. Figures are percentages.

Caption quality (:func:`densevid_captions`, the optional ``captions`` extra: ``pycocoevalcap``, the COCO
caption scorers' reference implementation, with a Java runtime for its tokenizer and METEOR), as the same
script scores it: at each tIoU every predicted caption is paired with every reference sentence (of any
reference set) whose event overlaps it at tIoU >= the threshold, or with a junk sentence when none does (so
it scores about 0); each video's pairs are scored together (METEOR, CIDEr, BLEU-4 after the PTB tokenizer),
a video without predictions scores 0, and the scores are averaged over the reference videos, then over the
thresholds. The junk sentence is fixed here, where the script draws a random one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from vidground.errors import EvaluationError

TIOUS = (0.3, 0.5, 0.7, 0.9)
MAX_PROPOSALS = 1000

Span = tuple[float, float]


def tiou(a: Span, b: Span) -> float:
    """Temporal intersection over union of two ``(start, end)`` spans (0 when the union is empty)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _spans(value: Iterable[Any], what: str) -> list[Span]:
    out = []
    for i, s in enumerate(value):
        try:
            a, b = float(s[0]), float(s[1])
        except (TypeError, ValueError, IndexError):
            raise EvaluationError(f"{what}[{i}] is not a (start, end) pair: {s!r}") from None
        out.append((a, b))
    return out


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def densevid_localisation(predictions: Mapping[str, Sequence[Any]], references: Sequence[Mapping[str, Sequence[Any]]],
                          *, tious: Sequence[float] = TIOUS, max_proposals: int = MAX_PROPOSALS) -> dict[str, float]:
    """Precision, recall and F1 (percent) at each tIoU and their averages over ``tious`` (see the module's
    docstring). ``predictions`` maps a video id to its predicted spans (best first: only the first
    ``max_proposals`` count); ``references`` is one mapping per reference set, video id to its spans."""
    if not references:
        raise EvaluationError("no reference set to score against")
    refs = [{v: _spans(s, f"reference {v}") for v, s in ref.items()} for ref in references]
    videos = sorted(set().union(*refs))
    if not videos:
        raise EvaluationError("the reference sets hold no video")
    preds = {v: _spans(s, f"prediction {v}")[:max_proposals] for v, s in predictions.items()}
    out: dict[str, float] = {}
    for t in tious:
        p_sum = r_sum = 0.0
        for v in videos:
            best_p = best_r = 0.0
            pred = preds.get(v, [])
            for ref in refs:
                if v not in ref or not ref[v]:
                    continue
                hit_pred = {i for i, p in enumerate(pred) if any(tiou(p, r) > t for r in ref[v])}
                hit_ref = {j for j, r in enumerate(ref[v]) if any(tiou(p, r) > t for p in pred)}
                if pred:
                    best_p = max(best_p, len(hit_pred) / len(pred))
                best_r = max(best_r, len(hit_ref) / len(ref[v]))
            p_sum, r_sum = p_sum + best_p, r_sum + best_r
        p, r = 100 * p_sum / len(videos), 100 * r_sum / len(videos)
        out[f"precision@{t:g}"], out[f"recall@{t:g}"], out[f"f1@{t:g}"] = p, r, _f1(p, r)
    for k in ("precision", "recall"):
        out[k] = sum(out[f"{k}@{t:g}"] for t in tious) / len(tious)
    out["f1"] = _f1(out["precision"], out["recall"])
    out["videos"] = float(len(videos))
    return {k: round(v, 4) for k, v in out.items()}


#: The reference a predicted caption is scored against when no reference event overlaps it: letters no
#: caption shares, so it scores about 0 (densevid_eval draws a random string of 10 to 20 characters).
JUNK_REFERENCE = "qzxjvkwqzxjvkw"
CAPTION_METRICS = ("METEOR", "CIDEr", "Bleu_4")


def caption_scorers() -> list[tuple[Any, str]]:
    """The COCO caption scorers (METEOR, CIDEr, BLEU); a :class:`~vidground.errors.MissingDependencyError`
    without ``pycocoevalcap`` (``pip install 'vidground[captions]'``), a ``ConfigurationError`` without Java."""
    import shutil

    from vidground.errors import ConfigurationError, MissingDependencyError

    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
    except ImportError:
        raise MissingDependencyError("pycocoevalcap", "captions", "caption metrics (METEOR, CIDEr, BLEU)") from None
    if shutil.which("java") is None:
        raise ConfigurationError("caption metrics need a Java runtime for METEOR and the PTB tokenizer "
                                 "(e.g. apt-get install default-jre-headless)")
    return [(Meteor(), "METEOR"), (Cider(), "CIDEr"), (Bleu(4), "Bleu_4")]


def close_scorers(scorers: Iterable[tuple[Any, str]]) -> None:
    """End the Java processes of ``scorers`` (``pycocoevalcap``'s METEOR keeps one) and free its lock. A Ctrl-C
    inside METEOR's ``compute_score`` leaves its lock held (it is not released on an error), and the scorer's
    ``__del__`` waits for that lock before it ends the process: the command hung at exit, forever."""
    import threading

    for scorer, _ in scorers:
        proc = getattr(scorer, "meteor_p", None)
        if proc is None:
            continue
        for step in (proc.stdin.close, proc.kill, proc.wait):
            with contextlib.suppress(OSError, ValueError):
                step()
        lock = getattr(scorer, "lock", None)
        if lock is not None and lock.locked():
            scorer.lock = threading.Lock()  # what __del__ acquires; the process it guarded has ended


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence stdout and stderr at the file-descriptor level: the scorers print progress from Python (BLEU)
    and from their Java processes (the tokenizer)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class _MadeHere(threading.local):
    names: list[str] | None = None  # the temp files this thread's tokenization made, while one runs


_made = _MadeHere()


class _NotingTempfile:
    """``tempfile`` as ``pycocoevalcap``'s PTB tokenizer sees it: each file it makes is noted for the thread that
    made it, while :func:`_tokenizer_temp_files_removed` runs there (per thread: another tokenization, in this
    process or another, writes its own file to the same folder, which must stay until its Java has read it)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(tempfile, name)

    def NamedTemporaryFile(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (tempfile's name)
        made = tempfile.NamedTemporaryFile(*args, **kwargs)
        if _made.names is not None:
            _made.names.append(made.name)
        return made


@contextlib.contextmanager
def _tokenizer_temp_files_removed() -> Iterator[None]:
    """Remove the temp file the PTB tokenizer writes into its package folder however its ``tokenize`` ends: it
    removes it only after Java has answered, so a Ctrl-C while Java runs left one there for good."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    if not isinstance(ptbtokenizer.tempfile, _NotingTempfile):
        ptbtokenizer.tempfile = _NotingTempfile()  # type: ignore[assignment]
    _made.names = []
    try:
        yield
    finally:
        names, _made.names = _made.names, None
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)


def _ascii(text: str) -> str:
    return "".join(c if ord(c) < 128 else " " for c in text)


def densevid_captions(predictions: Mapping[str, Sequence[Any]], references: Sequence[Mapping[str, Mapping[str, Any]]],
                      *, tious: Sequence[float] = TIOUS, max_proposals: int = MAX_PROPOSALS,
                      scorers: list[tuple[Any, str]] | None = None) -> dict[str, float]:
    """METEOR, CIDEr and BLEU-4 (percent) at each tIoU and their averages (see the module's docstring).
    ``predictions`` maps a video id to ``(start, end, caption)`` triples, best first; ``references`` is one
    mapping per reference set, video id to ``{"timestamps": [[s, e], ...], "sentences": [...]}``."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if scorers is None:  # made here: ended here, however scoring ends
        scorers = caption_scorers()
        try:
            return densevid_captions(predictions, references, tious=tious, max_proposals=max_proposals, scorers=scorers)
        finally:
            close_scorers(scorers)
    videos = sorted(set().union(*references)) if references else []
    if not videos:
        raise EvaluationError("the reference sets hold no video")
    preds = {}
    for v, items in predictions.items():
        rows = []
        for i, item in enumerate(list(items)[:max_proposals]):
            try:
                a, b, caption = float(item[0]), float(item[1]), str(item[2])
            except (TypeError, ValueError, IndexError):
                raise EvaluationError(f"prediction {v}[{i}] is not a (start, end, caption) triple: {item!r}") from None
            rows.append((a, b, caption))
        preds[v] = rows
    out: dict[str, float] = {}
    tokenizer = PTBTokenizer()
    for t in tious:
        res: dict[int, list[dict[str, str]]] = {}
        gts: dict[int, list[dict[str, str]]] = {}
        owner: dict[str, list[int]] = {v: [] for v in videos}
        for v in videos:
            for a, b, caption in preds.get(v, []):
                refs = [sentence for ref in references if v in ref
                        for (s, e), sentence in zip(ref[v]["timestamps"], ref[v]["sentences"]) if tiou((a, b), (s, e)) >= t]
                for sentence in refs or [JUNK_REFERENCE]:
                    key = len(res)
                    res[key], gts[key] = [{"caption": _ascii(caption)}], [{"caption": _ascii(sentence)}]
                    owner[v].append(key)
        with _quiet_fds(), _tokenizer_temp_files_removed():
            tok_res, tok_gts = (tokenizer.tokenize(res), tokenizer.tokenize(gts)) if res else ({}, {})
        for scorer, name in scorers:
            total = 0.0
            for v in videos:
                if owner[v]:
                    with _quiet_fds():
                        score, _ = scorer.compute_score({k: tok_gts[k] for k in owner[v]},
                                                        {k: tok_res[k] for k in owner[v]})
                    total += float(score[-1] if isinstance(score, list) else score)  # BLEU: the 4-gram score
            out[f"{name}@{t:g}"] = 100 * total / len(videos)
    for _, name in scorers:
        out[name] = sum(out[f"{name}@{t:g}"] for t in tious) / len(tious)
    return {k: round(v, 4) for k, v in out.items()}


def boundary_f1(predicted: Sequence[float], truth: Sequence[float], tolerance: float) -> dict[str, float]:
    """Boundary precision, recall and F1 (fractions): a predicted boundary is a hit when it lies within
    ``tolerance`` seconds of a true one, each true boundary matched at most once (nearest pairs first)."""
    pairs = sorted((abs(p - g), i, j) for i, p in enumerate(predicted) for j, g in enumerate(truth)
                   if abs(p - g) <= tolerance)
    used_p: set[int] = set()
    used_g: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
    hits = len(used_p)
    precision = hits / len(predicted) if predicted else (1.0 if not truth else 0.0)
    recall = hits / len(truth) if truth else 1.0
    return {"hits": hits, "predicted": len(predicted), "true": len(truth), "precision": precision,
            "recall": recall, "f1": _f1(precision, recall)}


def event_recall(predicted: Sequence[Any], truth: Sequence[Any], threshold: float) -> float:
    """The fraction of true events matched by some predicted event at tIoU >= ``threshold``."""
    pred, true = _spans(predicted, "prediction"), _spans(truth, "truth")
    if not true:
        raise EvaluationError("no true event to recall")
    return sum(any(tiou(p, g) >= threshold for p in pred) for g in true) / len(true)


__all__ = ["CAPTION_METRICS", "JUNK_REFERENCE", "MAX_PROPOSALS", "TIOUS", "boundary_f1", "caption_scorers", "close_scorers",
           "densevid_captions", "densevid_localisation", "event_recall", "tiou"]
