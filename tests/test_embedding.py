"""The embedding reasoner and the naive similarity baseline on hand-made transcripts with known truth."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vidground.errors import ConfigurationError, InputError, MissingDependencyError
from vidground.types import FrameDescription as FD
from temporal_reasoner import Interval, Transcript, get_reasoner
from temporal_reasoner.embedding import EmbeddingReasoner
from temporal_reasoner.spans import find_spans, gaussian_smooth, median_smooth, text_units
from _helpers_text import transcript


@pytest.fixture(scope="module")
def reasoner():
    r = get_reasoner("embedding")
    r.encoder  # load the model once for the module
    return r


# ------------------------------------------------------------------ pure curve logic (no model)

def test_text_units_split_sentences_and_clauses_with_inherited_subject():
    units = text_units("The person is opening a door; holding a box. The room is dark, and a lamp is off.")
    assert "The person is opening a door" in units and "The person is holding a box" in units
    assert "The room is dark" in units and "a lamp is off" in units
    assert text_units("A line.", level="line") == ["A line."]
    # "something" is a subject, not an -ing verb (the motion stream's "...; something ... moves up")
    units = text_units("A person is standing. Motion: the camera pans to the left; something in the centre moves up.")
    assert units[-1] == "something in the centre moves up"
    assert text_units("") == []


def test_step_edges_are_found_where_they_are_whatever_the_smoothing():
    times = np.arange(20.0)
    curve = np.where((times >= 6) & (times <= 11), 0.9, 0.2)  # samples 6..11 -> edges half-way: 5.5, 11.5
    for sigma in (0.0, 1.0):
        spans, flat = find_spans(times, gaussian_smooth(curve, sigma), 20.0, rel_level=0.5)
        assert not flat and spans[0].start == pytest.approx(5.5, abs=0.05) and spans[0].end == pytest.approx(11.5, abs=0.05)
        # the plateau's median: exact on a clean step; the smoothing's ramps lower it a little
        spans, _ = find_spans(times, gaussian_smooth(curve, sigma), 20.0, rel_level=0.5, plateau=50)
        tol = 0.05 if sigma == 0 else 0.1
        assert spans[0].start == pytest.approx(5.5, abs=tol) and spans[0].end == pytest.approx(11.5, abs=tol)


def test_a_noisy_plateau_is_cut_at_its_own_level_not_its_top_sample():
    # samples 6..13 are one event whose scores vary (as paraphrases do); one sample stands out
    curve = np.array([0.2] * 6 + [0.7, 0.75, 1.0, 0.8, 0.7, 0.72, 0.74, 0.7] + [0.2] * 6)
    times = np.arange(len(curve), dtype=float)
    top, _ = find_spans(times, curve, 20.0, rel_level=0.7, base_percentile=0, bridge=False)
    flat, _ = find_spans(times, curve, 20.0, rel_level=0.7, base_percentile=0, bridge=False, plateau=50)
    assert (top[0].start, top[0].end) == pytest.approx((7.04, 9.4), abs=0.01)  # the top sample's level: 2 samples
    assert 5.5 < flat[0].start <= 6.0 and 13.0 <= flat[0].end < 13.5  # the plateau's level: samples 6..13
    assert flat[0].peak == top[0].peak == 1.0


def test_median_removes_a_blip_and_bridge_steps_over_a_dip():
    curve = np.array([0.1] * 5 + [0.9] + [0.1] * 5)
    assert median_smooth(curve, 3).max() == pytest.approx(0.1)
    # at the ends the window holds only the samples there are: a blip on the first or last frame is
    # not repeated into a majority of itself
    for end in (np.array([0.9] + [0.1] * 6), np.array([0.1] * 6 + [0.9])):
        assert median_smooth(end, 5).max() == pytest.approx(0.1)
        assert median_smooth(end, 3).max() == pytest.approx(0.5)  # two samples: their mean
        assert len(median_smooth(end, 9)) == len(end) and median_smooth(end, 9).max() == pytest.approx(0.1)
    dip = np.array([0.1] * 4 + [0.9, 0.9, 0.3, 0.9, 0.9] + [0.1] * 4)
    times = np.arange(len(dip), dtype=float)
    bridged, _ = find_spans(times, dip, 13.0, rel_level=0.6, base_percentile=0, bridge=True)
    plain, _ = find_spans(times, dip, 13.0, rel_level=0.6, base_percentile=0, bridge=False)
    assert bridged[0].end - bridged[0].start == pytest.approx(5.0, abs=0.3)
    assert plain[0].end - plain[0].start < 3


def test_flat_curve_gives_whole_video():
    spans, flat = find_spans(np.arange(5.0), np.full(5, 0.4), 5.0)
    assert flat and (spans[0].start, spans[0].end) == (0.0, 5.0)


# ------------------------------------------------------------------ the reasoner on text

def test_finds_the_known_span(reasoner):
    tr = transcript((6, "A person walks into the kitchen."),
                    (5, "The person opens the refrigerator; holding a bottle."),
                    (8, "The person sits at a table and eats a sandwich."))
    res = reasoner.ground("the person opens the fridge", tr)
    assert res.best.iou(Interval(start=6, end=11)) >= 0.7
    eat = reasoner.ground("someone eating a sandwich", tr)
    assert eat.best.iou(Interval(start=11, end=19)) >= 0.7
    assert res.reasoner == "embedding" and res.settings["level"] == "clause"
    assert res.curve is not None and len(res.curve) == 19 and res.curve[0][0] == 0.0


def test_clause_in_multi_sentence_prose_is_found(reasoner):
    noise = "The room is brightly lit. A chair stands by the wall. The person looks around."
    tr = transcript((8, noise), (6, noise + " Someone turns off the light, then sneezes."), (8, noise))
    res = reasoner.ground("person turns off the light", tr)
    assert res.best.iou(Interval(start=8, end=14)) >= 0.7


def test_several_peaks_give_several_intervals_best_first(reasoner):
    tr = transcript((5, "The person reads a book on the sofa."), (4, "The person opens a window."),
                    (6, "The person reads a book on the sofa."), (4, "The person opens a window, smiling."),
                    (5, "The person reads a book on the sofa."))
    res = reasoner.ground("a person opens the window", tr)
    assert len(res.intervals) >= 2
    truths = [Interval(start=5, end=9), Interval(start=15, end=19)]
    for iv in res.intervals[:2]:
        assert max(iv.iou(t) for t in truths) >= 0.6
    scores = [iv.score for iv in res.intervals]
    assert scores == sorted(scores, reverse=True)
    # alternatives may overlap (QVHighlights' ranked windows), but never by the NMS threshold or more
    assert all(a.iou(b) < reasoner.nms_iou for k, a in enumerate(res.intervals) for b in res.intervals[k + 1:])
    peaks = EmbeddingReasoner(encoder=reasoner.encoder, spans="peaks").ground("a person opens the window", tr)
    assert len(peaks.intervals) >= 2
    ivs = sorted(peaks.intervals, key=lambda i: i.start)
    assert all(a.end <= b.start for a, b in zip(ivs, ivs[1:]))  # peaks mode: one span per peak, disjoint
    assert len(reasoner.__class__(top_k=1).ground("a person opens the window", tr).intervals) == 1


def test_identical_lines_everywhere_answer_the_whole_video(reasoner):
    res = reasoner.ground("a person opens the window", transcript((12, "The person stands still.")))
    assert [(iv.start, iv.end) for iv in res.intervals] == [(0.0, 12.0)] and res.warnings


def test_one_line_transcript(reasoner):
    tr = Transcript.from_descriptions([FD(t=0.0, text="A dog runs.")], duration=7.5)
    res = reasoner.ground("a dog", tr)
    assert (res.best.start, res.best.end) == (0.0, 7.5) and res.duration == 7.5


@pytest.mark.slow
def test_long_transcript_is_encoded_in_batches(reasoner):
    """Also: a 10-frame event in 900 frames is 1% of the video, below the top percentile: the height
    comes from the 4th-highest sample (EmbeddingReasoner.TOP_RANK), so the span stays tight."""
    texts = [f"Frame {i}: the person is reading page {i % 97} of a book." for i in range(900)]
    texts[400:410] = ["The person throws a pillow across the room."] * 10
    tr = Transcript.from_descriptions([FD(t=float(i), text=t) for i, t in enumerate(texts)])
    res = reasoner.ground("someone throws a pillow", tr)
    assert res.best.iou(Interval(start=400, end=410)) >= 0.7


@pytest.mark.parametrize("query", ["", "   ", None])
def test_empty_query_is_an_input_error(reasoner, query):
    with pytest.raises(InputError):
        reasoner.ground(query, transcript((3, "A person.")))


def test_naive_baseline_takes_the_run_around_the_best_line(reasoner):
    naive = get_reasoner("naive", encoder=reasoner.encoder)
    tr = transcript((6, "A person walks into the kitchen."), (5, "The person opens the refrigerator."),
                    (8, "The person sits at a table and eats a sandwich."))
    res = naive.ground("the person opens the fridge", tr)
    # frames at 6..10 s describe it; their spans reach halfway to the neighbouring frames
    assert (res.best.start, res.best.end) == (5.5, 10.5) and res.reasoner == "naive" and res.curve


def test_embedding_cache_reuses_identical_texts(reasoner):
    tr = transcript((10, "The person waters a plant."), (10, "The person feeds a cat."))
    reasoner.ground("feeding the cat", tr)
    before = reasoner.encoder.encoded
    reasoner.ground("feeding the cat", tr)
    assert reasoner.encoder.encoded == before


def test_bad_settings_and_model_paths_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="clause, sentence, line"):
        get_reasoner("embedding", level="word")
    for name in ("embedding", "naive", "vtggpt"):  # when built: before a video is described, not when the model loads
        with pytest.raises(ConfigurationError, match="not found"):
            get_reasoner(f"{name}:{tmp_path / 'nope'}")
    # the option at fault and its value, not every rule of the group ("need smooth >= 0, ..., top_k >= 1")
    with pytest.raises(ConfigurationError, match=r"^top_k must be a whole number >= 1, got -1$"):
        get_reasoner("embedding", top_k=-1)
    with pytest.raises(ConfigurationError, match=r"^smooth must be a number of seconds >= 0, got -2; min_prominence must be a number from 0 to 1, got 3$"):
        get_reasoner("embedding", spans="peaks", smooth=-2, min_prominence=3)


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r"vidground\[embedding\]") as err:
        get_reasoner("embedding").ground("a query", transcript((2, "x")))
    assert err.value.package == "sentence-transformers"


@pytest.mark.slow
def test_importing_the_package_does_not_import_torch():
    code = ("import sys, temporal_reasoner, temporal_reasoner.embedding; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_event_one_frame_long_survives_the_median(reasoner):
    """Peaks mode: the median removes blips, but a frame that matches clearly better than anything else is the event."""
    reasoner = EmbeddingReasoner(encoder=reasoner.encoder, spans="peaks")
    tr = transcript((12, "The main colours are beige and brown."), (4, "The room is dark; the lights are off."),
                    (6, "The main colours are beige and brown."), (1, "The view changed completely: a scene cut."),
                    (5, "The main colours are green and blue."))
    res = reasoner.ground("the video cuts to a completely different scene", tr)
    cut = 22.0  # the one frame that shows it
    assert res.best.start <= cut <= res.best.end and res.best.length <= 1.5, res.best
    # with the spike rule off, the median erases the frame and the answer lands elsewhere
    off = get_reasoner("embedding", encoder=reasoner.encoder, spans="peaks", spike_margin=10.0).ground(
        "the video cuts to a completely different scene", tr)
    assert not (off.best.start <= cut <= off.best.end)



class _FakeModel:
    """Stands in for a sentence-transformers model: a deterministic one-hot vector per text. ``during``
    runs inside the first encode call, between the encoder's cache lookup and its use of the result,
    where another thread's work would run."""

    def __init__(self):
        self.during = None
        self.calls = 0

    @staticmethod
    def vector(text: str) -> int:
        return sum(map(ord, text)) % 8

    def encode(self, texts, **_):
        self.calls += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, self.vector(t)] = 1.0
        return out


