"""The answer rule on RV-I's corpus of replies written as real chat models write them (GPT-4o, Claude, Gemma,
Llama, SmolLM, DeepSeek-R1, German and Chinese ones) for ground, ask and events: each reply with the answer a user
reading it expects. At ee6fdcf (4bd1572) 55 of the 80 were answered otherwise: corrections after a fenced answer
that use none of the listed words were left out as commentary, hedges holding a listed word ("if ... actually ...
would be") replaced the answer, a summary naming the answer's parts one by one answered one part, narrowing labels
with markdown ("**Final Answer:**", "Final answer (JSON):", "Final answer -> ") were not read, a format echo in a
fence beat the answer after it, and some shapes (numbered single-interval objects, events as JSON lines, events'
"mm:ss" strings, a flat pair as the correction) were refused or cut."""

from __future__ import annotations

import json

import pytest

from temporal_reasoner.events import parse_events
from temporal_reasoner.parsing import ReplyError, parse_reply_detailed
from temporal_reasoner.qa import parse_answer


def iv(*pairs: tuple[float, float], score: float | None = None) -> str:
    return json.dumps({"intervals": [dict(start=s, end=e, **({"score": score} if score else {})) for s, e in pairs]})


A, B, AB = iv((10, 15)), iv((17, 21)), iv((10, 15), (17, 21))


def F(value: str) -> str:
    return f"```json\n{value}\n```"


CH = ["He pours water", "He drinks water", "He leaves the room"]


def qa(c: int, *pairs: tuple[float, float]) -> str:
    return json.dumps({"choice": c, "answer": CH[c], "intervals": [[s, e] for s, e in pairs]})


Q0, Q1, Q0AB = qa(0, (10, 15)), qa(1, (17, 21)), qa(0, (10, 15), (17, 21))


def ev(*items: tuple[float, float, str]) -> str:
    return json.dumps({"events": [{"start": s, "end": e, "caption": c} for s, e, c in items]})


E3 = ev((0, 5, "A man enters the kitchen"), (10, 15, "He pours water into a glass"), (17, 21, "He drinks the water"))
E4 = ev((0, 5, "A man enters the kitchen"), (10, 15, "He pours water into a glass"), (17, 21, "He drinks the water"),
        (25, 30, "He leaves the room"))
E3s = ev((0, 5, "A man enters the kitchen"), (10, 12, "He picks up the jug"), (12, 15, "He pours water into a glass"),
         (17, 21, "He drinks the water"))
T3 = [(0, 5), (10, 15), (17, 21)]
T4 = T3 + [(25, 30)]
LINES = "\n".join(json.dumps({"start": s, "end": e, "caption": c})
                  for s, e, c in [(0, 5, "A man enters"), (10, 15, "He pours water"), (17, 21, "He drinks")])
CLOCK_EVENTS = json.dumps({"events": [{"start": "0:00", "end": "0:05", "caption": "A man enters"},
                                      {"start": "0:10", "end": "0:15", "caption": "He pours water"}]})
ERROR = "a ReplyError"

