"""Query variants: offline cores of real Charades-STA queries, the LLM rewrite through a fake chat,
and the variant reasoners keeping results valid."""

from __future__ import annotations

import pytest

from vidground.errors import ConfigurationError, InputError, ProviderError
from temporal_reasoner import BaseReasoner, GroundingResult, Interval, Transcript, get_reasoner
from temporal_reasoner.parsing import ReplyError
from temporal_reasoner.query_variants import (
    VariantEmbeddingReasoner,
    VariantsReasoner,
    clause_cores,
    core_phrase,
    llm_rewrite,
    query_variants,
)
from temporal_reasoner.structured import ChatReply
from _helpers_text import transcript

# real Charades-STA train/test queries and the core each should reduce to
CORES = {
    "person turn a light on.": "turn light on",
    "a person is putting the towel on a stair.": "putting towel on stair",
    "person sitting on the couch.": "sitting on couch",
    "the person takes a picture of themselves.": "takes picture of themselves",
    "a person is seen closing the door.": "closing door",
    "someone then starts to put a book on a shelf.": "put book on shelf",
    "Person drinks from a glass of water.": "drinks from glass of water",
    "A man opens the refrigerator.": "opens refrigerator",
    "they begin to laugh at the picture.": "laugh at picture",
}


@pytest.mark.parametrize("query,core", sorted(CORES.items()))
def test_core_of_real_queries(query, core):
    assert core_phrase(query) == core


def test_clause_cores_split_joined_actions_only():
    assert clause_cores("Person opens the door and turns on the light.") == ["opens door", "turns on light"]
    assert clause_cores("a person is sitting in a chair, then eating a sandwich") == ["sitting in chair", "eating sandwich"]
    assert clause_cores("person sitting on the couch.") == ["sitting on couch"]
    with pytest.raises(InputError):
        core_phrase("   ")


def test_query_variants_dedupe_and_weights():
    kinds = [(v.kind, v.text, v.weight) for v in query_variants("Person opens the door and turns on the light.")]
    assert kinds == [("original", "Person opens the door and turns on the light.", 1.0),
                     ("core", "opens door and turns on light", 1.0),
                     ("clause", "opens door", 0.5), ("clause", "turns on light", 0.5)]
    assert [v.kind for v in query_variants("open door")] == ["original"]  # the core is the query itself
    assert [v.kind for v in query_variants("person opens a door", core_weight=0)] == ["original"]
    rw = query_variants("person opens a door", rewrite={"simplified": "open door", "detailed": "A hand pulls a door open."})
    assert [v.kind for v in rw] == ["original", "core", "simplified", "detailed"]


def fake_chat(text: str):
    seen = []

    def chat(messages, response_format):
        seen.append((messages, response_format))
        return ChatReply(text=text)

    chat.seen = seen
    return chat


def test_llm_rewrite_parses_and_rejects():
    chat = fake_chat('Sure: {"simplified": "open door", "detailed": "a person pulls a door open"}')
    assert llm_rewrite("person opens a door", chat) == {"simplified": "open door", "detailed": "a person pulls a door open"}
    assert 'person opens a door' in chat.seen[0][0][0]["content"] and chat.seen[0][1] is None
    with pytest.raises(ReplyError, match="detailed"):
        llm_rewrite("person opens a door", fake_chat('{"simplified": "open door"}'))
    copied = '{"simplified": "<the main action and object in 2 to 5 words>", "detailed": "a door"}'
    with pytest.raises(ReplyError, match="placeholder"):  # what Gemma 3 270M answers
        llm_rewrite("person opens a door", fake_chat(copied))


VIDEO = transcript((10, "The person is sitting on a sofa."), (8, "The person is opening a door; holding a box."),
                   (10, "The person is drinking from a cup."))
TRUE = Interval(start=9.5, end=17.5)


