"""Fitting a transcript by merging near-duplicate spans merges only as much as the context needs
(temporal_reasoner.context.merge_to_fit): a short caption repeated with one word changed no longer
becomes one span over the whole video, and a merged span never drifts from the text it shows."""

from __future__ import annotations

import random

import pytest

from vidground.errors import ConfigurationError
from vidground.types import FrameDescription
from temporal_reasoner.context import (estimate_tokens, merge_similar, merge_to_fit, plan_context, similarity)
from temporal_reasoner.structured import build_messages
from temporal_reasoner.transcript import Transcript

QUERY = "when is the man in the kitchen?"
PLACES = ["room", "kitchen", "car", "garden", "office"]


def lines(texts: list[str], step: float = 2.0) -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=step * i, text=x) for i, x in enumerate(texts)],
                                        merge=False)


def cost(t: Transcript) -> int:
    return estimate_tokens(build_messages(QUERY, t))


def members(original: Transcript, merged: Transcript) -> list[tuple[str, list[str]]]:
    """Each merged span's text with the original texts it stands for."""
    out, j = [], 0
    for e in merged.entries:
        run = []
        while j < len(original.entries) and original.entries[j].start < e.end - 1e-9:
            run.append(original.entries[j].text)
            j += 1
        out.append((e.text, run))
    assert j == len(original.entries)
    return out


def test_a_caption_with_one_word_changed_is_not_merged_into_one_span_over_the_whole_video():
    # 500 frames 2 s apart, the place changing at every frame: any two are 5/7 = 0.71 alike, so at the 0.7 step
    # every span merged into the first ("... in a room") over all 1000 s, when half the spans would have fitted
    t = lines([f"a man is talking in a {PLACES[i % 5]}" for i in range(500)])
    budget = int(cost(t) * 0.95)
    plan = plan_context(QUERY, t, count_tokens=estimate_tokens, budget=budget)
    (merged,) = plan.chunks
    assert cost(merged) <= budget
    assert len(merged) == 250  # two places a span (the fewest that fit); before: 1
    assert max(e.end - e.start for e in merged.entries) <= 4 * 2.0  # two frames' spans; before: 1000 s
    assert {e.text.rsplit(" ", 1)[1] for e in merged.entries} == set(PLACES)  # before: only "room"
    assert plan.merge_threshold == 0.7
    assert "at most 2 different texts per span" in plan.warnings[0]


def test_spans_saying_the_same_words_merge_first_and_lose_nothing():
    # each place for 4 frames, written two ways (case, punctuation): those merge without losing a word, which
    # fits; the places themselves (0.71 alike) stay apart
    t = lines([(f"A man is talking in a {p}." if i % 2 else f"a man is talking in a {p}")
               for p in PLACES * 20 for i in range(4)])
    lossless = merge_similar(t, 0.9, max_texts=1)
    assert len(lossless) == 100
    fit = merge_to_fit(t, cost, cost(lossless))
    assert fit.fits and fit.max_texts == 1 and fit.transcript.entries == lossless.entries
    assert all(similarity(text, x) == 1.0 for text, run in members(t, fit.transcript) for x in run)


def test_merge_similar_max_texts_caps_the_different_texts_a_span_stands_for():
    t = lines([f"a man is talking in a {PLACES[i % 5]}" for i in range(20)])
    assert len(merge_similar(t, 0.7)) == 1
    for cap in (1, 2, 3):
        merged = merge_similar(t, 0.7, max_texts=cap)
        assert all(len(set(run)) <= cap for _, run in members(t, merged))
    assert len(merge_similar(t, 0.7, max_texts=2)) == 10
    assert merge_similar(t, 0.7, max_texts=5).entries == merge_similar(t, 0.7).entries


def test_a_chain_of_alike_neighbours_stops_where_it_drifts_from_the_text_it_shows():
    # line i shares 9 of its 10 words with line i + 1, so line 1 and line 20 share none
    vocab = [f"w{k}" for k in range(600)]
    t = lines([" ".join(vocab[i:i + 10]) for i in range(500)])
    for th in (0.8, 0.6, 0.5):
        merged = merge_similar(t, th)
        assert len(merged) >= 100
        assert all(similarity(text, x) >= th for text, run in members(t, merged) for x in run)
    fit = merge_to_fit(t, cost, int(cost(t) * 0.5))
    assert fit.fits
    assert all(similarity(text, x) >= fit.threshold for text, run in members(t, fit.transcript) for x in run)


def test_merge_to_fit_fits_covers_every_second_and_shows_each_span_a_text_alike_to_its_own():
    rng = random.Random(7)
    words = ["a", "man", "woman", "is", "talking", "sitting", "in", "the", "room", "kitchen", "car", "with", "dog"]
    for _ in range(40):
        texts, text = [], "a man is talking in the room"
        for _ in range(rng.randint(20, 200)):
            if rng.random() < 0.3:
                text = " ".join(rng.sample(words, rng.randint(4, 9)))
            elif rng.random() < 0.4:
                w = text.split()
                w[rng.randrange(len(w))] = rng.choice(words)
                text = " ".join(w)
            texts.append(text)
        t = lines(texts, step=rng.choice([0.5, 1.0, 3.0]))
        budget = int(cost(t) * rng.uniform(0.5, 1.0))
        fit = merge_to_fit(t, cost, budget)
        merged, th, most = fit.transcript, fit.threshold, fit.max_texts
        assert fit.tokens == cost(merged) and fit.fits == (fit.tokens <= budget)
        assert merged.entries[0].start == t.entries[0].start and merged.entries[-1].end == t.entries[-1].end
        assert all(a.end == b.start for a, b in zip(merged.entries, merged.entries[1:]))
        for text, run in members(t, merged):
            assert all(similarity(text, x) >= th for x in run)
            assert most is None or len({frozenset(x.lower().split()) for x in run}) <= most
        if fit.fits and most > 1:  # one text fewer per span would not have fitted
            assert cost(merge_similar(t, th, max_texts=most - 1)) > budget


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_a_bad_max_texts_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="max_texts"):
        merge_similar(lines(["a", "b"]), 0.5, max_texts=bad)


def test_bad_thresholds_are_configuration_errors():
    t = lines(["a man", "a man"])
    with pytest.raises(ConfigurationError, match="no merge thresholds"):
        merge_to_fit(t, cost, 10, thresholds=())
    with pytest.raises(ConfigurationError, match="merge threshold"):
        merge_to_fit(t, cost, 10, thresholds=(1.5,))


def test_a_question_merges_only_as_much_as_its_context_needs_too():
    from temporal_reasoner.qa import build_qa_messages, fit_transcript

    t = lines([f"a man is talking in a {PLACES[i % 5]}" for i in range(500)])

    def qa_cost(x: Transcript) -> int:
        return estimate_tokens(build_qa_messages(QUERY, x, None, time_style="seconds", max_intervals=3))

    fitted, notes = fit_transcript(t, qa_cost, int(qa_cost(t) * 0.95))
    assert len(fitted) == 250 and "at most 2 different texts per span" in notes[0]  # before: 1 span, "room"