# (id, task: g ground / q ask / e events, reply, what a user reading the reply expects)
CASES = [
    # ground: a correction after a fenced answer, in words the rule does not list
    ("G01 'So the answer is:'", "g", F(A) + "\n\nLooking at the transcript again, the pouring starts at 17 s, not 10 s. "
     "So the answer is:\n" + B, [(17, 21)]),
    ("G02 'revise this'", "g", F(A) + "\n\nOn reflection, I need to revise this. The transcript shows the pour from 17 "
     "to 21 s:\n\n" + B, [(17, 21)]),
    ("G03 'Oops ... Fixed:'", "g", F(A) + "\nOops, those times are off by one step. Fixed:\n" + B, [(17, 21)]),
    ("G04 'Let me fix that:'", "g", F(A) + "\nHmm, that's the kettle boiling, not the pour. Let me fix that:\n" + B,
     [(17, 21)]),
    ("G05 'Update:'", "g", F(A) + "\n\nUpdate: the pour is later in the video.\n" + B, [(17, 21)]),
    ("G06 'incorrect ... right one:'", "g", F(A) + "\nMy previous answer was incorrect. Here is the right one:\n" + B,
     [(17, 21)]),
    ("G07 'Correcting myself:'", "g", F(A) + "\nCorrecting myself: " + B, [(17, 21)]),
    ("G08 'I was wrong'", "g", F(A) + "\nI was wrong about the start time; the pour is at 17-21 s:\n" + B, [(17, 21)]),
    ("G09 German correction", "g", F(A) + "\nKorrektur: Das Eingießen beginnt erst bei 17 s. Die richtige Antwort "
     "ist:\n" + B, [(17, 21)]),
    ("G10 Chinese correction", "g", F(A) + "\n等等，我看错了。正确答案是：\n" + B, [(17, 21)]),
    ("G11 'Wait, I misread'", "g", F(A) + "\nWait, I misread the transcript. The correct answer is:\n" + B, [(17, 21)]),
    # ground: a hedge or a note after a fenced answer, holding a word that marks corrections
    ("G12 'if ... actually ... would be'", "g", F(A) + "\n\nNote: if the query actually refers to the second pour, the "
     "interval would be " + B + ".", [(10, 15)]),
    ("G13 'If I made a mistake'", "g", F(A) + "\nIf I made a mistake and the query means the refill, the other "
     "candidate is " + B + ".", [(10, 15)]),
    ("G14 'It should be noted'", "g", F(A) + "\nIt should be noted that the man also holds the jug at " + B + ", but he "
     "is not pouring there.", [(10, 15)]),
    ("G15 'seems to wait at'", "g", F(A) + "\nHe seems to wait at " + B + " before pouring again, so that segment is "
     "excluded.", [(10, 15)]),
    ("G16 'drinks instead, so {B} is excluded'", "g", F(A) + "\nHe does not pour at 17-21 s; he drinks instead, so "
     + B + " is excluded.", [(10, 15)]),
    ("G17 'the right interval would be' for another query", "g", F(A) + "\n(For the other query, \"drinks\", the right "
     "interval would be " + B + ".)", [(10, 15)]),
    ("G18 'Alternatively'", "g", F(A) + "\nAlternatively, the second pour also partially matches: " + B, [(10, 15)]),
    # ground: narrowing labels, and the answer's parts named one by one
    ("G19 '**Final Answer:**' narrows", "g", "Both pours could match: " + AB + "\n\nBut the query says \"the first "
     "time\", so only the first one counts.\n\n**Final Answer:** " + A, [(10, 15)]),
    ("G20 'The answer is:' narrows", "g", "Candidates: " + AB + ". Only the first is before he sits down. The answer "
     "is: " + A, [(10, 15)]),
    ("G21 'So my answer:' narrows", "g", "Both: " + AB + "\nThe second is him drinking, not pouring. So my answer: " + A,
     [(10, 15)]),
    ("G22 'Final answer (JSON):'", "g", "Possible: " + AB + "\nOnly the first shows pouring.\nFinal answer (JSON): " + A,
     [(10, 15)]),
    ("G23 'the correct intervals are {A} and {B}'", "g", AB + "\n\nTo summarize, the correct intervals are " + A
     + " and " + B + ".", [(10, 15), (17, 21)]),
    ("G24 'The final answer includes {A} ... and {B}'", "g", AB + "\nThe final answer includes " + A + " (first pour) "
     "and " + B + " (second pour).", [(10, 15), (17, 21)]),
    ("G25 'actually starts at'", "g", "Answer: " + AB + "\nThe first pour actually starts at " + A + " and the second "
     "at " + B + ".", [(10, 15), (17, 21)]),
    ("G26 'The first, {A}, ...'", "g", AB + "\nThe first, " + A + ", is the pour; the second, " + B + ", the refill.",
     [(10, 15), (17, 21)]),
    # ground: shapes
    ("G27 numbered single-interval objects", "g", "The man pours water twice:\n1. {\"start\": 10, \"end\": 15}\n"
     "2. {\"start\": 17, \"end\": 21}", [(10, 15), (17, 21)]),
    ("G28 fenced format echo, then the answer in prose", "g", "Sure! The output should look like this:\n```json\n"
     "{\"intervals\": [{\"start\": 0, \"end\": 5, \"score\": 0.9}]}\n```\nLooking at the transcript, the man pours "
     "water between 10 and 15 seconds, so the answer would be:\n" + iv((10, 15), score=0.8), [(10, 15)]),
    ("G29 fenced answer, then a flat pair after 'Wait'", "g", F(A) + "\nWait, the pour is later. Final: [17, 21]",
     [(17, 21)]),
    ("G30 mm:ss strings", "g", F('{"intervals": [{"start": "0:17", "end": "0:21"}]}'), [(17, 21)]),
    ("G31 '[0:17, 0:21]' after the fence", "g", F(B) + "\nIn mm:ss that is [0:17, 0:21].", [(17, 21)]),
    ("G32 prose '0:17-0:21' only", "g", "The man pours water from 0:17-0:21.", ERROR),
    ("G33 bold headers and bullets", "g", "**Answer:**\n\n" + F(B) + "\n\n**Explanation:**\n\n* The man pours water at "
     "**17-21 s** ([17, 21]).", [(17, 21)]),
    ("G34 'in JSON format' and a pair in prose", "g", "Here is the answer in JSON format:\n\n" + B + "\n\nExplanation: "
     "the frames at 17.0 and 21.0 seconds show it, so the interval is [17, 21].", [(17, 21)]),
    ("G35 think block, then fenced", "g", "<think>\nThe pour could be " + B + "... no, at 10 s the man lifts the jug.\n"
     "</think>\n\n" + F(A), [(10, 15)]),
    ("G36 template-opened think", "g", "Okay, the user wants the pour. Maybe " + B + "? No.\n</think>\n\n" + F(A)
     + "\n\nThe pour is at 10-15 s.", [(10, 15)]),
    ("G37 summary line repeating the fenced answer", "g", F(AB) + "\n\n**Final answer:** " + AB, [(10, 15), (17, 21)]),
    ("G38 'Actually, I'm less sure about ({B})'", "g", F(AB) + "\nActually, I'm less sure about the second one (" + B
     + "); it might be the same pour seen again.", [(10, 15), (17, 21)]),
    ("G39 'Revised:'", "g", F(A) + "\n\nRevised:\n" + B, [(17, 21)]),
    ("G40 'Let me reconsider ... Better:'", "g", F(A) + "\nLet me reconsider. Frame 17 shows the jug tilted. Better:\n"
     + B, [(17, 21)]),
    # ask
    ("Q01 fenced, then prose", "q", F(Q0) + "\nThe man clearly pours water in this segment.", (0, [(10, 15)])),
    ("Q02 'rereading ... So:'", "q", F(Q0) + "\nHmm, rereading the question, it asks what he does after sitting down, "
     "which is drinking. So:\n" + Q1, (1, [(17, 21)])),
    ("Q03 'could actually also fit'", "q", F(Q0) + "\nOption 2 (drinking) could actually also fit if the question means "
     "the second half: " + Q1, (0, [(10, 15)])),
    ("Q04 German 'Moment, ich habe mich geirrt'", "q", F(Q0) + "\nMoment, ich habe mich geirrt. Die richtige Antwort "
     "ist:\n" + Q1, (1, [(17, 21)])),
    ("Q05 '**Final Answer:**' narrows the intervals", "q", Q0AB + "\n\nOnly the first interval shows pouring.\n\n"
     "**Final Answer:** " + Q0, (0, [(10, 15)])),
    ("Q06 think block", "q", "<think>\nMaybe " + Q1 + "? No, he pours first.\n</think>\n" + Q0, (0, [(10, 15)])),
    ("Q07 'If I made a mistake'", "q", F(Q0) + "\nIf I made a mistake about the order, the answer would be " + Q1 + ".",
     (0, [(10, 15)])),
    ("Q08 'I changed my mind:'", "q", F(Q0) + "\nI changed my mind after checking frame 17:\n" + Q1, (1, [(17, 21)])),
    ("Q09 Chinese correction", "q", F(Q0) + "\n不对，应该选第二个选项：\n" + Q1, (1, [(17, 21)])),
    ("Q10 summary repeating the answer", "q", F(Q0) + "\n\n**Final answer:** " + Q0, (0, [(10, 15)])),
    # events
    ("E01 fenced, then a summary in prose", "e", F(E3) + "\n\nIn summary, the man enters, pours water and drinks it.",
     T3),
    ("E02 'I missed one event; the full list is:'", "e", F(E3) + "\nI missed one event at the end; the full list is:\n"
     + E4, T4),
    ("E03 'Wait, I missed one event'", "e", F(E3) + "\nWait, I missed one event. Here is the complete list:\n" + E4, T4),
    ("E04 'might actually be two events'", "e", F(E3) + "\nNote: the pour might actually be two events (picking up the "
     "jug, then pouring): " + E3s, T3),
    ("E05 JSON lines, one event each", "e", LINES, T3),
    ("E06 mm:ss strings", "e", CLOCK_EVENTS, [(0, 5), (10, 15)]),
    ("E07 Chinese correction with the full list", "e", F(E3) + "\n更正：还有一个事件。\n" + E4, T4),
    ("E08 'The key event:' quote", "e", F(E3) + "\nThe key event: " + ev((10, 15, "pouring")), T3),
    ("E09 'Here's the updated list'", "e", F(E3) + "\nOops, I forgot the man leaving. Here's the updated list:\n" + E4,
     T4),
    ("E10 '**Final answer:**' repeating the events", "e", E3 + "\n\n**Final answer:** " + E3, T3),
    # more formatting of labels and echoes
    ("H01 fenced 'Format:' echo, the answer in prose", "g", "Format:\n```json\n{\"intervals\": [{\"start\": 0, \"end\": "
     "5, \"score\": 0.9}]}\n```\nThe man pours water at 10-15 s:\n" + iv((10, 15), score=0.8), [(10, 15)]),
    ("H02 fenced AB, then '**Final answer:** {A}'", "g", F(AB) + "\nOnly the first is pouring; the second is drinking.\n"
     "**Final answer:** " + A, [(10, 15)]),
    ("H03 'Final answer: `{A}`'", "g", "Both: " + AB + "\nOnly the first is pouring.\nFinal answer: `" + A + "`",
     [(10, 15)]),
    ("H04 'Final answer: **{A}**'", "g", "Both: " + AB + "\nOnly the first is pouring.\nFinal answer: **" + A + "**",
     [(10, 15)]),
    ("H05 German 'Endgültige Antwort:'", "g", "Beide: " + AB + "\nNur das erste zeigt das Eingießen.\nEndgültige "
     "Antwort: " + A, [(10, 15)]),
    ("H06 Chinese '最终答案：'", "g", "两个候选：" + AB + "\n只有第一个是倒水。\n最终答案：" + A, [(10, 15)]),
    ("H07 '### Final Answer' header", "g", "Both: " + AB + "\nOnly the first is pouring.\n### Final Answer\n" + A,
     [(10, 15)]),
    ("H08 a long correction sentence, then 'The answer is:'", "g", F(A) + "\nWait, I misread the transcript: the man "
     "only picks up the jug at 10 s and the actual pouring happens a few seconds later, once the glass is on the "
     "table. The answer is:\n" + B, [(17, 21)]),
    ("H09 '- **Answer:** {A}'", "g", "Both: " + AB + "\nOnly the first is pouring.\n- **Answer:** " + A, [(10, 15)]),
    ("H10 'Therefore, the final answer is:'", "g", "Both: " + AB + "\nOnly the first is pouring. Therefore, the final "
     "answer is: " + A, [(10, 15)]),
    ("H11 'Final answer -> {A}'", "g", "Both: " + AB + "\nOnly the first is pouring.\nFinal answer -> " + A, [(10, 15)]),
    ("H12 '**Note:** ... is actually a different action'", "g", F(A) + "\n\n**Note:** the refill at " + B + " is "
     "actually a different action.", [(10, 15)]),
    ("H13 events: 'Actually, ... Final events:' with the full list", "e", F(E3s) + "\nActually, the jug pickup and the "
     "pour are one event. Final events:\n" + E3, T3),
    ("H14 '**Answer:** Option 1', then fenced", "q", "**Answer:** Option 1 (He drinks water)\n\n" + F(Q1),
     (1, [(17, 21)])),
    ("H15 the answer inside a sentence", "q", "Based on the transcript, my answer is " + Q1 + " because he drinks after "
     "sitting down.", (1, [(17, 21)])),
    # the fenced answer's parts named one by one after it
    ("K01 'the correct intervals are {A} and {B}'", "g", F(AB) + "\nTo summarize, the correct intervals are " + A
     + " and " + B + ".", [(10, 15), (17, 21)]),
    ("K02 'Final answer: {A} and {B}'", "g", F(AB) + "\nFinal answer: " + A + " and " + B, [(10, 15), (17, 21)]),
    ("K03 'Actually, both count: {A} and {B}'", "g", F(AB) + "\nActually, both count: " + A + " and " + B,
     [(10, 15), (17, 21)]),
    ("K04 bullets '- Correct: {A}'", "g", F(AB) + "\n- Correct: " + A + " (pour)\n- Correct: " + B + " (refill)",
     [(10, 15), (17, 21)]),
    ("K05 'Final answer: {choice 0, A} and {choice 0, B}'", "q", F(Q0AB) + "\nFinal answer: " + qa(0, (10, 15))
     + " and " + qa(0, (17, 21)), (0, [(10, 15), (17, 21)])),
]