class Rewriter(BaseReasoner):
    name = "fake-chat"

    def __init__(self, text: str | None):
        self.text, self.calls = text, 0

    def chat(self, messages, response_format):
        self.calls += 1
        if self.text is None:
            raise ProviderError("server down")
        return ChatReply(text=self.text)


@pytest.fixture(scope="module")
def encoder():
    return get_reasoner("embedding").encoder


@pytest.mark.parametrize("combine", ["mean", "max"])
def test_variant_embedding_reasoner_finds_the_span_and_keeps_results_valid(encoder, combine):
    r = get_reasoner("variants:embedding", combine=combine)
    assert isinstance(r, VariantEmbeddingReasoner)
    r._encoder = encoder
    res = r.ground("A person is seen quickly opening the door.", VIDEO)
    assert res.intervals[0].iou(TRUE) > 0.8
    assert all(0 <= iv.start < iv.end <= VIDEO.duration for iv in res.intervals)
    scores = [iv.score for iv in res.intervals]
    assert scores == sorted(scores, reverse=True)
    assert ["core", "opening door", 1.0] in res.raw["variants"] and res.settings["combine"] == combine


def test_rewriter_is_asked_once_per_query_and_a_failure_is_a_warning(encoder):
    ok = Rewriter('{"simplified": "open door", "detailed": "a person pulls a door open with one hand"}')
    r = VariantEmbeddingReasoner(encoder=encoder, rewriter=ok)
    res = r.ground("person opens the door", VIDEO)
    r.ground("person opens the door", VIDEO)
    assert ok.calls == 1 and ["simplified", "open door", 1.0] in res.raw["variants"]
    assert res.intervals[0].iou(TRUE) > 0.8
    down = VariantEmbeddingReasoner(encoder=encoder, rewriter=Rewriter(None))
    res = down.ground("person opens the door", VIDEO)
    assert res.intervals and any("rewrite failed" in w for w in res.warnings)
    with pytest.raises(ConfigurationError, match="chat reasoner"):
        VariantEmbeddingReasoner(encoder=encoder, rewriter=get_reasoner("naive"))


class Voter(BaseReasoner):
    """Answers by the query's words: "door" -> the door span, anything else -> the sofa."""

    name = "voter"

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        span = [9.5, 17.5, 0.9] if "door" in query and "sofa" not in query else [0.0, 9.5, 0.4]
        return GroundingResult(query=query, duration=transcript.duration, intervals=[span], reasoner=self.name)


def test_voting_wrapper_returns_what_most_variants_agree_on():
    r = VariantsReasoner(Voter(), clause_weight=1.0)
    # variants: original ("...sofa...door" -> sofa), core (-> sofa), clauses "gets up from sofa" (sofa), "opens door" (door)
    res = r.ground("person gets up from the sofa and opens the door", VIDEO)
    assert res.intervals[0].as_list()[:2] == [0.0, 9.5] and res.reasoner == "variants"
    assert res.raw["chosen"][0] == "original" and sorted(res.raw["votes"]) == [1.0, 3.0]
    res = VariantsReasoner(Voter()).ground("person opens the door", VIDEO)
    assert res.intervals[0].iou(TRUE) == pytest.approx(1.0) and res.query == "person opens the door"
    with pytest.raises(ConfigurationError, match="variants:embedding only"):
        VariantsReasoner.from_spec("naive", combine="max")
    with pytest.raises(ConfigurationError, match="mean, max"):
        get_reasoner("variants:embedding", combine="median")


def test_variants_embedding_scores_the_users_rephrasings_too():
    from temporal_reasoner.query_variants import VariantEmbeddingReasoner

    r = VariantEmbeddingReasoner(encoder=object(), rephrasings={"a dog plays": ["a puppy is playing"]})
    variants, _ = r.variants("a dog plays")
    assert ("rephrasing", "a puppy is playing") in [(v.kind, v.text) for v in variants]
    assert [v.kind for v in VariantEmbeddingReasoner(encoder=object()).variants("a dog plays")[0]].count("rephrasing") == 0