def test_a_cached_text_evicted_while_another_is_encoded_is_still_returned():
    """The eval grounds many queries at once through one shared encoder. A text found in the cache
    could be evicted by another thread while this one encoded its missing texts, and then be looked up
    again: a KeyError that failed 19 of 500 QVHighlights queries. The interleaving is forced here."""
    from temporal_reasoner.embedding import Encoder

    model = _FakeModel()
    enc = Encoder(model, "fake", "cpu", cache_size=2)
    enc.encode(["a cat", "a dog"])
    model.during = lambda: enc.encode(["a bird", "a fish"])  # fills the tiny cache: both cached texts go
    vecs = enc.encode(["a cat", "a dog", "a horse"])
    assert [int(np.argmax(v)) for v in vecs] == [model.vector(t) for t in ("a cat", "a dog", "a horse")]
    assert len(enc._cache) <= 2


def test_concurrent_queries_through_one_encoder_with_a_tiny_cache_never_lose_a_vector():
    """Many threads, overlapping batches, a cache smaller than the texts in flight: every row comes back right."""
    from concurrent.futures import ThreadPoolExecutor

    from temporal_reasoner.embedding import Encoder

    model = _FakeModel()
    enc = Encoder(model, "fake", "cpu", cache_size=4)
    texts = [f"caption number {i}" for i in range(12)]

    def job(k: int):
        batch = [texts[(k + j) % len(texts)] for j in range(6)] + texts[:2]
        return enc.encode(batch), batch

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(200)))
    for vecs, batch in results:
        assert [int(np.argmax(v)) for v in vecs] == [model.vector(t) for t in batch]
    assert len(enc._cache) <= 4


