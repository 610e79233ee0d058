"""The transformers describer on tiny randomly initialised LLaVA and Qwen2-VL models (built in
tests/_helpers_tiny_models.py, loaded by path through ``hf:``). The generated text is random:
the tests check timestamps, batching, token accounting, caching and errors, never the words."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("PIL")

from _helpers_tiny_models import build_tiny_causal_lm, build_tiny_llava, build_tiny_qwen2_vl  # noqa: E402

from frame_describer import get_describer  # noqa: E402
from vidground.errors import ConfigurationError, InputError, MissingDependencyError  # noqa: E402
from frame_describer.hf_describer import TransformersDescriber  # noqa: E402
from vidground.models import require_transformers  # noqa: E402
from vidground.types import Frame  # noqa: E402


@pytest.fixture(scope="module")
def llava_path(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "llava")


@pytest.fixture(scope="module")
def qwen_path(tmp_path_factory):
    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny") / "qwen2vl")


def frames(n: int, *, sizes: list[tuple[int, int]] | None = None, step: float = 0.5) -> list[Frame]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)] if sizes else (48, 64)
        out.append(Frame(t=round(i * step, 3), index=i, image=rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    return out


def spy_generate(describer: TransformersDescriber) -> list[dict]:
    """Record every generate() call's inputs (the real generate still runs)."""
    calls: list[dict] = []
    real = describer.model.generate

    def generate(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    describer.model.generate = generate
    return calls


@pytest.mark.slow
def test_llava_describes_every_frame_in_order_with_usage(llava_path):
    d = get_describer(f"hf:{llava_path}", batch_size=2, max_new_tokens=5)
    fs = frames(5)
    out = list(d.describe(fs))
    assert [o.t for o in out] == [f.t for f in fs]
    for o in out:
        assert isinstance(o.text, str)
        assert o.usage.requests == 1
        assert o.usage.image_tokens == 16  # (32 px / 8 px patches)^2 for the tiny CLIP tower
        assert o.usage.prompt_tokens > o.usage.image_tokens
        assert 1 <= o.usage.completion_tokens <= 5
    assert d.device == "cpu" and d.dtype == "float32"  # the CPU defaults


@pytest.mark.slow
def test_batches_have_the_configured_size_and_match_unbatched_output(llava_path):
    batched = TransformersDescriber(str(llava_path), batch_size=4, max_new_tokens=4)
    calls = spy_generate(batched)
    fs = frames(6)
    many = list(batched.describe(fs))
    assert [c["input_ids"].shape[0] for c in calls] == [4, 2]
    assert all(c["max_new_tokens"] == 4 and c["do_sample"] is False for c in calls)
    single = TransformersDescriber(str(llava_path), batch_size=1, max_new_tokens=4)
    one = list(single.describe(fs))
    assert [d.text for d in many] == [d.text for d in one]  # greedy and left-padded: batching changes nothing


def test_qwen2_vl_mixed_sizes_left_padding_and_mm_token_types(qwen_path):
    d = get_describer(f"hf:{qwen_path}", batch_size=3, max_new_tokens=4)
    calls = spy_generate(d)
    fs = frames(3, sizes=[(56, 112), (56, 56), (56, 112)])
    out = list(d.describe(fs))
    (call,) = calls
    assert "image_grid_thw" in call and "mm_token_type_ids" in call
    assert call["mm_token_type_ids"].shape == call["input_ids"].shape
    mask = call["attention_mask"]
    assert mask[:, -1].all(), "rows must end with real tokens (left padding)"
    assert (mask[1] == 0).any() and not (mask[0] == 0).any()  # the frame with fewer image tokens is padded
    assert [o.usage.image_tokens for o in out] == [8, 4, 8]
    assert all(o.usage.cost_usd == 0.0 for o in out)  # run here: nothing paid, not an unknown price
    assert [o.t for o in out] == [0.0, 0.5, 1.0]


@pytest.mark.slow
def test_model_is_loaded_once_per_process(llava_path):
    a = get_describer(f"hf:{llava_path}")
    b = get_describer(f"hf:{llava_path}", mode="aware", batch_size=8)
    assert a.model is b.model and a.processor is b.processor
    c = get_describer(f"hf:{llava_path}", dtype="bfloat16")
    assert c.model is not a.model and c.dtype == "bfloat16"
    assert len(list(c.describe(frames(2)))) == 2


def test_aware_mode_needs_and_uses_the_query(llava_path):
    d = get_describer(f"hf:{llava_path}", mode="aware", max_new_tokens=2)
    with pytest.raises(InputError, match="query"):
        list(d.describe(frames(1)))
    assert "person opens the door" in d._prompt_text("person  opens the door")
    assert len(list(d.describe(frames(2), query="person opens the door"))) == 2
    agnostic = get_describer(f"hf:{llava_path}")
    assert d.settings()["prompt_hash"] != agnostic.settings()["prompt_hash"]
    assert agnostic.settings()["model"] == str(llava_path)


def test_missing_models_fail_fast_with_guidance(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match="no such file or folder"):
        get_describer(f"hf:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="no config.json"):
        get_describer(f"hf:{tmp_path / 'empty'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigurationError) as err:
        get_describer("hf:some-org/not-downloaded-vlm", cache_dir=str(tmp_path / "hub"))
    msg = str(err.value)
    assert "some-org/not-downloaded-vlm" in msg and str(tmp_path / "hub") in msg and "hf download" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigurationError, match="hf:<hub id or local path>"):
        get_describer("hf")


@pytest.mark.slow
def test_a_text_only_model_is_refused(tmp_path):
    path = build_tiny_causal_lm(tmp_path / "lm")
    with pytest.raises(ConfigurationError, match="image-text-to-text"):
        get_describer(f"hf:{path}")


@pytest.mark.parametrize("option, value, match", [
    ("dtype", "float8", "choose one of"), ("device", "tpu", "unknown device"),
    ("batch_size", 0, "batch_size"), ("max_new_tokens", 0, "max_new_tokens"), ("mode", "smart", "agnostic, aware"),
])
def test_bad_options_are_configuration_errors(llava_path, option, value, match):
    with pytest.raises(ConfigurationError, match=match):
        get_describer(f"hf:{llava_path}", **{option: value})


def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"vidground\[hf\]"):
        require_transformers("the hf describer")


@pytest.mark.slow
def test_backends_import_nothing_heavy_until_used():
    code = ("import sys, frame_describer.hf_describer, temporal_reasoner.hf_reasoner, "
            "temporal_reasoner.llamacpp_reasoner, temporal_reasoner.context; "
            "print([m for m in ('torch', 'transformers', 'llama_cpp') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.gpu
def test_gpu_throughput_and_memory(llava_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import time

    d = TransformersDescriber(str(llava_path), device="cuda", batch_size=8, max_new_tokens=16)
    assert d.dtype in ("bfloat16", "float16")
    list(d.describe(frames(8)))  # warm-up
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = list(d.describe(frames(64)))
    elapsed = time.perf_counter() - start
    assert len(out) == 64
    print(f"\nhf describer on {torch.cuda.get_device_name()}: {64 / elapsed:.1f} frames/s, "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


def test_the_stream_body_is_annotated_with_what_it_is_given():
    """``describe`` hands ``_stream`` the stream's :class:`StreamState` (it was annotated as the stream itself, whose
    ``handed`` is a read-only property: mypy flagged the writes to it)."""
    import typing

    from frame_describer.base import DescriptionStream, StreamState

    assert typing.get_type_hints(TransformersDescriber._stream)["out"] is StreamState
    seen = []
    stream = DescriptionStream(lambda out: seen.append(out) or iter(()))
    assert seen == [stream._state] and isinstance(seen[0], StreamState)
