"""What a query computes once per transcript (``Transcript.derived``: the entries' texts, the sample times)
belongs to that very transcript: a copy, a transcript that lands at a freed one's address, or an edited one
never reads another's values (temporal_reasoner.transcript)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from pydantic import ValidationError

from temporal_reasoner import Transcript, TranscriptEntry
from temporal_reasoner.spans import sample_times
from vidground.types import FrameDescription


def make(*texts: str) -> Transcript:
    return Transcript(duration=float(len(texts)), step=1.0, entries=[
        TranscriptEntry(start=i, end=i + 1, text=t, times=[i + 0.5]) for i, t in enumerate(texts)])


def texts(t: Transcript) -> tuple[str, ...]:
    return t.derived("texts", lambda: tuple(e.text for e in t.entries))  # what the embedding reasoner keeps


def test_a_transcript_at_a_freed_ones_address_computes_its_own_values():
    """A queried transcript, a copy of it, the original freed, a copy of the copy with other entries: the
    allocator hands the last one the freed original's address in nearly every trial (199 of 200 when this
    was found), and keyed by ``id`` alone it read the original's texts and sample times."""
    for _ in range(200):
        orig = make("a dog runs", "a cat sleeps")
        texts(orig)
        sample_times(orig)
        chunk = orig.model_copy()  # made while the original lives
        entries = [TranscriptEntry(start=0, end=5, text="a blue boat", times=[0.5, 1.5, 2.5])]
        del orig  # freed here, by its count (entries made after this would take the freed address themselves)
        again = chunk.model_copy(update={"entries": entries, "duration": 5.0})
        assert texts(again) == ("a blue boat",)
        times, owner = sample_times(again)
        assert times.tolist() == [0.5, 1.5, 2.5] and owner.tolist() == [0, 0, 0]


def test_a_copy_with_other_entries_reads_its_own_texts():
    orig = make("a dog runs", "a cat sleeps")
    assert texts(orig) == ("a dog runs", "a cat sleeps")
    for other in (orig.model_copy(update={"entries": [TranscriptEntry(start=0, end=1, text="a red car")]}),
                  orig.model_copy(deep=True, update={"entries": [TranscriptEntry(start=0, end=1, text="a red car")]}),
                  copy.copy(orig).model_copy(update={"entries": [TranscriptEntry(start=0, end=1, text="a red car")]})):
        assert texts(other) == ("a red car",)
    assert texts(orig) == ("a dog runs", "a cat sleeps")  # and the original keeps its own