# ------------------------------------------------------------------ segments (the default span mode)

def test_find_segments_returns_the_maximum_area_segment_first_and_ranked_alternatives():
    from temporal_reasoner.spans import find_segments

    times = np.arange(20, dtype=float) + 0.5  # samples standing for [k, k+1)
    curve = np.zeros(20)
    curve[3:8] = 1.0           # area 5 * 0.5 above the level
    curve[8] = 0.3             # a dip the samples beyond make up for
    curve[9:11] = 1.0
    curve[15:17] = 0.9         # a smaller, separate event
    segs = find_segments(times, curve, 20.0, 0.5, top_k=5, nms_iou=0.5)
    assert (segs[0].start, segs[0].end) == (3.0, 11.0)  # steps over the dip: 3.5 - 0.2 > 2.5
    assert segs[0].mass == pytest.approx(5 * 0.5 - 0.2 + 2 * 0.5)
    assert (15.0, 17.0) in [(s.start, s.end) for s in segs]
    masses = [s.mass for s in segs]
    assert masses == sorted(masses, reverse=True)
    for k, a in enumerate(segs):
        for b in segs[k + 1:]:
            inter = max(0.0, min(a.end, b.end) - max(a.start, b.start))
            assert inter / (max(a.end, b.end) - min(a.start, b.start)) < 0.5


