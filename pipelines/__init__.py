"""vidground's public entry points.

    from pipelines import ground
    result = ground("kitchen.mp4", "the person opens the refrigerator")

Importing this package is light: no torch, SDK or video library is imported until a backend is used.
"""

from __future__ import annotations

from frame_describer import FrameDescription, Usage, get_describer
from vidground.errors import (
    ConfigurationError,
    EvaluationError,
    IncompleteOutputError,
    InputError,
    MissingDependencyError,
    OutputValidationError,
    PluginError,
    ProviderError,
    SessionClosedError,
    VideoDecodeError,
    VidgroundError,
)
from temporal_reasoner import GroundingResult, Interval, Transcript, get_reasoner

from vidground.types import Answer, Event, Events, Sampling

from .api import answer, describe, events, ground
from .session import DescribedVideo, Session, load_descriptions

__version__ = "0.1.0"

__all__ = [
    "ground", "answer", "Answer", "events", "Event", "Events", "describe", "load_descriptions", "DescribedVideo", "Session", "Sampling", "GroundingResult", "Interval", "Transcript",
    "FrameDescription", "Usage", "get_describer", "get_reasoner",
    "VidgroundError", "ConfigurationError", "MissingDependencyError", "InputError", "EvaluationError",
    "VideoDecodeError", "ProviderError", "OutputValidationError", "IncompleteOutputError", "PluginError",
    "SessionClosedError", "__version__",
]
