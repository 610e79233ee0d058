"""What a video can be called, and whether two names can be of one video: used by the replay describer (captions of
another video are refused), the caption readers (a file naming two videos) and the eval (files swapped by name). A
module of its own, importing nothing of the package: the caption readers import it, and the replay describer imports
them."""

from __future__ import annotations

from pathlib import Path, PurePath

__all__ = ["same_video", "video_names"]


def video_names(video: str | Path) -> set[str]:
    """What a video can be called: its file name, stem or id, without ActivityNet's ``v_``."""
    p = PurePath(str(video).strip())
    return {n.removeprefix("v_") for n in (str(video).strip(), p.name, p.stem) if n}


def same_video(named: str, video: str | Path) -> bool:
    """Whether two names (a path, a file name, an id) can be of one video: ``demo.mp4`` and ``/tmp/x/demo.mp4``."""
    return bool(video_names(named) & video_names(video))
