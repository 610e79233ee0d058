"""Stage 1: decode and sample frames, describe each with a pluggable image model."""

from __future__ import annotations

from typing import Any

from .base import PROMPT_MODES, BaseDescriber, Describer, PromptMode
from .descriptions_io import read_descriptions, write_descriptions
from vidground.errors import (
    ConfigurationError,
    IncompleteOutputError,
    InputError,
    MissingDependencyError,
    OutputValidationError,
    ProviderError,
    VideoDecodeError,
    VidgroundError,
)
from vidground.registry import Registry, split_spec
from vidground.types import Frame, FrameDescription, Usage

DEFAULT_DESCRIBER = "cv"

describers = Registry(
    "describer",
    "vidground.describers",
    {
        "cv": "frame_describer.classical:ClassicalDescriber",
        "openai": "frame_describer.openai_describer:OpenAIDescriber",
        "hf": "frame_describer.hf_describer:TransformersDescriber",
        "replay": "frame_describer.replay:ReplayDescriber",
    },
    aliases={"classical": "cv", "offline": "cv"},
)


def get_describer(spec: str | Describer | None = None, **options: Any) -> Describer:
    """Resolve a spec string (``"cv"``, ``"openai:gpt-4o-mini"``, ``"hf:PATH"``) or pass an instance through."""
    if spec is None:
        spec = DEFAULT_DESCRIBER
    if not isinstance(spec, str):
        if options:
            raise ConfigurationError("options are only accepted together with a spec string")
        return spec
    return describers.create(spec, **options)


def sample_frames(*args: Any, **kwargs: Any):
    """Lazy wrapper around :func:`frame_describer.sampling.sample_frames` (see there)."""
    from .sampling import sample_frames as _sample

    return _sample(*args, **kwargs)


__all__ = [
    "BaseDescriber", "Describer", "PromptMode", "PROMPT_MODES", "Frame", "FrameDescription", "Usage",
    "get_describer", "describers", "sample_frames", "read_descriptions", "write_descriptions",
    "Registry", "split_spec", "DEFAULT_DESCRIBER",
    "VidgroundError", "ConfigurationError", "MissingDependencyError", "InputError", "VideoDecodeError",
    "ProviderError", "OutputValidationError", "IncompleteOutputError",
]
