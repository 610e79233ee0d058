"""Frames to the wire: JPEG at a bounded size, as bytes or a base64 ``data:`` URL.

The longest side is bounded (512 px by default, a sensible cost/quality point for image models) and
never enlarged (:func:`bounded`, the one resize rule: sampling and the cv describer use it too).
JPEG encoding goes through libjpeg-turbo, by way of ``simplejpeg`` (installed with the ``openai``
extra) or, without it, Pillow. Both write the same baseline JFIF layout (quantisation and Huffman
tables, 4:2:0 chroma) at the same quality scale, and the pictures differ only by rounding: the test
suite holds them to the same fidelity to the frame (PSNR within 0.2 dB). ``simplejpeg`` is
preferred because the encoder runs beside the decoder on every frame, and it (1) costs less CPU
(Pillow first copies the frame into its own 4-byte-per-pixel layout) and (2) releases the GIL while
it encodes, where Pillow holds it while it encodes into memory, holding up the decoding thread
(``python benchmarks/stage1_throughput.py --diagnose``; figures in docs/benchmarks.md). OpenCV's
``imencode`` is not used: it needs a BGR copy first, and ``cv2.cvtColor`` runs on OpenCV's thread
pool, whose workers spin after every call, taking CPU from the decoder.
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np

from vidground.errors import ConfigurationError, InputError

try:
    import simplejpeg as _simplejpeg
except ImportError:  # the openai extra installs it; Pillow writes the same JPEG, a little slower
    _simplejpeg = None

DEFAULT_MAX_SIDE = 512
DEFAULT_JPEG_QUALITY = 85
JPEG_MAX_SIDE = 65500  # libjpeg's limit


def check_image_options(max_side: int | None, quality: int) -> None:
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int)
                                 or not 16 <= max_side <= JPEG_MAX_SIDE):
        raise ConfigurationError(f"max_side must be an integer from 16 to {JPEG_MAX_SIDE} pixels (JPEG's limit), "
                                 f"or None, got {max_side!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:  # True is not 1
        raise ConfigurationError(f"jpeg_quality must be an integer from 1 to 100, got {quality!r}")


def bounded(image: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """``image`` shrunk (area interpolation, aspect kept) so its longest side is at most ``max_side``."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError("a frame image must be an RGB uint8 array of shape (H, W, 3)")
    h, w = image.shape[:2]
    if not h or not w:
        raise InputError(f"a frame image must have pixels, got shape {image.shape}")
    if max_side is None or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, *, max_side: int | None = DEFAULT_MAX_SIDE,
                quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB frame, longest side bounded by ``max_side``. An empty frame, or one
    over 65500 pixels on a side with ``max_side=None``, is an :class:`InputError`."""
    check_image_options(max_side, quality)
    img = bounded(image, max_side)
    if max(img.shape[:2]) > JPEG_MAX_SIDE:
        raise InputError(f"a JPEG can be at most {JPEG_MAX_SIDE} pixels on a side, the frame is "
                         f"{img.shape[1]}x{img.shape[0]}: give a max_side")
    if _simplejpeg is not None:
        if img.strides[1:] != (3, 1) or img.strides[0] < 3 * img.shape[1]:  # rotated, flipped, exotic
            img = np.ascontiguousarray(img)  # (simplejpeg takes rows at any forward stride: crops as they are)
        return _simplejpeg.encode_jpeg(img, quality=quality, colorspace="RGB", colorsubsampling="420")
    from PIL import Image  # imported here: only the fallback needs it, and the import is not free

    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def to_data_url(image: np.ndarray, *, max_side: int | None = DEFAULT_MAX_SIDE,
                quality: int = DEFAULT_JPEG_QUALITY) -> str:
    """``data:image/jpeg;base64,...`` for an RGB frame."""
    data = encode_jpeg(image, max_side=max_side, quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


__all__ = ["DEFAULT_MAX_SIDE", "DEFAULT_JPEG_QUALITY", "bounded", "encode_jpeg", "to_data_url", "check_image_options"]
