"""Stage 2: build a timestamped transcript and ground a query in it."""

from __future__ import annotations

from typing import Any

from vidground.errors import ConfigurationError
from vidground.registry import Registry

from .base import BaseReasoner, Reasoner, check_query
from .timestyles import TimeFormat
from .transcript import Transcript, infer_step
from vidground.types import GroundingResult, Interval, TimeStyle, TranscriptEntry, format_time, result_json_schema

DEFAULT_REASONER = "embedding"

reasoners = Registry(
    "reasoner",
    "vidground.reasoners",
    {
        "embedding": "temporal_reasoner.embedding:EmbeddingReasoner",
        "openai": "temporal_reasoner.openai_reasoner:OpenAIReasoner",
        "hf": "temporal_reasoner.hf_reasoner:TransformersReasoner",
        "llamacpp": "temporal_reasoner.llamacpp_reasoner:LlamaCppReasoner",
        "naive": "temporal_reasoner.embedding:NaiveSimilarityReasoner",
        "vtggpt": "temporal_reasoner.vtggpt:VTGGPTReasoner",
    },
    aliases={"offline": "embedding", "similarity": "embedding"},
)


def get_reasoner(spec: str | Reasoner | None = None, **options: Any) -> Reasoner:
    """Resolve a spec string (``"embedding"``, ``"openai:gpt-4o"``, ``"llamacpp:PATH"``) or pass an instance through."""
    if spec is None:
        spec = DEFAULT_REASONER
    if not isinstance(spec, str):
        if options:
            raise ConfigurationError("options are only accepted together with a spec string")
        return spec
    return reasoners.create(spec, **options)


__all__ = [
    "BaseReasoner", "Reasoner", "check_query", "Transcript", "TranscriptEntry", "infer_step",
    "GroundingResult", "Interval", "TimeFormat", "TimeStyle", "format_time", "result_json_schema",
    "get_reasoner", "reasoners", "DEFAULT_REASONER",
]
