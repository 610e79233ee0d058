"""Frames to the wire: JPEG at a bounded size, as bytes or a base64 ``data:`` URL.

The longest side is bounded (512 px by default, a sensible cost/quality point for image
models) and never enlarged. JPEG encoding goes through Pillow (libjpeg-turbo). OpenCV's
``imencode`` writes the same bytes, but it needs a BGR copy first, and ``cv2.cvtColor`` runs on
OpenCV's thread pool, whose workers spin after every call: ``python benchmarks/stage1_throughput.py
--diagnose`` measured 0.47-0.63 ms of CPU per 512x288 frame for the JPEG request through OpenCV
and 0.32 ms through Pillow, CPU taken from the decoder running beside the requests. Pillow holds
the GIL while it encodes into memory, one 64 kB output buffer at a time: a 512-px frame holds it
for its whole encode (about as long as a short stretch of Python code), so encoder threads do not
encode in parallel with each other; a large frame yields it between buffers.
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

from .errors import ConfigurationError, InputError

DEFAULT_MAX_SIDE = 512
DEFAULT_JPEG_QUALITY = 85


def check_image_options(max_side: int | None, quality: int) -> None:
    if max_side is not None and (not isinstance(max_side, int) or max_side < 16):
        raise ConfigurationError(f"max_side must be an integer of at least 16 pixels (or None), got {max_side!r}")
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigurationError(f"jpeg quality must be an integer from 1 to 100, got {quality!r}")


def bounded(image: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """``image`` shrunk (area interpolation, aspect kept) so its longest side is at most ``max_side``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError("a frame image must be an RGB uint8 array of shape (H, W, 3)")
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, *, max_side: int | None = DEFAULT_MAX_SIDE,
                quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB frame, longest side bounded by ``max_side``."""
    check_image_options(max_side, quality)
    img = bounded(image, max_side)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def to_data_url(image: np.ndarray, *, max_side: int | None = DEFAULT_MAX_SIDE,
                quality: int = DEFAULT_JPEG_QUALITY) -> str:
    """``data:image/jpeg;base64,...`` for an RGB frame."""
    data = encode_jpeg(image, max_side=max_side, quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


__all__ = ["DEFAULT_MAX_SIDE", "DEFAULT_JPEG_QUALITY", "bounded", "encode_jpeg", "to_data_url", "check_image_options"]