def test_find_segments_stays_linear_on_a_long_noisy_curve(monkeypatch):
    """Past MAX_CROSSINGS crossings the proposals are runs and successive maximum-sum segments, not all pairs."""
    from temporal_reasoner import spans

    rng = np.random.default_rng(0)
    n = 7200  # two hours at 1 fps
    curve = rng.random(n) * 0.4
    curve[3000:3010] = 0.95
    times = np.arange(n, dtype=float)
    crossings = int(np.sum(np.diff((curve > 0.3).astype(int)) == 1))
    assert crossings > spans.MAX_CROSSINGS  # the fallback is the path under test

    def no_pairs(*_, **__):
        raise AssertionError("all pairs of crossings were formed")

    monkeypatch.setattr(spans.np, "triu_indices", no_pairs)
    segs = spans.find_segments(times, curve, float(n), 0.3, top_k=3)
    assert segs[0].start <= 3000 and segs[0].end >= 3009 and segs[0].end - segs[0].start < 40


DARK, WHITE = "A completely dark, black screen with nothing visible.", "A bright white screen filling the whole frame."


def _step(times, cut: float, duration: float) -> Transcript:
    return Transcript.from_descriptions([FD(t=float(t), text=DARK if t < cut else WHITE) for t in times], duration=duration)


