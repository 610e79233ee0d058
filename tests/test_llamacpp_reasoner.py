"""The llama.cpp reasoner's logic on a fake in-process ``Llama`` (the real Gemma 3 270M GGUF is
exercised in tests/integration/test_local_models.py): grammar, prompt rendering, token budget,
re-asking, chunking and model-file errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("llama_cpp")

from vidground.errors import ConfigurationError, OutputValidationError  # noqa: E402
from vidground.types import FrameDescription  # noqa: E402
from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner, grammar_schema, grammar_text, resolve_gguf  # noqa: E402
from temporal_reasoner.structured import GEMMA_TEMPLATE  # noqa: E402
from vidground.models import models_dir  # noqa: E402
from temporal_reasoner.transcript import Transcript  # noqa: E402
from vidground.types import Interval  # noqa: E402


class FakeLlama:
    """The slice of ``llama_cpp.Llama`` the reasoner uses; one "token" per character."""

    metadata: dict[str, str] = {}

    def __init__(self, replies: list[tuple[str, str]], n_ctx: int = 4096):
        self.replies = list(replies)
        self.calls: list[dict] = []
        self._n_ctx = n_ctx

    def n_ctx(self) -> int:
        return self._n_ctx

    def token_bos(self) -> int:
        return 2

    def token_eos(self) -> int:
        return 1

    def detokenize(self, tokens, special=False) -> bytes:
        return {2: b"<bos>", 1: b"<eos>"}[tokens[0]]

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(text)

    def reset(self) -> None:
        pass

    def create_completion(self, prompt, **kwargs):
        self.calls.append({"prompt": bytes(prompt).decode(), **kwargs})
        text, finish = self.replies.pop(0)
        return {"choices": [{"text": text, "finish_reason": finish}],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(text)}}


def transcript(n: int = 12) -> Transcript:
    return Transcript.from_descriptions(
        [FrameDescription(t=float(i), text=f"a person {'opens the door' if 4 <= i < 7 else 'reads'} ({i % 2})")
         for i in range(n)])


def test_grammar_is_the_answer_schema_with_tight_numbers():
    g = grammar_text(grammar_schema(2))
    assert '"\\"intervals\\""' in g and '"\\"score\\""' in g
    assert "number ::= integral-part" in g and "[eE]" not in g and '"-"' not in g
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_string(g, verbose=False)  # llama.cpp accepts it
    assert grammar_schema(2)["properties"]["intervals"]["maxItems"] == 2
    two = grammar_text(grammar_schema(2), int_digits=2)  # a video under 100 s: at most 99.999
    assert "integral-part ::= [0-9] | [1-9] ([0-9])?" in two
    LlamaGrammar.from_string(two, verbose=False)
    assert "integral-part ::= [0-9]\n" in grammar_text(grammar_schema(1), int_digits=1)


def test_answer_goes_through_grammar_and_gemma_template():
    fake = FakeLlama([('{"intervals": [{"start": 4.0, "end": 7.0, "score": 0.9}]}', "stop")])
    r = LlamaCppReasoner("gemma3-270m", llama=fake)
    res = r.ground("the person opens the door", transcript())
    assert res.intervals == [Interval(start=4.0, end=7.0, score=0.9)]
    (call,) = fake.calls
    assert call["grammar"] is r.grammar(12.0) and call["temperature"] == 0.0 and call["top_k"] == 1
    assert call["prompt"].startswith("<bos><start_of_turn>user\n") and call["prompt"].endswith("<start_of_turn>model\n")
    assert "[3.5-4.5] a person opens the door (0)" in call["prompt"]
    assert res.usage["reason"].prompt_tokens == len(call["prompt"]) and res.reasoner == "llamacpp:gemma3-270m"
    assert res.settings["chat_template"] == "gemma" and res.settings["grammar"] == "intervals-schema"


def test_out_of_range_answer_is_reasked_and_cut_answer_counted():
    fake = FakeLlama([('{"intervals": [{"start": 40, "end": 90', "length"),
                      ('{"intervals": [{"start": 40, "end": 90, "score": 1}]}', "stop"),
                      ('{"intervals": [{"start": 1, "end": 3, "score": 0.2}]}', "stop")])
    r = LlamaCppReasoner("x.gguf", llama=fake, max_attempts=3)
    res = r.ground("the person opens the door", transcript())
    assert res.intervals == [Interval(start=1, end=3, score=0.2)] and res.settings["attempts"] == 3
    assert "outside the video" in fake.calls[-1]["prompt"] and res.settings["chat_template"] == "plain"
    fake = FakeLlama([('{"intervals": [{"start": 40, "end": 90, "score": 1}]}', "stop")])
    with pytest.raises(OutputValidationError) as err:
        LlamaCppReasoner("x.gguf", llama=fake, max_attempts=1).ground("q", transcript())
    assert err.value.attempts == 1 and err.value.raw_outputs[0].startswith('{"intervals"')


def test_stored_template_is_used_and_long_transcripts_are_chunked():
    fake = FakeLlama([('{"intervals": [{"start": 1, "end": 2, "score": 0.5}]}', "stop")] * 20, n_ctx=1400)
    fake.metadata = {"tokenizer.chat_template": "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}"
                                                "{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"}
    r = LlamaCppReasoner("x.gguf", llama=fake, max_new_tokens=100)
    varied = Transcript.from_descriptions([FrameDescription(t=float(i), text=f"view {i}: shelf{i} lamp{i} cup{i}")
                                           for i in range(40)])  # nothing to merge: it must be chunked
    res = r.ground("the person opens the door", varied)
    assert r.settings()["chat_template"] == "gguf" and fake.calls[0]["prompt"].startswith("<system>")
    # every chunk asked for candidates, then one final pass over them
    assert res.settings["context"]["chunks"] + 1 == len(fake.calls) > 2
    assert res.settings["context"]["final_answered"] and res.intervals == [Interval(start=1, end=2, score=0.5)]
    assert all(len(c["prompt"]) <= 1400 - 2 * 100 - 128 for c in fake.calls)


def test_gemma_template_folds_the_system_turn_into_the_first_user_turn():
    r = LlamaCppReasoner("gemma3-270m", llama=FakeLlama([]))
    text = r.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                     {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}])
    assert text == ("<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
                    "<start_of_turn>user\nV<end_of_turn>\n<start_of_turn>model\n")
    assert "<start_of_turn>" in GEMMA_TEMPLATE


def test_model_file_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="no such file.*gemma3-270m"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigurationError, match="not a GGUF file"):
        resolve_gguf(str(bad))
    with pytest.raises(ConfigurationError, match="n_ctx"):
        LlamaCppReasoner("x.gguf", llama=FakeLlama([]), n_ctx=300)
    from temporal_reasoner import get_reasoner

    with pytest.raises(ConfigurationError, match="llamacpp:<path to .gguf>"):
        get_reasoner("llamacpp")


def test_models_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDGROUND_MODELS", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"
    monkeypatch.delenv("VIDGROUND_MODELS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models_dir() == tmp_path / "xdg" / "vidground" / "models"
    json.dumps(grammar_schema(1))  # plain JSON