def answer(task: str, reply: str, *, duration: float = 36.0, choices: list[str] = CH) -> tuple[object, list[str]]:
    """What a task answers for ``reply`` (g: ground's intervals, q: ask's choice and intervals, e: events' times), and
    its warnings; test_fxn2_answer_corpus.py reads RV-J's corpus with it."""
    if task == "g":
        parsed = parse_reply_detailed(reply, duration=duration, step=1.0)
        return [(i.start, i.end) for i in parsed.intervals], parsed.warnings
    if task == "q":
        got = parse_answer(reply, choices=choices, duration=duration, step=1.0)
        return (got.choice, [(i.start, i.end) for i in got.intervals]), got.warnings
    events, warnings = parse_events(reply, lo=0.0, hi=duration, step=1.0)
    return [(e.start, e.end) for e in events], warnings


def expect(task: str, reply: str, expected: object, **task_args: object) -> None:
    """That ``reply`` answers ``expected`` (:func:`answer`), or raises a ReplyError when ``expected`` is ERROR."""
    if expected == ERROR:
        with pytest.raises(ReplyError):
            answer(task, reply, **task_args)
    else:
        assert answer(task, reply, **task_args)[0] == expected


@pytest.mark.parametrize("task, reply, expected", [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_a_reply_gives_the_answer_a_user_reading_it_expects(task, reply, expected):
    expect(task, reply, expected)


# --- what the corpus's answers rest on, each shown on its own ---------------------------------------------------------

@pytest.mark.parametrize("reply", [
    F(A) + "\n\nNote: if the query actually refers to the second pour, the interval would be " + B + ".",
    F(A) + "\nIf I made a mistake and the query means the refill, the other candidate is " + B + ".",
    F(A) + "\nHe does not pour at 17-21 s; he drinks instead, so " + B + " is excluded.",
], ids=["if-actually-would", "if-mistake", "instead-excluded"])
def test_a_hedge_after_the_fenced_answer_is_left_out_with_a_warning_naming_it(reply):
    """The conservative reading (the fenced answer) is kept, and the warning names what it left out, as the reading
    may be wrong. At 4bd1572 all three answered 17-21 ("actually", "mistake", "instead" marked corrections)."""
    got, warnings = answer("g", reply)
    assert got == [(10, 15)]
    assert len(warnings) == 1 and "left out 1 value(s)" in warnings[0] and warnings[0].endswith("[17-21]")


def test_a_correction_word_opening_the_sentence_or_in_a_short_one_corrects_and_elsewhere_does_not():
    """The structure around a correction word decides, not the word alone: opening the sentence before the value or
    in a sentence of at most four words it corrects; inside a longer remark ("It should be noted ...", "He seems to
    wait at ...") it does not (4bd1572: 17-21 for both of those)."""
    assert answer("g", F(A) + "\nActually, I think the pour is at " + B)[0] == [(17, 21)]
    assert answer("g", F(A) + "\nOh wait, it is " + B)[0] == [(17, 21)]
    assert answer("g", F(A) + "\nIt should be noted that he holds the jug at " + B)[0] == [(10, 15)]
    assert answer("g", F(A) + "\nHe seems to wait at " + B + " before pouring again.")[0] == [(10, 15)]


def test_a_format_echo_in_a_fence_does_not_beat_the_answer_after_it():
    """The fence holds the format's echo ("should look like this:") and the prose after it the answer, hedged or
    not: at 4bd1572 the echo was taken for a valid fenced answer and the answer after it left out as commentary."""
    reply = ("The output should look like this:\n```json\n" + iv((0, 5), score=0.9) + "\n```\nThe man pours at "
             "10-15 s, so the answer would be:\n" + iv((10, 15), score=0.8))
    got, warnings = answer("g", reply)
    assert got == [(10, 15)]
    assert len(warnings) == 1 and "format echoes" in warnings[0] and "[0-5]" in warnings[0]


def test_single_objects_are_one_answer_only_when_written_as_a_list():
    """One per line with list markers or none: one answer (4bd1572 kept the last object). With words between them
    ("Candidate 2:") or each in its own fenced block they stay drafts, the last one counting, with a warning."""
    one, two = '{"start": 10, "end": 15}', '{"start": 17, "end": 21}'
    assert answer("g", f"Both pours:\n- {one}\n- {two}")[0] == [(10, 15), (17, 21)]
    assert answer("g", f"{one},\n{two}")[0] == [(10, 15), (17, 21)]
    for reply in (f"Candidate 1: {one}\nCandidate 2: {two}", f"{F(one)}\n{F(two)}", f"First guess: {one} then {two}"):
        got, warnings = answer("g", reply)
        assert got == [(17, 21)] and len(warnings) == 1 and "(others: [10-15])" in warnings[0]


def test_events_as_json_lines_are_one_answer_unless_more_lines_than_a_reply_is_read_for():
    """15 events one per line are the 15 events; 20 are past the values read from one reply (MAX_ANSWERS, 16): re-asked
    as before (no "events"), never cut to the first 16 silently."""
    lines = [json.dumps({"start": t, "end": t + 0.5, "caption": f"step {t}"}) for t in range(20)]
    assert answer("e", "\n".join(lines[:15]))[0] == [(t, t + 0.5) for t in range(15)]
    with pytest.raises(ReplyError, match='no "events"'):
        answer("e", "\n".join(lines))


def test_json_lines_of_qa_objects_are_not_merged_into_a_list_qa_refuses():
    """A QA answer is one object: two on their own lines are a draft and its correction, as before."""
    got, _ = answer("q", Q0 + "\n" + Q1)
    assert got == (1, [(17, 21)])


def test_a_flat_pair_after_the_fence_corrects_only_when_introduced_as_a_correction():
    """"Wait, ... Final: [17, 21]" is the model's later word (4bd1572: 10-15, a fragment never beating the fenced
    answer); a pair in a labelled remark ("The video spans: [0, 36]") still does not replace the answer."""
    assert answer("g", F(A) + "\nWait, the pour is later. Final: [17, 21]")[0] == [(17, 21)]
    assert answer("g", F(A) + "\nThe video spans: [0, 36]")[0] == [(10, 15)]
    assert answer("g", F(A) + "\nFor example: [17, 21]")[0] == [(10, 15)]


def test_parts_that_do_not_name_all_of_the_answer_still_narrow_it():
    """The summary rule needs every part of the answer named: one labelled part alone narrows it."""
    assert answer("g", F(AB) + "\nOnly the first is pouring.\nFinal answer: " + A)[0] == [(10, 15)]
    assert answer("g", "Both: " + AB + "\nNur das erste.\nEndgültige Antwort: " + A)[0] == [(10, 15)]


def test_an_events_clock_time_is_converted_with_a_warning_and_other_text_is_refused():
    got, warnings = answer("e", CLOCK_EVENTS)
    assert got == [(0, 5), (10, 15)]
    assert "events[1].start: read the clock time '0:10' as 10 seconds" in warnings
    with pytest.raises(ReplyError, match=r"events\[0\]\.start must be a number of seconds, got 'soon'"):
        answer("e", json.dumps({"events": [{"start": "soon", "end": 5, "caption": "A man enters"}]}))