def test_a_clean_step_is_cut_where_the_frames_change_not_a_sample_off_each_side(reasoner):
    """20 frames at 1 fps, 0-9 dark, 10-19 white: each frame stands for the second around it, so the answers
    meet at 9.5 (as smooth_samples=0, vtggpt and naive answer). Cut on the smoothed curve alone, frame 10 fell
    out of the white answer and frame 9 out of the dark one (10.5-20 and 0-8.5)."""
    tr = _step(range(20), 10, 20.0)
    for query, want in (("a bright white screen", (9.5, 20.0)), ("the scene is dark", (0.0, 9.5))):
        res = reasoner.ground(query, tr)
        assert (res.best.start, res.best.end) == pytest.approx(want), query
        assert (res.best.start, res.best.end) == pytest.approx(
            [(iv.start, iv.end) for iv in get_reasoner("embedding", encoder=reasoner.encoder, smooth_samples=0).ground(query, tr).intervals][0])
    # raw_edges=0 is the cut on the smoothed curve alone
    old = EmbeddingReasoner(encoder=reasoner.encoder, raw_edges=0).ground("a bright white screen", tr)
    assert (old.best.start, old.best.end) == pytest.approx((10.5, 20.0))
    assert reasoner.settings()["raw_edges"] == EmbeddingReasoner.RAW_EDGES == 1


def test_a_variable_frame_rate_step_keeps_the_frame_next_to_the_change(reasoner):
    """Frames at uneven times; the first white frame (9.41 s) stands for 8.755-10.205 s, the last dark one
    (8.1 s) for 7.85-8.755 s. The smoothing counts samples, not seconds, and dropped each of them."""
    times = [0, 1.1, 2.3, 3.0, 4.4, 5.2, 6.9, 7.6, 8.1, 9.41, 11.0, 11.3, 12.9, 14.0, 15.5, 16.2, 17.8, 19.0]
    tr = _step(times, 9, 20.0)
    white = reasoner.ground("a bright white screen", tr).best
    dark = reasoner.ground("the scene is dark", tr).best
    assert (white.start, white.end) == pytest.approx((8.755, 20.0))
    assert (dark.start, dark.end) == pytest.approx((0.0, 8.755))


def test_raw_edges_widen_a_segment_over_raw_samples_above_the_level_at_most_reach_a_side():
    from temporal_reasoner.spans import raw_edges

    raw = np.array([0.0, 0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.1, 0.1, 0.0, 0.9])
    s, e = raw_edges(np.array([3]), np.array([5]), raw, 0.5, 1)
    assert (s.tolist(), e.tolist()) == ([2], [6])
    s, e = raw_edges(np.array([3]), np.array([5]), raw, 0.5, 5)
    assert (s.tolist(), e.tolist()) == ([1], [6])  # stops where the raw curve falls under the level
    # edge samples under the level stay (moving in cost R1 on real captions), and so do the curve's ends
    s, e = raw_edges(np.array([4, 0, 7]), np.array([8, 10, 9]), raw, 0.5, 3)
    assert (s.tolist(), e.tolist()) == ([1, 0, 5], [8, 10, 10])
    # reach 0 changes nothing; neither does reach 2 on a segment whose neighbours are under the level
    assert [a.tolist() for a in raw_edges(np.array([3]), np.array([5]), raw, 0.5, 0)] == [[3], [5]]
    assert [a.tolist() for a in raw_edges(np.array([5]), np.array([6]), raw, 0.5, 2)] == [[5], [6]]


