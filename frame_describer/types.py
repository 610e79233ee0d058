"""Stage-1 data model: frames, their descriptions, and usage accounting."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator


class Usage(BaseModel):
    """Tokens and requests spent; add two with ``+``."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    cached: int = 0  # items answered from a cache, not a model
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            cached=self.cached + other.cached,
            cost_usd=cost,
        )

    def is_empty(self) -> bool:
        return self == Usage()


class Frame(BaseModel):
    """One decoded frame.

    ``t`` is the frame's real presentation time in seconds (not ``index / fps``);
    ``index`` is its position among the *sampled* frames; ``source_index`` its position
    in the decoded stream. ``image`` is an RGB ``uint8`` array of shape (H, W, 3), already
    rotated upright and resized to the sampler's bound.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    t: float = Field(ge=0)
    index: int = Field(ge=0)
    image: np.ndarray = Field(repr=False, exclude=True)
    source_index: int | None = None

    @field_validator("image")
    @classmethod
    def _check_image(cls, v: np.ndarray) -> np.ndarray:
        if not isinstance(v, np.ndarray) or v.ndim != 3 or v.shape[2] != 3 or v.dtype != np.uint8:
            raise ValueError("image must be an RGB uint8 array of shape (H, W, 3)")
        return v

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


class FrameDescription(BaseModel):
    """What a describer wrote about the frame at time ``t`` (seconds).

    Extra keys (a describer's metadata, a user's own fields) are allowed and kept, so a
    descriptions file round-trips unchanged.
    """

    model_config = ConfigDict(extra="allow")

    t: float = Field(ge=0, allow_inf_nan=False)
    text: str
    usage: Usage | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("text")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays into plain JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