def test_a_repeat_call_reuses_the_value_and_copies_compute_their_own():
    t = make("a dog runs")
    calls = []
    assert t.derived("k", lambda: calls.append(1) or "v") == "v"
    assert t.derived("k", lambda: calls.append(1) or "w") == "v" and len(calls) == 1
    for other in (t.model_copy(), copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert other.derived("k", lambda: calls.append(1) or "w") == "w"
    assert len(calls) == 4


def test_a_queried_transcript_still_equals_an_identical_one_and_pickles():
    """The kept values are not part of the model: they used to sit in a private attribute, which pydantic
    compares, so a queried transcript was unequal to the same one unqueried."""
    a, b = make("a dog runs", "a cat sleeps"), make("a dog runs", "a cat sleeps")
    texts(a)
    sample_times(a)  # numpy arrays, which cannot be compared as a dict's values either
    assert a == b and a.model_dump() == b.model_dump()
    again = pickle.loads(pickle.dumps(a))
    assert again == b and texts(again) == texts(a)


def test_a_transcript_cannot_be_edited_in_place():
    """Editing after a query returned the texts from before the edit; now an edit is refused and a changed
    transcript is a new object (``model_copy(update=...)``), which computes its own values."""
    t = make("a dog runs", "a cat sleeps")
    assert texts(t) == ("a dog runs", "a cat sleeps")
    new = TranscriptEntry(start=0, end=1, text="a person cooks", times=[0.5])
    with pytest.raises(TypeError):
        t.entries[0] = new  # type: ignore[index]
    with pytest.raises(AttributeError):
        t.entries.append(new)  # type: ignore[attr-defined]
    for field, value in (("entries", [new]), ("duration", 5.0), ("step", 0.5)):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(t, field, value)
    assert texts(t) == ("a dog runs", "a cat sleeps") and [e.text for e in t.entries] == list(texts(t))
    edited = t.model_copy(update={"entries": [new, *t.entries[1:]]})
    assert isinstance(edited.entries, tuple)  # a copy's replacement list is taken as a tuple too
    assert texts(edited) == ("a person cooks", "a cat sleeps")


def test_entries_given_as_a_list_still_build_and_dump():
    t = Transcript(duration=2.0, step=1.0, entries=[TranscriptEntry(start=0, end=2, text="a")])
    assert isinstance(t.entries, tuple) and len(t) == 1
    assert Transcript.model_validate_json(t.model_dump_json()) == t
    assert t.model_dump(mode="json")["entries"] == [{"start": 0.0, "end": 2.0, "text": "a"}]


def test_an_entry_cannot_be_edited_in_place():
    """An entry's fields were assignable and its ``times`` a list, so ``t.entries[0].text = ...`` or
    ``t.entries[0].times.append(...)`` after a query left the texts and sample times the query kept stale,
    with no error. Now each edit is refused (pydantic's ValidationError, a ValueError, says "frozen")."""
    t = make("a dog runs", "a cat sleeps")
    assert texts(t) == ("a dog runs", "a cat sleeps")
    before = sample_times(t)[0].tolist()
    entry = t.entries[0]
    for field, value in (("text", "a person cooks"), ("start", 0.25), ("end", 0.75), ("times", [0.1, 0.2])):
        with pytest.raises(ValidationError, match="Instance is frozen") as info:
            setattr(entry, field, value)
        assert isinstance(info.value, ValueError)
    with pytest.raises(AttributeError):
        entry.times.append(0.9)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        entry.times[0] = 0.9  # type: ignore[index]
    assert entry == TranscriptEntry(start=0, end=1, text="a dog runs", times=[0.5])
    assert texts(t) == tuple(e.text for e in t.entries) == ("a dog runs", "a cat sleeps")
    assert sample_times(t)[0].tolist() == before == [x for e in t.entries for x in e.times]


def test_an_edited_entry_is_a_new_one_and_its_transcript_computes_its_own_values():
    """The stale-cache case done the way that is left: a copy of the entry, in a copy of the transcript."""
    t = make("a dog runs", "a cat sleeps")
    assert texts(t) == ("a dog runs", "a cat sleeps") and sample_times(t)[0].tolist() == [0.5, 1.5]
    edited = t.entries[0].model_copy(update={"text": "a person cooks", "times": [0.25, 0.75]})
    assert isinstance(edited.times, tuple) and edited.times == (0.25, 0.75)  # a list given is a tuple here too
    assert t.entries[0].text == "a dog runs" and t.entries[0].times == (0.5,)  # the original is untouched
    again = t.model_copy(update={"entries": [edited, *t.entries[1:]]})
    assert texts(again) == ("a person cooks", "a cat sleeps")
    times, owner = sample_times(again)
    assert times.tolist() == [0.25, 0.75, 1.5] and owner.tolist() == [0, 0, 1]
    assert texts(t) == ("a dog runs", "a cat sleeps") and sample_times(t)[0].tolist() == [0.5, 1.5]


def test_times_are_a_tuple_in_python_and_a_list_in_json_as_before():
    """A list is still accepted; JSON is byte for byte what the list field wrote (``times`` left out when
    empty), and such JSON still loads."""
    e = TranscriptEntry(start=0, end=2, text="a dog runs", times=[0.5, 1.5])
    assert e.times == (0.5, 1.5) and TranscriptEntry(start=0, end=1, text="a").times == ()
    assert e.model_dump_json() == '{"start":0.0,"end":2.0,"text":"a dog runs","times":[0.5,1.5]}'
    assert e.model_dump(mode="json") == {"start": 0.0, "end": 2.0, "text": "a dog runs", "times": [0.5, 1.5]}
    t = Transcript.from_descriptions([FrameDescription(t=0, text="a"), FrameDescription(t=1, text="a"),
                                      FrameDescription(t=2.5, text="b")], duration=4)
    written = ('{"duration":4.0,"step":1.25,"duration_inferred":false,"entries":[{"start":0.0,"end":1.75,"text":"a",'
               '"times":[0.0,1.0]},{"start":1.75,"end":4.0,"text":"b","times":[2.5]}]}')  # by the list field
    assert t.model_dump_json() == written
    loaded = Transcript.model_validate_json(written)
    assert loaded == t and loaded.model_dump_json() == written and isinstance(loaded.entries[0].times, tuple)
    assert Transcript.model_validate(json.loads(t.model_dump_json(indent=2))) == t
    with pytest.raises(ValidationError, match="times"):
        TranscriptEntry(start=0, end=1, text="a", times=["soon"])


def test_merging_similar_spans_keeps_every_frame_instant():
    from temporal_reasoner.context import merge_similar

    t = Transcript.from_descriptions([FrameDescription(t=x, text=s) for x, s in
                                      ((1.0, "a man opens the door"), (3.0, "the man opens a door"),
                                       (5.0, "a red car"), (9.0, "a blue car"))], duration=10.0)
    merged = merge_similar(t, 0.9)
    assert [(e.start, e.end, e.times) for e in merged.entries] == [
        (0.0, 4.0, (1.0, 3.0)), (4.0, 7.0, (5.0,)), (7.0, 10.0, (9.0,))]
    assert merged.entries[0].text == "a man opens the door"
    bare = t.model_copy(update={"entries": [e.model_copy(update={"times": ()}) for e in t.entries]})
    assert [e.times for e in merge_similar(bare, 0.9).entries] == [(), (), ()]  # none known: none made up
