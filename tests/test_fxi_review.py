"""Defects a reviewer found in the morning's fixes (FX-I): import-captions -o FILE names the destination's video;
ask refuses a question too long for the context as ground does."""

from __future__ import annotations

import json
import re

import pytest

from _helpers_openai_server import openai_server  # noqa: F401
from frame_describer.synthetic import render_numbered_video
from pipelines.cli import main
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.qa import fit_question
from temporal_reasoner.transcript import Transcript
from vidground.errors import ConfigurationError, InputError
from vidground.types import FrameDescription


def test_import_to_a_file_names_the_destinations_video_so_replay_takes_it(tmp_path, capsys):
    """`import-captions my_captions.csv -o kitchen.jsonl` wrote video "my_captions" on every line, so
    `ground kitchen.mp4 Q --describer replay:kitchen.jsonl` was refused as captions of another video. The file
    named by -o is that video's (FX-L: only when the two ids agree; here no video is named, which a replay takes
    for any video); a folder import still names each file, and its field, by the input's id."""
    source = tmp_path / "my_captions.csv"
    source.write_text("t,text\n" + "".join(f"{t},caption {t}\n" for t in range(4)))
    kitchen = render_numbered_video(tmp_path / "kitchen.mp4", n_frames=40, fps=10)
    for name in ("kitchen.jsonl", "kitchen.descriptions.jsonl"):
        out = tmp_path / name
        assert main(["import-captions", str(source), "-o", str(out)]) == 0
        # FX-L: the two ids differ, so neither is written (the lines name no video; a replay answers any video)
        assert {json.loads(line).get("video") for line in out.read_text().splitlines()} == {None}
        capsys.readouterr()
        assert main(["ground", str(kitchen), "caption 2", "--describer", f"replay:{out}", "--json"]) == 0, \
            capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["intervals"]
    folder = tmp_path / "out"
    assert main(["import-captions", str(source), "-o", str(folder)]) == 0
    assert {json.loads(line)["video"] for line in (folder / "my_captions.jsonl").read_text().splitlines()} == \
        {"my_captions"}


LONG_QUESTION = "what is done " + "blah " * 400_000  # 2 MB: ~666,670 tokens at the estimate's 3 characters a token


def test_ask_with_a_question_too_long_for_the_context_is_an_input_error_about_the_question(openai_server, tmp_path,  # noqa: F811
                                                                                          capsys):
    """ground's query too long on its own is an InputError about the query since d536d4b; ask's question still got
    the ConfigurationError "... does not fit the model's context ... use a larger context (n_ctx or context_tokens)
    or shorter descriptions" (fit_transcript never called check_query_fits). Now the same InputError, nothing sent."""
    descriptions = tmp_path / "d.jsonl"
    descriptions.write_text("".join(json.dumps({"t": float(t), "text": f"scene {t}"}) + "\n" for t in range(12)))
    argv = ["ask", "--descriptions", str(descriptions), LONG_QUESTION, "--reasoner", "openai:m", "--base-url",
            openai_server.base_url, "--api-key", "k", "--reasoner-opt", "context_tokens=20000"]
    assert main(argv + ["--choice", "wrap it", "--choice", "unwrap it"]) == 1
    err = capsys.readouterr().err
    assert re.match(r"vidground: error: the question with its options is too long for the model's context: it takes "
                    r"about 666,\d{3} tokens \(2,000,030 characters\)", err), err  # the question, stripped, and options
    assert "shorten the question with its options (nothing was sent)" in err and "shorter descriptions" not in err
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the question is too long for the model's context" in err and "2,000,012 characters" in err, err
    assert openai_server.requests == []

    transcript = Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"scene {i}") for i in range(20)])
    reasoner = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", context_tokens=20_000)
    with pytest.raises(InputError, match="^the question is too long for the model's context"):
        reasoner.answer(LONG_QUESTION, transcript)
    assert openai_server.requests == []


def test_fit_question_is_about_the_question_only_when_it_alone_does_not_fit():
    """hf: and llamacpp: count with their tokenizer through the same fit_question: a question over the budget on its
    own is about the question, and its options are counted with it; descriptions too long for a short question are
    still the ConfigurationError about the context or the descriptions; a transcript that fits is kept as is."""
    def count(messages):  # one token a character
        return sum(len(m["content"]) for m in messages)

    transcript = Transcript.from_descriptions([FrameDescription(t=float(i), text=f"scene number {i}")
                                               for i in range(30)])
    fixed = count(__import__("temporal_reasoner.qa", fromlist=["x"]).build_qa_messages("q", transcript.model_copy(
        update={"entries": []})))
    with pytest.raises(InputError, match=r"^the question is too long .* takes about 2,00\d tokens \(2,000 characters\)"):
        fit_question("x" * 2000, transcript, None, count, fixed + 1000)
    with pytest.raises(InputError, match="^the question with its options is too long"):
        fit_question("what?", transcript, ["a" * 2000, "b"], count, fixed + 1000)
    with pytest.raises(ConfigurationError, match="shorter descriptions"):
        fit_question("what?", transcript, None, count, fixed + 20)
    assert fit_question("what?", transcript, None, count, 10**6) == (transcript, [])
    # a context too small for the fixed prompt itself is the context's fault, whatever the question: it blamed a
    # one-character query ("it takes about 1 tokens (1 characters), 114 with the fixed prompt ...; shorten the query")
    for question in ("q", "x" * 2000):
        with pytest.raises(ConfigurationError, match="larger context"):
            fit_question(question, transcript, None, count, fixed // 2)