def test_raw_edges_is_a_whole_number_of_samples_and_a_segments_option():
    assert EmbeddingReasoner(encoder=object(), raw_edges=3).settings()["raw_edges"] == 3
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError, match="raw_edges must be a whole number of samples >= 0"):
            EmbeddingReasoner(encoder=object(), raw_edges=bad)
    for spans in ("peaks", "ranked"):
        with pytest.raises(ConfigurationError, match="raw_edges applies to spans='segments' only"):
            EmbeddingReasoner(encoder=object(), spans=spans, raw_edges=1)


def test_rephrasings_join_the_query_in_scoring(reasoner, tmp_path):
    tr = transcript((8, "The person reads a book."), (4, "A puppy is playing."), (8, "The person reads a book."))
    r = EmbeddingReasoner(encoder=reasoner.encoder, rephrasings={"an animal": ["a puppy is playing", "a young dog plays"]})
    alone = EmbeddingReasoner(encoder=reasoner.encoder).entry_scores("an animal", tr)
    joined = r.entry_scores("an animal", tr)
    assert joined[1] > alone[1]  # the paraphrases match the puppy line better than the query alone
    assert r.ground("an animal", tr).best.iou(Interval(start=7.5, end=11.5)) >= 0.6
    assert r.settings()["rephrasings"] == 1 and EmbeddingReasoner(encoder=reasoner.encoder).settings()["rephrasings"] == 0


def test_each_span_mode_has_its_defaults_and_bad_modes_are_refused():
    seg, peaks = EmbeddingReasoner(encoder=object()), EmbeddingReasoner(encoder=object(), spans="peaks")
    assert (seg.spans, seg.base_percentile, seg.rel_level, seg.feedback, seg.top_k) == ("segments", 50.0, 0.5, 0.25, 10)
    assert (peaks.base_percentile, peaks.rel_level, peaks.feedback, peaks.median, peaks.top_k) == (40.0, 0.6, 0.5, 3.0, 5)
    assert EmbeddingReasoner(encoder=object(), spans="peaks", feedback=0.1).feedback == 0.1
    for bad in ({"spans": "blobs"}, {"top_percentile": 40.0}, {"nms_iou": 0.0}, {"smooth_samples": -1},
                {"smooth": 1.0}, {"spans": "peaks", "nms_iou": 0.3}, {"spans": "peaks", "top_percentile": 90.0}):
        with pytest.raises(ConfigurationError):  # bad values, and options the chosen mode would ignore
            EmbeddingReasoner(encoder=object(), **bad)
    assert EmbeddingReasoner(encoder=object(), spans="peaks", base_percentile=96).base_percentile == 96


def test_a_repeat_query_reads_the_transcript_once_and_its_curve_is_not_validated_pair_by_pair(reasoner, monkeypatch):
    """Per query, the texts of the entries are not collected again and the curve's pairs (thousands on a long
    video) are not run through validation; the result is the one validation would give."""
    from temporal_reasoner import embedding
    from vidground.types import GroundingResult

    tr = transcript(*[(2, "The person reads a book."), (2, "A puppy is playing."), (2, "The person cooks.")] * 20)
    first = reasoner.ground("a puppy", tr)
    validated: list[object] = []

    class Recording(GroundingResult):
        def __init__(self, **data):
            validated.append(data.get("curve"))
            super().__init__(**data)

    monkeypatch.setattr(embedding, "GroundingResult", Recording)
    entries = type(tr.entries[0])
    reads = []
    monkeypatch.setattr(entries, "text", property(lambda self: reads.append(1) or self.__dict__["text"]), raising=False)
    again = reasoner.ground("a puppy", tr)
    assert validated == [None] and not reads
    assert again.curve == first.curve and len(again.curve) == 120  # a sample a second
    assert all(type(t) is float and type(s) is float for t, s in again.curve)
    assert GroundingResult.model_validate(again.model_dump()).model_dump() == again.model_dump()
